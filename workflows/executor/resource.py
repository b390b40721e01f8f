"""Resource templates (Argo's ``resource``): act on a Kubernetes object, then wait for its conditions.

Run in the scheduler's loop through the Kubernetes API, as Argo's executor runs ``kubectl``:

- ``create``, ``apply``, ``replace``, ``patch``, ``delete`` or ``get`` on the manifest. The namespace
  defaults to the workflow's.
  - ``apply`` creates the object, or merge-patches it when it exists (kubectl's three-way merge is
    approximated by a merge patch).
  - ``replace`` puts the whole object, which must exist.
  - ``patch`` uses ``mergeStrategy``: strategic (the default), merge or json. A json patch names its
    target in ``flags``: ``[pod, NAME]`` or ``[pod/NAME]``.
  - ``delete`` ignores an object that is already gone, as Argo's ``--ignore-not-found`` does.
- ``successCondition`` / ``failureCondition`` use Argo's syntax, Kubernetes label selectors over gjson
  paths into the object: ``status.succeeded > 2``, ``status.phase in (Failed,Error)``,
  ``metadata.labels.done``, ``!status.failed``, requirements joined by commas. They are read again every
  ``poll_seconds``. Any failure requirement that holds fails the step, with Argo's message:
  ``failure condition 'status.failed>1' evaluated true``. Every success requirement must hold for the
  step to succeed.
- output parameters come from ``valueFrom.jsonPath`` (kubectl's ``{.a.b[0]}``) or ``jqFilter`` (paths
  such as ``.status.phase`` and ``.``; anything richer is refused with the reason).
- ``setOwnerReference`` cannot point at the workflow, which is not a Kubernetes object here. The step
  says so in its log and goes on. Flags other than the patch target and ``--ignore-not-found`` are
  noted in the log and ignored.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from workflows.kube import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    KubeApiError,
    KubeClient,
    KubeError,
    KubeNotFound,
    ObjectRef,
)
from workflows.models import Template

__all__ = ["ConditionError", "Requirement", "ResourceOutcome", "parse_condition", "run_resource"]

_STRATEGIES = {"strategic": STRATEGIC_MERGE_PATCH, "merge": MERGE_PATCH, "json": JSON_PATCH}
# kubectl resource names for the kinds a json patch names in its flags.
_KINDS = {
    "pod": ("v1", "Pod"), "pods": ("v1", "Pod"), "po": ("v1", "Pod"),
    "configmap": ("v1", "ConfigMap"), "configmaps": ("v1", "ConfigMap"), "cm": ("v1", "ConfigMap"),
    "secret": ("v1", "Secret"), "secrets": ("v1", "Secret"),
    "service": ("v1", "Service"), "services": ("v1", "Service"), "svc": ("v1", "Service"),
    "job": ("batch/v1", "Job"), "jobs": ("batch/v1", "Job"),
    "deployment": ("apps/v1", "Deployment"), "deployments": ("apps/v1", "Deployment"), "deploy": ("apps/v1", "Deployment"),
    "statefulset": ("apps/v1", "StatefulSet"), "statefulsets": ("apps/v1", "StatefulSet"),
    "workflow": ("argoproj.io/v1alpha1", "Workflow"), "workflows": ("argoproj.io/v1alpha1", "Workflow"), "wf": ("argoproj.io/v1alpha1", "Workflow"),
}  # fmt: skip


class ConditionError(ValueError):
    """A success or failure condition that does not parse."""


@dataclass(frozen=True)
class Requirement:
    """One requirement of a label selector, over a gjson path of the object."""

    key: str
    op: str  # "=", "==", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        """As Kubernetes prints it (Argo's messages quote it): ``a>1``, ``a in (x,y)``, ``!a``."""
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(sorted(set(self.values)))})"
        return f"{self.key}{self.op}{self.values[0]}"

    def matches(self, obj: Any) -> bool:
        """Kubernetes' ``Requirement.Matches`` over the object (a missing key fails ``=`` and ``in``,
        satisfies ``!=`` and ``notin``; ``>``/``<`` compare integers)."""
        return self._holds(*gjson(obj, self.key))

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        """The same over an object's labels (keys such as ``app.kubernetes.io/name`` taken whole)."""
        return self._holds(self.key in labels, str(labels.get(self.key, "")))

    def _holds(self, found: bool, value: str) -> bool:
        match self.op:
            case "exists":
                return found
            case "!":
                return not found
            case "=" | "==" | "in":
                return found and value in self.values
            case "!=" | "notin":
                return not found or value not in self.values
            case ">" | "<":
                try:
                    left, right = int(value), int(self.values[0])
                except ValueError:
                    return False
                return found and (left > right if self.op == ">" else left < right)
        return False


_KEY = r"[^\s=!<>(),]+"
_VALUE = r"[^\s,()=!<>]*"
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_CMP = re.compile(rf"^({_KEY})\s*(==|=|!=|>|<)\s*({_VALUE})$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_JSONPATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_JQ_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\.?\[\"([^\"]*)\"\]")


def parse_condition(text: str) -> list[Requirement]:
    """Parse a condition (Kubernetes label-selector syntax); raises :class:`ConditionError`."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    found = []
    for raw in parts:
        part = raw.strip()
        if not part:
            raise ConditionError(f"empty requirement in {text!r}")
        if m := _SET.match(part):
            values = tuple(v.strip() for v in m.group(3).split(","))
            found.append(Requirement(m.group(1), m.group(2), values))
        elif m := _CMP.match(part):
            op = m.group(2)
            if op in (">", "<") and not re.fullmatch(r"-?\d+", m.group(3)):
                raise ConditionError(f"{part!r}: {op} needs an integer value")
            found.append(Requirement(m.group(1), op, (m.group(3),)))
        elif m := _EXISTS.match(part):
            found.append(Requirement(m.group(2), "!" if m.group(1) else "exists"))
        else:
            raise ConditionError(f"cannot parse {part!r}")
    return found


def gjson(obj: Any, path: str) -> tuple[bool, str]:
    """gjson's ``Get(path).Exists()`` and ``.String()`` for dotted paths (``\\.`` escapes a dot,
    digits index arrays, ``#`` is an array's length)."""
    keys = [k.replace("\\.", ".") for k in re.split(r"(?<!\\)\.", path)]
    current = obj
    for key in keys:
        if isinstance(current, Mapping) and key in current:
            current = current[key]
        elif isinstance(current, list) and key == "#":
            current = len(current)
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return False, ""
    return True, _text(current)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def json_path(obj: Any, expression: str) -> str:
    """kubectl's ``-o jsonpath=`` for plain paths: ``{.metadata.name}``, ``{.items[0].x}``,
    ``{.metadata.labels['a.b/c']}``, with text around the braces kept."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        if inner in ("", "."):
            return _text(obj)
        found = list(_JSONPATH_STEP.finditer(inner))
        if "".join(m.group(0) for m in found) != inner:
            raise ValueError(f"jsonPath {expression!r}: only paths like {{.a.b[0]}} are supported")
        current = obj
        for key, index, quoted, dquoted in (m.groups() for m in found):
            name = key or quoted or dquoted
            if index:
                if not isinstance(current, list) or int(index) >= len(current):
                    raise ValueError(f"jsonPath {expression!r}: {inner} is not in the object")
                current = current[int(index)]
            elif isinstance(current, Mapping) and name in current:
                current = current[name]
            else:
                raise ValueError(f"jsonPath {expression!r}: {inner} is not in the object")
        return _text(current)

    return re.sub(r"\{([^{}]*)\}", one, expression)


def jq_filter(obj: Any, expression: str) -> str:
    """``jq -rc`` for paths: ``.``, ``.a.b``, ``.a[0]``, ``.["a.b"]``."""
    text = expression.strip()
    if text == ".":
        return _text(obj)
    found = list(_JQ_STEP.finditer(text))
    if not text.startswith(".") or "".join(m.group(0) for m in found) != text:
        raise ValueError(f"jqFilter {expression!r}: only paths like .status.phase or . are supported")
    current = obj
    for key, index, quoted in (m.groups() for m in found):
        if index:
            current = current[int(index)] if isinstance(current, list) and int(index) < len(current) else None
        else:
            current = current.get(key or quoted) if isinstance(current, Mapping) else None
    return "null" if current is None else _text(current)


@dataclass
class ResourceOutcome:
    """How the step ended: Argo's phase and message, the output parameters, the lines for its log."""

    phase: str
    message: str | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def _target_from_flags(flags: Sequence[str]) -> tuple[tuple[str, str], str] | None:
    words = [f for f in flags if not f.startswith("-")]
    if len(words) == 1 and "/" in words[0]:
        words = words[0].split("/", 1)
    if len(words) != 2:
        return None
    kind = _KINDS.get(words[0].lower())
    return (kind, words[1]) if kind is not None else None


async def run_resource(
    client: KubeClient,
    template: Template,
    *,
    namespace: str,
    poll_seconds: float = 1.0,
    deadline: float | None = None,
    deadline_message: str = "",
) -> ResourceOutcome:
    """Perform the template's action and wait for its conditions (see the module docstring)."""
    res = template.resource
    assert res is not None
    out = ResourceOutcome("Succeeded")
    try:
        success = parse_condition(res.success_condition) if res.success_condition else []
    except ConditionError as exc:
        return ResourceOutcome("Error", f"success condition '{res.success_condition}' failed to parse: {exc}")
    try:
        failure = parse_condition(res.failure_condition) if res.failure_condition else []
    except ConditionError as exc:
        return ResourceOutcome("Error", f"fail condition '{res.failure_condition}' failed to parse: {exc}")
    flags = list(res.flags or [])
    try:
        manifest = yaml.safe_load(res.manifest or "") if res.manifest else None
    except yaml.YAMLError as exc:
        return ResourceOutcome("Error", f"manifest is not YAML: {exc}")
    if res.manifest_from is not None:
        return ResourceOutcome("Error", "manifestFrom.artifact is not supported: give the manifest inline")
    action = res.action
    strategy = (res.merge_strategy or "strategic").lower()
    if strategy not in _STRATEGIES:
        return ResourceOutcome(
            "Error", f"mergeStrategy {res.merge_strategy!r}: expected strategic, merge or json"
        )
    for flag in flags:
        if flag.startswith("-") and flag != "--ignore-not-found":
            out.log.append(f"flag {flag} ignored (no kubectl here)")
    if res.set_owner_reference:
        out.log.append(
            "setOwnerReference: the workflow is not a Kubernetes object here; no owner reference set"
        )
    try:
        obj = await _act(client, action, manifest, flags, strategy, namespace, out)
    except KubeApiError as exc:
        return ResourceOutcome("Failed", str(exc), log=[*out.log, str(exc)])
    except KubeError as exc:  # unreachable after retries: an infrastructure failure
        return ResourceOutcome("Error", str(exc), log=[*out.log, str(exc)])
    except ValueError as exc:
        return ResourceOutcome("Error", str(exc), log=[*out.log, str(exc)])
    if obj is None:  # delete
        return out
    ref = ObjectRef.of(obj)
    out.log.append(f"{action}: {ref}")
    if success or failure:
        obj = await _wait(client, ref, success, failure, poll_seconds, deadline, deadline_message, out)
        if out.phase != "Succeeded" or obj is None:
            return out
    for param in (template.outputs.parameters or []) if template.outputs else []:
        vf = param.value_from
        if vf is None or not (vf.json_path or vf.jq_filter):
            continue
        try:
            value = json_path(obj, vf.json_path) if vf.json_path else jq_filter(obj, vf.jq_filter or ".")
        except ValueError as exc:
            if vf.default is not None:
                value = str(vf.default)
            else:
                return ResourceOutcome("Error", str(exc), log=[*out.log, str(exc)])
        out.parameters.append({"name": param.name, "value": value})
    return out


async def _act(
    client: KubeClient,
    action: str,
    manifest: Any,
    flags: list[str],
    strategy: str,
    namespace: str,
    out: ResourceOutcome,
) -> dict[str, Any] | None:
    if action == "patch":
        target = _target_from_flags(flags)
        if strategy == "json" or not isinstance(manifest, Mapping):
            if target is None:
                raise ValueError("a json patch names its object in flags: [<kind>, <name>]")
            (api_version, kind), name = target
            return await client.patch(
                (api_version, kind, namespace, name), manifest, patch_type=_STRATEGIES[strategy]
            )
        body = _namespaced(manifest, namespace)
        if target is not None:
            (api_version, kind), name = target
            return await client.patch(
                (api_version, kind, namespace, name), body, patch_type=_STRATEGIES[strategy]
            )
        return await client.patch(body, body, patch_type=_STRATEGIES[strategy])
    if action == "delete" and manifest is None:
        return await _delete_by_flags(client, flags, namespace, out)
    if not isinstance(manifest, Mapping):
        raise ValueError(f"action {action}: the manifest must be one Kubernetes object")  # noqa: TRY004 - a user error, reported as the node's message
    body = _namespaced(manifest, namespace)
    match action:
        case "create":
            return await client.create(body)
        case "get":
            return await client.get(body)
        case "apply":
            try:
                await client.get(body)
            except KubeNotFound:
                return await client.create(body)
            return await client.patch(body, body, patch_type=MERGE_PATCH)
        case "replace":
            live = await client.get(body)
            meta = {
                **(body.get("metadata") or {}),
                "resourceVersion": (live.get("metadata") or {}).get("resourceVersion"),
            }
            return await client.update({**body, "metadata": meta})
        case "delete":
            try:
                await client.delete(body)
                out.log.append(f"deleted {ObjectRef.of(body)}")
            except KubeNotFound:
                out.log.append(f"{ObjectRef.of(body)} was already gone")
            return None
    raise ValueError(f"unknown action {action!r}: expected get, create, apply, delete, replace or patch")


async def _delete_by_flags(
    client: KubeClient, flags: list[str], namespace: str, out: ResourceOutcome
) -> None:
    """``delete`` without a manifest: ``[kind, name]`` or ``[kind, --selector|-l, selector]``."""
    selector = None
    words: list[str] = []
    i = 0
    while i < len(flags):
        flag = flags[i]
        if flag in ("--selector", "-l") and i + 1 < len(flags):
            selector, i = flags[i + 1], i + 2
            continue
        if flag.startswith("--selector="):
            selector = flag.split("=", 1)[1]
        elif not flag.startswith("-"):
            words.append(flag)
        i += 1
    kind = _KINDS.get(words[0].lower()) if words else None
    if kind is None:
        raise ValueError(
            f"delete without a manifest needs flags [<kind>, <name>] or [<kind>, --selector, <labels>], got {flags}"
        )
    api_version, kind_name = kind
    if selector is None:
        if len(words) != 2:
            raise ValueError(
                f"delete without a manifest needs the object's name or --selector in flags, got {flags}"
            )
        names = [words[1]]
    else:
        try:
            wanted = parse_condition(selector)
        except ConditionError as exc:
            raise ValueError(f"--selector {selector!r}: {exc}") from None
        listed = await client.list(api_version, kind_name, namespace, label_selector=selector)
        # Filtered here too: the selector is the server's to apply, and this costs nothing if it did.
        names = [
            str(o["metadata"]["name"]) for o in listed
            if all(r.matches_labels((o.get("metadata") or {}).get("labels") or {}) for r in wanted)
        ]  # fmt: skip
    for name in names:
        try:
            await client.delete((api_version, kind_name, namespace, name))
            out.log.append(f"deleted {kind_name} {namespace}/{name}")
        except KubeNotFound:
            out.log.append(f"{kind_name} {namespace}/{name} was already gone")
    if not names:
        out.log.append(f"no {kind_name} matched {selector!r}")


def _namespaced(manifest: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    meta = dict(manifest.get("metadata") or {})
    meta.setdefault("namespace", namespace)
    return {**manifest, "metadata": meta}


async def _wait(
    client: KubeClient,
    ref: ObjectRef,
    success: list[Requirement],
    failure: list[Requirement],
    poll_seconds: float,
    deadline: float | None,
    deadline_message: str,
    out: ResourceOutcome,
) -> dict[str, Any] | None:
    while True:
        try:
            obj = await client.get(ref)
        except KubeNotFound:
            out.phase, out.message = "Failed", f"{ref} was deleted while its conditions were being checked"
            return None
        except KubeError as exc:  # transient: Argo retries these
            out.log.append(f"reading {ref}: {exc}; retrying")
            obj = None
        if obj is not None:
            for req in failure:
                if req.matches(obj):
                    out.phase, out.message = "Failed", f"failure condition '{req}' evaluated true"
                    out.log.append(out.message)
                    return obj
            matched = sum(req.matches(obj) for req in success)
            if matched == len(success):
                out.log.append(f"{matched}/{len(success)} success conditions matched")
                return obj
        if deadline is not None and time.time() + poll_seconds > deadline:
            out.phase, out.message = "Failed", deadline_message or "step deadline exceeded"
            return None
        await asyncio.sleep(poll_seconds)

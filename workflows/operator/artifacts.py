"""Artifacts in the node graph: binding a template's input artifacts, its outputs' references, and the
scope entries they make. Pure computation; the scheduler moves the bytes.

An artifact in a node's status (``inputs.artifacts[]`` / ``outputs.artifacts[]``) is a plain dict:
``name``, ``path`` (as the node sees it) and where its content is: ``key`` (in the workflow's
artifact repository), ``raw`` ({data}), or a location of its own (``s3`` with a bucket, ``http``...).
Outputs also carry ``archive`` ("tar", "none" or "zip"), ``kind`` ("file"/"dir") and ``size``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from workflows.expressions import EvaluationError, ExpressionError, build_env, evaluate_expr, substitute, substitute_obj
from workflows.models import Arguments, Artifact, Template
from workflows.operator.params import InputError

__all__ = [
    "LOCATION_KINDS",
    "artifact_scope",
    "output_artifact_refs",
    "resolve_input_artifacts",
    "storage_of",
]

LOCATION_KINDS = ("raw", "s3", "gcs", "azure", "oss", "hdfs", "http", "git", "artifactory", "plugin")
_REF = re.compile(r"^\s*\{\{\s*([^{}]+?)\s*\}\}\s*$")


def storage_of(art: Artifact) -> dict[str, Any] | None:
    """Where a template's or argument's artifact lives, as status fields; None when it names nowhere."""
    data = art.model_dump(by_alias=True, exclude_none=True, mode="json")
    if art.raw is not None:
        return {"raw": {"data": art.raw.data}}
    for kind in LOCATION_KINDS:
        location = data.get(kind)
        if location is None:
            continue
        # A key and nothing else: "key-only", a key in the workflow's own repository.
        if isinstance(location, dict) and set(location) <= {"key"} and location.get("key"):
            return {"key": str(location["key"]).lstrip("/")}
        return {kind: location}
    return None


def _lookup(reference: str, scope: dict[str, Any]) -> dict[str, Any] | None:
    match = _REF.match(reference)
    name = match.group(1) if match else reference.strip()
    value = scope.get(name)
    if isinstance(value, dict):
        return dict(value)
    if reference.lstrip().startswith("{"):
        # Already substituted (an exit hook's arguments are resolved early): the artifact as JSON.
        try:
            value = json.loads(reference)
        except ValueError:
            return None
        return value if isinstance(value, dict) and "name" in value else None
    return None


def _from(arg: Artifact, scope: dict[str, Any]) -> dict[str, Any] | None:
    if arg.from_ is not None:
        found = _lookup(arg.from_, scope)
        if found is None:
            raise InputError(f"Unable to resolve: {arg.from_}")
        return found
    if arg.from_expression is not None:
        try:
            value = evaluate_expr(arg.from_expression, build_env(scope))
        except (ExpressionError, EvaluationError) as exc:
            raise InputError(f"Unable to resolve fromExpression {arg.from_expression!r}: {exc}") from exc
        if not isinstance(value, dict):
            raise InputError(f"fromExpression {arg.from_expression!r} did not give an artifact")
        return dict(value)
    own = storage_of(arg)
    return substitute_obj(own, scope, strict=False) if own is not None else None  # type: ignore[return-value]


def _content(found: dict[str, Any]) -> dict[str, Any]:
    """The fields of a resolved artifact that say where its content is (not its name or path)."""
    keep = ("key", "raw", "archive", "kind", "size", *LOCATION_KINDS)
    return {k: v for k, v in found.items() if k in keep}


def resolve_input_artifacts(
    template: Template, arguments: Arguments | None, scope: dict[str, Any]
) -> list[dict[str, Any]]:
    """Argo's artifact binding (``ProcessArgs``): a template artifact with a location of its own keeps
    it; otherwise the argument of the same name supplies one (by ``from``, ``fromExpression`` or a
    location), unless the input is optional. Raises :class:`InputError` with Argo's messages."""
    supplied = {a.name: a for a in (arguments.artifacts or [])} if arguments else {}
    out: list[dict[str, Any]] = []
    for art in (template.inputs.artifacts or []) if template.inputs else []:
        arg = supplied.get(art.name)
        source = storage_of(art)  # hard-wired in the template: Argo prefers it to the argument
        if source is not None:
            source = substitute_obj(source, scope, strict=False)  # type: ignore[assignment]
        if source is None and arg is not None:
            try:
                source = _from(arg, scope)
            except InputError:
                if not art.optional:
                    raise
                source = None
        if source is None:
            if art.optional:
                continue
            if arg is None:
                raise InputError(f"inputs.artifacts.{art.name} was not supplied")
            raise InputError(f"inputs.artifacts.{art.name} missing location information")
        entry: dict[str, Any] = {"name": art.name, **_content(source)}
        if art.path:
            entry["path"] = substitute(art.path, scope, strict=False)
        if art.mode is not None:
            entry["mode"] = art.mode
        if art.archive:  # the input's own archive strategy (``none``: never unpack) wins
            entry["archive"] = dict(art.archive)
        sub_path = art.sub_path or (arg.sub_path if arg is not None else None)
        if sub_path:
            entry["subPath"] = substitute(sub_path, scope, strict=False)
        if "raw" in entry and isinstance(entry["raw"], dict):
            entry["raw"] = {"data": substitute(str(entry["raw"].get("data", "")), scope, strict=False)}
        out.append(entry)
    return out


def artifact_scope(prefix: str, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """``<prefix>.<name>`` (the artifact, for ``from``) and ``<prefix>.<name>.path`` for each."""
    scope: dict[str, Any] = {}
    for art in artifacts:
        scope[f"{prefix}.{art['name']}"] = art
        if art.get("path"):
            scope[f"{prefix}.{art['name']}.path"] = art["path"]
    return scope


def output_artifact_refs(template: Template, scope: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    """Outputs of a steps/dag template: each artifact its ``from``/``fromExpression`` names, with its
    globalName. A reference that does not resolve is an error unless the artifact is optional."""
    out: list[tuple[dict[str, Any], str | None]] = []
    for art in (template.outputs.artifacts or []) if template.outputs else []:
        if art.from_ is None and art.from_expression is None:
            continue
        try:
            found = _from(art, scope)
        except InputError:
            if art.optional:
                continue
            raise
        if found is None:
            continue
        entry = {"name": art.name, **_content(found)}
        if found.get("path"):
            entry["path"] = found["path"]
        out.append((entry, art.global_name))
    return out

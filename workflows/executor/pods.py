"""The Pod a container or script step becomes under the Kubernetes executor (pure, no I/O).

Argo's shape: one Pod per step, named after the node id, labelled ``workflows.argoproj.io/workflow`` and
annotated with the node's name and id. The main container is called ``main``. Init containers and
sidecars come from the template. The pod's Kubernetes fields come from the template, else from the
workflow's spec: ``serviceAccountName``, ``nodeSelector``, ``tolerations``, ``affinity``,
``securityContext``, ``imagePullSecrets``, ``priorityClassName``, ``schedulerName``, ``hostAliases``,
``dnsPolicy``, ``dnsConfig``. The volumes are the workflow's and the template's. ``podSpecPatch``
(the workflow's, then the template's) is merged last. The template's ``metadata`` and the workflow's
``podMetadata`` become the pod's labels and annotations.

Two things Argo's executor does inside the pod are done here with ``sh``, so the image needs one:

- a script's ``source`` travels in the environment and is written to a file, whose path is appended to
  ``command``, as Argo does;
- output parameters read from files (``valueFrom.path``) are read when the main command ends and written,
  base64 encoded, to the container's termination message, which Kubernetes keeps in the pod's status
  (at most 4 KiB in all). The step's exit code is kept.

A step that needs neither keeps its ``command`` and ``args`` untouched.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from workflows.models import Template, Workflow

__all__ = [
    "MAIN",
    "NODE_ID_ANNOTATION",
    "TERMINATION_ENV",
    "WORKFLOW_LABEL",
    "parse_outputs",
    "pod_manifest",
    "stand_in_manifest",
]

MAIN = "main"
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
COMPLETED_LABEL = "workflows.argoproj.io/completed"
NODE_NAME_ANNOTATION = "workflows.argoproj.io/node-name"
NODE_ID_ANNOTATION = "workflows.argoproj.io/node-id"
TERMINATION_PATH = "/dev/termination-log"
# The wrapper writes outputs to the file this names (the container's terminationMessagePath).
TERMINATION_ENV = "EVENTFLOW_TERMINATION_LOG"
SCRIPT_ENV = "EVENTFLOW_SCRIPT"
SCRIPT_PATH = "/tmp/eventflow-script"

# Runs the main command ("$@"), then reads each output file into the termination message as
# "<index>:<base64>" lines; the command's exit code is the container's.
_WRAPPER = (
    '"$@"; rc=$?; i=0; for p in PATHS; do '
    'if [ -f "$p" ]; then printf "%s:" "$i"; base64 "$p" | tr -d "\\n"; printf "\\n"; fi; i=$((i+1)); '
    'done > "${' + TERMINATION_ENV + '}"; exit $rc'
)
_SCRIPT = 'printf "%s" "$' + SCRIPT_ENV + '" > ' + SCRIPT_PATH + ' && exec "$0" "$@"'

# Pod spec fields a template sets, else its workflow (Argo's precedence).
_POD_FIELDS = (
    ("serviceAccountName", "serviceAccountName"),
    ("nodeSelector", "nodeSelector"),
    ("tolerations", "tolerations"),
    ("affinity", "affinity"),
    ("securityContext", "securityContext"),
    ("priorityClassName", "podPriorityClassName"),
    ("schedulerName", "schedulerName"),
    ("hostAliases", "hostAliases"),
    ("automountServiceAccountToken", "automountServiceAccountToken"),
)
_WORKFLOW_ONLY = ("imagePullSecrets", "dnsPolicy", "dnsConfig")


class PodSpecError(ValueError):
    """The step cannot be expressed as a Pod (the message says why and what to change)."""


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\"'\"'") + "'"


def _main_container(
    template: Template, output_paths: Sequence[str], env: Mapping[str, str]
) -> dict[str, Any]:
    main = template.main_container
    assert main is not None
    body = main.model_dump(by_alias=True, exclude_none=True, mode="json")
    body.pop("source", None)
    container: dict[str, Any] = {**body, "name": MAIN}
    # Values substituted by the scheduler win over the raw template (inputs, items, parameters).
    plain = [e for e in body.get("env") or [] if "valueFrom" in e]
    container["env"] = [*[{"name": k, "value": v} for k, v in env.items()], *plain]
    command = list(body.get("command") or [])
    args = list(body.get("args") or [])
    if template.script is not None:
        if not command:
            raise PodSpecError(
                "a script template needs command (e.g. [python] or [sh]) under the Kubernetes executor"
            )
        container["env"].append({"name": SCRIPT_ENV, "value": template.script.source or ""})
        command, args = ["sh", "-c", _SCRIPT, *command], [*args, SCRIPT_PATH]
    if output_paths:
        if not command:
            raise PodSpecError(
                "output parameters read from files need container.command under the Kubernetes executor "
                "(the pod reads them when the command ends)"
            )
        wrapper = _WRAPPER.replace("PATHS", " ".join(_quote(p) for p in output_paths), 1)
        command = ["sh", "-c", wrapper, "--", *command]
        container["env"].append({"name": TERMINATION_ENV, "value": TERMINATION_PATH})
        container["terminationMessagePath"] = TERMINATION_PATH
        container["terminationMessagePolicy"] = "File"
    if command:
        container["command"] = command
    if args or "args" in container:
        container["args"] = args
    return container


def _merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A strategic-merge-like patch: dicts merge, ``containers`` (and init containers) merge by name."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif (
            key in ("containers", "initContainers")
            and isinstance(value, list)
            and isinstance(out.get(key), list)
        ):
            merged = {c.get("name"): dict(c) for c in out[key]}
            for c in value:
                name = c.get("name")
                merged[name] = _merge(merged[name], c) if name in merged else dict(c)
            out[key] = list(merged.values())
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _patch(text: str, where: str) -> dict[str, Any]:
    try:
        patch = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PodSpecError(f"{where}: not YAML or JSON: {exc}") from None
    if not isinstance(patch, dict):
        raise PodSpecError(f"{where}: expected an object (a PodSpec patch)")
    return patch


def pod_manifest(
    *,
    node_id: str,
    node_name: str,
    namespace: str,
    workflow: Workflow,
    workflow_name: str,
    template: Template,
    env: Mapping[str, str],
    output_paths: Sequence[str] = (),
    active_deadline_seconds: int | None = None,
) -> dict[str, Any]:
    """The Pod for one step (see the module docstring); raises :class:`PodSpecError`."""
    spec = workflow.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    tmpl = template.model_dump(by_alias=True, exclude_none=True, mode="json")
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for meta in (spec.get("podMetadata") or {}, tmpl.get("metadata") or {}):
        labels.update(meta.get("labels") or {})
        annotations.update(meta.get("annotations") or {})
    labels.update({WORKFLOW_LABEL: workflow_name, COMPLETED_LABEL: "false"})
    annotations.update({NODE_NAME_ANNOTATION: node_name, NODE_ID_ANNOTATION: node_id})
    pod_spec: dict[str, Any] = {"restartPolicy": "Never"}
    for ours, theirs in _POD_FIELDS:
        value = tmpl.get(ours, spec.get(theirs))
        if value is not None:
            pod_spec[ours] = value
    for name in _WORKFLOW_ONLY:
        if name in spec:
            pod_spec[name] = spec[name]
    volumes = [*(spec.get("volumes") or []), *(tmpl.get("volumes") or [])]
    if volumes:
        pod_spec["volumes"] = volumes
    containers = [_main_container(template, output_paths, env)]
    containers += [
        {k: v for k, v in c.items() if k != "mirrorVolumeMounts"} for c in tmpl.get("sidecars") or []
    ]
    pod_spec["containers"] = containers
    if tmpl.get("initContainers"):
        pod_spec["initContainers"] = [
            {k: v for k, v in c.items() if k != "mirrorVolumeMounts"} for c in tmpl["initContainers"]
        ]
    if active_deadline_seconds is not None:
        pod_spec["activeDeadlineSeconds"] = max(1, int(active_deadline_seconds))
    for where, text in (
        ("spec.podSpecPatch", spec.get("podSpecPatch")),
        ("podSpecPatch", tmpl.get("podSpecPatch")),
    ):
        if text:
            pod_spec = _merge(pod_spec, _patch(str(text), where))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": node_id, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": pod_spec,
    }


STAND_IN_IMAGE = "busybox:1.36"


def stand_in_manifest(*, node_id: str, node_name: str, namespace: str, workflow_name: str) -> dict[str, Any]:
    """The pod a resource step that acts on its own pod (``{{pod.name}}``) runs "in": it only has to
    exist, as Argo's resource steps run in a pod of their own; it sleeps until deleted."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": node_id,
            "namespace": namespace,
            "labels": {WORKFLOW_LABEL: workflow_name, COMPLETED_LABEL: "false"},
            "annotations": {NODE_NAME_ANNOTATION: node_name, NODE_ID_ANNOTATION: node_id},
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": MAIN, "image": STAND_IN_IMAGE, "command": ["sleep", "3600"]}],
        },
    }


def parse_outputs(message: str, output_paths: Sequence[str]) -> dict[str, str | None]:
    """The output files a wrapped step left in its termination message (see ``_WRAPPER``)."""
    found: dict[str, str | None] = dict.fromkeys(output_paths)
    for line in message.splitlines():
        index, sep, data = line.partition(":")
        if not sep or not index.isdigit() or int(index) >= len(output_paths):
            continue
        try:
            found[output_paths[int(index)]] = base64.b64decode(data).decode("utf-8", "replace")
        except ValueError:
            continue
    return found


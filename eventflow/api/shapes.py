"""Argo-shaped JSON for workflows and stored resources."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from workflows.lifecycle import progress
from workflows.status import NodeStatus
from workflows.store import ResourceRecord, WorkflowRecord

__all__ = ["node_json", "resource_json", "select_fields", "workflow_fields", "workflow_json", "workflow_list_fields"]


def _ts(value: Any) -> str | None:
    """Kubernetes' metav1.Time: RFC 3339 in UTC, whole seconds (``2006-01-02T15:04:05Z``)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


def node_json(node: NodeStatus) -> dict[str, Any]:
    out = node.to_json()
    for key, value in (("startedAt", node.started_at), ("finishedAt", node.finished_at)):
        if value is not None:
            out[key] = _ts(value)
    return out


def workflow_json(record: WorkflowRecord, nodes: dict[str, NodeStatus] | None) -> dict[str, Any]:
    manifest = record.manifest
    status: dict[str, Any] = {
        "phase": record.phase.value,
        "startedAt": _ts(record.started_at),
        "finishedAt": _ts(record.finished_at),
        "progress": progress(nodes) if nodes else record.status.get("progress"),
        "message": record.message,
    }
    if record.status.get("outputs"):
        status["outputs"] = record.status["outputs"]
    if nodes is not None:
        status["nodes"] = {nid: node_json(node) for nid, node in nodes.items()}
    if record.status.get("storedTemplates"):
        status["storedTemplates"] = record.status["storedTemplates"]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            **{k: v for k, v in manifest.get("metadata", {}).items() if k not in ("generateName",)},
            "name": record.name,
            "namespace": record.namespace,
            "uid": record.uid,
            "creationTimestamp": _ts(record.created_at),
            "resourceVersion": str(record.resource_version),
            "labels": {**record.labels, "workflows.argoproj.io/phase": record.phase.value}
            | ({"workflows.argoproj.io/completed": "true"} if record.phase.done else {"workflows.argoproj.io/completed": "false"}),
            "annotations": record.annotations,
        },
        "spec": manifest.get("spec", {}),
        "status": {k: v for k, v in status.items() if v is not None},
    }


def resource_json(record: ResourceRecord) -> dict[str, Any]:
    manifest = dict(record.manifest)
    meta = {**manifest.get("metadata", {})}
    meta.update(name=record.name, uid=record.uid, creationTimestamp=_ts(record.created_at), resourceVersion=str(record.resource_version))
    if record.namespace:
        meta["namespace"] = record.namespace
    manifest["metadata"] = meta
    return manifest


def select_fields(data: dict[str, Any], fields: str) -> dict[str, Any]:
    """Argo's ``fields`` query parameter: keep only the dotted paths listed, or drop them with a leading ``-``.

    ``items.metadata.name,items.status.phase`` keeps those leaves (and the objects on the way to them);
    ``-items.status.nodes`` keeps everything else. A list does not add to the path: ``items.x`` applies to
    every item. An empty ``fields`` returns ``data`` unchanged.
    """
    exclude = fields.startswith("-")
    wanted = {f.strip() for f in fields.removeprefix("-").split(",") if f.strip()}
    if not wanted:
        return data
    return _clean(data, "", wanted, exclude)


# Argo cleans through its Go structs, so the objects that are not omitempty come back (empty) whatever
# ``fields`` says; clients that require them (Hera, the generated client) rely on that.
_WORKFLOW_OBJECTS = ("metadata", "spec", "status")


def workflow_fields(workflow: dict[str, Any], fields: str) -> dict[str, Any]:
    """One workflow's JSON cut down by ``fields`` as Argo's GetWorkflow does."""
    out = select_fields(workflow, fields)
    return {**{key: {} for key in _WORKFLOW_OBJECTS}, **out} if out is not workflow else out


def workflow_list_fields(body: dict[str, Any], fields: str) -> dict[str, Any]:
    """A WorkflowList cut down by ``fields`` (e.g. ``metadata,items.metadata.name,items.status.phase``)."""
    out = select_fields(body, fields)
    if out is body:
        return out
    items = [{**{key: {} for key in _WORKFLOW_OBJECTS}, **item} for item in out.get("items") or []]
    return {"metadata": out.get("metadata", {}), "items": items}


def _clean(item: Any, path: str, wanted: set[str], exclude: bool) -> Any:
    if isinstance(item, list):
        return [_clean(x, path, wanted, exclude) for x in item]
    if not isinstance(item, dict):
        return item
    out: dict[str, Any] = {}
    for key, value in item.items():
        here = f"{path}.{key}" if path else key
        if here in wanted:
            if not exclude:
                out[key] = value
        elif exclude or any(w.startswith(here + ".") for w in wanted):
            out[key] = _clean(value, here, wanted, exclude)
    return out

"""Argo-shaped JSON for workflows and stored resources."""

from __future__ import annotations

from typing import Any

from workflows.lifecycle import progress
from workflows.status import NodeStatus
from workflows.store import ResourceRecord, WorkflowRecord

__all__ = ["resource_json", "workflow_json"]


def _ts(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


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
        status["nodes"] = {nid: node.to_json() for nid, node in nodes.items()}
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

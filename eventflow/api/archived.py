"""Argo Server's archived-workflows paths over eventflow's archive (``ef_archived_workflows``).

Workflows are archived when they end if the server's ``archive`` settings or the workflow's
``workflows.argoproj.io/archive-strategy`` label say so (``workflows/retention.py``); the archived copy
outlives the live workflow (TTL deletion, ``eventflow delete``). Listing: ``namespace`` (or
``listOptions.fieldSelector=metadata.namespace=``), ``namePrefix``, ``listOptions.labelSelector``,
``createdAfter``/``createdBefore`` (RFC 3339), ``listOptions.limit`` + ``continue``; items without their
nodes, newest first. ``GET .../{uid}`` is the whole run with ``status.nodes``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventflow.api.errors import ApiError
from eventflow.api.selectors import SelectorError, parse_label_selector
from eventflow.api.shapes import workflow_json
from workflows.scheduler import Scheduler, resubmission
from workflows.status import NodeStatus
from workflows.store import ArchivedRecord
from workflows.submit import SubmitOptions

__all__ = ["routes"]


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.eventflow.extra["scheduler"]
    return scheduler


def _when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name}: {value!r} is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)") from None


def _count(value: str | None, name: str) -> int:
    if not value:
        return 0
    if not value.isdigit():
        raise ApiError(400, f"{name}: {value!r} is not a whole number")
    return int(value)


def _archived_json(record: ArchivedRecord, *, with_nodes: bool) -> dict[str, Any]:
    nodes = {nid: NodeStatus.model_validate(data) for nid, data in record.nodes.items()} if with_nodes else None
    body = workflow_json(record.as_workflow(), nodes)
    body["metadata"]["labels"] = {**body["metadata"].get("labels", {}), **record.labels}
    return body


async def list_archived(request: Request) -> JSONResponse:
    q = request.query_params
    namespace, exact = q.get("namespace") or "", None
    for part in filter(None, (q.get("listOptions.fieldSelector") or "").split(",")):
        key, sep, value = part.partition("=")
        if key == "metadata.namespace" and sep:
            namespace = value
        elif key == "metadata.name" and sep:
            exact = value
        else:
            raise ApiError(400, f"listOptions.fieldSelector: {part!r}: only metadata.namespace= and metadata.name= are supported")
    try:
        selector = parse_label_selector(q.get("listOptions.labelSelector", ""))
    except SelectorError as exc:
        raise ApiError(400, str(exc)) from None
    offset, limit = _count(q.get("listOptions.continue"), "listOptions.continue"), _count(q.get("listOptions.limit"), "listOptions.limit")
    store = _scheduler(request).store
    where: dict[str, Any] = {
        "name_prefix": q.get("namePrefix") or None,
        "created_after": _when(q.get("createdAfter"), "createdAfter"), "created_before": _when(q.get("createdBefore"), "createdBefore"),
    }  # fmt: skip
    if not q.get("listOptions.labelSelector") and exact is None:
        # The common page of a large archive: limit and offset in SQL, one count for what remains.
        page = await store.list_archived(namespace or None, limit=limit or None, offset=offset, **where)
        total = await store.count_archived(namespace or None, **where) if limit else offset + len(page)
    else:
        records = await store.list_archived(namespace or None, **where)
        items = [r for r in records if selector(r.labels) and (exact is None or r.name == exact)]
        page, total = (items[offset : offset + limit] if limit else items[offset:]), len(items)
    meta: dict[str, Any] = {}
    if limit and offset + limit < total:
        meta["continue"] = str(offset + limit)
        meta["remainingItemCount"] = total - offset - limit
    return JSONResponse({"metadata": meta, "items": [_archived_json(r, with_nodes=False) for r in page]})


async def _one(request: Request) -> ArchivedRecord:
    uid = request.path_params["uid"]
    record = await _scheduler(request).store.get_archived(uid)
    if record is None:
        raise ApiError(404, f"archived workflow {uid!r} not found")
    return record


async def get_archived(request: Request) -> JSONResponse:
    return JSONResponse(_archived_json(await _one(request), with_nodes=True))


async def delete_archived(request: Request) -> JSONResponse:
    record = await _one(request)
    await _scheduler(request).store.delete_archived(record.uid)
    return JSONResponse({})


async def resubmit_archived(request: Request) -> JSONResponse:
    """A new workflow from the archived one's spec (generateName ``<name>-``), in its namespace."""
    record = await _one(request)
    workflow = resubmission(record.name, record.manifest)
    created = await _scheduler(request).submit(workflow, SubmitOptions(namespace=record.namespace))
    return JSONResponse(workflow_json(created, {}))


async def retry_archived(request: Request) -> JSONResponse:
    record = await _one(request)
    scheduler = _scheduler(request)
    live = await scheduler.store.get_workflow(record.namespace, record.name)
    if live is None or live.uid != record.uid:
        raise ApiError(
            409, f"workflow {record.namespace}/{record.name} is only in the archive: retry needs the live workflow; resubmit it instead"
        )
    retried = await scheduler.retry(record.namespace, record.name)
    return JSONResponse(workflow_json(retried, None))


async def label_keys(request: Request) -> JSONResponse:
    records = await _scheduler(request).store.list_archived(request.query_params.get("namespace") or None)
    return JSONResponse({"items": sorted({k for r in records for k in r.labels})})


async def label_values(request: Request) -> JSONResponse:
    key = request.query_params.get("listOptions.labelSelector") or ""
    if not key or any(c in key for c in "=!,() "):
        raise ApiError(400, "listOptions.labelSelector: the label key whose values to list is required (a key, nothing else)")
    records = await _scheduler(request).store.list_archived(request.query_params.get("namespace") or None)
    return JSONResponse({"metadata": {}, "items": sorted({r.labels[key] for r in records if key in r.labels})})


def routes() -> list[Route]:
    base = "/api/v1/archived-workflows"
    return [
        Route(base, list_archived, methods=["GET"]),
        Route(base + "/{uid}", get_archived, methods=["GET"]),
        Route(base + "/{uid}", delete_archived, methods=["DELETE"]),
        Route(base + "/{uid}/resubmit", resubmit_archived, methods=["PUT"]),
        Route(base + "/{uid}/retry", retry_archived, methods=["PUT"]),
        Route("/api/v1/archived-workflows-label-keys", label_keys, methods=["GET"]),
        Route("/api/v1/archived-workflows-label-values", label_values, methods=["GET"]),
    ]

"""Synchronization: what holds and waits for each lock, and the database semaphores' limits.

- ``GET /api/v1/sync/{namespace}``: every semaphore/mutex of the namespace in use (limit, holders,
  waiters in queue order), the namespace's running/postponed workflow counts and cap, and its
  database semaphore limits;
- Argo's sync-limit paths for database semaphores: ``POST /api/v1/sync/{namespace}`` with
  ``{"key", "sizeLimit"}``, ``GET|PUT|DELETE /api/v1/sync/{namespace}/{key}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventflow.api.errors import ApiError
from workflows.scheduler import SYNC_LIMIT_KIND, Scheduler, parse_limit
from workflows.store import AlreadyExists, ResourceRecord

__all__ = ["routes"]


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.eventflow.extra["scheduler"]
    return scheduler


def _limit_json(record: ResourceRecord) -> dict[str, Any]:
    return {"key": record.name, "namespace": record.namespace, "sizeLimit": record.manifest.get("sizeLimit"), "type": "DATABASE"}


async def sync_status(request: Request) -> JSONResponse:
    ns = request.path_params["namespace"]
    scheduler = _scheduler(request)
    limits = await scheduler.store.list_resources(SYNC_LIMIT_KIND, ns)
    throttle = scheduler.throttle
    return JSONResponse({
        "namespace": ns,
        "locks": scheduler.sync.snapshot(ns),
        "workflows": {
            "running": throttle.running_in(ns), "postponed": throttle.waiting(ns),
            "namespaceParallelism": throttle.limit_of(ns), "parallelism": throttle.parallelism,
        },
        "limits": [_limit_json(r) for r in limits],
    })  # fmt: skip


async def _size(request: Request, key: str) -> int:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict) or "sizeLimit" not in body:
        raise ApiError(400, "body.sizeLimit: required")
    try:
        return parse_limit(body["sizeLimit"], key)
    except ValueError as exc:
        raise ApiError(400, f"body.sizeLimit: {exc}") from None


async def create_limit(request: Request) -> JSONResponse:
    ns = request.path_params["namespace"]
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "request body is not valid JSON") from None
    key = str((body or {}).get("key") or "") if isinstance(body, dict) else ""
    if not key or "/" in key:
        raise ApiError(400, "body.key: a name without '/' is required")
    size = await _size(request, key)
    scheduler = _scheduler(request)
    record = ResourceRecord(kind=SYNC_LIMIT_KIND, namespace=ns, name=key, manifest={"sizeLimit": size})
    try:
        saved = await scheduler.store.put_resource(record, create_only=True)
    except AlreadyExists:
        raise ApiError(409, f'sync limit "{ns}/{key}" already exists') from None
    await scheduler.refresh_limits()
    return JSONResponse(_limit_json(saved))


async def get_limit(request: Request) -> JSONResponse:
    p = request.path_params
    found = await _scheduler(request).store.get_resource(SYNC_LIMIT_KIND, p["namespace"], p["key"])
    if found is None:
        raise ApiError(404, f'sync limit "{p["namespace"]}/{p["key"]}" not found')
    return JSONResponse(_limit_json(found))


async def update_limit(request: Request) -> JSONResponse:
    p = request.path_params
    scheduler = _scheduler(request)
    if await scheduler.store.get_resource(SYNC_LIMIT_KIND, p["namespace"], p["key"]) is None:
        raise ApiError(404, f'sync limit "{p["namespace"]}/{p["key"]}" not found')
    size = await _size(request, p["key"])
    saved = await scheduler.store.put_resource(
        ResourceRecord(kind=SYNC_LIMIT_KIND, namespace=p["namespace"], name=p["key"], manifest={"sizeLimit": size})
    )
    await scheduler.refresh_limits()
    return JSONResponse(_limit_json(saved))


async def delete_limit(request: Request) -> JSONResponse:
    p = request.path_params
    scheduler = _scheduler(request)
    lock = f"{p['namespace']}/Database/{p['key']}"
    if lock in scheduler.sync.limits and any(row["name"] == lock for row in scheduler.sync.snapshot(p["namespace"])):
        raise ApiError(409, f"sync limit {lock} is in use by running or waiting workflows")
    if not await scheduler.store.delete_resource(SYNC_LIMIT_KIND, p["namespace"], p["key"]):
        raise ApiError(404, f'sync limit "{p["namespace"]}/{p["key"]}" not found')
    return JSONResponse({})


def routes() -> list[Route]:
    base = "/api/v1/sync/{namespace}"
    return [
        Route(base, sync_status, methods=["GET"]),
        Route(base, create_limit, methods=["POST"]),
        Route(base + "/{key}", get_limit, methods=["GET"]),
        Route(base + "/{key}", update_limit, methods=["PUT"]),
        Route(base + "/{key}", delete_limit, methods=["DELETE"]),
    ]

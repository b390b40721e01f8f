"""EventSources on Argo-style paths: ``/api/v1/event-sources/{namespace}`` (list, create) and
``.../{name}`` (get, update, delete). Applying validates the whole resource and starts, updates or
stops its listeners at once (hot); a resource that cannot start is refused and nothing changes.
``status.events`` carries each event's counters."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventflow.api.errors import ApiError
from eventflow.api.shapes import resource_json
from sources.http import PortInUse
from sources.runtime import SourceRuntime
from sources.secrets import SecretError
from sources.spec import EventSourceError, validate_event_source
from workflows.scheduler import Scheduler
from workflows.store import AlreadyExists, ResourceRecord

__all__ = ["routes"]

KIND = "EventSource"


def _store(request: Request) -> Any:
    scheduler: Scheduler = request.app.state.eventflow.extra["scheduler"]
    return scheduler.store


def _runtime(request: Request) -> SourceRuntime | None:
    runtime: SourceRuntime | None = request.app.state.eventflow.extra.get("sources")
    return runtime


def _with_status(request: Request, record: ResourceRecord) -> dict[str, Any]:
    out = resource_json(record)
    runtime = _runtime(request)
    if runtime is not None:
        out["status"] = {"events": runtime.stats(record.namespace, record.name)}
    return out


async def _manifest(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    manifest = body.get("eventSource") if isinstance(body, dict) else None
    if not isinstance(manifest, dict):
        raise ApiError(400, "body.eventSource: an EventSource object is required")
    manifest.setdefault("apiVersion", "argoproj.io/v1alpha1")
    manifest.setdefault("kind", KIND)
    manifest.pop("status", None)
    return manifest


async def _apply(request: Request, *, create: bool) -> JSONResponse:
    ns = request.path_params["namespace"]
    manifest = await _manifest(request)
    name = (manifest.get("metadata") or {}).get("name")
    if "name" in request.path_params and name != request.path_params["name"]:
        raise ApiError(400, f"eventSource.metadata.name: {name!r} does not match the path's {request.path_params['name']!r}")
    store = _store(request)
    existing = await store.get_resource(KIND, ns, str(name)) if name else None
    if create and existing is not None:
        raise ApiError(409, f'EventSource "{name}" already exists')
    if not create and existing is None:
        raise ApiError(404, f'EventSource "{name}" not found')
    runtime = _runtime(request)
    try:
        if runtime is not None:
            await runtime.apply(manifest, ns)
        else:
            validate_event_source(manifest, "eventSource", ns)
    except EventSourceError as exc:
        raise ApiError(400, "; ".join(exc.problems)) from None
    except (PortInUse, ValueError) as exc:
        raise ApiError(409 if not isinstance(exc, SecretError) else 400, str(exc)) from None
    manifest.setdefault("metadata", {})["namespace"] = ns
    record = ResourceRecord(kind=KIND, namespace=ns, name=str(name), manifest=manifest)
    try:
        saved = await store.put_resource(record, create_only=create)
    except AlreadyExists:
        raise ApiError(409, f'EventSource "{name}" already exists') from None
    return JSONResponse(_with_status(request, saved))


async def create(request: Request) -> JSONResponse:
    return await _apply(request, create=True)


async def update(request: Request) -> JSONResponse:
    return await _apply(request, create=False)


async def list_sources(request: Request) -> JSONResponse:
    records = await _store(request).list_resources(KIND, request.path_params["namespace"])
    return JSONResponse({"metadata": {}, "items": [_with_status(request, r) for r in records]})


async def get_source(request: Request) -> JSONResponse:
    p = request.path_params
    record = await _store(request).get_resource(KIND, p["namespace"], p["name"])
    if record is None:
        raise ApiError(404, f'EventSource "{p["name"]}" not found')
    return JSONResponse(_with_status(request, record))


async def delete_source(request: Request) -> JSONResponse:
    p = request.path_params
    runtime = _runtime(request)
    if runtime is not None:
        await runtime.remove(p["namespace"], p["name"])
    if not await _store(request).delete_resource(KIND, p["namespace"], p["name"]):
        raise ApiError(404, f'EventSource "{p["name"]}" not found')
    return JSONResponse({})


def routes() -> list[Route]:
    base = "/api/v1/event-sources/{namespace}"
    return [
        Route(base, list_sources, methods=["GET"]),
        Route(base, create, methods=["POST"]),
        Route(base + "/{name}", get_source, methods=["GET"]),
        Route(base + "/{name}", update, methods=["PUT"]),
        Route(base + "/{name}", delete_source, methods=["DELETE"]),
    ]

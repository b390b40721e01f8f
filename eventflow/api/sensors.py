"""Sensors on Argo-style paths: ``/api/v1/sensors/{namespace}`` (list, create) and ``.../{name}`` (get,
update, delete), plus ``.../{name}/history`` (firings, newest first; ``?limit=``, ``?trigger=``,
``?eventId=``). Applying compiles every CEL expression, filter, template and condition and starts
or updates the sensor's consumer at once (hot); a sensor with a problem is refused and nothing
changes. ``status`` carries the counters and, per ``&&`` trigger, which dependencies are waiting."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventflow.api.errors import ApiError
from eventflow.api.shapes import resource_json
from sensors.cel import CelEnvironment
from sensors.compile import SensorError, compile_sensor
from sensors.runtime import SensorRuntime
from workflows.scheduler import Scheduler
from workflows.store import AlreadyExists, ResourceRecord, WorkflowStore

__all__ = ["routes"]

KIND = "Sensor"


def _store(request: Request) -> WorkflowStore:
    scheduler: Scheduler = request.app.state.eventflow.extra["scheduler"]
    return scheduler.store


def _runtime(request: Request) -> SensorRuntime | None:
    runtime: SensorRuntime | None = request.app.state.eventflow.extra.get("sensors")
    return runtime


async def _with_status(request: Request, record: ResourceRecord) -> dict[str, Any]:
    out = resource_json(record)
    runtime = _runtime(request)
    if runtime is not None:
        status: dict[str, Any] = {"counters": runtime.stats(record.namespace, record.name)}
        compiled = runtime.get(record.namespace, record.name)
        if compiled is not None:
            status["triggers"] = {
                t.name: await runtime.condition_state(record.namespace, record.name, t.name) for t in compiled.triggers if compiled.keeps_state(t)
            }
        out["status"] = status
    return out


async def _manifest(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    manifest = body.get("sensor") if isinstance(body, dict) else None
    if not isinstance(manifest, dict):
        raise ApiError(400, "body.sensor: a Sensor object is required")
    manifest.setdefault("apiVersion", "argoproj.io/v1alpha1")
    manifest.setdefault("kind", KIND)
    manifest.pop("status", None)
    return manifest


async def _apply(request: Request, *, create: bool) -> JSONResponse:
    ns = request.path_params["namespace"]
    manifest = await _manifest(request)
    name = (manifest.get("metadata") or {}).get("name")
    if "name" in request.path_params and name != request.path_params["name"]:
        raise ApiError(400, f"sensor.metadata.name: {name!r} does not match the path's {request.path_params['name']!r}")
    store = _store(request)
    existing = await store.get_resource(KIND, ns, str(name)) if name else None
    if create and existing is not None:
        raise ApiError(409, f'Sensor "{name}" already exists')
    if not create and existing is None:
        raise ApiError(404, f'Sensor "{name}" not found')
    runtime = _runtime(request)
    try:
        if runtime is not None:
            await runtime.apply(manifest, ns)
        else:
            compile_sensor(manifest, "sensor", ns, CelEnvironment())
    except SensorError as exc:
        raise ApiError(400, "; ".join(exc.problems)) from None
    manifest.setdefault("metadata", {})["namespace"] = ns
    record = ResourceRecord(kind=KIND, namespace=ns, name=str(name), manifest=manifest)
    try:
        saved = await store.put_resource(record, create_only=create)
    except AlreadyExists:
        raise ApiError(409, f'Sensor "{name}" already exists') from None
    return JSONResponse(await _with_status(request, saved))


async def create(request: Request) -> JSONResponse:
    return await _apply(request, create=True)


async def update(request: Request) -> JSONResponse:
    return await _apply(request, create=False)


async def list_sensors(request: Request) -> JSONResponse:
    records = await _store(request).list_resources(KIND, request.path_params["namespace"])
    return JSONResponse({"metadata": {}, "items": [await _with_status(request, r) for r in records]})


async def get_sensor(request: Request) -> JSONResponse:
    p = request.path_params
    record = await _store(request).get_resource(KIND, p["namespace"], p["name"])
    if record is None:
        raise ApiError(404, f'Sensor "{p["name"]}" not found')
    return JSONResponse(await _with_status(request, record))


async def delete_sensor(request: Request) -> JSONResponse:
    p = request.path_params
    store = _store(request)
    if await store.get_resource(KIND, p["namespace"], p["name"]) is None:
        raise ApiError(404, f'Sensor "{p["name"]}" not found')
    runtime = _runtime(request)
    if runtime is not None:
        await runtime.remove(p["namespace"], p["name"])
    await store.delete_resource(KIND, p["namespace"], p["name"])
    await store.delete_firings(p["namespace"], p["name"])
    return JSONResponse({})


async def history(request: Request) -> JSONResponse:
    p, q = request.path_params, request.query_params
    store = _store(request)
    if await store.get_resource(KIND, p["namespace"], p["name"]) is None:
        raise ApiError(404, f'Sensor "{p["name"]}" not found')
    try:
        limit = min(max(int(q.get("limit", "100")), 1), 10_000)
    except ValueError:
        raise ApiError(400, f"limit: expected an integer, got {q.get('limit')!r}") from None
    records = await store.list_firings(p["namespace"], p["name"], limit=limit, trigger=q.get("trigger"), event_id=q.get("eventId"))
    return JSONResponse({"items": [r.model_dump(mode="json") for r in records]})


def routes() -> list[Route]:
    base = "/api/v1/sensors/{namespace}"
    return [
        Route(base, list_sensors, methods=["GET"]),
        Route(base, create, methods=["POST"]),
        Route(base + "/{name}", get_sensor, methods=["GET"]),
        Route(base + "/{name}", update, methods=["PUT"]),
        Route(base + "/{name}", delete_sensor, methods=["DELETE"]),
        Route(base + "/{name}/history", history, methods=["GET"]),
    ]

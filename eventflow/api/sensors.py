"""Sensors on Argo-style paths: ``/api/v1/sensors/{namespace}`` (list, create) and ``.../{name}`` (get,
update, delete), plus ``.../{name}/history`` (firings, newest first; ``?limit=``, ``?trigger=``,
``?eventId=``). Applying compiles every CEL expression, filter, template and condition and starts
or updates the sensor's consumer at once (hot); a sensor with a problem is refused and nothing
changes. ``status`` carries the counters and, per stateful trigger, which dependencies are waiting.
Deleting a sensor deletes its consumer, its condition state and its history."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventflow.api.errors import ApiError
from eventflow.api.running_resources import RunningResource, store
from sensors.cel import CelEnvironment
from sensors.compile import SensorError, compile_sensor
from sensors.runtime import SensorRuntime
from workflows.store import ResourceRecord

__all__ = ["routes"]


def _runtime(request: Request) -> SensorRuntime | None:
    runtime: SensorRuntime | None = request.app.state.eventflow.extra.get("sensors")
    return runtime


async def _apply(request: Request, manifest: dict[str, Any], namespace: str) -> None:
    runtime = _runtime(request)
    try:
        if runtime is not None:
            await runtime.apply(manifest, namespace)
        else:
            compile_sensor(manifest, "sensor", namespace, CelEnvironment())
    except SensorError as exc:
        raise ApiError(400, "; ".join(exc.problems)) from None


async def _status(request: Request, record: ResourceRecord) -> dict[str, Any] | None:
    runtime = _runtime(request)
    if runtime is None:
        return None
    status: dict[str, Any] = {"counters": runtime.stats(record.namespace, record.name)}
    compiled = runtime.get(record.namespace, record.name)
    if compiled is not None:
        status["triggers"] = {
            t.name: await runtime.condition_state(record.namespace, record.name, t.name) for t in compiled.triggers if compiled.keeps_state(t)
        }
    return status


async def _remove(request: Request, namespace: str, name: str) -> None:
    runtime = _runtime(request)
    if runtime is not None:
        await runtime.remove(namespace, name)
    await store(request).delete_firings(namespace, name)


SENSORS = RunningResource("Sensor", "sensor", "sensors", _apply, _status, _remove)


async def history(request: Request) -> JSONResponse:
    p, q = request.path_params, request.query_params
    await SENSORS.found(request)
    try:
        limit = min(max(int(q.get("limit", "100")), 1), 10_000)
    except ValueError:
        raise ApiError(400, f"limit: expected an integer, got {q.get('limit')!r}") from None
    records = await store(request).list_firings(p["namespace"], p["name"], limit=limit, trigger=q.get("trigger"), event_id=q.get("eventId"))
    return JSONResponse({"items": [r.model_dump(mode="json") for r in records]})


def routes() -> list[Route]:
    return SENSORS.routes(Route("/api/v1/sensors/{namespace}/{name}/history", history, methods=["GET"]))

"""EventSources on Argo-style paths: ``/api/v1/event-sources/{namespace}`` (list, create) and
``.../{name}`` (get, update, delete). Applying validates the whole resource and starts, updates or
stops its listeners at once (hot); a resource that cannot start is refused and nothing changes.
``status.events`` carries each event's counters."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from eventflow.api.errors import ApiError
from eventflow.api.running_resources import RunningResource
from sensors.workflow_events import reserved_name_problem
from sources.http import PortInUse
from sources.runtime import SourceRuntime
from sources.secrets import SecretError
from sources.spec import EventSourceError, validate_event_source
from workflows.store import ResourceRecord

__all__ = ["routes"]


def _runtime(request: Request) -> SourceRuntime | None:
    runtime: SourceRuntime | None = request.app.state.eventflow.extra.get("sources")
    return runtime


async def _apply(request: Request, manifest: dict[str, Any], namespace: str) -> None:
    reserved = reserved_name_problem((manifest.get("metadata") or {}).get("name"))
    if reserved is not None:  # the built-in source of workflow lifecycle events (docs/sensors.md)
        raise ApiError(400, reserved)
    runtime = _runtime(request)
    try:
        if runtime is not None:
            await runtime.apply(manifest, namespace)
        else:
            validate_event_source(manifest, "eventSource", namespace)
    except EventSourceError as exc:
        raise ApiError(400, "; ".join(exc.problems)) from None
    except (PortInUse, ValueError) as exc:
        raise ApiError(409 if not isinstance(exc, SecretError) else 400, str(exc)) from None


async def _status(request: Request, record: ResourceRecord) -> dict[str, Any] | None:
    runtime = _runtime(request)
    return {"events": runtime.stats(record.namespace, record.name)} if runtime is not None else None


async def _remove(request: Request, namespace: str, name: str) -> None:
    runtime = _runtime(request)
    if runtime is not None:
        await runtime.remove(namespace, name)


EVENT_SOURCES = RunningResource("EventSource", "eventSource", "event-sources", _apply, _status, _remove)


def routes() -> list[Route]:
    return EVENT_SOURCES.routes()

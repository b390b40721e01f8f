"""The HTTP application: health and readiness today; the API and webhooks mount here later."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from eventbus import BusError, JetStreamBus
from eventflow.api.archived import routes as archived_routes
from eventflow.api.artifacts import routes as artifact_routes
from eventflow.api.errors import ApiError, error_response
from eventflow.api.event_sources import routes as event_source_routes
from eventflow.api.events import routes as event_stream_routes
from eventflow.api.info import routes as info_routes
from eventflow.api.nodes import routes as node_routes
from eventflow.api.openapi import openapi_route
from eventflow.api.sensors import routes as sensor_routes
from eventflow.api.sync import routes as sync_routes
from eventflow.api.workflows import routes as workflow_routes
from eventflow.auth import AuthMiddleware, TokenStore
from eventflow.auth import routes as auth_routes
from eventflow.database import ping
from workflows.errors import LintError
from workflows.scheduler import InvalidNodeUpdate, NotLeader, WorkflowNotActive, WorkflowNotFound
from workflows.store import AlreadyExists, store_outage

__all__ = ["AppState", "build_app"]

_CHECK_TIMEOUT = 2.0


@dataclass
class AppState:
    """What the HTTP handlers may use; built once by the composition root."""

    bus: JetStreamBus
    engine: AsyncEngine
    started_at: float
    roles: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)
    tokens: TokenStore | None = None  # None: no API auth (loopback only)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _bus_check(state: AppState) -> dict[str, Any]:
    if not state.bus.is_connected:
        return {"ok": False, "reason": "not connected to NATS (reconnecting)"}
    try:
        missing = await asyncio.wait_for(state.bus.missing_streams(), _CHECK_TIMEOUT)
    except (TimeoutError, BusError, OSError) as exc:
        return {"ok": False, "reason": f"JetStream did not answer: {type(exc).__name__}"}
    except Exception as exc:  # noqa: BLE001 - nats-py raises assorted errors mid-reconnect
        return {"ok": False, "reason": f"JetStream check failed: {type(exc).__name__}"}
    if missing:
        return {"ok": False, "reason": f"missing streams: {', '.join(missing)}"}
    return {"ok": True}


async def _db_check(state: AppState) -> dict[str, Any]:
    try:
        reason = await asyncio.wait_for(ping(state.engine), _CHECK_TIMEOUT)
    except TimeoutError:
        reason = f"no answer within {_CHECK_TIMEOUT:.0f}s"
    return {"ok": True} if reason is None else {"ok": False, "reason": reason}


def _scheduler_check(state: AppState) -> dict[str, Any] | None:
    scheduler = state.extra.get("scheduler")
    if scheduler is None:
        return None
    if not scheduler.leading:
        # Ready: a standby serves the API and stores submissions; the leader runs them.
        return {"ok": True, "standby": True, "leader": scheduler.leader}
    if scheduler.store_unavailable is not None:
        return {"ok": False, "reason": f"paused: workflow transitions cannot be stored ({scheduler.store_unavailable})"}
    check: dict[str, Any] = {"ok": True}
    if scheduler.workers is not None:  # informational: steps wait in their queue until a worker comes
        queues: dict[str, dict[str, int]] = {}
        for seen in scheduler.workers.workers():
            q = queues.setdefault(seen.beat.queue, {"workers": 0, "slots": 0, "running": 0})
            q["workers"] += 1
            q["slots"] += seen.beat.concurrency
            q["running"] += len(seen.beat.running)
        if queues:
            check["workerQueues"] = queues
    return check


async def readyz(request: Request) -> JSONResponse:
    state: AppState = request.app.state.eventflow
    bus, db = await asyncio.gather(_bus_check(state), _db_check(state))
    checks = {"bus": bus, "database": db}
    scheduler = _scheduler_check(state)
    if scheduler is not None:
        checks["scheduler"] = scheduler
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"code": 5, "message": f"no route for {request.method} {request.url.path}"}, status_code=404)


async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"code": 12, "message": f"method {request.method} not allowed"}, status_code=405)


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"code": 13, "message": "internal error; see the server log"}, status_code=500)


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    """The store is down or read-only: 503, so clients know to retry, and nothing was accepted."""
    reason = store_outage(exc)
    if reason is None:
        return await server_error(request, exc)
    return JSONResponse({"code": 14, "message": f"the store is unavailable ({reason}); try again later"}, status_code=503)


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


def _status_of(status: int) -> Any:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return error_response(status, str(exc))

    return handler


# Domain errors mean the same HTTP answer wherever they are raised.
DOMAIN_ERRORS: dict[Any, Any] = {
    WorkflowNotFound: _status_of(404),
    WorkflowNotActive: _status_of(409),
    InvalidNodeUpdate: _status_of(400),
    AlreadyExists: _status_of(409),
    LintError: _status_of(400),
    NotLeader: _status_of(503),
    DBAPIError: database_error,
    ConnectionError: database_error,
}


def build_app(state: AppState) -> Starlette:
    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/readyz", readyz)]
    if "scheduler" in state.extra:
        routes += workflow_routes() + node_routes() + artifact_routes() + sync_routes() + event_source_routes() + sensor_routes()
        routes += event_stream_routes() + archived_routes()
    routes += auth_routes() + info_routes()
    routes.append(openapi_route(routes))  # lists the routes above, not the webhooks' catch-all below
    sources = state.extra.get("sources")
    if sources is not None:
        # Webhook endpoints without a port of their own: every path the API does not serve.
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        routes.append(Route("/{path:path}", sources.http.main_dispatch, methods=methods))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AuthMiddleware, tokens=state.tokens)],
        exception_handlers={ApiError: api_error, **DOMAIN_ERRORS, 404: not_found, 405: method_not_allowed, 500: server_error},
    )
    app.state.eventflow = state
    return app

"""The CRUD shared by resources that also run in the server (EventSources, Sensors): create/update
validate and start (or hot-update) the resource before it is stored, so a resource that cannot run
is refused and nothing changes; list/get add the runtime's status; delete stops it first."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventflow.api.errors import ApiError
from workflows.scheduler import Scheduler
from workflows.store import AlreadyExists, ResourceRecord, WorkflowStore

__all__ = ["RunningResource"]


@dataclass(frozen=True)
class RunningResource:
    kind: str  # "Sensor"
    field: str  # the request body's field: "sensor"
    plural: str  # the path segment: "sensors"
    # Validate and start/update; raise ApiError (400 for a bad resource, 409 for a conflict).
    apply: Callable[[Request, dict[str, Any], str], Awaitable[None]]
    # The status of a stored resource, from its runtime.
    status: Callable[[Request, ResourceRecord], Awaitable[dict[str, Any] | None]]
    # Stop and forget it (its consumers, state...).
    remove: Callable[[Request, str, str], Awaitable[None]]

    def routes(self, *extra: Route) -> list[Route]:
        base = f"/api/v1/{self.plural}/{{namespace}}"
        return [
            Route(base, self._list, methods=["GET"]),
            Route(base, self._create, methods=["POST"]),
            Route(base + "/{name}", self._get, methods=["GET"]),
            Route(base + "/{name}", self._update, methods=["PUT"]),
            Route(base + "/{name}", self._delete, methods=["DELETE"]),
            *extra,
        ]

    async def found(self, request: Request) -> ResourceRecord:
        p = request.path_params
        record = await store(request).get_resource(self.kind, p["namespace"], p["name"])
        if record is None:
            raise ApiError(404, f'{self.kind} "{p["name"]}" not found')
        return record

    async def _json(self, request: Request, record: ResourceRecord) -> dict[str, Any]:
        from eventflow.api.shapes import resource_json

        out = resource_json(record)
        status = await self.status(request, record)
        if status is not None:
            out["status"] = status
        return out

    async def _manifest(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from None
        manifest = body.get(self.field) if isinstance(body, dict) else None
        if not isinstance(manifest, dict):
            raise ApiError(400, f"body.{self.field}: a {self.kind} object is required")
        manifest.setdefault("apiVersion", "argoproj.io/v1alpha1")
        manifest.setdefault("kind", self.kind)
        manifest.pop("status", None)
        return manifest

    async def _apply(self, request: Request, *, create: bool) -> JSONResponse:
        ns = request.path_params["namespace"]
        manifest = await self._manifest(request)
        name = (manifest.get("metadata") or {}).get("name")
        if "name" in request.path_params and name != request.path_params["name"]:
            raise ApiError(400, f"{self.field}.metadata.name: {name!r} does not match the path's {request.path_params['name']!r}")
        existing = await store(request).get_resource(self.kind, ns, str(name)) if name else None
        if create and existing is not None:
            raise ApiError(409, f'{self.kind} "{name}" already exists')
        if not create and existing is None:
            raise ApiError(404, f'{self.kind} "{name}" not found')
        await self.apply(request, manifest, ns)
        manifest.setdefault("metadata", {})["namespace"] = ns
        record = ResourceRecord(kind=self.kind, namespace=ns, name=str(name), manifest=manifest)
        try:
            saved = await store(request).put_resource(record, create_only=create)
        except AlreadyExists:
            raise ApiError(409, f'{self.kind} "{name}" already exists') from None
        return JSONResponse(await self._json(request, saved))

    async def _create(self, request: Request) -> JSONResponse:
        return await self._apply(request, create=True)

    async def _update(self, request: Request) -> JSONResponse:
        return await self._apply(request, create=False)

    async def _list(self, request: Request) -> JSONResponse:
        records = await store(request).list_resources(self.kind, request.path_params["namespace"])
        return JSONResponse({"metadata": {}, "items": [await self._json(request, r) for r in records]})

    async def _get(self, request: Request) -> JSONResponse:
        return JSONResponse(await self._json(request, await self.found(request)))

    async def _delete(self, request: Request) -> JSONResponse:
        p = request.path_params
        await self.found(request)
        await self.remove(request, p["namespace"], p["name"])
        await store(request).delete_resource(self.kind, p["namespace"], p["name"])
        return JSONResponse({})


def store(request: Request) -> WorkflowStore:
    scheduler: Scheduler = request.app.state.eventflow.extra["scheduler"]
    return scheduler.store

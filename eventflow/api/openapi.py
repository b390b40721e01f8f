"""``/openapi.json``: an OpenAPI 3 description of the API, generated from the app's own routes.

Generated rather than written so it cannot drift from what is served: every route of the app is
listed with its path parameters, the query parameters and JSON bodies its handler reads, and the
error shape every non-2xx answer has (Argo's gRPC-gateway ``{"code", "message"}``). Bodies are
described by their top-level keys (the Argo resources inside are Argo's, documented by Argo).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

__all__ = ["openapi_document", "openapi_route"]

_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}
_OBJECT: dict[str, Any] = {"type": "object"}
_LIST = {"type": "object", "properties": {"items": {"type": "array", "nullable": True}, "metadata": _OBJECT}}

# Query parameters the handlers read, by the last literal segment of the path (or "*" for lists).
_LIST_QUERY = ("listOptions.labelSelector", "listOptions.fieldSelector", "listOptions.limit", "listOptions.continue", "fields")
_QUERY: dict[str, tuple[str, ...]] = {
    "log": ("podName", "logOptions.container", "logOptions.follow", "logOptions.sinceSeconds", "grep", "selector"),
    "history": ("limit", "trigger", "eventId"),
    "archived-workflows": ("namespace", "namePrefix", "createdAfter", "createdBefore", *_LIST_QUERY[:4]),
    "archived-workflows-label-keys": ("namespace",),
    "archived-workflows-label-values": ("namespace", "listOptions.labelSelector"),
}
# Request bodies by (method, last literal segment); the key names the resource's field.
_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "workflows"): {"required": ["workflow"], "properties": {"workflow": _OBJECT, "serverDryRun": {"type": "boolean"}, "namespace": {"type": "string"}}},
    ("POST", "lint"): {"properties": {"workflow": _OBJECT, "template": _OBJECT, "cronWorkflow": _OBJECT}},
    ("POST", "submit"): {"required": ["resourceKind", "resourceName"], "properties": {"resourceKind": {"type": "string"}, "resourceName": {"type": "string"}, "submitOptions": _OBJECT}},
    ("POST", "workflow-templates"): {"required": ["template"], "properties": {"template": _OBJECT}},
    ("POST", "cluster-workflow-templates"): {"required": ["template"], "properties": {"template": _OBJECT}},
    ("POST", "cron-workflows"): {"required": ["cronWorkflow"], "properties": {"cronWorkflow": _OBJECT}},
    ("POST", "config-maps"): {"required": ["configMap"], "properties": {"configMap": _OBJECT}},
    ("POST", "event-sources"): {"required": ["eventSource"], "properties": {"eventSource": _OBJECT}},
    ("POST", "sensors"): {"required": ["sensor"], "properties": {"sensor": _OBJECT}},
    ("POST", "sync"): {"required": ["key", "limit"], "properties": {"key": {"type": "string"}, "limit": {"type": "integer"}}},
}
_STREAMS = re.compile(r"/log$|workflow-events|/artifact-files/|^/artifacts/")
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _operation(method: str, path: str) -> dict[str, Any]:
    literal = [s for s in path.strip("/").split("/") if not s.startswith("{")]
    last = literal[-1] if literal else ""
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PARAM.findall(path)
    ]
    query = _QUERY.get(last, ())
    if method == "GET" and path.endswith("}") is False and not query:
        query = _LIST_QUERY
    params += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"}} for q in query]
    streaming = bool(_STREAMS.search(path))
    ok: dict[str, Any]
    if streaming:
        ok = {"description": "a stream or a file", "content": {"application/json": {"schema": {}}, "text/event-stream": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}, "application/octet-stream": {"schema": {"type": "string"}}}}
    else:
        ok = {"description": "OK", "content": {"application/json": {"schema": _LIST if (method == "GET" and not path.endswith("}")) else _OBJECT}}}
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
        "tags": [literal[2] if len(literal) > 2 and literal[0] == "api" else literal[0] if literal else "root"],
        "parameters": params,
        "responses": {"200": ok, "default": {"description": "an error", "content": {"application/json": {"schema": _ERROR}}}},
    }
    if method in ("POST", "PUT", "PATCH"):
        key = (method, last) if (method, last) in _BODIES else ("POST", literal[2]) if method == "PUT" and len(literal) > 2 and ("POST", literal[2]) in _BODIES and path.endswith("}") else None
        body = _BODIES.get(key) if key else None
        schema = {"type": "object", **body} if body else _OBJECT
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return op


def openapi_document(routes: list[BaseRoute], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or "{path" in route.path:  # the webhook catch-all is not the API
            continue
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(method, path)
    return {
        "openapi": "3.0.3",
        "info": {"title": "eventflow", "version": version, "description": "Argo Server's REST API, plus eventflow's event sources, sensors, ConfigMaps and sync limits. Errors are {code, message}."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": {"Error": _ERROR}},
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


def openapi_route(routes: list[BaseRoute]) -> Route:
    cache: dict[str, Any] = {}

    async def serve(request: Request) -> JSONResponse:
        if "doc" not in cache:
            from importlib.metadata import PackageNotFoundError, version

            try:
                ours = version("eventflow")
            except PackageNotFoundError:
                ours = "0+unknown"
            cache["doc"] = openapi_document(routes, ours)
        return JSONResponse(cache["doc"])

    return Route("/openapi.json", serve, methods=["GET"])

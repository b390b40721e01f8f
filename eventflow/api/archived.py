"""Argo Server's archived-workflows paths, for a server without a workflow archive.

Argo answers these from its ``nullWorkflowArchive`` when archiving is off: listings are empty and a
single archived workflow is not found. eventflow has no archive yet, so clients that browse the archive
(Argo's UI, Hera's ``list_archived_workflows``, the generated client) get the same empty answers in
Argo's shapes instead of a missing route.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventflow.api.errors import ApiError

__all__ = ["routes"]

_NO_ARCHIVE = "archived workflow {uid!r} not found: this server keeps no workflow archive"


async def list_archived(request: Request) -> JSONResponse:
    return JSONResponse({"metadata": {}, "items": []})


async def one_archived(request: Request) -> JSONResponse:
    raise ApiError(404, _NO_ARCHIVE.format(uid=request.path_params["uid"]))


async def label_keys(request: Request) -> JSONResponse:
    return JSONResponse({"items": []})


async def label_values(request: Request) -> JSONResponse:
    if not request.query_params.get("listOptions.labelSelector"):
        raise ApiError(400, "listOptions.labelSelector: the label key whose values to list is required")
    return JSONResponse({"metadata": {}, "items": []})


def routes() -> list[Route]:
    base = "/api/v1/archived-workflows"
    return [
        Route(base, list_archived, methods=["GET"]),
        Route(base + "/{uid}", one_archived, methods=["GET", "DELETE"]),
        Route(base + "/{uid}/resubmit", one_archived, methods=["PUT"]),
        Route(base + "/{uid}/retry", one_archived, methods=["PUT"]),
        Route("/api/v1/archived-workflows-label-keys", label_keys, methods=["GET"]),
        Route("/api/v1/archived-workflows-label-values", label_values, methods=["GET"]),
    ]

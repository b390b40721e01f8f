"""Argo Server's artifact download paths, and eventflow's artifact listing.

- ``GET /artifact-files/{namespace}/workflows/{name}/{nodeId}/outputs/{artifactName}``: the artifact's
  content (a file as itself, a directory as a .tgz), as Argo's server serves it;
- ``GET /artifacts/{namespace}/{name}/{nodeId}/{artifactName}``: Argo's older path, the same;
- ``GET /api/v1/workflows/{namespace}/{name}/artifacts``: every output artifact of the workflow.

``nodeId`` is the node's id; its name or display name are accepted too when they are unique.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from eventflow.api.errors import ApiError
from workflows.artifacts.download import fetch_for_download
from workflows.artifacts.repository import ArtifactNotFound, RepositoryError
from workflows.scheduler import Scheduler
from workflows.status import NodeStatus

__all__ = ["routes"]


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.eventflow.extra["scheduler"]
    return scheduler


def _node(nodes: dict[str, NodeStatus], wanted: str) -> NodeStatus:
    if wanted in nodes:
        return nodes[wanted]
    for attr in ("name", "display_name"):
        found = [n for n in nodes.values() if getattr(n, attr) == wanted]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ApiError(400, f"node {wanted!r} is ambiguous: use its id ({', '.join(sorted(n.id for n in found))})")
    raise ApiError(404, f"node {wanted!r} not found")


def artifact_rows(nodes: dict[str, NodeStatus]) -> list[dict[str, Any]]:
    rows = []
    for node in sorted(nodes.values(), key=lambda n: (n.started_at is None, n.started_at, n.id)):
        for art in (node.outputs.artifacts or []) if node.outputs else []:
            rows.append({"nodeId": node.id, "nodeName": node.display_name, **art})
    return rows


async def list_artifacts(request: Request) -> JSONResponse:
    p = request.path_params
    _, nodes = await _scheduler(request).get(p["namespace"], p["name"])
    return JSONResponse({"items": artifact_rows(nodes)})


async def download(request: Request) -> FileResponse:
    p = request.path_params
    scheduler = _scheduler(request)
    record, nodes = await scheduler.get(p["namespace"], p["name"])
    node = _node(nodes, p["node"])
    artifact = node.outputs.artifact(p["artifact"]) if node.outputs else None
    if artifact is None or not artifact.get("key"):
        raise ApiError(404, f"artifact {p['artifact']!r} of node {node.id} not found")
    scratch = Path(tempfile.mkdtemp(prefix="eventflow-artifact-"))
    try:
        repo = await scheduler.repositories.open(scheduler.repositories.config_of(record.status))
        path, filename = await fetch_for_download(repo, artifact, scratch)
    except ArtifactNotFound:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ApiError(404, f"artifact {p['artifact']!r} of node {node.id} is no longer stored (deleted by artifactGC?)") from None
    except (RepositoryError, ValueError, OSError) as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ApiError(500, f"cannot read artifact {p['artifact']!r}: {exc}") from None
    return FileResponse(
        path, filename=filename, media_type="application/octet-stream",
        background=BackgroundTask(shutil.rmtree, scratch, True),
    )  # fmt: skip


def routes() -> list[Route]:
    return [
        Route("/artifact-files/{namespace}/workflows/{name}/{node}/outputs/{artifact}", download, methods=["GET"]),
        Route("/artifacts/{namespace}/{name}/{node}/{artifact}", download, methods=["GET"]),
        Route("/api/v1/workflows/{namespace}/{name}/artifacts", list_artifacts, methods=["GET"]),
    ]

"""The nodes of one workflow, a page at a time, and Argo's compressed form of ``status.nodes``.

A 10,000-node workflow is ordinary here, so nobody should have to fetch all of it to find the three
nodes that failed: ``GET /api/v1/workflows/{ns}/{name}/nodes?phase=Failed`` reads one index range.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventflow.api.errors import ApiError
from eventflow.api.shapes import node_json
from workflows.scheduler import Scheduler, WorkflowNotFound
from workflows.status import NodePhase, NodeStatus, NodeType

__all__ = ["compress_nodes", "max_workflow_size", "node_filter", "routes"]

# Argo's nodeFieldSelector keys (the ones that mean something without Kubernetes) -> NodeStatus attribute.
_SELECTOR_KEYS = {
    "displayName": "display_name",
    "name": "name",
    "id": "id",
    "templateName": "template_name",
    "phase": "phase",
    "type": "type",
}
DEFAULT_PAGE = 500
MAX_PAGE = 5000
# Argo's default: a workflow object above 1 MiB gets its nodes compressed (MAX_WORKFLOW_SIZE overrides).
DEFAULT_MAX_WORKFLOW_SIZE = 1024 * 1024


def node_filter(selector: str) -> Callable[[NodeStatus], bool] | None:
    """Argo's nodeFieldSelector: ``key=value`` or ``key!=value`` terms joined by commas, over
    displayName, name, id, templateName, phase and type."""
    if not selector:
        return None
    terms: list[tuple[str, str, bool]] = []
    for part in selector.split(","):
        negated = "!=" in part
        key, sep, value = part.partition("!=" if negated else "=")
        key = key.strip()
        if not sep or key not in _SELECTOR_KEYS:
            raise ApiError(
                400,
                f"unsupported nodeFieldSelector {part!r}; use {', '.join(k + '=' for k in _SELECTOR_KEYS)} (or !=)",
            )
        terms.append((_SELECTOR_KEYS[key], value.strip(), negated))

    def matches(node: NodeStatus) -> bool:
        for attr, value, negated in terms:
            actual = getattr(node, attr)
            text = actual.value if isinstance(actual, NodePhase | NodeType) else (actual or "")
            if (text == value) == negated:
                return False
        return True

    return matches


def _listed(raw: str, allowed: type[NodePhase | NodeType], what: str) -> list[str]:
    values = [v.strip() for v in raw.split(",") if v.strip()]
    known = {m.value for m in allowed}
    for value in values:
        if value not in known:
            raise ApiError(400, f"{what}: {value!r} is not one of {', '.join(sorted(known))}")
    return values


def _limit(request: Request) -> int:
    raw = (
        request.query_params.get("listOptions.limit")
        or request.query_params.get("limit")
        or str(DEFAULT_PAGE)
    )
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, f"limit: {raw!r} is not a whole number") from None
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, f"limit: {limit} is not between 1 and {MAX_PAGE}")
    return limit


async def list_nodes(request: Request) -> JSONResponse:
    """One page of a workflow's nodes in node-id order; ``metadata.continue`` names the next page.

    Filters: ``phase`` and ``type`` (comma-separated), ``nodeFieldSelector`` (as for resume);
    ``listOptions.limit`` / ``limit``, ``listOptions.continue`` / ``continue``.
    """
    p, q = request.path_params, request.query_params
    phases = _listed(q.get("phase") or "", NodePhase, "phase")
    types = set(_listed(q.get("type") or "", NodeType, "type"))
    selected = node_filter(q.get("nodeFieldSelector") or "")
    limit = _limit(request)
    after = q.get("listOptions.continue") or q.get("continue") or None
    scheduler: Scheduler = request.app.state.eventflow.extra["scheduler"]
    record = await scheduler.store.get_workflow(p["namespace"], p["name"])
    if record is None:
        raise WorkflowNotFound(p["namespace"], p["name"])
    items: list[dict[str, Any]] = []
    more = False
    # Phases filter in SQL; type and the selector in Python, reading on until the page is full.
    while True:
        batch = await scheduler.store.page_nodes(record.uid, phases=phases, after=after, limit=limit)
        for index, node in enumerate(batch):
            after = node.id
            if (not types or node.type.value in types) and (selected is None or selected(node)):
                items.append(node_json(node))
            if len(items) == limit:
                more = index < len(batch) - 1 or bool(
                    await scheduler.store.page_nodes(record.uid, phases=phases, after=after, limit=1)
                )
                break
        if len(items) == limit or len(batch) < limit:
            break
    meta: dict[str, Any] = {"continue": after} if more else {}
    return JSONResponse({"metadata": meta, "items": items})


def max_workflow_size() -> int:
    raw = os.environ.get("MAX_WORKFLOW_SIZE")
    try:
        return int(raw) if raw else DEFAULT_MAX_WORKFLOW_SIZE
    except ValueError:
        return DEFAULT_MAX_WORKFLOW_SIZE


def compress_nodes(status: dict[str, Any], limit: int) -> None:
    """Argo's ``status.compressedNodes`` (base64 of gzipped JSON) in place of ``status.nodes`` when
    the nodes' JSON is larger than ``limit`` bytes; smaller workflows keep plain nodes, as in Argo."""
    nodes = status.get("nodes")
    if not nodes:
        return
    raw = json.dumps(nodes, separators=(",", ":")).encode()
    if len(raw) <= limit:
        return
    status["compressedNodes"] = base64.b64encode(gzip.compress(raw)).decode()
    del status["nodes"]


def routes() -> list[Route]:
    return [Route("/api/v1/workflows/{namespace}/{name}/nodes", list_nodes, methods=["GET"])]

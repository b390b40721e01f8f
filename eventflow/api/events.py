"""Workflow lifecycle streams over HTTP: Argo's watch stream and a Server-Sent-Events variant.

``GET /api/v1/workflow-events/{namespace}`` is Argo Server's ``WatchWorkflows``: one JSON line
``{"result": {"type": "ADDED"|"MODIFIED", "object": <Workflow>}}`` per change (``data: <line>`` frames
when the client accepts ``text/event-stream``, as Argo's UI and HTTP/1 client do). Like a Kubernetes
watch without a resource version it opens with one ADDED line per existing matching workflow (its
current state), then one line per lifecycle event. ``GET /api/v1/stream/workflow-events/{namespace}``
sends the lifecycle CloudEvents themselves, each with its stream sequence as SSE ``id`` and its phase as
``event``, and resumes after ``Last-Event-ID``. Both read the bus through an :class:`eventbus.Tail`,
closed when the client goes. docs/events.md has the exact semantics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from eventbus import BusError, JetStreamBus, StreamEvent, Tail
from eventflow.api.errors import ApiError, error_response
from eventflow.api.selectors import SelectorError, parse_label_selector
from eventflow.api.shapes import select_fields, workflow_json
from workflows.lifecycle import DELETED, TRIGGER_EVENTS_ANNOTATION
from workflows.store import WorkflowRecord, WorkflowStore

__all__ = ["end_streams", "routes"]

log = logging.getLogger("eventflow.api.events")

KEEPALIVE_SECONDS = 15.0  # an SSE comment this often keeps proxies from closing an idle stream
_FIELD_KEYS = ("metadata.name", "metadata.namespace", "status.phase", "eventId")
_RANK = {"Pending": 0, "Running": 1}  # any other phase is an end (rank 2)
_PHASE_LABEL = "workflows.argoproj.io/phase"
_COMPLETED_LABEL = "workflows.argoproj.io/completed"


# -- what a client asked for ------------------------------------------------------------------


@dataclass(frozen=True)
class _View:
    """The facts selectors look at, from a lifecycle event or from a stored workflow."""

    name: str
    namespace: str
    phase: str
    labels: Mapping[str, str]
    event_ids: tuple[str, ...]


@dataclass
class _Selection:
    namespace: str  # "" = every namespace
    labels: Callable[[Mapping[str, str]], bool]
    equals: dict[str, set[str]] = field(default_factory=dict)  # key -> any of these values
    differs: list[tuple[str, str]] = field(default_factory=list)  # key != value, all of them

    def matches(self, view: _View) -> bool:
        if self.namespace and view.namespace != self.namespace:
            return False
        values = {"metadata.name": {view.name}, "metadata.namespace": {view.namespace}, "status.phase": {view.phase}}
        values["eventId"] = set(view.event_ids)
        if any(not values[key] & wanted for key, wanted in self.equals.items()):
            return False
        if any(value in values[key] for key, value in self.differs):
            return False
        return self.labels({**view.labels, _PHASE_LABEL: view.phase, _COMPLETED_LABEL: str(view.phase not in _RANK).lower()})

    def subjects(self, bus: JetStreamBus) -> list[str]:
        """Bus subjects narrowed by what the selectors pin (at most 16; else wildcards, filtered here)."""
        namespaces = {self.namespace} if self.namespace else self.equals.get("metadata.namespace", set())
        tokens = [_pinned(namespaces), _pinned(self.equals.get("metadata.name", set())), _pinned(self.equals.get("status.phase", set()))]
        if len(tokens[0]) * len(tokens[1]) * len(tokens[2]) > 16:
            tokens = [["*"], ["*"], ["*"]]
        return sorted({bus.subjects.workflow(ns, name, phase) for ns in tokens[0] for name in tokens[1] for phase in tokens[2]})


def _pinned(values: set[str]) -> list[str]:
    return sorted(values) if values and not values & {"*", ">"} else ["*"]


def _selection(request: Request) -> _Selection:
    q = request.query_params
    try:
        labels = parse_label_selector(q.get("listOptions.labelSelector", ""))
    except SelectorError as exc:
        raise ApiError(400, str(exc)) from None
    selection = _Selection(request.path_params.get("namespace", ""), labels)
    for part in filter(None, (p.strip() for p in q.get("listOptions.fieldSelector", "").split(","))):
        key, op, value = _requirement(part)
        if op == "!=":
            selection.differs.append((key, value))
        else:
            selection.equals.setdefault(key, set()).add(value)
    return selection


def _requirement(part: str) -> tuple[str, str, str]:
    for op in ("!=", "==", "="):
        key, sep, value = part.partition(op)
        if sep and key.strip() in _FIELD_KEYS:
            return key.strip(), "!=" if op == "!=" else "=", value.strip()
    keys = ", ".join(f"{k}=" for k in _FIELD_KEYS)
    raise ApiError(400, f"unsupported field selector {part!r}; use {keys} (or != for any of them)")


def _timeout(request: Request) -> float | None:
    raw = request.query_params.get("listOptions.timeoutSeconds", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise ApiError(400, f"listOptions.timeoutSeconds: expected a whole number of seconds, got {raw!r}")
    return float(raw) or None


def _fields(request: Request) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Argo's ``fields``: keep only these dotted paths of each message (or, after a leading ``-``, drop them)."""
    spec = request.query_params.get("fields", "")
    return lambda message: select_fields(message, spec)


# -- lifecycle events as watch lines ------------------------------------------------------------


def _event_view(data: Mapping[str, Any]) -> _View:
    # A deletion matches a status.phase selector only when that asks for Deleted (not its last phase).
    phase = DELETED if data.get("deleted") else str(data.get("phase", ""))
    return _View(
        str(data.get("name", "")), str(data.get("namespace", "")), phase,
        data.get("labels") or {}, tuple(data.get("eventIds") or ()),
    )  # fmt: skip


def _record_view(record: WorkflowRecord) -> _View:
    ids = record.annotations.get(TRIGGER_EVENTS_ANNOTATION, "")
    return _View(record.name, record.namespace, record.phase.value, record.labels, tuple(filter(None, ids.split(","))))


def _order(uid: str, event_id: str, phase: str) -> tuple[int, int]:
    """(run, rank) of a lifecycle event, from its id ``<uid>.<phase>`` or ``<uid>.retry<n>.<phase>``."""
    middle = event_id.removeprefix(f"{uid}.").rpartition(".")[0]
    run = int(middle[5:]) if middle.startswith("retry") and middle[5:].isdigit() else 0
    return run, _RANK.get(phase, 2)


def _stamp(value: Any) -> str | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deleted(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deleted workflow as its deletion event describes it (the store has nothing left)."""
    meta = {k: data.get(k) for k in ("name", "namespace", "uid", "annotations")}
    phase = str(data.get("phase", ""))
    meta["labels"] = {**(data.get("labels") or {}), _PHASE_LABEL: phase, _COMPLETED_LABEL: str(phase not in _RANK).lower()}
    status = {"phase": phase, "message": data.get("message"), "progress": data.get("progress"),
              "startedAt": _stamp(data.get("startedAt")), "finishedAt": _stamp(data.get("finishedAt")), "outputs": data.get("outputs") or None}  # fmt: skip
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": meta, "spec": {}, "status": {k: v for k, v in status.items() if v is not None}}


async def _workflow_at(store: WorkflowStore, data: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow as workflow_json shows it, with its status as this event left it."""
    record = await store.get_workflow_by_uid(str(data.get("uid", "")))
    if record is not None:
        obj = workflow_json(record, None)
    else:  # deleted since: what the event itself says
        meta = {k: data.get(k) for k in ("name", "namespace", "uid", "annotations")}
        obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": meta, "spec": {}, "status": {}}
    phase = str(data.get("phase", ""))
    obj["metadata"]["labels"] = {**(data.get("labels") or {}), _PHASE_LABEL: phase, _COMPLETED_LABEL: str(phase not in _RANK).lower()}
    status = {**obj["status"], "phase": phase, "message": data.get("message"), "progress": data.get("progress")}
    status.update(startedAt=_stamp(data.get("startedAt")), finishedAt=_stamp(data.get("finishedAt")), outputs=data.get("outputs") or None)
    obj["status"] = {k: v for k, v in status.items() if v is not None}
    return obj


# -- streaming ------------------------------------------------------------------------------


@dataclass
class _Counter:
    """Open HTTP streams of this app (each holds one bus tail), and the signal that ends them all."""

    open: int = 0
    opened: int = 0
    ending: asyncio.Event = field(default_factory=asyncio.Event)


def _counter(app: Starlette) -> _Counter:
    counter: _Counter | None = getattr(app.state, "workflow_event_streams", None)
    if counter is None:
        counter = app.state.workflow_event_streams = _Counter()
    return counter


def end_streams(app: Starlette) -> None:
    """End every open stream cleanly, and any opened from now on, so a stopping server need not wait
    for its clients (they reconnect, with ``Last-Event-ID``, to the next server)."""
    _counter(app).ending.set()


Write = Callable[[bytes], Awaitable[None]]


class _Stream(Response):
    """Opens a tail, streams what ``produce`` writes until it returns or the client leaves, and always
    closes the tail (shielded from the cancellation a disconnect causes)."""

    def __init__(
        self, request: Request, selection: _Selection, after: int | None, media_type: str,
        produce: Callable[[Tail, Write], Awaitable[None]],
    ) -> None:  # fmt: skip
        super().__init__(media_type=media_type, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]  # chunked, endless
        self.bus: JetStreamBus = request.app.state.eventflow.bus
        self.counter = _counter(request.app)
        self.selection, self.after, self.produce = selection, after, produce

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            tail = await self.bus.tail(self.selection.subjects(self.bus), stream=self.bus.subjects.workflows_stream, after=self.after)
        except BusError as exc:
            await error_response(503, str(exc))(scope, receive, send)
            return
        self.counter.open += 1
        self.counter.opened += 1
        ahead = self.after is not None and self.after > tail.stream_last_seq
        try:
            if not ahead:
                await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                if await self._run(tail, receive, send):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            with anyio.CancelScope(shield=True):
                await tail.close()
            self.counter.open -= 1
        if ahead:  # answered once the tail is gone, so a client that reads the counters next sees it gone
            message = f"Last-Event-ID {self.after} is ahead of the stream (its last sequence is {tail.stream_last_seq})"
            await error_response(400, message)(scope, receive, send)

    async def _run(self, tail: Tail, receive: Receive, send: Send) -> bool:
        """Stream until ``produce`` ends (True) or the client disconnects (False)."""
        finished = False

        async def write(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async with anyio.create_task_group() as group:

            async def pump() -> None:
                nonlocal finished
                try:
                    await self.produce(tail, write)
                    finished = True
                except OSError:
                    pass  # the client went away mid-write
                group.cancel_scope.cancel()

            async def until_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            async def until_ending() -> None:
                nonlocal finished
                await self.counter.ending.wait()
                finished = True
                group.cancel_scope.cancel()

            group.start_soon(pump)
            group.start_soon(until_disconnect)
            group.start_soon(until_ending)
        return finished


async def _follow(
    tail: Tail, selection: _Selection, timeout: float | None, on_event: Callable[[StreamEvent], Awaitable[None]],
    on_idle: Callable[[], Awaitable[None]] | None,
) -> None:  # fmt: skip
    """Hand each matching event of the tail to ``on_event`` until ``timeout``; ``on_idle`` whenever
    nothing was sent for a keepalive period (events the selectors skip do not count)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    sent = time.monotonic()
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        if on_idle is not None and now - sent >= KEEPALIVE_SECONDS:
            await on_idle()
            sent = now
        wait = KEEPALIVE_SECONDS - (now - sent) if on_idle is not None else KEEPALIVE_SECONDS
        item = await tail.next(timeout=wait if deadline is None else min(wait, deadline - now))
        if item is not None and isinstance(item.event.data, dict) and selection.matches(_event_view(item.event.data)):
            await on_event(item)
            sent = time.monotonic()


def _ended(exc: BusError) -> str:
    log.warning("workflow event stream ended: %s", exc)
    return f"the event stream ended: {exc}"


async def watch_workflows(request: Request) -> Response:
    selection, timeout, clean = _selection(request), _timeout(request), _fields(request)
    sse = "text/event-stream" in request.headers.get("accept", "")
    store: WorkflowStore = request.app.state.eventflow.extra["scheduler"].store

    async def produce(tail: Tail, write: Write) -> None:
        async def line(message: dict[str, Any]) -> None:
            text = json.dumps(clean(message), separators=(",", ":"))
            await write(f"data: {text}\n\n".encode() if sse else f"{text}\n".encode())

        async def keepalive() -> None:
            await write(b": keepalive\n\n")

        # The tail is open before the listing is read: a change is either in the listing or on the tail.
        listed: dict[str, tuple[int, int]] = {}
        namespaces = {selection.namespace} if selection.namespace else selection.equals.get("metadata.namespace", set())
        namespace = next(iter(namespaces)) if len(namespaces) == 1 else None
        for record in await store.list_workflows(namespace, phases=selection.equals.get("status.phase")):
            if selection.matches(_record_view(record)):
                listed[record.uid] = (int(record.status.get("retries") or 0), _RANK.get(record.phase.value, 2))
                await line({"result": {"type": "ADDED", "object": workflow_json(record, None)}})

        async def on_event(item: StreamEvent) -> None:
            data = item.event.data
            uid = str(data.get("uid", ""))
            if item.event.eventname == DELETED:  # after every other event of the workflow, whatever its phase
                await line({"result": {"type": "DELETED", "object": _deleted(data)}})
                return
            order = _order(uid, item.event.id, str(data.get("phase", "")))
            if uid in listed and order <= listed[uid]:
                return  # the listing already showed this state (or a later one)
            first = uid not in listed and order[0] == 0 and (order[1] == 1 or not data.get("startedAt"))
            obj = await _workflow_at(store, data)
            await line({"result": {"type": "ADDED" if first else "MODIFIED", "object": obj}})

        try:
            await _follow(tail, selection, timeout, on_event, keepalive if sse else None)
        except BusError as exc:  # grpc-gateway's shape for an error in a stream
            await line({"error": {"grpc_code": 14, "http_code": 503, "message": _ended(exc), "http_status": "Service Unavailable"}})

    return _Stream(request, selection, None, "text/event-stream" if sse else "application/json", produce)


async def stream_workflow_events(request: Request) -> Response:
    selection, timeout, clean = _selection(request), _timeout(request), _fields(request)
    raw = request.headers.get("last-event-id", "").strip()
    if raw and not raw.isdigit():
        raise ApiError(400, f"Last-Event-ID: expected a stream sequence number (a whole number), got {raw!r}")
    after = int(raw) if raw else None

    async def produce(tail: Tail, write: Write) -> None:
        async def keepalive() -> None:
            await write(b": keepalive\n\n")

        if after is not None and after + 1 < tail.first_seq:
            await write(f": events {after + 1}..{tail.first_seq - 1} are no longer stored (stream retention)\n\n".encode())

        async def on_event(item: StreamEvent) -> None:
            await write(_sse(item, clean))

        try:
            await _follow(tail, selection, timeout, on_event, keepalive)
        except BusError as exc:
            await write(f"event: error\ndata: {json.dumps({'code': 14, 'message': _ended(exc)})}\n\n".encode())

    return _Stream(request, selection, after, "text/event-stream", produce)


def _sse(item: StreamEvent, clean: Callable[[dict[str, Any]], dict[str, Any]]) -> bytes:
    # The event name is the phase, or Deleted (whose data.phase is the workflow's last phase).
    phase = item.event.data.get("phase") if isinstance(item.event.data, dict) else None
    name = item.event.eventname or phase
    body = json.dumps(clean(item.event.model_dump(mode="json", exclude_none=True)), separators=(",", ":"))
    return f"id: {item.seq}\nevent: {name}\ndata: {body}\n\n".encode()


async def stream_stats(request: Request) -> JSONResponse:
    counter = _counter(request.app)
    bus: JetStreamBus = request.app.state.eventflow.bus
    return JSONResponse({"open": counter.open, "opened": counter.opened, "busTails": bus.open_tails})


def routes() -> list[Route]:
    return [
        Route("/api/v1/workflow-events/{namespace}", watch_workflows, methods=["GET"]),
        Route("/api/v1/workflow-events/", watch_workflows, methods=["GET"]),
        Route("/api/v1/stream/workflow-events/{namespace}", stream_workflow_events, methods=["GET"]),
        Route("/api/v1/stream/workflow-events/", stream_workflow_events, methods=["GET"]),
        Route("/api/v1/stream/stats", stream_stats, methods=["GET"]),
    ]

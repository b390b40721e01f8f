"""``eventflow watch``: one line per workflow lifecycle event.

Reads the server's Server-Sent-Events stream (``/api/v1/stream/workflow-events/{namespace}``) and,
when the connection drops, reconnects with ``Last-Event-ID`` set to the last event it printed: the
server replays what was missed, so nothing is printed twice and nothing is skipped. Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from eventflow.cli.client import ApiClient, add_client_flags, error_message
from eventflow.errors import EventflowError, UsageError

__all__ = ["register"]

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Error", "Deleted")  # Deleted: the workflow was deleted
_READ_TIMEOUT = 45.0  # the server sends a keepalive every 15 s; three missed means the connection is dead


@dataclass
class _Event:
    id: str | None = None
    name: str = "message"
    data: list[str] = field(default_factory=list)


@dataclass
class _Position:
    last_id: str | None = None  # the id of the last event printed
    connected: bool = False  # a stream was opened at least once


class _Lost(Exception):
    """The stream ended or failed in a way worth reconnecting for."""


def _sse(lines: Iterator[str]) -> Iterator[_Event]:
    """Parse a text/event-stream (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""
    event = _Event()
    for line in lines:
        if not line:
            if event.data:
                yield event
            event = _Event()
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "id":
            event.id = value
        elif key == "event":
            event.name = value
        elif key == "data":
            event.data.append(value)


def _phases(text: str | None) -> list[str]:
    wanted = [p.strip() for p in (text or "").split(",") if p.strip()]
    for phase in wanted:
        if phase not in PHASES:
            raise UsageError(f"--phase {phase!r}: expected one of {', '.join(PHASES)}")
    return wanted


def _line(event: dict[str, Any]) -> str:
    data = event.get("data") or {}
    try:
        stamp = datetime.fromisoformat(str(event.get("time"))).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        stamp = str(event.get("time", ""))
    where = f"{data.get('namespace', '')}/{data.get('name', '')}"
    phase = "Deleted" if data.get("deleted") else data.get("phase", "")
    parts = [stamp, f"{where:<40}", f"{phase:<9}", f"{data.get('progress') or '-':>5}"]
    if data.get("message"):
        parts.append(str(data["message"]))
    return "  ".join(parts).rstrip()


def _stream(client: ApiClient, path: str, params: dict[str, str], pos: _Position) -> Iterator[tuple[str | None, dict[str, Any]]]:
    headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": pos.last_id} if pos.last_id else {})
    timeout = httpx.Timeout(10.0, read=_READ_TIMEOUT)
    try:
        with client.http.stream("GET", path, params=params, headers=headers, timeout=timeout) as response:
            if response.status_code >= 400:
                message = error_message(response)
                raise EventflowError(message) if response.status_code < 500 else _Lost(message)
            pos.connected = True
            for event in _sse(response.iter_lines()):
                payload = json.loads("\n".join(event.data))
                if event.name == "error":
                    raise _Lost(str(payload.get("message", payload)))
                yield event.id, payload
    except (httpx.TransportError, json.JSONDecodeError) as exc:
        raise _Lost(str(exc) or type(exc).__name__) from None
    raise _Lost("the server ended the stream")


def _exit_now(signum: int, frame: Any) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(130)


def cmd_watch(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    namespace = "" if args.all_namespaces else client.namespace
    fields = [f"metadata.name={args.name}"] if args.name else []
    fields += [f"status.phase={phase}" for phase in _phases(args.phase)]
    params = {"listOptions.fieldSelector": ",".join(fields)} if fields else {}
    if args.selector:
        params["listOptions.labelSelector"] = args.selector
    path = f"/api/v1/stream/workflow-events/{namespace}"
    pos = _Position()
    delay = 0.5
    # Ctrl-C ends the watch at once, wherever the main thread is (a KeyboardInterrupt raised inside the
    # HTTP client's connection handling can wait on its own cleanup); every printed line is flushed.
    signal.signal(signal.SIGINT, _exit_now)
    try:
        while True:
            try:
                for event_id, event in _stream(client, path, params, pos):
                    print(json.dumps(event, separators=(",", ":")) if args.output == "json" else _line(event), flush=True)
                    pos.last_id, delay = event_id or pos.last_id, 0.5
            except _Lost as exc:
                if not pos.connected:  # a wrong address or a server that is down: say so, do not wait
                    raise EventflowError(f"cannot watch {client.base}{path}: {exc}") from None
                print(f"eventflow watch: {exc}; reconnecting in {delay:.1f}s", file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `eventflow watch | head -1`: the reader is gone, so are we
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


def register(commands: Any) -> None:
    p = commands.add_parser(
        "watch",
        help="print one line per workflow lifecycle event (resumes after a disconnect; Ctrl-C stops)",
        description="Follow workflow lifecycle events: time, namespace/name, phase, progress, message per line.",
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument("-l", "--selector", help="label selector, e.g. team=docs,env!=prod")
    p.add_argument("--phase", help=f"only these phases, comma-separated ({', '.join(PHASES[1:])})")
    p.add_argument("--name", help="only the workflow with this name")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="json: one CloudEvent per line")
    add_client_flags(p)
    p.set_defaults(run=cmd_watch)

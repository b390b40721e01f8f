"""Argo's http template against a real local HTTP server: the body is the result, Argo's default and
custom success conditions, headers and bodies sent, timeouts and refused connections fail the node."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.scheduler import running_scheduler
from workflows.models import Workflow
from workflows.scheduler import Scheduler

Seen = list[dict[str, Any]]


@pytest.fixture
def target() -> Iterator[tuple[str, Seen]]:
    """A local server: /ok answers 200 JSON, /made 201, /missing 404, /slow after 5 s; records requests."""
    seen: Seen = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": self.rfile.read(length).decode(),
                }
            )
            if self.path == "/slow":
                time.sleep(5)
            status = {"/ok": 200, "/made": 201, "/missing": 404}.get(self.path, 200)
            body = json.dumps({"path": self.path, "method": self.command}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def scheduler(tmp_path: Path) -> Any:
    async with running_scheduler(tmp_path) as running:
        yield running


async def run(
    scheduler: Scheduler, http: dict[str, Any], then: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    steps = [[{"name": "call", "template": "call"}]]
    templates: list[dict[str, Any]] = [{"name": "main", "steps": steps}, {"name": "call", "http": http}]
    if then is not None:
        steps.append(
            [
                {
                    "name": "use",
                    "template": "use",
                    "arguments": {"parameters": [{"name": "got", "value": "{{steps.call.outputs.result}}"}]},
                }
            ]
        )
        templates.append(then)
    wf = Workflow.model_validate(
        {"metadata": {"generateName": "http-"}, "spec": {"entrypoint": "main", "templates": templates}}
    )
    record = await scheduler.submit(wf)
    done = await scheduler.wait_done(record.namespace, record.name, 30)
    _, nodes = await scheduler.get(done.namespace, done.name)
    by_name = {n.display_name: n for n in nodes.values()}
    return done.phase.value, by_name


async def test_the_body_is_the_result_and_flows_to_the_next_step(
    scheduler: Scheduler, target: tuple[str, Seen]
) -> None:
    url, seen = target
    use = {
        "name": "use",
        "inputs": {"parameters": [{"name": "got"}]},
        "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.got}}"]},
    }
    phase, nodes = await run(
        scheduler, {"url": f"{url}/ok", "headers": [{"name": "X-Trace", "value": "abc"}]}, then=use
    )
    assert phase == "Succeeded"
    assert json.loads(nodes["call"].outputs.result or "") == {"path": "/ok", "method": "GET"}
    assert json.loads(nodes["use"].outputs.result or "") == {"path": "/ok", "method": "GET"}
    assert len(seen) == 1 and seen[0]["headers"]["X-Trace"] == "abc"
    log = Path(nodes["call"].log_path or "").read_text()
    assert f"GET {url}/ok" in log and "200 OK" in log


async def test_a_post_with_a_body_and_a_success_condition(
    scheduler: Scheduler, target: tuple[str, Seen]
) -> None:
    url, seen = target
    http = {
        "url": f"{url}/made",
        "method": "POST",
        "body": '{"name": "x"}',
        "successCondition": 'response.statusCode == 201 && response.body contains "made" && response.headers["Content-Type"][0] == "application/json"',
    }
    phase, nodes = await run(scheduler, http)
    assert phase == "Succeeded", nodes["call"].message
    assert seen[0]["method"] == "POST" and seen[0]["body"] == '{"name": "x"}'
    phase, nodes = await run(scheduler, {**http, "successCondition": "response.statusCode == 200"})
    assert phase == "Failed"
    assert (
        nodes["call"].message == "successCondition 'response.statusCode == 200' evaluated false (status 201)"
    )


async def test_non_2xx_fails_as_in_argo(scheduler: Scheduler, target: tuple[str, Seen]) -> None:
    url, _ = target
    phase, nodes = await run(scheduler, {"url": f"{url}/missing"})
    assert phase == "Failed"
    assert nodes["call"].message == "received non-2xx response code: 404"
    assert nodes["call"].outputs.result == json.dumps({"path": "/missing", "method": "GET"})


async def test_timeouts_and_refused_connections_fail_the_node(
    scheduler: Scheduler, target: tuple[str, Seen]
) -> None:
    url, _ = target
    phase, nodes = await run(scheduler, {"url": f"{url}/slow", "timeoutSeconds": 1})
    assert phase == "Failed" and "no response within 1s" in (nodes["call"].message or "")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens on it once the socket is closed
    phase, nodes = await run(scheduler, {"url": f"http://127.0.0.1:{closed}/x"})
    assert phase == "Failed" and "ConnectError" in (nodes["call"].message or "")


async def test_retry_strategy_applies_to_http_steps(scheduler: Scheduler, target: tuple[str, Seen]) -> None:
    url, seen = target
    wf_http = {"url": f"{url}/missing"}
    steps = [[{"name": "call", "template": "call"}]]
    templates = [
        {"name": "main", "steps": steps},
        {"name": "call", "http": wf_http, "retryStrategy": {"limit": 2}},
    ]
    wf = Workflow.model_validate(
        {"metadata": {"generateName": "http-"}, "spec": {"entrypoint": "main", "templates": templates}}
    )
    record = await scheduler.submit(wf)
    done = await scheduler.wait_done(record.namespace, record.name, 30)
    assert done.phase.value == "Failed"
    assert len(seen) == 3  # the first try and two retries

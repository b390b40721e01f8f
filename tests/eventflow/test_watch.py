"""Workflow lifecycle streams against a real server process: Argo's watch, the SSE stream, ``eventflow watch``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest
from starlette.applications import Starlette

from eventbus import JetStreamBus
from eventflow.api import events
from eventflow.api.events import end_streams, routes
from tests.support.poll import eventually, eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv

pytestmark = pytest.mark.nats

STREAM = "EVENTFLOW_WORKFLOWS"


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=httpx.Timeout(10.0, read=30.0)) as client:
        yield client


def _workflow(name: str, labels: dict[str, str] | None = None, *, exit_code: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "alpine", "command": ["sh", "-c", f"echo hi; exit {exit_code}"]}}]},
    }


async def _submit(http: httpx.AsyncClient, namespace: str, name: str, labels: dict[str, str] | None = None) -> None:
    response = await http.post(f"/api/v1/workflows/{namespace}", json={"workflow": _workflow(name, labels)})
    assert response.status_code == 200, response.text


async def _done(http: httpx.AsyncClient, namespace: str, name: str) -> None:
    async def finished() -> bool:
        phase = (await http.get(f"/api/v1/workflows/{namespace}/{name}")).json()["status"].get("phase")
        return phase in ("Succeeded", "Failed", "Error")

    await eventually(finished, what=f"{name} finished")


async def _stats(http: httpx.AsyncClient) -> dict[str, int]:
    stats: dict[str, int] = (await http.get("/api/v1/stream/stats")).json()
    return stats


async def _quiet(http: httpx.AsyncClient) -> dict[str, int]:
    """The counters once the streams of earlier tests are released (each test closes its own)."""

    async def idle() -> bool:
        stats = await _stats(http)
        return stats["open"] == 0 and stats["busTails"] == 0

    await eventually(idle, what="no stream open")
    return await _stats(http)


class Lines:
    """A streaming response read line by line, each read under a deadline."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def raw(self, timeout: float = 10.0) -> str:
        return await asyncio.wait_for(anext(self._lines), timeout)

    async def json(self) -> dict[str, Any]:
        while not (line := await self.raw()):
            pass
        data: dict[str, Any] = json.loads(line.removeprefix("data: "))
        return data

    async def until(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        got = [await self.json()]
        while not done(got[-1]):
            got.append(await self.json())
        return got

    async def sse(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        while True:
            line = await self.raw()
            if not line and "data" in fields:
                return fields
            if line and not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")


@contextlib.asynccontextmanager
async def _open(http: httpx.AsyncClient, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> AsyncIterator[Lines]:
    async with http.stream("GET", path, params=params, headers=headers) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        yield Lines(response)


def _summary(line: dict[str, Any]) -> tuple[str, str, str]:
    obj = line["result"]["object"]
    return line["result"]["type"], obj["metadata"]["name"], obj["status"]["phase"]


def _is(name: str, phase: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: _summary(line)[1:] == (name, phase)


async def test_watch_reports_running_then_succeeded_once_each(http: httpx.AsyncClient) -> None:
    ns = "watch-once"
    few = "result.type,result.object.metadata.name,result.object.status.phase"
    async with _open(http, f"/api/v1/workflow-events/{ns}") as watch, _open(http, f"/api/v1/workflow-events/{ns}", {"fields": few}) as slim:
        await _submit(http, ns, "once", {"team": "docs"})
        lines = await watch.until(_is("once", "Succeeded"))
        await _submit(http, ns, "marker")  # stream order: anything repeated about "once" would come before it
        lines += await watch.until(_is("marker", "Running"))
        assert [_summary(line) for line in lines] == [
            ("ADDED", "once", "Running"), ("MODIFIED", "once", "Succeeded"), ("ADDED", "marker", "Running"),
        ]  # fmt: skip
        done = lines[1]["result"]["object"]
        assert done["kind"] == "Workflow" and done["spec"]["entrypoint"] == "main"
        assert done["metadata"]["namespace"] == ns and done["metadata"]["uid"] == lines[0]["result"]["object"]["metadata"]["uid"]
        assert done["metadata"]["labels"] == {"team": "docs", "workflows.argoproj.io/phase": "Succeeded", "workflows.argoproj.io/completed": "true"}
        assert done["status"]["progress"] == "1/1" and done["status"]["finishedAt"].endswith("Z")
        assert await slim.json() == {"result": {"type": "ADDED", "object": {"metadata": {"name": "once"}, "status": {"phase": "Running"}}}}


async def test_deleting_a_workflow_is_a_deleted_line_and_a_deleted_event(http: httpx.AsyncClient) -> None:
    ns = "watch-delete"
    async with _open(http, f"/api/v1/workflow-events/{ns}") as watch, _open(http, f"/api/v1/stream/workflow-events/{ns}") as sse, _open(
        http, f"/api/v1/workflow-events/{ns}", {"listOptions.fieldSelector": "status.phase=Succeeded"}
    ) as succeeded_only:
        await _submit(http, ns, "doomed", {"team": "gone"})
        lines = await watch.until(_is("doomed", "Succeeded"))
        assert (await http.delete(f"/api/v1/workflows/{ns}/doomed")).status_code == 200
        gone = await watch.json()
        assert gone["result"]["type"] == "DELETED"
        obj = gone["result"]["object"]
        assert obj["metadata"]["name"] == "doomed" and obj["metadata"]["uid"] == lines[0]["result"]["object"]["metadata"]["uid"]
        assert obj["status"]["phase"] == "Succeeded" and obj["metadata"]["labels"]["team"] == "gone"
        frames = [await sse.sse() for _ in range(3)]
        assert [f["event"] for f in frames] == ["Running", "Succeeded", "Deleted"]
        deleted = json.loads(frames[2]["data"])
        assert deleted["type"] == "io.eventflow.workflow.deleted" and deleted["data"]["deleted"] is True
        # A watch of one phase does not take the deletion of a workflow in that phase for that phase again.
        await _submit(http, ns, "marker")
        await _done(http, ns, "marker")
        seen = await succeeded_only.until(_is("marker", "Succeeded"))
        assert [_summary(line)[:2] for line in seen] == [("MODIFIED", "doomed"), ("MODIFIED", "marker")]
    assert (await http.delete(f"/api/v1/workflows/{ns}/doomed")).status_code == 404


async def test_watch_lists_a_running_workflow_then_reports_its_end_once(http: httpx.AsyncClient) -> None:
    ns = "watch-held"
    held = {"metadata": {"name": "held"}, "spec": {"entrypoint": "main", "templates": [{"name": "main", "suspend": {}}]}}
    assert (await http.post(f"/api/v1/workflows/{ns}", json={"workflow": held})).status_code == 200

    async def running() -> bool:
        phase: str | None = (await http.get(f"/api/v1/workflows/{ns}/held")).json()["status"].get("phase")
        return phase == "Running"

    await eventually(running, what="held running")
    async with _open(http, f"/api/v1/workflow-events/{ns}") as watch:
        assert _summary(await watch.json()) == ("ADDED", "held", "Running")  # the listing; its live event is not repeated
        assert (await http.put(f"/api/v1/workflows/{ns}/held/resume", json={})).status_code == 200
        await _done(http, ns, "held")
        await _submit(http, ns, "after-held")
        lines = await watch.until(_is("after-held", "Running"))
        assert [_summary(line) for line in lines] == [("MODIFIED", "held", "Succeeded"), ("ADDED", "after-held", "Running")]


async def test_watch_filters_by_label_and_field_selectors(http: httpx.AsyncClient) -> None:
    ns = "watch-select"
    sse = {"Accept": "text/event-stream"}
    async with contextlib.AsyncExitStack() as stack:
        by_label = await stack.enter_async_context(_open(http, f"/api/v1/workflow-events/{ns}", {"listOptions.labelSelector": "team=sel-a"}))
        by_name = await stack.enter_async_context(_open(http, f"/api/v1/workflow-events/{ns}", {"listOptions.fieldSelector": "metadata.name=sel-y"}))
        every_ns = {"listOptions.fieldSelector": f"metadata.namespace={ns},status.phase=Succeeded"}
        ended = await stack.enter_async_context(_open(http, "/api/v1/workflow-events/", every_ns, sse))
        assert ended.response.headers["content-type"].startswith("text/event-stream")
        await _submit(http, ns, "sel-x", {"team": "sel-b"})
        await _done(http, ns, "sel-x")
        await _submit(http, ns, "sel-y", {"team": "sel-a"})
        # sel-x's events are earlier in the stream than sel-y's end: a watch that let them through shows them first.
        expected = [("ADDED", "sel-y", "Running"), ("MODIFIED", "sel-y", "Succeeded")]
        assert [_summary(line) for line in await by_label.until(_is("sel-y", "Succeeded"))] == expected
        assert [_summary(line) for line in await by_name.until(_is("sel-y", "Succeeded"))] == expected
        got = [_summary(line) for line in await ended.until(_is("sel-y", "Succeeded"))]
        assert got == [("MODIFIED", "sel-x", "Succeeded"), ("MODIFIED", "sel-y", "Succeeded")]
    # Opened later, a watch starts with the current state of what matches (a Kubernetes watch's ADDED).
    async with _open(http, f"/api/v1/workflow-events/{ns}", {"listOptions.fieldSelector": "metadata.name=sel-x"}) as late:
        first = await late.json()
        assert _summary(first) == ("ADDED", "sel-x", "Succeeded")
        assert first["result"]["object"]["metadata"]["labels"]["team"] == "sel-b"


async def test_sse_resume_with_last_event_id_gives_exactly_the_missed_events(http: httpx.AsyncClient) -> None:
    ns = "watch-resume"
    path = f"/api/v1/stream/workflow-events/{ns}"
    async with _open(http, path) as reference:
        async with _open(http, path) as client:
            await _submit(http, ns, "r1")
            seen = await client.sse()
            assert (seen["event"], json.loads(seen["data"])["data"]["name"]) == ("Running", "r1")
            assert await reference.sse() == seen
        # Disconnected: these happen while the client is away.
        await _submit(http, ns, "r2")
        await _done(http, ns, "r1")
        await _done(http, ns, "r2")
        missed = [await reference.sse() for _ in range(3)]
        names = sorted((json.loads(e["data"])["data"]["name"], e["event"]) for e in missed)
        assert names == [("r1", "Succeeded"), ("r2", "Running"), ("r2", "Succeeded")]
        async with _open(http, path, headers={"Last-Event-ID": seen["id"]}) as resumed:
            assert [await resumed.sse() for _ in range(3)] == missed
            ids = [int(e["id"]) for e in (seen, *missed)]
            assert ids == sorted(set(ids))
            # ... and then live, in step with a client that never left.
            await _submit(http, ns, "r3")
            live = await resumed.sse()
            assert live == await reference.sse()
            assert json.loads(live["data"])["data"]["name"] == "r3" and int(live["id"]) > ids[-1]


@pytest.mark.parametrize("path", ["/api/v1/workflow-events/default", "/api/v1/stream/workflow-events/default"])
@pytest.mark.parametrize(
    ("params", "headers", "message"),
    [
        ({"listOptions.labelSelector": "team in ("}, {}, "invalid label selector"),
        ({"listOptions.fieldSelector": "spec.entrypoint=main"}, {}, "unsupported field selector 'spec.entrypoint=main'"),
        ({"listOptions.fieldSelector": "metadata.name"}, {}, "unsupported field selector 'metadata.name'"),
        ({"listOptions.timeoutSeconds": "soon"}, {}, "listOptions.timeoutSeconds"),
    ],
)
async def test_streams_answer_malformed_requests_with_400(
    http: httpx.AsyncClient, path: str, params: dict[str, str], headers: dict[str, str], message: str
) -> None:
    response = await http.get(path, params=params, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == 3 and message in response.json()["message"]


@pytest.mark.parametrize(("last_id", "message"), [("abc", "expected a stream sequence number"), ("999999999", "is ahead of the stream")])
async def test_sse_answers_bad_last_event_id_with_400_without_leaking(http: httpx.AsyncClient, last_id: str, message: str) -> None:
    before = await _quiet(http)
    response = await http.get("/api/v1/stream/workflow-events/default", headers={"Last-Event-ID": last_id})
    assert response.status_code == 400 and message in response.json()["message"]
    after = await _stats(http)
    assert (after["open"], after["busTails"]) == (before["open"], before["busTails"])


async def test_streams_release_their_subscriptions_when_clients_disconnect(server: ServerProcess, http: httpx.AsyncClient) -> None:
    ns = "watch-leak"
    nc = await nats.connect(server.wait_for(r"embedded nats-server pid=\d+ listening on (nats://\S+)").group(1))
    try:
        js = nc.jetstream()

        async def consumers() -> int:
            return (await js.stream_info(STREAM)).state.consumer_count

        before = await _quiet(http)
        before_consumers = await consumers()
        paths = [f"/api/v1/workflow-events/{ns}", f"/api/v1/stream/workflow-events/{ns}"]
        selectors = [{}, {"listOptions.labelSelector": "team=leak"}, {"listOptions.fieldSelector": "status.phase=Succeeded"}]
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(_open(http, p, s)) for p in paths for s in selectors]
            now = await _stats(http)
            assert now["open"] == before["open"] + 6 and now["busTails"] == before["busTails"] + 6
            assert await consumers() == before_consumers + 6
            await _submit(http, ns, "leak", {"team": "leak"})
            await streams[0].json()  # mid-stream: the clients go with events still coming
        # The clients closed their connections; the server must notice and let go of every tail.
        async def released() -> bool:
            stats = await _stats(http)
            return (stats["open"], stats["busTails"]) == (before["open"], before["busTails"]) and await consumers() == before_consumers

        await eventually(released, what="every stream's subscription released")
        await _done(http, ns, "leak")
    finally:
        await nc.close()


def test_cli_watch_json_phase_succeeded_prints_one_line_for_one_workflow(server: ServerProcess) -> None:
    ns = "watch-cli"
    base = server.base_url
    opened = httpx.get(f"{base}/api/v1/stream/stats").json()["opened"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTFLOW_SERVER": base}
    proc = subprocess.Popen(
        eventflow_argv("watch", "-n", ns, "-o", "json", "--phase", "Succeeded"),
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in proc.stdout or ():
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        eventually_sync(lambda: httpx.get(f"{base}/api/v1/stream/stats").json()["opened"] > opened, timeout=20, what="the CLI connected")
        response = httpx.post(f"{base}/api/v1/workflows/{ns}", json={"workflow": _workflow("cli-one")})
        assert response.status_code == 200, response.text
        event = json.loads(lines.get(timeout=15))
        assert event["type"] == "io.eventflow.workflow.succeeded" and event["id"].endswith(".Succeeded")
        assert (event["data"]["name"], event["data"]["namespace"], event["data"]["phase"]) == ("cli-one", ns, "Succeeded")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        reader.join(timeout=5)
        assert lines.empty(), "more than one line printed"
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


async def test_end_streams_ends_open_and_new_streams_cleanly(bus: JetStreamBus) -> None:
    # In process: what a stopping server calls so that it need not wait for its clients.
    app = Starlette(routes=routes())
    app.state.eventflow = SimpleNamespace(bus=bus, extra={})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://eventflow") as client:
        pending = asyncio.create_task(client.get("/api/v1/stream/workflow-events/default"))
        await eventually(lambda: bus.open_tails == 1, what="the stream open")
        end_streams(app)
        response = await asyncio.wait_for(pending, 5)
        assert response.status_code == 200 and response.text == ""
        assert bus.open_tails == 0
        late = await asyncio.wait_for(client.get("/api/v1/stream/workflow-events/default"), 5)
        assert late.status_code == 200 and bus.open_tails == 0
        assert (await client.get("/api/v1/stream/stats")).json() == {"open": 0, "opened": 2, "busTails": 0}


async def test_sse_sends_keepalives_while_quiet_and_lets_go_on_disconnect(bus: JetStreamBus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "KEEPALIVE_SECONDS", 0.05)
    app = Starlette(routes=routes())
    app.state.eventflow = SimpleNamespace(bus=bus, extra={})
    sent: list[dict[str, Any]] = []
    gone = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = "/api/v1/stream/workflow-events/default"
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"", "headers": []}
    scope |= {"http_version": "1.1", "scheme": "http", "server": ("eventflow", 80), "root_path": ""}
    call = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    await eventually(lambda: sum(m.get("body") == b": keepalive\n\n" for m in sent) >= 2, what="two keepalives")
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    gone.set()
    await asyncio.wait_for(call, 5)
    assert bus.open_tails == 0

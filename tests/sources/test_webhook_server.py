"""Event sources in a real server process: applied with the CLI, served on the server's port and on
their own, kept across a restart, and never a 200 for an event that is not on the bus, even when the
server is killed mid-request."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from eventbus import BusConfig, JetStreamBus
from tests.sources.conftest import free_port
from tests.support.poll import eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv, start_ready

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def _start(data: Path, nats_url: str, prefix: str) -> ServerProcess:
    return start_ready(data, "--nats-url", nats_url, env={"EVENTFLOW_BUS_PREFIX": prefix})


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTFLOW_SERVER": server.base_url}
    return subprocess.run(eventflow_argv(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


async def _stored_ids(nats_url: str, prefix: str) -> set[str]:
    bus = await JetStreamBus.connect(BusConfig(url=nats_url, prefix=prefix))
    try:
        stream = bus.subjects.events_stream
        info = await bus.js.stream_info(stream)
        ids = set()
        for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
            msg = await bus.js.get_msg(stream, seq)
            ids.add(json.loads(msg.data)["id"])
        return ids
    finally:
        await bus.close(grace_seconds=0)


@pytest.fixture
def prefix(bus_prefix: str, bus: JetStreamBus) -> str:
    """The server's bus prefix; the ``bus`` fixture deletes its streams afterwards (CI shares NATS)."""
    return bus_prefix


def test_apply_serve_restart_and_delete(tmp_path: Path, nats_server: object, prefix: str) -> None:
    url = nats_server.url  # type: ignore[attr-defined]
    own_port = free_port()
    spec = tmp_path / "hooks.yaml"
    spec.write_text(f"""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: hooks}}
spec:
  webhook:
    main: {{endpoint: /hooks/main, method: POST}}
    own: {{endpoint: /example, port: "{own_port}", method: POST}}
""")
    server = _start(tmp_path / "data", url, prefix)
    try:
        applied = cli(server, "apply", "-f", str(spec))
        assert applied.returncode == 0, applied.stderr
        assert "created" in applied.stdout
        assert httpx.post(f"{server.base_url}/hooks/main", json={"a": 1}).status_code == 200
        assert httpx.post(f"http://127.0.0.1:{own_port}/example", json={"b": 2}).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{own_port}/health").text == "OK"
        listing = cli(server, "event-sources", "list").stdout
        assert "hooks" in listing and "main" in listing and "own" in listing
        # An endpoint may not take the server's own paths.
        clash = tmp_path / "clash.yaml"
        clash.write_text("apiVersion: argoproj.io/v1alpha1\nkind: EventSource\nmetadata: {name: clash}\nspec:\n  webhook:\n    x: {endpoint: /api/v1/workflows}\n")
        refused = cli(server, "apply", "-f", str(clash))
        assert refused.returncode == 1 and "server's own paths" in refused.stderr
        server.stop()
        server = _start(tmp_path / "data", url, prefix)  # restored from the store
        eventually_sync(lambda: httpx.post(f"http://127.0.0.1:{own_port}/example", json={}).status_code == 200, timeout=10, what="own port back")
        assert cli(server, "event-sources", "delete", "hooks").returncode == 0
        assert httpx.post(f"{server.base_url}/hooks/main", json={}).status_code == 404
    finally:
        server.stop()


def test_kill9_mid_request_never_answers_200_for_an_unstored_event(tmp_path: Path, nats_server: object, prefix: str) -> None:
    url = nats_server.url  # type: ignore[attr-defined]
    port = free_port()
    server = _start(tmp_path / "data", url, prefix)
    manifest = {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "k"},
                "spec": {"webhook": {"k": {"endpoint": "/k", "port": port}}}}  # fmt: skip
    assert httpx.post(f"{server.base_url}/api/v1/event-sources/default", json={"eventSource": manifest}).status_code == 200
    answered: list[str] = []
    stop = threading.Event()

    async def fire() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            async def one(i: int) -> None:
                while not stop.is_set():
                    key = f"{i}-{len(answered)}-{os.urandom(4).hex()}"
                    try:
                        response = await client.post(f"http://127.0.0.1:{port}/k", json={"k": key}, headers={"Idempotency-Key": key})
                    except httpx.TransportError:
                        return
                    if response.status_code == 200:
                        answered.append(response.json()["id"])

            await asyncio.gather(*(one(i) for i in range(20)))

    thread = threading.Thread(target=lambda: asyncio.run(fire()))
    thread.start()
    eventually_sync(lambda: len(answered) > 200, timeout=30, what="traffic flowing")
    server.signal(signal.SIGKILL)
    server.wait()
    stop.set()
    thread.join(timeout=30)
    stored = asyncio.run(_stored_ids(url, prefix))
    assert answered and set(answered) <= stored, f"{len(set(answered) - stored)} answered 200 but not on the bus"

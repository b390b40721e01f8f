from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import database
from tests.support.nats_process import NatsProcess
from tests.support.poll import eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv, pid_alive

pytestmark = pytest.mark.nats


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def _serve(servers: list[ServerProcess], *args: str) -> ServerProcess:
    server = ServerProcess("--port", "0", *args).start()
    servers.append(server)
    return server


def _ready(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code
    except httpx.TransportError:
        return 0


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        eventflow_argv(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.timing
def test_serve_embedded_ready_within_5s_and_ctrl_c_exits_clean(tmp_path: Path, servers: list[ServerProcess]) -> None:
    began = time.monotonic()
    server = _serve(servers, "--data-dir", str(tmp_path / "data"))
    url = server.base_url
    eventually_sync(lambda: _ready(url) == 200, timeout=5, what="/readyz 200")
    assert time.monotonic() - began < 5
    body = httpx.get(f"{url}/readyz").json()
    assert body == {"status": "ready", "checks": {"bus": {"ok": True}, "database": {"ok": True}, "scheduler": {"ok": True}}}
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    nats_pid = int(server.wait_for(r"embedded nats-server pid=(\d+)").group(1))
    assert pid_alive(nats_pid)

    server.signal(signal.SIGINT)
    assert server.wait() == 0
    assert not pid_alive(nats_pid), "the embedded nats-server outlived eventflow"
    assert "Traceback" not in server.output


def test_serve_sigterm_exits_zero_and_keeps_store(tmp_path: Path, servers: list[ServerProcess]) -> None:
    data = tmp_path / "data"
    server = _serve(servers, "--data-dir", str(data))
    eventually_sync(lambda: _ready(server.base_url) == 200, what="ready")
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert (data / "nats" / "jetstream").is_dir()
    # The store is <data>/eventflow.db unless the run puts stores in Postgres (then no file at all).
    assert (data / "eventflow.db").is_file() == (database.backend() == "sqlite")


def test_serve_unknown_flag_is_usage_error() -> None:
    result = _run("serve", "--no-such-flag")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "eventflow: error: unrecognized arguments: --no-such-flag (see 'eventflow --help')"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nats-url", "localhost:4222"], "not a NATS URL"),
        (["--db", "mysql://x/y"], "unsupported database 'mysql'"),
        (["--roles", "http,bogus"], "unknown role(s) 'bogus'"),
        (["--port", "70000"], "port"),
    ],
)
def test_serve_bad_setting_is_one_line_usage_error(args: list[str], message: str, tmp_path: Path) -> None:
    result = _run("serve", "--data-dir", str(tmp_path), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_serve_bad_config_file_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "eventflow.yaml"
    cfg.write_text("port: 2746\nbus:\n  prefix: [unclosed\n")
    result = _run("serve", "--config", str(cfg))
    assert result.returncode == 2
    assert f"{cfg}: line" in result.stderr and "Traceback" not in result.stderr


def test_serve_port_in_use_is_runtime_error(tmp_path: Path, servers: list[ServerProcess]) -> None:
    first = _serve(servers, "--data-dir", str(tmp_path / "a"))
    port = first.base_url.rsplit(":", 1)[1]
    result = _run("serve", "--data-dir", str(tmp_path / "b"), "--port", port)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_unwritable_data_dir_is_runtime_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _run("serve", "--port", "0", "--data-dir", str(blocker / "data"))
    assert result.returncode == 1
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_serve_second_server_on_same_data_dir_refused(tmp_path: Path, servers: list[ServerProcess]) -> None:
    first = _serve(servers, "--data-dir", str(tmp_path))
    first.wait_for("eventflow ready")
    result = _run("serve", "--port", "0", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"is in use by pid {first.proc.pid if first.proc else ''}" in result.stderr


def test_serve_unreachable_nats_gives_up_with_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("bus:\n  connect_timeout_seconds: 1\n")
    result = _run("serve", "--port", "0", "--data-dir", str(tmp_path), "--config", str(cfg), "--nats-url", "nats://127.0.0.1:1")
    assert result.returncode == 1
    assert "NATS at nats://127.0.0.1:1 is unavailable: gave up after" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_external_nats_lost_turns_unready_then_recovers(tmp_path: Path, servers: list[ServerProcess]) -> None:
    nats = NatsProcess(tmp_path / "nats")
    nats.start()
    try:
        server = _serve(servers, "--data-dir", str(tmp_path / "data"), "--nats-url", nats.url)
        url = server.base_url
        eventually_sync(lambda: _ready(url) == 200, what="ready")
        assert "embedded nats-server" not in server.output

        nats.stop()
        eventually_sync(lambda: _ready(url) == 503, what="/readyz 503 while NATS is down")
        body = httpx.get(f"{url}/readyz").json()
        assert body["checks"]["bus"]["ok"] is False and body["checks"]["database"]["ok"] is True

        nats.start()
        eventually_sync(lambda: _ready(url) == 200, timeout=15, what="/readyz 200 after NATS is back")
    finally:
        nats.stop()


def test_serve_embedded_crash_restarts_once_then_second_crash_is_fatal(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    server = _serve(servers, "--data-dir", str(tmp_path))
    url = server.base_url
    eventually_sync(lambda: _ready(url) == 200, what="ready")
    first = int(server.wait_for(r"embedded nats-server pid=(\d+)").group(1))
    os.kill(first, signal.SIGKILL)
    server.wait_for("restarted with the same store")
    eventually_sync(lambda: _ready(url) == 200, timeout=15, what="ready after restart")

    second = int(server.wait_for(r"embedded nats-server pid=(?!%d\b)(\d+)" % first).group(1))
    os.kill(second, signal.SIGKILL)
    assert server.wait() == 1
    assert "crashed again" in server.output and "Traceback" not in server.output


@pytest.mark.postgres
def test_serve_with_postgres_is_ready(tmp_path: Path, servers: list[ServerProcess], pg_url: str) -> None:
    server = _serve(servers, "--data-dir", str(tmp_path), "--db", pg_url)
    eventually_sync(lambda: _ready(server.base_url) == 200, what="ready with Postgres")

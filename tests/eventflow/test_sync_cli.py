"""Synchronization and caps against a real server: ``eventflow sync`` and its API, database semaphore
limits, a ConfigMap limit refused at apply, and caps reloaded on SIGHUP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.poll import eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv

pytestmark = pytest.mark.nats


def _sleeper(name: str, seconds: float, sync: dict[str, object] | None = None) -> dict[str, object]:
    spec: dict[str, object] = {
        "entrypoint": "main",
        "templates": [{"name": "main", "container": {"image": "alpine", "command": ["sh", "-c", f"sleep {seconds}"]}}],
    }
    if sync:
        spec["synchronization"] = sync
    return {"metadata": {"name": name}, "spec": spec}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"scheduler": {"namespaceParallelism": 1}}))
    return path


@pytest.fixture
def server(tmp_path: Path, config_file: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess("--port", "0", "--data-dir", str(tmp_path / "data"), "--config", str(config_file)).start()
    url = proc.base_url
    eventually_sync(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="ready")
    yield proc
    proc.stop()


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTFLOW_SERVER": server.base_url}
    return subprocess.run(eventflow_argv(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def _phase(server: ServerProcess, name: str) -> dict[str, object]:
    return httpx.get(f"{server.base_url}/api/v1/workflows/default/{name}", timeout=5).json()["status"]


def test_caps_hold_back_workflows_and_a_sighup_reload_lets_them_start(server: ServerProcess, config_file: Path) -> None:
    base = server.base_url
    for i in range(3):
        assert httpx.post(f"{base}/api/v1/workflows/default", json={"workflow": _sleeper(f"cap-{i}", 30)}).status_code == 200
    eventually_sync(lambda: _phase(server, "cap-0").get("phase") == "Running", what="first running")
    eventually_sync(lambda: _phase(server, "cap-2").get("message") is not None, what="third postponed")
    for name in ("cap-1", "cap-2"):
        status = _phase(server, name)
        assert status["phase"] == "Pending"
        assert status["message"] == "Workflow processing has been postponed because too many workflows are already running"
    listing = cli(server, "sync", "list")
    assert listing.returncode == 0, listing.stderr
    assert "1 workflows running, 2 postponed (cap 1)" in listing.stdout

    config_file.write_text(yaml.safe_dump({"scheduler": {"namespaceParallelism": 3}}))
    server.signal(signal.SIGHUP)
    eventually_sync(lambda: all(_phase(server, f"cap-{i}").get("phase") == "Running" for i in range(3)), timeout=5, what="all three running")
    server.wait_for(r"configuration reloaded: parallelism 0, namespaceParallelism 3")

    config_file.write_text("scheduler: {namespaceParallelism: -1}\n")  # a bad file keeps the running caps
    server.signal(signal.SIGHUP)
    server.wait_for(r"configuration not reloaded: .*namespaceParallelism")
    for i in range(3):
        assert cli(server, "terminate", f"cap-{i}").returncode == 0


def test_sync_list_shows_holders_and_waiters_and_database_limits(server: ServerProcess, config_file: Path) -> None:
    config_file.write_text(yaml.safe_dump({"scheduler": {}}))
    server.signal(signal.SIGHUP)
    server.wait_for(r"configuration reloaded")
    created = cli(server, "sync", "create", "db-key", "--limit", "1")
    assert created.returncode == 0, created.stderr
    assert cli(server, "sync", "create", "db-key", "--limit", "1").returncode == 1  # exists
    assert cli(server, "sync", "create", "bad", "--limit", "0").returncode == 1
    base = server.base_url
    sync = {"semaphores": [{"database": {"key": "db-key"}}]}
    for name in ("db-a", "db-b"):
        assert httpx.post(f"{base}/api/v1/workflows/default", json={"workflow": _sleeper(name, 30, sync)}).status_code == 200

    def shown() -> dict[str, object]:
        data = json.loads(cli(server, "sync", "list", "-o", "json").stdout)
        return next((lk for lk in data["locks"] if lk["name"] == "default/Database/db-key"), {})

    eventually_sync(lambda: shown().get("waiting") == ["default/db-b"], timeout=10, what="db-b waiting")
    assert shown()["holders"] == ["default/db-a"] and shown()["limit"] == 1
    table = cli(server, "sync", "list").stdout
    assert "default/Database/db-key" in table and "1/1" in table and "default/db-b" in table
    assert _phase(server, "db-b")["message"] == "Waiting for default/Database/db-key lock. Lock status: 0/1"

    # Raising the limit lets the waiter in at once; a limit in use cannot be deleted.
    assert cli(server, "sync", "update", "db-key", "--limit", "2").returncode == 0
    eventually_sync(lambda: _phase(server, "db-b").get("phase") == "Running", timeout=5, what="db-b running")
    refused = cli(server, "sync", "delete", "db-key")
    assert refused.returncode == 1 and "in use" in refused.stderr
    for name in ("db-a", "db-b"):
        assert cli(server, "terminate", name).returncode == 0
    eventually_sync(lambda: shown() == {}, timeout=10, what="the lock released")
    assert cli(server, "sync", "delete", "db-key").returncode == 0


def test_a_configmap_limit_in_use_cannot_become_zero(server: ServerProcess, config_file: Path) -> None:
    base = server.base_url
    cm = {"metadata": {"name": "limits"}, "data": {"n": "1"}}
    assert httpx.post(f"{base}/api/v1/config-maps/default", json={"configMap": cm}).status_code == 200
    sync = {"semaphores": [{"configMapKeyRef": {"name": "limits", "key": "n"}}]}
    assert httpx.post(f"{base}/api/v1/workflows/default", json={"workflow": _sleeper("cm-a", 30, sync)}).status_code == 200
    eventually_sync(lambda: _phase(server, "cm-a").get("phase") == "Running", what="cm-a running")
    cm["data"] = {"n": "0"}
    refused = httpx.put(f"{base}/api/v1/config-maps/default/limits", json={"configMap": cm})
    assert refused.status_code == 400
    assert "semaphore limit for default/ConfigMap/limits/n must be at least 1" in refused.json()["message"]
    assert cli(server, "terminate", "cm-a").returncode == 0

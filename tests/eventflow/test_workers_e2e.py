"""Remote workers as real processes: ``eventflow serve`` with its embedded NATS and two ``eventflow
worker`` processes on it. A 200-step fan-out runs on the workers; one worker is killed with SIGKILL
mid-run; its steps are noticed lost, retried on the other, and every step's output is there once."""

from __future__ import annotations

import collections
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.poll import eventually_sync
from tests.support.server_proc import ServerProcess, free_port, pid_alive, start_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

STEPS = 200
LOST_AFTER = 3


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.nats_port = free_port()
        config = tmp / "server.yaml"
        config.write_text(f"scheduler:\n  workerLostAfterSeconds: {LOST_AFTER}\n")
        self.server = start_ready(tmp / "data", "--nats-port", str(self.nats_port), "--config", str(config))
        self.workers: dict[str, ServerProcess] = {}

    def worker(self, name: str, *args: str) -> ServerProcess:
        proc = ServerProcess(
            "--nats-url", f"nats://127.0.0.1:{self.nats_port}", "--name", name, "--concurrency", "8",
            "--work-dir", str(self.tmp / name), *args, command="worker",
        ).start()  # fmt: skip
        self.workers[name] = proc
        proc.wait_for(r"worker \S+ taking tasks of queue", timeout=30)
        return proc

    def close(self) -> None:
        for proc in self.workers.values():
            proc.stop()
        self.server.stop()

    @property
    def api(self) -> str:
        return f"{self.server.base_url}/api/v1/workflows/default"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def fan_out() -> dict[str, Any]:
    return {
        "metadata": {"generateName": "fleet-", "labels": {"eventflow.io/executor": "workers"}},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "steps": [
                        [
                            {
                                "name": "task",
                                "template": "work",
                                "withSequence": {"count": str(STEPS)},
                                "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]},
                            }
                        ]
                    ],
                },
                {
                    "name": "work",
                    "inputs": {"parameters": [{"name": "i"}]},
                    "retryStrategy": {"limit": 3, "retryPolicy": "Always"},
                    "container": {
                        "image": "alpine",
                        "command": ["sh", "-c", "sleep 0.2; echo out-{{inputs.parameters.i}}"],
                    },
                },
            ],
        },
    }


def pods(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in (workflow["status"].get("nodes") or {}).values() if n["type"] == "Pod"]


def test_a_fan_out_survives_a_worker_killed_mid_run(cluster: Cluster) -> None:
    first = cluster.worker("w1")
    cluster.worker("w2")
    created = httpx.post(cluster.api, json={"workflow": fan_out()}, timeout=30)
    assert created.status_code == 200, created.text
    name = created.json()["metadata"]["name"]

    def get() -> dict[str, Any]:
        return httpx.get(f"{cluster.api}/{name}", timeout=30).json()

    def some_done() -> bool:
        return sum(n["phase"] == "Succeeded" for n in pods(get())) >= 40

    eventually_sync(some_done, timeout=120, what="40 steps done")
    assert first.proc is not None
    first.proc.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    # The killed worker's steps die with it (its reaper kills their process groups).

    def finished() -> bool:
        return get()["status"].get("phase") in ("Succeeded", "Failed", "Error")

    eventually_sync(finished, timeout=180, what="the workflow finished")
    wf = get()
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    steps = pods(wf)
    done = [n for n in steps if n["phase"] == "Succeeded"]
    outputs = collections.Counter(n["outputs"]["result"] for n in done)
    assert outputs == collections.Counter(f"out-{i}" for i in range(STEPS))  # every output, once each
    lost = [n for n in steps if n["phase"] == "Error"]
    assert lost, "the killed worker held steps: some attempts must have been lost"
    for node in lost:
        assert (
            node["message"]
            == f"executor lost: worker w1 sent no heartbeat for {LOST_AFTER}s while the step ran"
        )
    # The server ran nothing itself, and says how many workers are there.
    ready = httpx.get(f"{cluster.server.base_url}/readyz", timeout=10).json()
    assert ready["checks"]["scheduler"]["workerQueues"]["default"]["workers"] == 1


def test_worker_usage_errors_exit_2(tmp_path: Path) -> None:
    import subprocess

    from tests.support.server_proc import REPO, eventflow_argv

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
        return subprocess.run(
            eventflow_argv("worker", *args), check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )

    missing = run()
    assert missing.returncode == 2
    assert "--nats-url (or EVENTFLOW_NATS_URL) is required" in missing.stderr
    bad = run("--nats-url", "nats://127.0.0.1:1", "--concurrency", "0")
    assert bad.returncode == 2 and "--concurrency must be at least 1" in bad.stderr
    assert "Traceback" not in bad.stderr + missing.stderr


def test_a_worker_stopped_with_sigterm_finishes_its_steps_first(cluster: Cluster) -> None:
    worker = cluster.worker("w1", "--grace-seconds", "30")
    body = fan_out()
    body["spec"]["templates"][0]["steps"][0][0]["withSequence"] = {"count": "4"}
    body["spec"]["templates"][1]["container"]["command"] = [
        "sh",
        "-c",
        "sleep 2; echo out-{{inputs.parameters.i}}",
    ]
    created = httpx.post(cluster.api, json={"workflow": body}, timeout=30)
    name = created.json()["metadata"]["name"]

    def running() -> bool:
        wf = httpx.get(f"{cluster.api}/{name}", timeout=30).json()
        return sum(n["phase"] == "Running" for n in pods(wf)) == 4

    eventually_sync(running, timeout=30, what="four steps running")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    assert worker.proc is not None and not pid_alive(worker.proc.pid)
    wf = httpx.get(f"{cluster.api}/{name}", timeout=30).json()
    # Each step finished on the stopping worker; nothing was lost or retried.
    eventually_sync(
        lambda: httpx.get(f"{cluster.api}/{name}", timeout=30).json()["status"].get("phase") == "Succeeded",
        timeout=30,
        what="succeeded",
    )
    wf = httpx.get(f"{cluster.api}/{name}", timeout=30).json()
    assert sorted(n["phase"] for n in pods(wf)) == ["Succeeded"] * 4


@pytest.mark.postgres
def test_a_killed_leader_hands_its_steps_on_workers_over_and_each_runs_once(
    scratch_pg: tuple[str, str], nats_server: Any, tmp_path: Path
) -> None:
    """Two servers on one Postgres and one NATS, one worker. The leader is killed with SIGKILL during a
    50-step workflow; the standby takes over within 10 s, follows the steps the worker still runs or
    finished meanwhile, and the workflow succeeds with each step run exactly once."""
    import shutil
    import time
    import uuid

    db = scratch_pg[1]
    prefix = f"failover{uuid.uuid4().hex[:8]}"
    env = {"EVENTFLOW_BUS_PREFIX": prefix}
    shared = Path("/dev/shm") / f"eventflow-failover-{uuid.uuid4().hex[:8]}"  # the same path inside every step
    shared.mkdir()
    common = ("--db", db, "--nats-url", nats_server.url)
    servers: list[ServerProcess] = []
    worker: ServerProcess | None = None
    try:
        first = start_ready(tmp_path / "first", *common, env=env)
        servers.append(first)
        first.wait_for(r"scheduler started", timeout=30)
        second = start_ready(tmp_path / "second", *common, env=env)
        servers.append(second)
        second.wait_for(r"standby: the scheduler runs on", timeout=30)
        worker = ServerProcess(
            "--nats-url", nats_server.url, "--prefix", prefix, "--name", "steady", "--concurrency", "4",
            "--work-dir", str(tmp_path / "worker"), command="worker",
        ).start()  # fmt: skip
        worker.wait_for(r"worker \S+ taking tasks", timeout=30)
        body = fan_out()
        body["spec"]["parallelism"] = 4
        body["spec"]["templates"][0]["steps"][0][0]["withSequence"] = {"count": "50"}
        body["spec"]["templates"][1].pop("retryStrategy")  # a step run twice would show; none may be lost
        body["spec"]["templates"][1]["container"]["command"] = [
            "sh", "-c", f"sleep 0.4; echo {{{{inputs.parameters.i}}}} >> {shared}/ran; echo out-{{{{inputs.parameters.i}}}}",
        ]  # fmt: skip
        created = httpx.post(f"{second.base_url}/api/v1/workflows/default", json={"workflow": body}, timeout=30)
        assert created.status_code == 200, created.text
        name = created.json()["metadata"]["name"]
        ran = shared / "ran"
        eventually_sync(lambda: ran.exists() and len(ran.read_text().split()) >= 10, timeout=60, what="10 steps done")
        assert first.proc is not None
        first.proc.kill()
        first.wait(timeout=10)
        killed = time.monotonic()
        second.wait_for(r"took over the scheduler lease", timeout=15)
        assert time.monotonic() - killed < 10

        def phase() -> str | None:
            wf = httpx.get(f"{second.base_url}/api/v1/workflows/default/{name}", timeout=30).json()
            return wf["status"].get("phase")

        eventually_sync(lambda: phase() in ("Succeeded", "Failed", "Error"), timeout=120, what="the workflow finished")
        wf = httpx.get(f"{second.base_url}/api/v1/workflows/default/{name}", timeout=30).json()
        assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
        assert sorted(ran.read_text().split(), key=int) == [str(i) for i in range(50)]  # each step ran once
        steps = pods(wf)
        assert len(steps) == 50 and all(n["phase"] == "Succeeded" for n in steps)
        assert sorted(n["outputs"]["result"] for n in steps) == sorted(f"out-{i}" for i in range(50))
    finally:
        if worker is not None:
            worker.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(shared, ignore_errors=True)

"""kill -9 of the server while a workflow runs: after restarts it finishes, every step ran once."""

from __future__ import annotations

import random
import shutil
import signal
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.poll import eventually_sync
from tests.support.server_proc import ServerProcess

pytestmark = [
    pytest.mark.nats,
    pytest.mark.slow,
    pytest.mark.skip(
        reason="not yet: steps running during a kill -9 are marked 'executor lost' instead of being re-attached, "
        "and steps need a hostPath volume (issue 5) to write the shared file this test counts"
    ),
]

STEPS = 20


def _workflow(out: Path) -> dict[str, object]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "twenty-steps"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [[{"name": f"s{i}", "template": "mark", "arguments": {"parameters": [{"name": "i", "value": str(i)}]}}] for i in range(STEPS)]},
                {
                    "name": "mark",
                    "inputs": {"parameters": [{"name": "i"}]},
                    "container": {
                        "image": "alpine",
                        "command": ["sh", "-c", f"sleep 0.15; echo step-{{{{inputs.parameters.i}}}} >> {out}"],
                    },
                },
            ],
        },
    }


def _start(data: Path) -> tuple[ServerProcess, str]:
    server = ServerProcess("--port", "0", "--data-dir", str(data)).start()
    url = server.base_url
    eventually_sync(lambda: _ready(url), timeout=15, what="server ready")
    return server, url


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_workflow_survives_three_kill9_and_runs_each_step_once(tmp_path: Path) -> None:
    # Outside /tmp: each step has a private /tmp, and the test must see the shared file.
    shared = Path(tempfile.mkdtemp(prefix="eventflow-kill9-", dir="/var/tmp"))
    out = shared / "steps.txt"
    data = tmp_path / "data"
    rng = random.Random()
    server, url = _start(data)
    try:
        created = httpx.post(f"{url}/api/v1/workflows/default", json={"workflow": _workflow(out)}, timeout=10)
        assert created.status_code == 200, created.text
        for _ in range(3):
            time.sleep(rng.uniform(0.3, 1.5))
            assert server.proc is not None
            server.proc.send_signal(signal.SIGKILL)
            server.wait()
            server, url = _start(data)

        def done() -> bool:
            wf = httpx.get(f"{url}/api/v1/workflows/default/twenty-steps", timeout=5).json()
            return wf["status"].get("phase") in ("Succeeded", "Failed", "Error")

        eventually_sync(done, timeout=60, what="workflow finished")
        wf = httpx.get(f"{url}/api/v1/workflows/default/twenty-steps").json()
        assert wf["status"]["phase"] == "Succeeded", yaml.safe_dump(wf["status"])[:3000]
        lines = out.read_text().split()
        assert sorted(lines) == sorted(f"step-{i}" for i in range(STEPS)), lines
        assert lines == [f"step-{i}" for i in range(STEPS)]
    finally:
        server.stop()
        shutil.rmtree(shared, ignore_errors=True)

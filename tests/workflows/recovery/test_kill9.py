"""kill -9 of the server while a workflow runs: after three restarts it finishes, every step ran once.

Each step appends a line with a timestamp to a file as its last act. The step running when the server
dies is killed with it (the executor's reaper), found lost at restart and re-run by its retry policy.
The file is under /dev/shm, which every node's private root shares with the host.

One window cannot be closed: the kernel takes ~10 ms to tear a killed server down, and only then can
the reaper kill its steps. A step that writes its line inside that window and is then killed never
reported finishing, so the service rightly runs it again. Such a line is the only duplicate allowed,
and only if its timestamp falls between a kill and the moment that server was gone.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.poll import eventually_sync
from tests.support.server_proc import start_ready

pytestmark = [pytest.mark.nats, pytest.mark.slow]

STEPS = 20


@pytest.fixture
def lines_file() -> Iterator[Path]:
    shared = Path("/dev/shm")
    if not shared.is_dir():
        pytest.skip("no /dev/shm to share a file between the steps and the test")
    folder = shared / f"eventflow-kill9-{uuid.uuid4().hex}"
    folder.mkdir()
    yield folder / "lines"
    shutil.rmtree(folder, ignore_errors=True)


def _workflow(lines: Path) -> dict[str, object]:
    steps = [[{"name": f"s{i}", "template": "mark", "arguments": {"parameters": [{"name": "i", "value": str(i)}]}}] for i in range(STEPS)]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "twenty-steps"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": steps},
                {
                    "name": "mark",
                    "inputs": {"parameters": [{"name": "i"}]},
                    "retryStrategy": {"limit": 3, "retryPolicy": "OnTransientError"},
                    "container": {
                        "image": "alpine",
                        "command": ["sh", "-c", f"sleep 0.2; echo step-{{{{inputs.parameters.i}}}} $(date +%s.%N) >> {lines}"],
                    },
                },
            ],
        },
    }


RECORDING = 0.05  # seconds from a step's last output to its exit being committed, at most


def test_workflow_survives_three_kill9_and_runs_each_step_once(tmp_path: Path, lines_file: Path) -> None:
    data = tmp_path / "data"
    rng = random.Random()
    server = start_ready(data)
    try:
        created = httpx.post(f"{server.base_url}/api/v1/workflows/default", json={"workflow": _workflow(lines_file)}, timeout=10)
        assert created.status_code == 200, created.text
        dying: list[tuple[float, float]] = []  # (kill sent, server gone) per kill
        for _ in range(3):
            time.sleep(rng.uniform(0.3, 1.2))
            killed_at = time.time()
            server.signal(signal.SIGKILL)
            server.wait()
            dying.append((killed_at, time.time() + 0.05))  # + the reaper's own reaction time
            server = start_ready(data)

        def phase() -> str:
            wf = httpx.get(f"{server.base_url}/api/v1/workflows/default/twenty-steps", timeout=5).json()
            return str(wf["status"].get("phase"))

        eventually_sync(lambda: phase() in ("Succeeded", "Failed", "Error"), timeout=90, what="workflow finished")
        wf = httpx.get(f"{server.base_url}/api/v1/workflows/default/twenty-steps").json()
        assert wf["status"]["phase"] == "Succeeded", yaml.safe_dump(wf["status"])[:3000]
        runs: dict[str, list[float]] = {}
        for line in lines_file.read_text().splitlines():
            step, stamp = line.split()
            runs.setdefault(step, []).append(float(stamp))
        assert sorted(runs) == sorted(f"step-{i}" for i in range(STEPS))
        for step, stamps in runs.items():
            # A step's line is written just before its process exits: a line up to RECORDING before a
            # kill belongs to a step whose exit the server may not have recorded yet, still in flight.
            in_flight = [t for t in stamps if any(start - RECORDING <= t <= end for start, end in dying)]
            assert len(stamps) == 1 or (len(stamps) == 2 and len(in_flight) == 1), (
                f"{step} ran {len(stamps)} times at {stamps}; kills (sent, gone): {dying}"
            )
    finally:
        server.stop()

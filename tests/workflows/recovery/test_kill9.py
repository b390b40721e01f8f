"""kill -9 of the server while a workflow runs: after three restarts it finishes, every step ran once.

Each step reports to an HTTP counter in this test as its last act. The step running when the
server dies is killed with it (the executor's reaper), found lost at restart and re-run by its
retry policy, so it reports once.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.poll import eventually_sync
from tests.support.server_proc import ServerProcess

pytestmark = [pytest.mark.nats, pytest.mark.slow]

STEPS = 20


@pytest.fixture
def counter() -> Iterator[tuple[str, Counter[str]]]:
    hits: Counter[str] = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            with lock:
                hits[self.path.strip("/")] += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def _workflow(report: str) -> dict[str, object]:
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
                        "command": ["sh", "-c", f"sleep 0.2; exec curl -sf {report}/step-{{{{inputs.parameters.i}}}}"],
                    },
                },
            ],
        },
    }


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _start(data: Path) -> ServerProcess:
    server = ServerProcess("--port", "0", "--data-dir", str(data)).start()
    eventually_sync(lambda: _ready(server.base_url), timeout=20, what="server ready")
    return server


def test_workflow_survives_three_kill9_and_runs_each_step_once(tmp_path: Path, counter: tuple[str, Counter[str]]) -> None:
    report, hits = counter
    data = tmp_path / "data"
    rng = random.Random()
    server = _start(data)
    try:
        created = httpx.post(f"{server.base_url}/api/v1/workflows/default", json={"workflow": _workflow(report)}, timeout=10)
        assert created.status_code == 200, created.text
        for _ in range(3):
            time.sleep(rng.uniform(0.3, 1.2))
            server.signal(signal.SIGKILL)
            server.wait()
            server = _start(data)

        def phase() -> str:
            wf = httpx.get(f"{server.base_url}/api/v1/workflows/default/twenty-steps", timeout=5).json()
            return str(wf["status"].get("phase"))

        eventually_sync(lambda: phase() in ("Succeeded", "Failed", "Error"), timeout=90, what="workflow finished")
        wf = httpx.get(f"{server.base_url}/api/v1/workflows/default/twenty-steps").json()
        assert wf["status"]["phase"] == "Succeeded", yaml.safe_dump(wf["status"])[:3000]
        assert dict(hits) == {f"step-{i}": 1 for i in range(STEPS)}
    finally:
        server.stop()

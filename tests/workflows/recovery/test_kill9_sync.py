"""kill -9 of the server while ten workflows hold or wait for a semaphore of 2: after the restart the
same two hold it, the others wait, never more than two run at once, and all ten finish."""

from __future__ import annotations

import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.poll import eventually_sync
from tests.support.server_proc import ServerProcess, start_ready

pytestmark = [pytest.mark.nats, pytest.mark.slow]

WORKFLOWS = 10


@pytest.fixture
def marks() -> Iterator[Path]:
    shared = Path("/dev/shm")
    if not shared.is_dir():
        pytest.skip("no /dev/shm to share a file between the steps and the test")
    folder = shared / f"eventflow-kill9-sync-{uuid.uuid4().hex}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _workflow(i: int, marks: Path) -> dict[str, object]:
    out = marks / f"wf{i}"
    return {
        "metadata": {"name": f"sem-{i}"},
        "spec": {
            "entrypoint": "main",
            "synchronization": {"semaphores": [{"configMapKeyRef": {"name": "limits", "key": "work"}}]},
            "templates": [
                {
                    "name": "main",
                    "retryStrategy": {"limit": 3, "retryPolicy": "OnTransientError"},
                    "container": {
                        "image": "alpine",
                        "command": ["sh", "-c", f"echo start $(date +%s.%N) >> {out}; sleep 1; echo end $(date +%s.%N) >> {out}"],
                    },
                }
            ],
        },
    }


def _lock(server: ServerProcess) -> dict[str, object]:
    locks = httpx.get(f"{server.base_url}/api/v1/sync/default", timeout=5).json()["locks"]
    return next((lk for lk in locks if lk["name"] == "default/ConfigMap/limits/work"), {"holders": [], "waiting": []})


@pytest.mark.timing
def test_semaphore_holders_survive_kill9_and_nothing_is_lost(tmp_path: Path, marks: Path) -> None:
    data = tmp_path / "data"
    server = start_ready(data)
    try:
        base = server.base_url
        cm = {"metadata": {"name": "limits"}, "data": {"work": "2"}}
        assert httpx.post(f"{base}/api/v1/config-maps/default", json={"configMap": cm}, timeout=10).status_code == 200
        for i in range(WORKFLOWS):
            created = httpx.post(f"{base}/api/v1/workflows/default", json={"workflow": _workflow(i, marks)}, timeout=10)
            assert created.status_code == 200, created.text
        eventually_sync(lambda: len(_lock(server)["holders"]) == 2 and len(_lock(server)["waiting"]) == WORKFLOWS - 2,
                        timeout=20, what="two holders and eight waiters")  # fmt: skip
        holders = set(_lock(server)["holders"])  # type: ignore[arg-type]
        killed_at = time.time()
        server.signal(signal.SIGKILL)
        server.wait()
        server = start_ready(data)
        restarted = server.base_url
        # Exactly the same two hold it after the restart (rebuilt from the store); nobody else got in.
        assert set(_lock(server)["holders"]) == holders  # type: ignore[arg-type]

        def finished() -> bool:
            items = httpx.get(f"{restarted}/api/v1/workflows/default", timeout=5).json()["items"] or []
            return len(items) == WORKFLOWS and all(w["status"].get("phase") in ("Succeeded", "Failed", "Error") for w in items)

        def at_most_two() -> bool:
            assert len(_lock(server)["holders"]) <= 2  # type: ignore[arg-type]
            return finished()

        eventually_sync(at_most_two, timeout=120, what="all ten workflows finished")
        items = httpx.get(f"{restarted}/api/v1/workflows/default", timeout=5).json()["items"]
        assert sorted(w["status"]["phase"] for w in items) == ["Succeeded"] * WORKFLOWS
        assert _lock(server)["holders"] == []
    finally:
        server.stop()
    # Every run of every step, from the steps' own timestamps: never more than two at once (a run cut
    # short by the kill ends when the server died).
    edges: list[tuple[float, int]] = []
    for i in range(WORKFLOWS):
        start: float | None = None
        for line in (marks / f"wf{i}").read_text().splitlines():
            what, stamp = line.split()
            if what == "start":
                if start is not None:
                    edges += [(start, 1), (killed_at, -1)]
                start = float(stamp)
            else:
                assert start is not None
                edges += [(start, 1), (float(stamp), -1)]
                start = None
        assert start is None, f"wf{i} has a run that never ended"
    current = most = 0
    for _, step in sorted(edges):
        current += step
        most = max(most, current)
    assert most == 2
    # No slot idles: whenever a run ends (not by the kill) while a workflow has yet to start, another
    # run starts within 2 s.
    starts = sorted(t for t, step in edges if step == 1)
    firsts = sorted(min(float(line.split()[1]) for line in (marks / f"wf{i}").read_text().splitlines()) for i in range(WORKFLOWS))
    for end in (t for t, step in edges if step == -1 and t != killed_at):
        if any(first > end for first in firsts):
            assert any(end <= s <= end + 2 for s in starts), f"nothing started within 2 s of the run ending at {end}"

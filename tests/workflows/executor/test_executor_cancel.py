from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.poll import eventually
from tests.workflows.executor.helpers import (
    GRACE,
    MODES,
    gone,
    group_members,
    make_executor,
    needs_cgroup,
    sh,
)
from workflows.executor import LocalExecutor, ProcessSpec


@pytest.fixture(params=MODES)
def executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalExecutor]:
    yield from make_executor(tmp_path / "nodes", request.param)


async def _start(
    executor: LocalExecutor, node: ProcessSpec, lines: int
) -> tuple[asyncio.Task[object], int, list[int]]:
    """Run ``node`` until its log shows ``lines`` pids; return the task, the main pid and those pids."""
    started: list[int] = []
    task: asyncio.Task[object] = asyncio.create_task(executor.run(node, on_start=started.append))
    log = executor.work_dir / f"{node.node_id}.log"

    def printed() -> bool:
        return bool(started) and log.exists() and len(log.read_text().split()) >= lines

    await eventually(printed, timeout=10, what="the node to print its pids")
    return task, started[0], [int(word) for word in log.read_text().split()]


@pytest.mark.timing
async def test_cancel_kills_group_including_sigterm_ignoring_child(executor: LocalExecutor) -> None:
    # Both the shell and its child ignore SIGTERM (an ignored signal stays ignored across exec).
    node = sh("stubborn", "trap '' TERM; sleep 300 & echo $!; wait; wait")
    task, main, (child,) = await _start(executor, node, 1)
    assert group_members(main) == sorted([main, child])
    clock = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - clock >= GRACE  # SIGTERM was ignored, so it took the SIGKILL after the grace
    await eventually(lambda: gone(main) and gone(child), timeout=5, what="both processes to die")
    assert group_members(main) == []


@pytest.mark.timing
async def test_cancel_of_a_sigterm_honouring_process_is_quick(executor: LocalExecutor) -> None:
    task, main, _ = await _start(executor, sh("polite", "echo $$; exec sleep 300"), 1)
    clock = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - clock < GRACE
    assert gone(main)


async def test_exit_of_main_process_kills_its_background_children(executor: LocalExecutor) -> None:
    result = await executor.run(sh("orphans", "sleep 300 & echo $!"))
    child = int(result.result)
    await eventually(lambda: gone(child), timeout=5, what="the background child to die")
    assert result.exit_code == 0


@needs_cgroup("pids")
async def test_exit_of_main_process_kills_children_that_left_the_group(executor: LocalExecutor) -> None:
    # Wait until the child really is in its own session (field 6 of /proc/PID/stat) before exiting.
    script = (
        "setsid sleep 300 & p=$!; while [ \"$(cut -d' ' -f6 /proc/$p/stat)\" != $p ]; do :; done; echo $p"
    )
    result = await executor.run(sh("escapee", script))
    escaped = int(result.result)
    await eventually(lambda: gone(escaped), timeout=5, what="the setsid child to die")


def test_reaper_kills_running_nodes_when_the_service_dies(tmp_path: Path) -> None:
    """A service killed with SIGKILL: its running node dies with it, not minutes later."""
    import subprocess
    import sys
    import time

    script = tmp_path / "service.py"
    records = tmp_path / "work"  # the reaper keeps the groups it would kill in .groups-<its pid>
    script.write_text(
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from workflows.executor import LocalExecutor, ProcessSpec\n"
        "async def main():\n"
        f"    ex = LocalExecutor(Path({str(tmp_path / 'work')!r}))\n"
        f"    spec = ProcessSpec(node_id='n1', image='alpine', command=['sleep', '60'], args=None, env={{}}, working_dir=None, script_source=None, output_paths=())\n"
        "    await ex.run(spec)\n"
        "asyncio.run(main())\n"
    )
    repo = Path(__file__).resolve().parents[3]
    service = subprocess.Popen([sys.executable, str(script)], cwd=repo, env={**__import__("os").environ, "PYTHONPATH": str(repo)})
    try:
        deadline = time.monotonic() + 20
        def recorded() -> str:
            files = list(records.glob(".groups-*")) if records.exists() else []
            return "".join(f.read_text() for f in files if not f.name.endswith(".tmp"))

        while not recorded().strip():
            assert time.monotonic() < deadline, "node did not start"
            time.sleep(0.02)
        node_pid = int(recorded().split()[0])
        service.kill()
        service.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(node_pid):
            assert time.monotonic() < deadline, "the node outlived its service"
            time.sleep(0.02)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

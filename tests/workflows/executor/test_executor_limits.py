from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import workflows.executor.executor as executor_module
from tests.support.poll import eventually
from tests.workflows.executor.helpers import MODES, group_members, make_executor, needs_cgroup, sh, spec
from workflows.executor import LocalExecutor

MB = 1024 * 1024
# Touches every byte, so the memory is really used (a lazily mapped allocation would not be charged).
ALLOCATE_500MB = "data = b'x' * (500 * 1024 * 1024); print(len(data))"


@pytest.fixture(params=MODES)
def executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalExecutor]:
    yield from make_executor(tmp_path / "nodes", request.param)


@needs_cgroup("memory")
async def test_memory_limit_oom_kills_the_node(executor: LocalExecutor) -> None:
    node = spec("hog", command=["python3", "-c", ALLOCATE_500MB], memory_limit_bytes=100 * MB)
    result = await executor.run(node)
    assert (result.exit_code, result.error) == (137, "OOMKilled (exit code 137)")
    assert result.result == ""


async def test_memory_limit_without_cgroup_falls_back_to_rlimit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor_module, "detect_cgroups", lambda: None)
    for executor in make_executor(tmp_path / "nodes", "host"):
        result = await executor.run(
            spec("hog", command=["python3", "-c", ALLOCATE_500MB], memory_limit_bytes=100 * MB)
        )
        assert result.exit_code == 1
        assert "MemoryError" in result.log_path.read_text()


async def test_memory_limit_leaves_small_programs_alone(executor: LocalExecutor) -> None:
    result = await executor.run(
        spec("small", command=["python3", "-c", "print(len(b'x' * 1024))"], memory_limit_bytes=100 * MB)
    )
    assert (result.exit_code, result.result) == (0, "1024")


@needs_cgroup("pids")
@pytest.mark.timing
async def test_fork_bomb_is_stopped_by_the_process_cap(executor: LocalExecutor) -> None:
    # 2000 sleeping children against a cap of 100: the shell's fork fails and it gives up.
    script = "i=0; while [ $i -lt 2000 ]; do sleep 5 & i=$((i+1)); done; echo spawned $i"
    pids: list[int] = []
    clock = time.monotonic()
    result = await executor.run(sh("bomb", script, max_processes=100), on_start=pids.append)
    assert result.exit_code not in (0, None)
    assert "spawned" not in result.result
    assert "fork" in result.log_path.read_text().lower()
    assert time.monotonic() - clock < 5  # did not wait for the sleeps: they were killed
    await eventually(lambda: group_members(pids[0]) == [], timeout=5, what="the sleeping children to die")


@needs_cgroup("pids")
async def test_process_cap_allows_normal_fan_out(executor: LocalExecutor) -> None:
    script = "for i in 1 2 3 4 5 6 7 8; do (echo $i) & done; wait; echo done"
    result = await executor.run(sh("fanout", script, max_processes=16))
    assert (result.exit_code, result.result.splitlines()[-1]) == (0, "done")


@needs_cgroup("cpu")
async def test_cpu_limit_caps_cpu_time_to_the_quota(executor: LocalExecutor) -> None:
    busy = "import time\nend = time.time() + 1.0\nwhile time.time() < end: pass\nprint(time.process_time())"
    result = await executor.run(spec("busy", command=["python3", "-c", busy], cpu_limit=0.2))
    assert result.exit_code == 0
    assert float(result.result) < 0.5  # one busy second of wall time, at most ~0.2 s of it on a CPU

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workflows.executor.helpers import make_executor, needs_private_fs, sh, spec
from workflows.executor import LocalExecutor

pytestmark = needs_private_fs()


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    yield from make_executor(tmp_path / "nodes", "private")


@pytest.fixture
def rendezvous() -> Iterator[str]:
    """A directory both nodes see (the host's /dev/shm is bound into every root)."""
    path = Path("/dev/shm") / f"eventflow-test-{uuid.uuid4().hex}"
    path.mkdir()
    yield str(path)
    for entry in path.iterdir():
        entry.unlink()
    path.rmdir()


async def test_private_fs_parallel_nodes_each_read_their_own_tmp_file(
    executor: LocalExecutor, rendezvous: str
) -> None:
    # Each node writes /tmp/out.txt, then waits until the other one has written too (both are running
    # at once), and only then reads its own file back.
    script = (
        f'echo "$0" > /tmp/out.txt; touch {rendezvous}/"$0"; n=0; '
        f'while [ "$(ls {rendezvous} | wc -l)" -lt 2 ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done; '
        "cat /tmp/out.txt"
    )
    nodes = [sh(name, script, args=[name], output_paths=("/tmp/out.txt",)) for name in ("left", "right")]
    left, right = await asyncio.gather(*(executor.run(node) for node in nodes))
    assert (left.result, left.outputs) == ("left", {"/tmp/out.txt": "left"})
    assert (right.result, right.outputs) == ("right", {"/tmp/out.txt": "right"})
    assert sorted(p.name for p in Path(rendezvous).iterdir()) == ["left", "right"]


@pytest.mark.parametrize("path", ["/output", "/result.txt", "/mnt/out/file.json", "/work/markers/done"])
async def test_private_fs_writes_outside_tmp_stay_in_the_node(executor: LocalExecutor, path: str) -> None:
    result = await executor.run(
        spec("writer", image="argoproj/argosay:v2", args=["echo", "written", path], output_paths=(path,))
    )
    assert result.outputs == {path: "written"}
    assert not Path(path).exists()


async def test_private_fs_relative_write_lands_in_the_nodes_root(executor: LocalExecutor) -> None:
    result = await executor.run(sh("relative", "echo hi > result.txt; pwd", output_paths=("/result.txt",)))
    assert (result.result, result.outputs) == ("/", {"/result.txt": "hi"})
    assert not Path("/result.txt").exists()


async def test_private_fs_tmp_and_mnt_start_empty(executor: LocalExecutor) -> None:
    result = await executor.run(sh("empty", "ls -A /tmp /mnt"))
    assert result.result == "/mnt:\n\n/tmp:"


async def test_private_fs_a_recycled_root_shows_nothing_of_the_node_before(executor: LocalExecutor) -> None:
    # Roots are pooled: run enough nodes one after another that later ones get recycled roots, and
    # each must find none of what the earlier ones wrote, deleted or left running.
    host_file = Path("/var/tmp") / f"eventflow-test-{uuid.uuid4().hex}"
    host_file.write_text("host\n")
    try:
        marks = "/tmp/mark /mnt/mark /etc/mark /root-mark"
        for i in range(12):
            probe = f"ls -d {marks} 2>/dev/null; cat {host_file}; "
            result = await executor.run(
                sh(f"n{i}", probe + f"for m in {marks}; do echo {i} > $m; done; rm {host_file}; sleep 60 &")
            )
            assert (result.exit_code, result.result) == (0, "host"), f"node {i} saw an earlier node's writes"
        assert len(os.listdir(executor.work_dir / ".roots")) < 12  # roots were lent again
    finally:
        host_file.unlink()


async def test_private_fs_host_files_are_readable_but_deletions_stay_private(executor: LocalExecutor) -> None:
    host_file = Path("/var/tmp") / f"eventflow-test-{uuid.uuid4().hex}"
    host_file.write_text("from the host\n")
    try:
        seen = await executor.run(sh("reader", f"cat {host_file}", output_paths=(str(host_file),)))
        deleted = await executor.run(sh("deleter", f"rm {host_file}", output_paths=(str(host_file),)))
        assert (seen.result, seen.outputs) == ("from the host", {str(host_file): "from the host"})
        assert (deleted.exit_code, deleted.outputs) == (0, {str(host_file): None})
        assert host_file.read_text() == "from the host\n"
    finally:
        host_file.unlink()


async def test_private_fs_leaves_no_mount_on_the_host(executor: LocalExecutor) -> None:
    await executor.run(sh("mounts", "echo x > /tmp/x"))
    assert str(executor.work_dir) not in Path("/proc/self/mountinfo").read_text()


async def test_private_fs_output_symlinks_resolve_in_the_nodes_view(executor: LocalExecutor) -> None:
    script = (
        "echo mine > /output; ln -s /output /tmp/abs; ln -s ../output /tmp/rel; ln -s /etc/hostname /tmp/host"
    )
    paths = ("/tmp/abs", "/tmp/rel", "/tmp/host")
    result = await executor.run(sh("links", script, output_paths=paths))
    host = Path("/etc/hostname").read_text().removesuffix("\n")
    assert result.outputs == {"/tmp/abs": "mine", "/tmp/rel": "mine", "/tmp/host": host}

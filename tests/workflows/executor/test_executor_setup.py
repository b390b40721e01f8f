from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.workflows.executor.helpers import gone, needs_private_fs, sh
from workflows.executor import LocalExecutor, PrivateFsUnavailable, nsthread


async def test_private_fs_required_but_unavailable_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nsthread, "_blocker", lambda: "no overlay here")
    executor = LocalExecutor(tmp_path, private_fs=True)
    with pytest.raises(PrivateFsUnavailable, match="private filesystem unavailable: no overlay here"):
        await executor.run(sh("n", "true"))


async def test_private_fs_auto_falls_back_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(nsthread, "_blocker", lambda: "no overlay here")
    executor = LocalExecutor(tmp_path)
    with caplog.at_level(logging.WARNING, logger="workflows.executor"):
        result = await executor.run(sh("n", "pwd"))
    assert executor.private_fs is False
    executor.close()
    assert result.result == str(tmp_path / "n" / "fs" / "wd")
    assert "no private filesystem per node (no overlay here)" in caplog.text


@needs_private_fs()
async def test_run_after_close_isolates_again(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path)
    first = await executor.run(sh("a", "pwd"))
    executor.close()
    second = await executor.run(sh("b", "pwd"))
    executor.close()
    assert (first.result, second.result) == ("/", "/")


async def test_on_start_error_still_stops_the_process(tmp_path: Path) -> None:
    pids: list[int] = []

    def fail(pid: int) -> None:
        pids.append(pid)
        raise ValueError("scheduler could not record the pid")

    executor = LocalExecutor(tmp_path)
    with pytest.raises(ValueError, match="could not record"):
        await executor.run(sh("n", "exec sleep 300"), on_start=fail)
    executor.close()
    assert gone(pids[0])


async def test_repr_counts_started_and_not_started(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path, private_fs=False)
    await executor.run(sh("ok", "true"))
    await executor.run(sh("missing", "true", command=["no-such-command"]))
    executor.close()
    assert "started=1 running=0 not_started=1" in repr(executor)

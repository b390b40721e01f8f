from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workflows.executor.helpers import MODES, make_executor, sh, spec
from workflows.executor import InvalidNodeId, LocalExecutor
from workflows.executor.layout import NodeDirs


@pytest.fixture(params=MODES)
def executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalExecutor]:
    yield from make_executor(tmp_path / "nodes", request.param)


async def test_run_echo_removes_one_trailing_newline(executor: LocalExecutor) -> None:
    result = await executor.run(sh("echo", "printf 'hello world\\n\\n'"))
    assert result.exit_code == 0
    assert result.result == "hello world\n"
    assert result.error is None


async def test_run_stderr_goes_to_log_not_result(executor: LocalExecutor) -> None:
    result = await executor.run(sh("streams", "echo to-stdout; echo to-stderr >&2"))
    assert result.result == "to-stdout"
    log = result.log_path.read_text()
    assert "to-stdout\n" in log
    assert "to-stderr\n" in log


@pytest.mark.parametrize("code", [0, 1, 3, 42])
async def test_run_exit_code_is_the_commands(executor: LocalExecutor, code: int) -> None:
    result = await executor.run(sh(f"exit{code}", f"exit {code}"))
    assert result.exit_code == code
    assert result.error is None


async def test_run_killed_by_signal_reports_128_plus_signal(executor: LocalExecutor) -> None:
    result = await executor.run(sh("killed", "kill -KILL $$"))
    assert result.exit_code == 137


async def test_run_missing_command_fails_with_argos_message(executor: LocalExecutor) -> None:
    result = await executor.run(spec("missing", command=["exit", "1"]))
    assert result.exit_code is None
    assert result.error == 'exec: "exit": executable file not found in $PATH'
    assert result.error in result.log_path.read_text()


async def test_run_missing_absolute_command_fails_with_stat_error(executor: LocalExecutor) -> None:
    result = await executor.run(spec("missing-path", command=["/no/such/tool"]))
    assert result.exit_code is None
    assert result.error == 'exec: "/no/such/tool": stat /no/such/tool: no such file or directory'


async def test_run_stdin_is_empty_so_cat_returns_at_once(executor: LocalExecutor) -> None:
    result = await executor.run(spec("cat", command=["cat"]))
    assert (result.exit_code, result.result) == (0, "")


async def test_run_outputs_read_file_missing_and_directory(executor: LocalExecutor) -> None:
    paths: tuple[str, ...] = ("/tmp/eventflow-out.txt", "/tmp/eventflow-absent.txt", "/tmp/eventflow-dir")
    script = "printf 'value\\n' > /tmp/eventflow-out.txt; mkdir -p /tmp/eventflow-dir"
    if executor.private_fs is False:
        # Without isolation these are the host's paths: make them this test's own.
        paths = tuple(p.replace("/tmp/", f"{executor.work_dir}/") for p in paths)
        script = script.replace("/tmp/", f"{executor.work_dir}/")
    result = await executor.run(sh("outputs", script, output_paths=paths))
    assert result.outputs == {paths[0]: "value", paths[1]: None, paths[2]: None}


async def test_run_large_stdout_is_truncated_and_log_keeps_all(tmp_path: Path) -> None:
    for executor in make_executor(tmp_path / "nodes", "host", result_limit=1000):
        result = await executor.run(sh("big", "head -c 300000 /dev/zero | tr '\\0' x; echo; echo tail-line"))
        assert result.exit_code == 0
        assert result.result == "x" * 1000 + "\n...[truncated: 300011 bytes total, see logs]"
        log = result.log_path.read_text()
        assert len(log) == 300011
        assert log.endswith("tail-line\n")


async def test_run_env_home_and_path_are_set(executor: LocalExecutor) -> None:
    result = await executor.run(
        sh("env", 'echo "$GREETING|$HOME"; command -v argosay', env={"GREETING": "hi"})
    )
    greeting, argosay = result.result.split("\n")
    home = "/tmp" if executor.private_fs else str(executor.work_dir / "env" / "fs" / "tmp")
    assert greeting == f"hi|{home}"
    assert argosay.endswith("/argosay")


async def test_run_working_dir_is_used_and_created_when_private(executor: LocalExecutor) -> None:
    wd = "/work/eventflow-wd" if executor.private_fs else str(executor.work_dir)
    result = await executor.run(sh("wd", "pwd", working_dir=wd))
    assert (result.exit_code, result.result) == (0, wd)


async def test_run_missing_working_dir_without_private_fs_fails_to_start(tmp_path: Path) -> None:
    for executor in make_executor(tmp_path / "nodes", "host"):
        result = await executor.run(sh("nowd", "pwd", working_dir=str(tmp_path / "absent")))
        assert result.exit_code is None
        assert result.error is not None and "chdir to cwd" in result.error


async def test_run_on_start_receives_the_commands_pid(executor: LocalExecutor) -> None:
    pids: list[int] = []
    result = await executor.run(sh("pid", "echo $$"), on_start=pids.append)
    assert pids == [int(result.result)]


async def test_run_invalid_node_id_raises(executor: LocalExecutor) -> None:
    with pytest.raises(InvalidNodeId, match=r"'\.\./escape'"):
        await executor.run(spec("../escape", command=["true"]))


async def test_cleanup_removes_private_dirs_and_keeps_log(executor: LocalExecutor) -> None:
    result = await executor.run(sh("clean", "echo kept; echo x > /tmp/scratch"))
    node_dir = executor.work_dir / "clean"
    # A private node's writes live in a pooled root, emptied when the node ends, and it has no dir
    # of its own; a host-mode node's scratch dirs stay until cleanup.
    assert (node_dir / "fs").is_dir() is not executor.private_fs
    assert node_dir.exists() is not executor.private_fs
    assert executor.recover("clean") is not None
    executor.cleanup("clean")
    assert not node_dir.exists() or os.listdir(node_dir) == []
    # The saved result is set aside, not deleted (see retire_result): no longer one to recover.
    assert sorted(p.name for p in executor.work_dir.glob("clean*")) == [
        *(["clean"] if node_dir.exists() else []),
        "clean.log",
        "clean.result.json.committed",
    ]
    assert executor.recover("clean") is None
    assert result.log_path.read_text() == "kept\n"
    executor.discard("clean")
    assert list(executor.work_dir.glob("clean*")) == []


async def test_run_same_node_again_starts_from_a_fresh_state(executor: LocalExecutor) -> None:
    await executor.run(sh("again", "echo first; echo data > $HOME/left-behind"))
    result = await executor.run(sh("again", "echo second; ls $HOME"))
    assert result.result == "second"
    assert result.log_path.read_text() == "second\n"


async def test_a_result_saved_in_the_earlier_layout_is_still_recovered(executor: LocalExecutor) -> None:
    # Before logs and results moved beside the node's dir, the result was saved inside it: a step
    # that finished just before an upgrade must not run again after it.
    await executor.run(sh("old", "echo hi"))
    dirs = NodeDirs(executor.work_dir / "old")
    dirs.node.mkdir(exist_ok=True)
    os.replace(dirs.result, dirs.legacy_result)
    recovered = executor.recover("old")
    assert recovered is not None and recovered.result == "hi"
    executor.cleanup("old")
    assert executor.recover("old") is None

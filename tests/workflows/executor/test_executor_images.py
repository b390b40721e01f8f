from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workflows.executor.helpers import MODES, make_executor, spec
from workflows.executor import LocalExecutor

ARGOSAY = "argoproj/argosay:v2"


@pytest.fixture(params=MODES)
def executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalExecutor]:
    yield from make_executor(tmp_path / "nodes", request.param)


def _out(executor: LocalExecutor, path: str) -> str:
    """``path`` in the node's own view, or a path of this test's when nodes share the host's."""
    return path if executor.private_fs else f"{executor.work_dir}{path}"


async def test_script_python_runs_source_file_and_captures_result(executor: LocalExecutor) -> None:
    source = "import random\nprint(sum(range(10)))\n"
    result = await executor.run(
        spec("py", image="python:alpine3.23", command=["python"], script_source=source)
    )
    assert (result.exit_code, result.result) == (0, "45")


async def test_script_without_command_runs_with_sh_and_args_before_file(executor: LocalExecutor) -> None:
    result = await executor.run(
        spec("shscript", args=["-e"], script_source='echo "script is $0"\nfalse\necho unreachable\n')
    )
    staged = (
        "/argo/staging/script" if executor.private_fs else f"{executor.work_dir}/shscript/fs/staging/script"
    )
    assert (result.exit_code, result.result) == (1, f"script is {staged}")


async def test_script_parallel_nodes_each_run_their_own_source(executor: LocalExecutor) -> None:
    nodes = [spec(f"s{i}", script_source=f"sleep 0.05\necho {i}\n") for i in range(8)]
    results = await asyncio.gather(*(executor.run(node) for node in nodes))
    assert [r.result for r in results] == [str(i) for i in range(8)]
    assert not Path("/argo").exists()  # the staged script stays in the node's own dirs


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (None, "hello argo"),
        (["echo"], "hello argo"),
        (["echo", "hi there"], "hi there"),
        (["echo", "a", "b", "c"], ""),
    ],
)
async def test_argosay_echo_prints(executor: LocalExecutor, args: list[str] | None, expected: str) -> None:
    result = await executor.run(spec("say", image=ARGOSAY, args=args))
    assert (result.exit_code, result.result) == (0, expected)


async def test_argosay_echo_to_file_is_read_as_output(executor: LocalExecutor) -> None:
    path = _out(executor, "/tmp/deep/dir/message")
    result = await executor.run(
        spec("tofile", image=ARGOSAY, args=["echo", "to a file", path], output_paths=(path,))
    )
    assert (result.exit_code, result.result) == (0, "")
    assert result.outputs == {path: "to a file"}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["cat", "/tmp/eventflow-no-such-file"], 1),
        (["exit", "3"], 3),
        (["exit"], 0),
        (["frobnicate"], 1),
    ],
)
async def test_argosay_exit_codes(executor: LocalExecutor, args: list[str], code: int) -> None:
    result = await executor.run(spec("codes", image=ARGOSAY, args=args))
    assert result.exit_code == code


async def test_argosay_assert_contains_passes_and_fails(executor: LocalExecutor) -> None:
    path = _out(executor, "/tmp/haystack")
    setup = ["sh", "-c", f'argosay echo "needle in a haystack" {path} && argosay assert_contains {path} "$0"']
    found = await executor.run(spec("found", image=ARGOSAY, command=[*setup, "needle"]))
    missing = await executor.run(spec("missing", image=ARGOSAY, command=[*setup, "pin"]))
    assert (found.exit_code, found.result) == (0, "needle in a haystack")
    assert (missing.exit_code, missing.result) == (1, "")


async def test_argosay_command_path_is_emulated(executor: LocalExecutor) -> None:
    result = await executor.run(
        spec("abs", image=ARGOSAY, command=["/argosay"], args=["echo", "via /argosay"])
    )
    assert (result.exit_code, result.result) == (0, "via /argosay")


async def test_argosay_v1_default_runs_cowsay_with_empty_stdin(executor: LocalExecutor) -> None:
    result = await executor.run(spec("cow", image="argoproj/argosay:v1"))
    assert result.exit_code == 0
    assert "(oo)" in result.result


async def test_cowsay_prints_text_in_a_bubble(executor: LocalExecutor) -> None:
    result = await executor.run(
        spec("cowsay", image="argoproj/argosay:v1", command=["sh", "-c"], args=["cowsay hello"])
    )
    assert result.exit_code == 0
    assert "< hello >" in result.result
    assert "^__^" in result.log_path.read_text()


@pytest.mark.parametrize("image", ["alpine:3.23", "busybox", "docker.io/library/ubuntu:22.04", "python:3.12"])
async def test_image_without_command_runs_sh_and_exits(executor: LocalExecutor, image: str) -> None:
    result = await executor.run(spec("default", image=image))
    assert (result.exit_code, result.result, result.error) == (0, "", None)

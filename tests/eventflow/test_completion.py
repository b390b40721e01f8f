"""Shell completion generated from the parser: every command completes, in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from eventflow.cli import build_parser
from eventflow.cli.completion_cmd import command_tree
from tests.support.server_proc import REPO, eventflow_argv


def complete(script: str, line: str) -> list[str]:
    words = line.split(" ")
    probe = f"""{script}
COMP_WORDS=({" ".join(repr(w) for w in words)})
COMP_CWORD={len(words) - 1}
_eventflow
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    return [w for w in done.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_covers_every_command_and_flag() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(eventflow_argv("completion", "bash"), cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    tree = command_tree(build_parser())
    top = set(complete(script, "eventflow "))
    assert set(tree[()][0]) <= top and {"submit", "sensor", "token", "watch", "completion"} <= top
    assert complete(script, "eventflow tok") == ["token"]
    assert set(complete(script, "eventflow token ")) >= {"create", "list", "delete"}
    assert complete(script, "eventflow token create --ro") == ["--role"]
    assert "history" in complete(script, "eventflow sensor h")
    # Flags and their values in between do not confuse the command path.
    assert complete(script, "eventflow sensor --server x hi") == ["history"]


def test_unknown_shell_is_a_usage_error() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(eventflow_argv("completion", "fish"), cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice" in result.stderr

"""Shared helpers for the executor tests: spec builder, process inspection, capability probes."""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflows.executor import LocalExecutor, ProcessSpec
from workflows.executor.cgroups import detect_cgroups

GRACE = 0.5  # kill_grace_seconds used by the fixtures: short, but long enough to observe


def spec(
    node_id: str = "n1",
    *,
    image: str = "alpine:3.23",
    command: list[str] | None = None,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    working_dir: str | None = None,
    script_source: str | None = None,
    output_paths: tuple[str, ...] = (),
    memory_limit_bytes: int | None = None,
    cpu_limit: float | None = None,
    max_processes: int | None = 512,
) -> ProcessSpec:
    return ProcessSpec(
        node_id=node_id,
        image=image,
        command=command,
        args=args,
        env=env or {},
        working_dir=working_dir,
        script_source=script_source,
        output_paths=output_paths,
        memory_limit_bytes=memory_limit_bytes,
        cpu_limit=cpu_limit,
        max_processes=max_processes,
    )


def sh(node_id: str, script: str, **fields: Any) -> ProcessSpec:
    """A node running ``sh -c script``; ``fields`` are other ProcessSpec fields."""
    return dataclasses.replace(spec(node_id, command=["sh", "-c", script]), **fields)


def process_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (R, S, Z...), or None if it no longer exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting for its (new) parent to reap it."""
    return process_state(pid) in (None, "Z")


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


@functools.cache
def private_fs_available() -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        executor = LocalExecutor(Path(tmp))
        try:
            return executor.private_fs
        finally:
            executor.close()


@functools.cache
def cgroup_controllers() -> frozenset[str]:
    tree = detect_cgroups()
    if tree is None:
        return frozenset()
    try:
        return frozenset(tree.controllers)
    finally:
        tree.close()


def needs_private_fs() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not private_fs_available(), reason="private filesystems need Linux, root and overlayfs"
    )


def needs_cgroup(controller: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        controller not in cgroup_controllers(),
        reason=f"needs a writable cgroup with the {controller} controller",
    )


MODES = ["host", pytest.param("private", marks=needs_private_fs())]


def make_executor(work_dir: Path, mode: str, *, result_limit: int = 256 * 1024) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(
        work_dir, private_fs=mode == "private", kill_grace_seconds=GRACE, result_limit=result_limit
    )
    try:
        yield executor
    finally:
        executor.close()

"""Workflow tests: a real scheduler (SQLite store, LocalExecutor) per test, and a /dev/shm dir that
nodes and the test share."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.kubelet import KubeApi, kube_api
from tests.support.scheduler import running_scheduler
from workflows.scheduler import Scheduler


@pytest.fixture
async def scheduler(tmp_path: Path) -> AsyncIterator[Scheduler]:
    async with running_scheduler(tmp_path) as sched:
        yield sched


@pytest.fixture
def shm() -> Iterator[Path]:
    """/dev/shm is the same directory inside every node's private root and on the host."""
    path = Path("/dev/shm") / f"eventflow-test-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def api() -> AsyncIterator[KubeApi]:
    """kmock's KubernetesEmulator on a local port, with the fake kubelet (tests/support/kubelet.py)."""
    async with kube_api() as emulated:
        yield emulated

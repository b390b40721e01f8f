"""``argo retry``: a failed workflow runs again from its failed nodes; succeeded ones are kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventbus import JetStreamBus
from tests.support.poll import eventually
from tests.support.scheduler import running_scheduler
from tests.workflows.lifecycle.helpers import node, run, sh, workflow
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, WorkflowPhase


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _diamond(shm: Path) -> dict[str, Any]:
    """A -> B, A -> C; C fails until the test creates ``c-may-pass``; every task counts its runs."""
    dag = {
        "name": "main",
        "dag": {
            "tasks": [
                {"name": "A", "template": "a"},
                {"name": "B", "template": "b", "dependencies": ["A"]},
                {"name": "C", "template": "c", "dependencies": ["A"]},
            ]
        },
    }
    templates = [
        dag,
        sh("a", f"echo a >> {shm}/a.count"),
        sh("b", f"echo b >> {shm}/b.count"),
        sh("c", f"echo c >> {shm}/c.count; test -f {shm}/c-may-pass"),
    ]
    return {"entrypoint": "main", "templates": templates}


async def _published(scheduler: Scheduler) -> None:
    """Wait until the outbox has handed every committed lifecycle event to the bus."""

    async def empty() -> bool:
        return not await scheduler.store.pending_events()

    await eventually(empty, what="the lifecycle events to be published")


async def _fail_then_retry(scheduler: Scheduler, shm: Path, *, publish_first: bool) -> None:
    first, nodes, _ = await run(scheduler, workflow("retry-dag", _diamond(shm)))
    assert first.phase == WorkflowPhase.FAILED
    assert node(nodes, "retry-dag.C").phase == NodePhase.FAILED
    assert node(nodes, "retry-dag.B").phase == NodePhase.SUCCEEDED
    if publish_first:
        await _published(scheduler)

    (shm / "c-may-pass").touch()
    await scheduler.retry(first.namespace, first.name)
    final = await scheduler.wait_done(first.namespace, first.name, 30)
    _, nodes = await scheduler.get(first.namespace, first.name)

    assert final.phase == WorkflowPhase.SUCCEEDED
    assert final.message is None
    assert node(nodes, "retry-dag.C").phase == NodePhase.SUCCEEDED
    assert _lines(shm / "a.count") == ["a"]
    assert _lines(shm / "b.count") == ["b"]
    assert _lines(shm / "c.count") == ["c", "c"]


async def test_retry_reruns_only_the_failed_dag_branch(scheduler: Scheduler, shm: Path) -> None:
    await _fail_then_retry(scheduler, shm, publish_first=False)


@pytest.fixture
async def bus_scheduler(tmp_path: Path, bus: JetStreamBus) -> AsyncIterator[Scheduler]:
    async with running_scheduler(tmp_path, bus=bus) as sched:
        yield sched


@pytest.mark.nats
async def test_retry_with_published_events_reruns_only_the_failed_dag_branch(
    bus_scheduler: Scheduler, shm: Path
) -> None:
    await _fail_then_retry(bus_scheduler, shm, publish_first=True)


@pytest.mark.nats
async def test_retry_publishes_a_second_running_event(
    bus_scheduler: Scheduler, bus: JetStreamBus, shm: Path
) -> None:
    await _fail_then_retry(bus_scheduler, shm, publish_first=True)
    await _published(bus_scheduler)
    subject = bus.subjects.workflow("default", "retry-dag", "Running")
    info = await bus.js.stream_info(bus.subjects.workflows_stream, subjects_filter=subject)
    assert (info.state.subjects or {}).get(subject) == 2


@pytest.mark.nats
async def test_retry_runs_the_exit_handler_again_with_the_new_outcome(
    bus_scheduler: Scheduler, shm: Path
) -> None:
    spec = _diamond(shm)
    spec["onExit"] = "report"
    spec["templates"].append(sh("report", f'echo "{{{{workflow.status}}}}" >> {shm}/exit.log'))
    first, _, _ = await run(bus_scheduler, workflow("retry-exit", spec))
    assert first.phase == WorkflowPhase.FAILED
    assert _lines(shm / "exit.log") == ["Failed"]

    await _published(bus_scheduler)
    (shm / "c-may-pass").touch()
    await bus_scheduler.retry(first.namespace, first.name)
    final = await bus_scheduler.wait_done(first.namespace, first.name, 30)

    assert final.phase == WorkflowPhase.SUCCEEDED
    assert _lines(shm / "exit.log") == ["Failed", "Succeeded"]

"""ttlStrategy on a real scheduler: finished workflows are deleted when their time is up, restarts included."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.poll import eventually
from tests.support.scheduler import running_scheduler
from workflows.models import TTLStrategy, Workflow
from workflows.retention import ttl_seconds
from workflows.scheduler import Scheduler
from workflows.status import WorkflowPhase
from workflows.store import WorkflowRecord


def workflow(exit_code: int = 0, ttl: dict[str, int] | None = None) -> Workflow:
    spec: dict[str, Any] = {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "alpine", "command": ["sh", "-c", f"exit {exit_code}"]}}]}
    if ttl is not None:
        spec["ttlStrategy"] = ttl
    return Workflow.model_validate({"metadata": {"generateName": "ttl-"}, "spec": spec})


async def run(scheduler: Scheduler, wf: Workflow) -> WorkflowRecord:
    record = await scheduler.submit(wf)
    return await scheduler.wait_done(record.namespace, record.name, 30)


async def gone(scheduler: Scheduler, record: WorkflowRecord) -> bool:
    return await scheduler.store.get_workflow(record.namespace, record.name) is None


S = WorkflowPhase.SUCCEEDED
F = WorkflowPhase.FAILED
E = WorkflowPhase.ERROR


@pytest.mark.parametrize(
    ("own", "default", "phase", "expected"),
    [
        (None, None, S, None),
        ({"secondsAfterCompletion": 10}, None, S, 10),
        ({"secondsAfterCompletion": 10, "secondsAfterSuccess": 3}, None, S, 3),
        ({"secondsAfterCompletion": 10, "secondsAfterSuccess": 3}, None, F, 10),
        ({"secondsAfterFailure": 0}, None, E, 0),
        ({"secondsAfterFailure": 0}, None, S, None),
        (None, {"secondsAfterCompletion": 60}, F, 60),
        ({"secondsAfterSuccess": 5}, {"secondsAfterCompletion": 60}, S, 5),
        ({"secondsAfterSuccess": 5}, {"secondsAfterCompletion": 60}, F, 60),  # field by field
        ({"secondsAfterSuccess": 5}, {"secondsAfterFailure": 7}, F, 7),
    ],
)
def test_ttl_seconds_precedence(own: dict[str, int] | None, default: dict[str, int] | None, phase: WorkflowPhase, expected: int | None) -> None:
    parse = lambda d: TTLStrategy.model_validate(d) if d is not None else None  # noqa: E731
    assert ttl_seconds(parse(own), parse(default), phase) == expected


async def test_workflows_go_when_their_ttl_runs_out_and_not_before(tmp_path: Path) -> None:
    async with running_scheduler(tmp_path) as scheduler:
        quick = await run(scheduler, workflow(ttl={"secondsAfterSuccess": 1, "secondsAfterFailure": 0}))
        failed_now = await run(scheduler, workflow(exit_code=3, ttl={"secondsAfterSuccess": 1, "secondsAfterFailure": 0}))
        kept_failure = await run(scheduler, workflow(exit_code=3, ttl={"secondsAfterSuccess": 0}))
        kept = await run(scheduler, workflow())
        assert quick.phase == S and failed_now.phase == F and kept_failure.phase == F
        await eventually(lambda: gone(scheduler, failed_now), timeout=10, what="the failed workflow with secondsAfterFailure 0 gone")
        await eventually(lambda: gone(scheduler, quick), timeout=10, what="the succeeded workflow gone after 1 s")
        assert quick.finished_at is not None and time.time() >= quick.finished_at.timestamp() + 1 - 1  # stored in whole seconds
        events = [e.subject for e in await scheduler.store.pending_events()]  # no bus here: they wait in the outbox
        assert any(s.endswith(f"{quick.name}.Deleted") for s in events) and any(s.endswith(f"{failed_now.name}.Deleted") for s in events)
        assert not await gone(scheduler, kept_failure) and not await gone(scheduler, kept)
        # Counted once the deletion has also removed the workflow's files, a moment after its row.
        await eventually(lambda: scheduler.retention.deleted == 2, timeout=10, what="two deletions counted")
        assert not await gone(scheduler, kept_failure) and not await gone(scheduler, kept)


async def test_a_deadline_that_passed_while_stopped_is_kept_at_start(tmp_path: Path) -> None:
    async with running_scheduler(tmp_path) as scheduler:
        record = await run(scheduler, workflow(ttl={"secondsAfterCompletion": 2}))
        assert not await gone(scheduler, record)  # the server goes down before the deadline
    async with running_scheduler(tmp_path) as scheduler:
        await eventually(lambda: gone(scheduler, record), timeout=15, what="the workflow gone after a restart")


async def test_the_server_default_applies_to_workflows_without_their_own(tmp_path: Path) -> None:
    default = TTLStrategy.model_validate({"secondsAfterCompletion": 0})
    async with running_scheduler(tmp_path, default_ttl=default) as scheduler:
        plain = await run(scheduler, workflow())
        own = await run(scheduler, workflow(ttl={"secondsAfterCompletion": 3600}))
        await eventually(lambda: gone(scheduler, plain), timeout=10, what="the default TTL to delete the plain workflow")
        assert not await gone(scheduler, own)

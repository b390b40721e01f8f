"""Locks never outlive their holder: a terminated, deleted or failed holder hands its mutex to the next
waiter at once, a waiter that is terminated leaves the queue, and a step waiting out a retry backoff
holds nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.poll import eventually
from tests.workflows.lifecycle.helpers import IMAGE, workflow
from tests.workflows.sync.helpers import finish_all, span, spans, started
from workflows.models import Workflow
from workflows.scheduler import Scheduler, WorkflowNotFound
from workflows.status import WorkflowPhase

MUTEX = {"mutex": {"name": "m"}}
WAITING = "Waiting for default/Mutex/m lock"


def locked(name: str, level: str, template: dict[str, Any]) -> Workflow:
    """A workflow running ``template`` once, under mutex ``m`` at workflow or template level."""
    if level == "workflow":
        return workflow(
            name,
            {"entrypoint": "main", "synchronization": MUTEX, "templates": [{**template, "name": "main"}]},
        )
    step = {"name": "s", "template": "work"}
    work = {**template, "name": "work", "synchronization": MUTEX}
    return workflow(name, {"entrypoint": "main", "templates": [{"name": "main", "steps": [[step]]}, work]})


def script(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "container": {"image": IMAGE, "command": ["sh", "-c"], "args": [text]}}


def holder(shm: Path, *, fail: bool) -> dict[str, Any]:
    """Records its start; then fails after recording its end, or sleeps until stopped."""
    f = f"{shm}/{{{{workflow.name}}}}"
    rest = f'sleep 0.3; echo "end $(date +%s%N)" >> "{f}"; exit 1' if fail else "sleep 30"
    return script("main", f'echo "start $(date +%s%N)" >> "{f}"; {rest}')


async def waits(scheduler: Scheduler, name: str, level: str) -> None:
    async def check() -> bool:
        record, nodes = await scheduler.get("default", name)
        if level == "workflow":
            return record.phase == WorkflowPhase.PENDING and (record.message or "").startswith(WAITING)
        return any((n.message or "").startswith(WAITING) for n in nodes.values())

    await eventually(check, timeout=5, what=f"{name} waiting for mutex m")


def stamp(shm: Path, file: str, which: str) -> int:
    lines = dict(line.split() for line in (shm / file).read_text().splitlines())
    return int(lines[which])


def no_trace_of(scheduler: Scheduler, name: str) -> None:
    """Neither a holder nor a waiter of workflow ``name`` is left in any lock."""
    mine = f"default/{name}"
    for row in scheduler.sync.snapshot():
        for h in [*row["holders"], *row["waiting"]]:
            assert h != mine and not h.startswith(mine + "/"), row


@pytest.mark.parametrize("level", ["workflow", "template"])
@pytest.mark.parametrize("action", ["terminate", "delete", "fail"])
async def test_gone_holder_hands_the_mutex_to_the_next_waiter(
    scheduler: Scheduler, shm: Path, level: str, action: str
) -> None:
    await scheduler.submit(locked("holder", level, holder(shm, fail=action == "fail")))
    await started(shm, "holder")
    await scheduler.submit(locked("next", level, span("main", shm, "{{workflow.name}}", 0.2)))
    await waits(scheduler, "next", level)
    acted = time.time_ns()
    if action == "terminate":
        await scheduler.terminate("default", "holder")
    elif action == "delete":
        await scheduler.delete("default", "holder")
    await started(shm, "next")
    if action == "fail":
        acted = stamp(shm, "holder", "end")
    waited = (stamp(shm, "next", "start") - acted) / 1e9
    assert waited < 2, f"the waiter started {waited:.2f}s after the holder was gone"
    no_trace_of(scheduler, "holder")
    await finish_all(scheduler, ["next"])
    if action == "delete":
        with pytest.raises(WorkflowNotFound):
            await scheduler.get("default", "holder")
    else:
        final = await scheduler.wait_done("default", "holder", 5)
        assert final.phase in (WorkflowPhase.FAILED, WorkflowPhase.ERROR), final.phase
    assert scheduler.sync.snapshot() == []


@pytest.mark.parametrize("level", ["workflow", "template"])
async def test_terminated_waiter_fails_and_leaves_the_queue(
    scheduler: Scheduler, shm: Path, level: str
) -> None:
    await scheduler.submit(locked("holder", level, holder(shm, fail=False)))
    await started(shm, "holder")
    await scheduler.submit(locked("waiter", level, span("main", shm, "{{workflow.name}}", 0.2)))
    await waits(scheduler, "waiter", level)
    await scheduler.terminate("default", "waiter")
    final = await scheduler.wait_done("default", "waiter", 5)
    assert final.phase == WorkflowPhase.FAILED, final.message
    no_trace_of(scheduler, "waiter")
    [row] = scheduler.sync.snapshot()
    assert row["waiting"] == []
    assert len(row["holders"]) == 1 and row["holders"][0].startswith("default/holder"), row
    assert not (shm / "waiter").exists()
    # The holder ending afterwards wakes nobody that is gone, and leaves the lock empty.
    await scheduler.terminate("default", "holder")
    assert scheduler.sync.snapshot() == []


async def test_retry_backoff_does_not_hold_a_template_lock(scheduler: Scheduler, shm: Path) -> None:
    attempt = f"{shm}/r-{{{{retries}}}}"
    flaky = script(
        "work",
        f'echo "start $(date +%s%N)" >> "{attempt}"; sleep 0.3; echo "end $(date +%s%N)" >> "{attempt}"; test {{{{retries}}}} -ge 1',
    )
    flaky["retryStrategy"] = {"limit": 1, "backoff": {"duration": "2s"}}
    step = {"name": "s", "template": "work"}
    retried = workflow(
        "retried",
        {
            "entrypoint": "main",
            "templates": [{"name": "main", "steps": [[step]]}, {**flaky, "synchronization": MUTEX}],
        },
    )
    await scheduler.submit(retried)
    await started(shm, "r-0")
    await scheduler.submit(locked("other", "template", span("main", shm, "{{workflow.name}}", 0.3)))
    await finish_all(scheduler, ["retried", "other"])
    found = spans(shm)
    assert sorted(found) == ["other", "r-0", "r-1"]
    # The 2 s backoff counts from the attempt's finishedAt, which has Argo's one-second precision.
    assert found["r-1"][0] - found["r-0"][1] >= 1e9
    assert found["r-0"][1] < found["other"][0] and found["other"][1] < found["r-1"][0], found

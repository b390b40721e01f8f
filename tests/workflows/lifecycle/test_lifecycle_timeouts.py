"""Deadlines: a template's ``activeDeadlineSeconds`` and ``timeout``, and the workflow's
``spec.activeDeadlineSeconds``; a node past its deadline is stopped with everything it started."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.poll import eventually
from tests.workflows.lifecycle.helpers import (
    POD_DEADLINE,
    STEP_DEADLINE,
    assert_processes_gone,
    find,
    log_of,
    node,
    reporter,
    run,
    sh,
    sleeper,
    steps,
    workflow,
)
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, WorkflowPhase


@pytest.mark.parametrize(
    ("limit", "message"),
    [({"activeDeadlineSeconds": 2}, POD_DEADLINE), ({"timeout": "2s"}, STEP_DEADLINE)],
    ids=["activeDeadlineSeconds", "timeout"],
)
async def test_template_deadline_fails_node_and_kills_its_processes(
    scheduler: Scheduler, shm: Path, limit: dict[str, Any], message: str
) -> None:
    wf = workflow(
        "tmpl-deadline",
        {
            "entrypoint": "main",
            "templates": [steps([{"name": "slow", "template": "slow"}]), sleeper("slow", shm, **limit)],
        },
    )
    final, nodes, took = await run(scheduler, wf)

    slow = node(nodes, "tmpl-deadline[0].slow")
    assert slow.phase == NodePhase.FAILED
    assert slow.message == message
    assert final.phase == WorkflowPhase.FAILED
    assert took < 15, f"took {took:.1f}s: the 30 s sleep was not cut short"
    await assert_processes_gone(shm, "slow")


async def test_template_active_deadline_gives_the_pod_its_full_time(scheduler: Scheduler, shm: Path) -> None:
    # Submitted late in a wall-clock second, the walk's truncated clock lags the real start by ~0.8 s.
    await eventually(lambda: 0.75 <= time.time() % 1 <= 0.9, timeout=2, what="late in a second")
    # The pod times its own life: from its first command to the SIGTERM that stops it.
    clock = f"trap 'date +%s.%N > {shm}/end; exit 143' TERM; date +%s.%N > {shm}/start; sleep 30 & wait"
    wf = workflow(
        "full-deadline",
        {
            "entrypoint": "main",
            "templates": [
                steps([{"name": "slow", "template": "slow"}]),
                sh("slow", clock, activeDeadlineSeconds=2),
            ],
        },
    )
    _, nodes, _ = await run(scheduler, wf)

    assert node(nodes, "full-deadline[0].slow").message == POD_DEADLINE
    lived = float((shm / "end").read_text()) - float((shm / "start").read_text())
    assert lived >= 1.8, f"the pod was stopped after {lived:.2f}s, before its 2 s deadline"


def _deadline_workflow(shm: Path, **spec: Any) -> dict[str, Any]:
    main = steps([{"name": "slow", "template": "slow"}], [{"name": "later", "template": "later"}])
    return {
        "entrypoint": "main",
        "activeDeadlineSeconds": 2,
        "templates": [main, sleeper("slow", shm), sh("later", f"touch {shm}/later-ran"), reporter("report")],
        **spec,
    }


async def test_workflow_deadline_fails_running_pod_and_later_steps_never_run(
    scheduler: Scheduler, shm: Path
) -> None:
    final, nodes, took = await run(scheduler, workflow("wf-deadline", _deadline_workflow(shm)))

    assert final.phase == WorkflowPhase.FAILED
    assert took < 15
    slow = node(nodes, "wf-deadline[0].slow")
    assert slow.phase == NodePhase.FAILED
    assert slow.message == POD_DEADLINE
    later = find(nodes, "wf-deadline[1].later")
    assert later is None or (
        later.phase == NodePhase.FAILED and later.message == STEP_DEADLINE and later.log_path is None
    )
    assert not (shm / "later-ran").exists()
    await assert_processes_gone(shm, "slow")


async def test_workflow_deadline_still_runs_exit_handler(scheduler: Scheduler, shm: Path) -> None:
    final, nodes, _ = await run(
        scheduler, workflow("wf-deadline-exit", _deadline_workflow(shm, onExit="report"))
    )

    assert final.phase == WorkflowPhase.FAILED
    assert node(nodes, "wf-deadline-exit[0].slow").message == POD_DEADLINE
    handler = node(nodes, "wf-deadline-exit.onExit")
    assert handler.phase == NodePhase.SUCCEEDED
    assert log_of(handler).splitlines()[0] == "status=Failed"
    assert not (shm / "later-ran").exists()

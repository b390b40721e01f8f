"""``argo stop`` vs ``argo terminate``: both stop running pods and fail the workflow; only Stop runs
the exit handler."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.poll import eventually
from tests.workflows.lifecycle.helpers import (
    assert_processes_gone,
    find,
    log_of,
    node,
    reporter,
    running_node,
    sleeper,
    steps,
    workflow,
)
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, NodeType, WorkflowPhase


@pytest.mark.parametrize("strategy", ["Stop", "Terminate"])
async def test_shutdown_fails_running_pod_and_only_stop_runs_exit_handler(
    scheduler: Scheduler, shm: Path, strategy: str
) -> None:
    wf = workflow(
        "shutdown",
        {
            "entrypoint": "main",
            "onExit": "report",
            "templates": [
                steps([{"name": "slow", "template": "slow"}]),
                sleeper("slow", shm),
                reporter("report"),
            ],
        },
    )
    record = await scheduler.submit(wf)
    await running_node(scheduler, record.namespace, record.name, NodeType.POD)
    await eventually(lambda: (shm / "slow.sleep.pid").exists(), what="the pod to write its pids")

    await scheduler.terminate(record.namespace, record.name, strategy)
    final = await scheduler.wait_done(record.namespace, record.name, 20)
    _, nodes = await scheduler.get(record.namespace, record.name)

    message = f"Stopped with strategy '{strategy}'"
    assert final.phase == WorkflowPhase.FAILED
    assert final.message == message
    slow = node(nodes, "shutdown[0].slow")
    assert slow.phase == NodePhase.FAILED
    assert slow.message == message
    await assert_processes_gone(shm, "slow")
    handler = find(nodes, "shutdown.onExit")
    if strategy == "Stop":
        assert handler is not None and handler.phase == NodePhase.SUCCEEDED
        assert log_of(handler).splitlines()[0] == "status=Failed"
    else:
        assert handler is None

"""``spec.templateDefaults``: a default ``timeout`` applies to templates without their own."""

from __future__ import annotations

from pathlib import Path

from tests.workflows.lifecycle.helpers import (
    STEP_DEADLINE,
    assert_processes_gone,
    log_of,
    node,
    run,
    sh,
    sleeper,
    steps,
    workflow,
)
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, WorkflowPhase


async def test_template_defaults_timeout_applies_unless_template_sets_its_own(
    scheduler: Scheduler, shm: Path
) -> None:
    main = steps([{"name": "defaulted", "template": "slow"}, {"name": "own", "template": "own"}])
    own = sh("own", "sleep 3; echo done", timeout="30s")
    wf = workflow(
        "defaults",
        {
            "entrypoint": "main",
            "templateDefaults": {"timeout": "2s"},
            "templates": [main, sleeper("slow", shm), own],
        },
    )
    final, nodes, took = await run(scheduler, wf)

    defaulted = node(nodes, "defaults[0].defaulted")
    assert defaulted.phase == NodePhase.FAILED
    assert defaulted.message == STEP_DEADLINE
    own_node = node(nodes, "defaults[0].own")
    assert own_node.phase == NodePhase.SUCCEEDED
    assert log_of(own_node).strip() == "done"
    assert final.phase == WorkflowPhase.FAILED
    assert took < 15
    await assert_processes_gone(shm, "slow")

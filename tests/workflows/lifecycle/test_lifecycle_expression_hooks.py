"""Lifecycle hooks with expressions (``hooks.<name>.expression``): each runs once, as
``<node>.hooks.<name>``, when its expression first holds; the workflow waits for the ones that ran."""

from __future__ import annotations

from tests.workflows.lifecycle.helpers import find, log_of, node, run, sh, steps, workflow
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, WorkflowPhase

SAY = sh(
    "say", "sleep 0.3; echo hooked {{inputs.parameters.what}}", inputs={"parameters": [{"name": "what"}]}
)


def hook(expression: str, what: str) -> dict[str, object]:
    return {
        "expression": expression,
        "template": "say",
        "arguments": {"parameters": [{"name": "what", "value": what}]},
    }


async def test_workflow_running_hook_fires_once_and_is_waited_for(scheduler: Scheduler) -> None:
    wf = workflow(
        "wf-hooks",
        {
            "entrypoint": "main",
            "hooks": {
                "running": hook('workflow.status == "Running"', "running"),
                "never": hook('workflow.status == "Pending"', "never"),
            },
            "templates": [
                steps([{"name": "a", "template": "work"}], [{"name": "b", "template": "work"}]),
                sh("work", "sleep 0.2"),
                SAY,
            ],
        },
    )
    final, nodes, _ = await run(scheduler, wf)
    assert final.phase == WorkflowPhase.SUCCEEDED
    fired = node(nodes, "wf-hooks.hooks.running")
    assert fired.phase == NodePhase.SUCCEEDED and fired.hooked
    assert log_of(fired).strip() == "hooked running"
    assert find(nodes, "wf-hooks.hooks.never") is None
    assert [n.name for n in nodes.values() if ".hooks." in n.name] == ["wf-hooks.hooks.running"]  # once
    assert (
        final.finished_at is not None
        and fired.finished_at is not None
        and fired.finished_at <= final.finished_at
    )


async def test_step_running_and_success_hooks_fire_once_each(scheduler: Scheduler) -> None:
    step = {
        "name": "step-1",
        "template": "work",
        "hooks": {
            "running": hook('steps["step-1"].status == "Running"', "running"),
            "success": hook('steps["step-1"].status == "Succeeded"', "success"),
            "failure": hook('steps["step-1"].status == "Failed"', "failure"),
        },
    }
    wf = workflow(
        "step-hooks",
        {
            "entrypoint": "main",
            "templates": [
                steps([step], [{"name": "after", "template": "work"}]),
                sh("work", "sleep 0.5"),
                SAY,
            ],
        },
    )
    final, nodes, _ = await run(scheduler, wf)
    assert final.phase == WorkflowPhase.SUCCEEDED
    hooked = node(nodes, "step-hooks[0].step-1")
    running = node(nodes, "step-hooks[0].step-1.hooks.running")
    success = node(nodes, "step-hooks[0].step-1.hooks.success")
    assert find(nodes, "step-hooks[0].step-1.hooks.failure") is None
    assert {running.id, success.id} <= set(hooked.children)
    assert log_of(running).strip() == "hooked running" and log_of(success).strip() == "hooked success"
    after = node(nodes, "step-hooks[1].after")
    # The next group waits for the hooks that ran.
    assert (
        success.finished_at is not None
        and after.started_at is not None
        and success.finished_at <= after.started_at
    )

"""Exit hooks on steps and DAG tasks (``hooks.exit`` and the older ``onExit``): run as a child of the
hooked node with its outputs, and hold back what comes after it until they finish."""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflows.lifecycle.helpers import find, log_of, node, run, sh, steps, workflow
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, NodeStatus, WorkflowPhase

OUTPUT_P = {"outputs": {"parameters": [{"name": "p", "valueFrom": {"path": "/tmp/p"}}]}}
PRODUCER = sh("produce", "echo hello > /tmp/p", **OUTPUT_P)
# The hooks take a second so that whatever they hold back would visibly start before they end.
REPORT = sh("report", 'sleep 1; echo "got {{inputs.parameters.m}}"', inputs={"parameters": [{"name": "m"}]})
NOTIFY = sh("notify", "sleep 1; echo notified")
NEXT = sh("next", "echo next")


def exit_hook(ref: str) -> dict[str, Any]:
    """``hooks.exit`` calling ``report`` with ``m`` set from ``ref`` (a steps./tasks. reference)."""
    return {
        "hooks": {"exit": {"template": "report", "arguments": {"parameters": [{"name": "m", "value": ref}]}}}
    }


def assert_hook_of(hooked: NodeStatus, hook: NodeStatus) -> None:
    assert hook.display_name == f"{hooked.display_name}.onExit"
    assert hook.id in hooked.children
    assert hook.hooked
    assert hook.phase == NodePhase.SUCCEEDED


def assert_before(first: NodeStatus, then: NodeStatus) -> None:
    assert first.finished_at is not None and then.started_at is not None
    assert first.finished_at <= then.started_at, (
        f"{then.name} started {then.started_at}, {first.name} ended {first.finished_at}"
    )


async def test_step_exit_hook_gets_outputs_and_next_group_waits_for_it(scheduler: Scheduler) -> None:
    main = steps(
        [{"name": "A", "template": "produce", **exit_hook("{{steps.A.outputs.parameters.p}}")}],
        [{"name": "B", "template": "next"}],
    )
    wf = workflow("step-hook", {"entrypoint": "main", "templates": [main, PRODUCER, REPORT, NEXT]})
    final, nodes, _ = await run(scheduler, wf)

    assert final.phase == WorkflowPhase.SUCCEEDED
    hooked, hook, after = (
        node(nodes, "step-hook[0].A"),
        node(nodes, "step-hook[0].A.onExit"),
        node(nodes, "step-hook[1].B"),
    )
    assert_hook_of(hooked, hook)
    assert hook.inputs == {"parameters": [{"name": "m", "value": "hello"}]}
    assert log_of(hook).strip() == "got hello"
    assert after.phase == NodePhase.SUCCEEDED
    assert_before(hook, after)


async def test_deprecated_step_on_exit_runs_before_next_group(scheduler: Scheduler) -> None:
    main = steps([{"name": "A", "template": "next", "onExit": "notify"}], [{"name": "B", "template": "next"}])
    wf = workflow("step-onexit", {"entrypoint": "main", "templates": [main, NOTIFY, NEXT]})
    final, nodes, _ = await run(scheduler, wf)

    assert final.phase == WorkflowPhase.SUCCEEDED
    hooked, hook, after = (
        node(nodes, "step-onexit[0].A"),
        node(nodes, "step-onexit[0].A.onExit"),
        node(nodes, "step-onexit[1].B"),
    )
    assert_hook_of(hooked, hook)
    assert log_of(hook).strip() == "notified"
    assert_before(hook, after)


@pytest.mark.parametrize(
    ("hook_fields", "hook_stdout"),
    [({"onExit": "notify"}, "notified"), (exit_hook("{{tasks.A.outputs.parameters.p}}"), "got hello")],
    ids=["onExit", "hooks.exit"],
)
async def test_dag_task_exit_hook_runs_before_dependents(
    scheduler: Scheduler, hook_fields: dict[str, Any], hook_stdout: str
) -> None:
    dag = {
        "name": "main",
        "dag": {
            "tasks": [
                {"name": "A", "template": "produce", **hook_fields},
                {"name": "B", "template": "next", "dependencies": ["A"]},
            ]
        },
    }
    wf = workflow("dag-hook", {"entrypoint": "main", "templates": [dag, PRODUCER, REPORT, NOTIFY, NEXT]})
    final, nodes, _ = await run(scheduler, wf)

    assert final.phase == WorkflowPhase.SUCCEEDED
    hooked, hook, after = (
        node(nodes, "dag-hook.A"),
        node(nodes, "dag-hook.A.onExit"),
        node(nodes, "dag-hook.B"),
    )
    assert_hook_of(hooked, hook)
    assert log_of(hook).strip() == hook_stdout
    assert after.phase == NodePhase.SUCCEEDED
    assert_before(hook, after)


async def test_exit_hook_of_failed_step_runs_and_keeps_unresolved_reference(scheduler: Scheduler) -> None:
    failing = sh("failing", "exit 2", **OUTPUT_P)
    main = steps(
        [{"name": "A", "template": "failing", **exit_hook("{{steps.A.outputs.parameters.p}}")}],
        [{"name": "B", "template": "next"}],
    )
    wf = workflow("failed-hook", {"entrypoint": "main", "templates": [main, failing, REPORT, NEXT]})
    final, nodes, _ = await run(scheduler, wf)

    hooked, hook = node(nodes, "failed-hook[0].A"), node(nodes, "failed-hook[0].A.onExit")
    assert hooked.phase == NodePhase.FAILED
    assert_hook_of(hooked, hook)
    assert hook.inputs == {"parameters": [{"name": "m", "value": "{{steps.A.outputs.parameters.p}}"}]}
    assert log_of(hook).strip() == "got {{steps.A.outputs.parameters.p}}"
    assert find(nodes, "failed-hook[1].B") is None
    assert final.phase == WorkflowPhase.FAILED
    assert final.message == "Error (exit code 2)"

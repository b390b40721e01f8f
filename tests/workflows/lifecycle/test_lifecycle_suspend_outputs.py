"""Suspend templates with ``valueFrom.supplied`` outputs: set (``argo node set``), checked against the
input's enum, and resumed, with the input's default when nothing was supplied."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.poll import eventually
from tests.workflows.lifecycle.helpers import log_of, node, running_node, sh, steps, workflow
from workflows.scheduler import InvalidNodeUpdate, Scheduler
from workflows.status import NodePhase, NodeStatus, NodeType, WorkflowPhase
from workflows.store import WorkflowRecord

SUPPLIED = {"outputs": {"parameters": [{"name": "approve", "valueFrom": {"supplied": {}}}]}}
ASK = {
    "name": "ask",
    "suspend": {},
    "inputs": {"parameters": [{"name": "approve", "default": "NO", "enum": ["YES", "NO"]}]},
    **SUPPLIED,
}
ASK_NO_DEFAULT = {"name": "ask", "suspend": {}, **SUPPLIED}


def _is_approval(n: NodeStatus) -> bool:
    return n.display_name == "approval"


def _approval_workflow(name: str, ask: dict[str, Any]) -> dict[str, Any]:
    main = steps(
        [{"name": "approval", "template": "ask"}],
        [{"name": "act", "template": "act", "when": "{{steps.approval.outputs.parameters.approve}} == YES"}],
    )
    return {"entrypoint": "main", "templates": [main, ask, sh("act", "echo acted")]}


async def _suspended(scheduler: Scheduler, name: str, ask: dict[str, Any]) -> WorkflowRecord:
    record = await scheduler.submit(workflow(name, _approval_workflow(name, ask)))
    await running_node(scheduler, record.namespace, record.name, NodeType.SUSPEND)
    return record


async def _finish(
    scheduler: Scheduler, record: WorkflowRecord
) -> tuple[WorkflowRecord, dict[str, NodeStatus]]:
    final = await scheduler.wait_done(record.namespace, record.name, 20)
    _, nodes = await scheduler.get(record.namespace, record.name)
    return final, nodes


async def test_supplied_value_outside_enum_is_rejected_and_workflow_stays_suspended(
    scheduler: Scheduler,
) -> None:
    record = await _suspended(scheduler, "enum-check", ASK)

    with pytest.raises(InvalidNodeUpdate, match=r"'MAYBE' is not one of \[YES, NO\]"):
        await scheduler.set_node_outputs(
            record.namespace, record.name, node_filter=_is_approval, parameters={"approve": "MAYBE"}
        )

    current, nodes = await scheduler.get(record.namespace, record.name)
    assert current.phase == WorkflowPhase.RUNNING
    approval = node(nodes, "enum-check[0].approval")
    assert approval.phase == NodePhase.RUNNING
    assert approval.outputs is None or approval.outputs.parameter("approve") is None


async def test_supplied_yes_then_resume_runs_the_guarded_step(scheduler: Scheduler) -> None:
    record = await _suspended(scheduler, "approved", ASK)

    await scheduler.set_node_outputs(
        record.namespace, record.name, node_filter=_is_approval, parameters={"approve": "YES"}
    )
    await scheduler.resume(record.namespace, record.name)
    final, nodes = await _finish(scheduler, record)

    assert final.phase == WorkflowPhase.SUCCEEDED
    approval = node(nodes, "approved[0].approval")
    assert approval.phase == NodePhase.SUCCEEDED
    assert approval.outputs is not None and approval.outputs.parameter("approve") == "YES"
    act = node(nodes, "approved[1].act")
    assert act.phase == NodePhase.SUCCEEDED
    assert log_of(act).strip() == "acted"


async def test_resume_without_a_value_takes_the_input_default(scheduler: Scheduler) -> None:
    record = await _suspended(scheduler, "defaulted", ASK)

    await scheduler.resume(record.namespace, record.name)
    final, nodes = await _finish(scheduler, record)

    assert final.phase == WorkflowPhase.SUCCEEDED
    approval = node(nodes, "defaulted[0].approval")
    assert approval.outputs is not None and approval.outputs.parameter("approve") == "NO"
    assert node(nodes, "defaulted[1].act").phase == NodePhase.SKIPPED


async def test_resume_without_a_value_or_default_is_rejected_and_node_keeps_waiting(
    scheduler: Scheduler,
) -> None:
    record = await _suspended(scheduler, "no-default", ASK_NO_DEFAULT)

    with pytest.raises(InvalidNodeUpdate, match="has not been set and does not have a default value"):
        await scheduler.resume(record.namespace, record.name)

    current, nodes = await scheduler.get(record.namespace, record.name)
    assert current.phase == WorkflowPhase.RUNNING
    assert node(nodes, "no-default[0].approval").phase == NodePhase.RUNNING

    # Left as it was: supplying the value now lets the same workflow resume.
    await scheduler.set_node_outputs(
        record.namespace, record.name, node_filter=_is_approval, parameters={"approve": "YES"}
    )
    await scheduler.resume(record.namespace, record.name)
    final, nodes = await _finish(scheduler, record)
    assert final.phase == WorkflowPhase.SUCCEEDED
    assert node(nodes, "no-default[1].act").phase == NodePhase.SUCCEEDED


async def test_spec_suspend_starts_the_workflow_suspended_until_resumed(scheduler: Scheduler) -> None:
    spec = {"entrypoint": "main", "suspend": True, "templates": [sh("main", "echo ran")]}
    record = await scheduler.submit(workflow("starts-suspended", spec))
    # Walked and Running, but nothing started while it is suspended.
    async def walked() -> bool:
        got, _ = await scheduler.get(record.namespace, record.name)
        return got.phase == WorkflowPhase.RUNNING

    await eventually(walked, what="the workflow running, suspended")
    _, nodes = await scheduler.get(record.namespace, record.name)
    assert all(n.phase == NodePhase.PENDING for n in nodes.values())
    await scheduler.resume(record.namespace, record.name)
    final, nodes = await _finish(scheduler, record)
    assert final.phase == WorkflowPhase.SUCCEEDED
    assert "ran" in log_of(node(nodes, "starts-suspended"))

"""Workflow-level exit handlers: ``spec.onExit`` and ``spec.hooks.exit`` run after the entrypoint."""

from __future__ import annotations

import json

import pytest

from tests.workflows.lifecycle.helpers import log_of, node, reporter, run, sh, steps, workflow
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, WorkflowPhase

MISSING_OUTPUT = {"outputs": {"parameters": [{"name": "p", "valueFrom": {"path": "/tmp/never-written"}}]}}


@pytest.mark.parametrize(
    ("work", "phase", "message"),
    [
        (sh("work", "exit 0"), "Succeeded", None),
        (sh("work", "exit 3"), "Failed", "Error (exit code 3)"),
        (
            sh("work", "exit 0", **MISSING_OUTPUT),
            "Error",
            "open /tmp/never-written: no such file or directory",
        ),
    ],
    ids=["succeeded", "failed", "error"],
)
async def test_on_exit_handler_sees_root_outcome_and_workflow_keeps_it(
    scheduler: Scheduler, work: dict[str, object], phase: str, message: str | None
) -> None:
    wf = workflow(
        "exit-outcome",
        {
            "entrypoint": "main",
            "onExit": "report",
            "templates": [steps([{"name": "work", "template": "work"}]), work, reporter("report")],
        },
    )
    final, nodes, _ = await run(scheduler, wf)

    assert final.phase == WorkflowPhase(phase)
    assert final.message == message
    root, handler = node(nodes, "exit-outcome"), node(nodes, "exit-outcome.onExit")
    assert handler.display_name == "exit-outcome.onExit"
    assert handler.phase == NodePhase.SUCCEEDED
    assert (
        root.finished_at is not None
        and handler.started_at is not None
        and handler.started_at >= root.finished_at
    )
    status_line, failures_line = log_of(handler).splitlines()[:2]
    assert status_line == f"status={phase}"
    failures = json.loads(failures_line)
    if phase == "Succeeded":
        assert failures == []
    else:
        assert [(f["displayName"], f["phase"], f["message"]) for f in failures] == [("work", phase, message)]


async def test_spec_hooks_exit_runs_with_resolved_arguments(scheduler: Scheduler) -> None:
    bye = sh("bye", 'echo "bye {{inputs.parameters.s}}"', inputs={"parameters": [{"name": "s"}]})
    wf = workflow(
        "exit-hooks",
        {
            "entrypoint": "main",
            "hooks": {
                "exit": {
                    "template": "bye",
                    "arguments": {"parameters": [{"name": "s", "value": "{{workflow.status}}"}]},
                }
            },
            "templates": [steps([{"name": "work", "template": "work"}]), sh("work", "echo working"), bye],
        },
    )
    final, nodes, _ = await run(scheduler, wf)

    assert final.phase == WorkflowPhase.SUCCEEDED
    handler = node(nodes, "exit-hooks.onExit")
    assert handler.phase == NodePhase.SUCCEEDED
    assert handler.inputs == {"parameters": [{"name": "s", "value": "Succeeded"}]}
    assert log_of(handler).strip() == "bye Succeeded"


async def test_failing_exit_handler_fails_a_succeeded_workflow(scheduler: Scheduler) -> None:
    wf = workflow(
        "exit-fails",
        {
            "entrypoint": "main",
            "onExit": "broken",
            "templates": [
                steps([{"name": "work", "template": "work"}]),
                sh("work", "echo ok"),
                sh("broken", "exit 1"),
            ],
        },
    )
    final, nodes, _ = await run(scheduler, wf)

    assert node(nodes, "exit-fails").phase == NodePhase.SUCCEEDED
    assert node(nodes, "exit-fails.onExit").phase == NodePhase.FAILED
    assert final.phase == WorkflowPhase.FAILED
    assert final.message is not None and "exit code 1" in final.message


async def test_failed_root_keeps_its_message_when_exit_handler_also_fails(scheduler: Scheduler) -> None:
    wf = workflow(
        "exit-both-fail",
        {
            "entrypoint": "main",
            "onExit": "broken",
            "templates": [
                steps([{"name": "work", "template": "work"}]),
                sh("work", "exit 4"),
                sh("broken", "exit 1"),
            ],
        },
    )
    final, nodes, _ = await run(scheduler, wf)

    assert node(nodes, "exit-both-fail.onExit").phase == NodePhase.FAILED
    assert final.phase == WorkflowPhase.FAILED
    assert final.message == "Error (exit code 4)"

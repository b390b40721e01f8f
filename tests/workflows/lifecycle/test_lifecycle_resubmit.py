"""``resubmit --memoized``: a new workflow that does not run again the steps that succeeded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflows.lifecycle.helpers import node, run, sh, steps, workflow
from workflows.scheduler import Scheduler, WorkflowNotActive
from workflows.status import NodePhase, WorkflowPhase


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_memoized_resubmit_reruns_only_what_did_not_succeed(scheduler: Scheduler, shm: Path) -> None:
    wf = workflow(
        "memo-resubmit",
        {
            "entrypoint": "main",
            "templates": [
                steps([{"name": "a", "template": "a"}], [{"name": "b", "template": "b"}]),
                sh(
                    "a",
                    f"echo a >> {shm}/a.count; echo -n from-a > /tmp/o",
                    outputs={"parameters": [{"name": "o", "valueFrom": {"path": "/tmp/o"}}]},
                ),
                sh("b", f"echo b >> {shm}/b.count; test -e {shm}/pass"),
            ],
        },
    )
    first, _, _ = await run(scheduler, wf)
    assert first.phase == WorkflowPhase.FAILED
    (shm / "pass").touch()
    again = await scheduler.resubmit("default", "memo-resubmit", memoized=True)
    final = await scheduler.wait_done("default", again.name, 30)
    assert final.phase == WorkflowPhase.SUCCEEDED, final.message
    _, nodes = await scheduler.get("default", again.name)
    reused = node(nodes, f"{again.name}[0].a")
    assert (
        reused.phase == NodePhase.SUCCEEDED
        and reused.outputs is not None
        and reused.outputs.parameter("o") == "from-a"
    )
    assert _lines(shm / "a.count") == ["a"]  # not run again
    assert _lines(shm / "b.count") == ["b", "b"]
    assert again.labels["workflows.argoproj.io/resubmitted-from-workflow"] == "memo-resubmit"


async def test_plain_resubmit_runs_everything_and_memoized_needs_a_finished_workflow(
    scheduler: Scheduler, shm: Path
) -> None:
    wf = workflow(
        "plain",
        {
            "entrypoint": "main",
            "templates": [steps([{"name": "a", "template": "a"}]), sh("a", f"echo a >> {shm}/a.count")],
        },
    )
    await run(scheduler, wf)
    again = await scheduler.resubmit("default", "plain")
    assert (await scheduler.wait_done("default", again.name, 30)).phase == WorkflowPhase.SUCCEEDED
    assert _lines(shm / "a.count") == ["a", "a"]
    slow = workflow("slow", {"entrypoint": "main", "templates": [sh("main", "sleep 30")]})
    record = await scheduler.submit(slow)
    with pytest.raises(WorkflowNotActive, match="is (Pending|Running) and cannot be resubmitted with --memoized"):
        await scheduler.resubmit("default", record.name, memoized=True)
    await scheduler.terminate("default", record.name)

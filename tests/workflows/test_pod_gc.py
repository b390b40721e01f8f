"""podGC for local steps: a step's log, result and directory go when its strategy says, and every step's go
with a deleted workflow (no node directory outlives its workflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.poll import eventually
from tests.support.scheduler import running_scheduler
from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.status import NodeStatus


def workflow(pod_gc: dict[str, Any] | None, *, fail_b: bool = False) -> Workflow:
    def step(name: str, code: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
        tmpl: dict[str, Any] = {
            "name": name,
            "container": {"image": "alpine", "command": ["sh", "-c", f"echo {name}; exit {code}"]},
        }
        if labels:
            tmpl["metadata"] = {"labels": labels}
        return tmpl

    spec: dict[str, Any] = {
        "entrypoint": "main",
        "templates": [
            {
                "name": "main",
                "steps": [
                    [
                        {"name": "a", "template": "a"},
                        {"name": "b", "template": "b"},
                    ]
                ],
            },
            step("a", 0, {"gc": "yes"}),
            step("b", 1 if fail_b else 0),
        ],
    }
    if pod_gc is not None:
        spec["podGC"] = pod_gc
    return Workflow.model_validate({"metadata": {"generateName": "gc-"}, "spec": spec})


async def finished_pods(scheduler: Scheduler, wf: Workflow) -> tuple[str, dict[str, NodeStatus]]:
    record = await scheduler.submit(wf)
    done = await scheduler.wait_done(record.namespace, record.name, 30)
    _, nodes = await scheduler.get(done.namespace, done.name)
    return done.name, {n.display_name: n for n in nodes.values() if n.type.value == "Pod"}


def kept(node: NodeStatus) -> bool:
    """Whether anything of the step is left: its log, saved result or dir (all named by its id)."""
    assert node.log_path is not None
    return any(Path(node.log_path).parent.glob(f"{node.id}*"))


@pytest.fixture
async def scheduler(tmp_path: Path) -> Any:
    async with running_scheduler(tmp_path) as running:
        yield running


async def test_without_pod_gc_logs_stay_until_the_workflow_is_deleted(scheduler: Scheduler) -> None:
    name, pods = await finished_pods(scheduler, workflow(None))
    assert all(
        kept(p) and Path(p.log_path or "").read_text() == f"{p.display_name}\n"
        for p in pods.values()
    )
    await scheduler.delete("default", name)
    assert not any(kept(p) for p in pods.values())


@pytest.mark.parametrize(
    ("pod_gc", "fail_b", "removed"),
    [
        ({"strategy": "OnPodCompletion"}, True, {"a", "b"}),
        ({"strategy": "OnPodSuccess"}, True, {"a"}),
        ({"strategy": "OnWorkflowCompletion"}, True, {"a", "b"}),
        ({"strategy": "OnWorkflowSuccess"}, False, {"a", "b"}),
        ({"strategy": "OnWorkflowSuccess"}, True, set()),
        ({"strategy": "OnPodCompletion", "labelSelector": {"matchLabels": {"gc": "yes"}}}, False, {"a"}),
    ],
)
async def test_pod_gc_removes_what_its_strategy_says(
    scheduler: Scheduler, pod_gc: dict[str, Any], fail_b: bool, removed: set[str]
) -> None:
    _, pods = await finished_pods(scheduler, workflow(pod_gc, fail_b=fail_b))
    assert set(pods) == {"a", "b"}
    await eventually(
        lambda: {n for n, p in pods.items() if not kept(p)} == removed,
        what=f"exactly {removed} removed",
    )
    for name in {"a", "b"} - removed:  # kept with its log
        assert Path(pods[name].log_path or "").read_text() == f"{name}\n"


async def test_delete_delay_keeps_the_logs_for_a_while(scheduler: Scheduler) -> None:
    _, now_pods = await finished_pods(scheduler, workflow({"strategy": "OnPodCompletion"}))
    _, later_pods = await finished_pods(
        scheduler, workflow({"strategy": "OnPodCompletion", "deleteDelayDuration": "1h"})
    )
    await eventually(
        lambda: not any(kept(p) for p in now_pods.values()), what="undelayed logs removed"
    )
    # Removed after the undelayed ones, which finished earlier: the delayed ones are still there.
    assert all(kept(p) for p in later_pods.values())

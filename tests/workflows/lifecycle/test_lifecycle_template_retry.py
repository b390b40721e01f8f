"""retryStrategy on a steps or DAG template: the next attempt re-runs only what failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflows.lifecycle.helpers import node, run, sh, workflow
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, WorkflowPhase


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("kind", ["dag", "steps"])
async def test_retried_template_reruns_only_the_failed_child(
    scheduler: Scheduler, shm: Path, kind: str
) -> None:
    # b fails the first time it runs (and leaves a marker), then passes.
    b_script = f"echo b >> {shm}/b.count; test -e {shm}/seen && exit 0; touch {shm}/seen; exit 1"
    body = (
        {"dag": {"tasks": [{"name": "a", "template": "a"}, {"name": "b", "template": "b", "depends": "a"}]}}
        if kind == "dag"
        else {"steps": [[{"name": "a", "template": "a"}], [{"name": "b", "template": "b"}]]}
    )
    wf = workflow(
        f"retry-{kind}",
        {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "retryStrategy": {"limit": 2}, **body},
                sh(
                    "a",
                    f"echo a >> {shm}/a.count; echo -n A > /tmp/o",
                    outputs={"parameters": [{"name": "o", "valueFrom": {"path": "/tmp/o"}}]},
                ),
                sh("b", b_script),
            ],
        },
    )
    final, nodes, _ = await run(scheduler, wf)
    assert final.phase == WorkflowPhase.SUCCEEDED, final.message
    assert _lines(shm / "a.count") == ["a"]  # a succeeded in attempt 0 and was not run again
    assert _lines(shm / "b.count") == ["b", "b"]
    sep = "." if kind == "dag" else "[0]."
    reused = node(nodes, f"retry-{kind}(1){sep}a")
    first = node(nodes, f"retry-{kind}(0){sep}a")
    assert reused.phase == NodePhase.SUCCEEDED and reused.outputs == first.outputs
    assert node(nodes, f"retry-{kind}(0)").phase == NodePhase.FAILED


async def test_backoff_survives_a_restart_and_retries_once_on_time(tmp_path: Path, shm: Path) -> None:
    from tests.support.poll import eventually
    from tests.support.scheduler import running_scheduler

    script = f"echo x >> {shm}/x.count; test -e {shm}/seen && exit 0; touch {shm}/seen; exit 1"
    wf = workflow(
        "backoff",
        {
            "entrypoint": "main",
            "templates": [sh("main", script, retryStrategy={"limit": 2, "backoff": {"duration": "3"}})],
        },
    )
    async with running_scheduler(tmp_path) as first:
        await first.submit(wf)

        async def backing_off() -> bool:
            _, nodes = await first.get("default", "backoff")
            retry = nodes.get("backoff")
            return retry is not None and (retry.message or "").startswith("Backoff for")

        await eventually(backing_off, timeout=10, what="the retry to wait for its backoff")
    # The server is gone during the backoff; a new one takes over the same store.
    async with running_scheduler(tmp_path) as second:
        final = await second.wait_done("default", "backoff", 30)
        assert final.phase == WorkflowPhase.SUCCEEDED, final.message
        _, nodes = await second.get("default", "backoff")
    failed, passed = node(nodes, "backoff(0)"), node(nodes, "backoff(1)")
    assert failed.finished_at is not None and passed.started_at is not None
    waited = (passed.started_at - failed.finished_at).total_seconds()
    assert 2 <= waited <= 6, f"retried {waited}s after the failure, backoff is 3s"
    assert _lines(shm / "x.count") == ["x", "x"]  # once each: no extra attempt after the restart
    assert "backoff(2)" not in {n.name for n in nodes.values()}

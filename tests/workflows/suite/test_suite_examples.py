"""Argo's examples, run by the real scheduler, checked against SUITE.yaml (read directly)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.poll import eventually
from tests.support.scheduler import running_scheduler
from tests.workflows.suite.harness import (
    SUITE_FILE,
    Entry,
    check,
    load_fixtures,
    load_suite,
    unsupported,
    workflow_of,
)
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, NodeStatus

ENTRIES = load_suite()
RUNNABLE_TIERS = ("A", "B")


def _params() -> list[object]:
    if not ENTRIES:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"shared/ absent: {SUITE_FILE} not found"))]
    out = []
    for entry in ENTRIES:
        tier = entry.raw.get("tier")
        if tier not in RUNNABLE_TIERS:
            continue
        exp = entry.expect
        if exp.get("phase") == "LintError":
            continue  # covered by tests/workflows/models/test_lint_suite.py
        reason = unsupported(entry)
        marks = [pytest.mark.skip(reason=f"not yet: {reason}")] if reason else []
        if tier == "B":
            marks.append(pytest.mark.slow)
        # Some examples run for minutes by design (parallelism-nested-workflow: 4 x 30 s in turn).
        marks.append(pytest.mark.timeout(float(entry.raw.get("max_seconds") or 60) + 60))
        out.append(pytest.param(entry, id=entry.id, marks=marks))
    return out


@pytest.fixture
async def scheduler(tmp_path: Path) -> AsyncIterator[Scheduler]:
    async with running_scheduler(tmp_path) as sched:
        yield sched


@pytest.mark.parametrize("entry", _params())
async def test_suite_example_reaches_expected_outcome(entry: Entry, scheduler: Scheduler) -> None:
    await load_fixtures(scheduler.store, entry)
    attempts = 2 if entry.raw.get("random") and entry.raw.get("p_fail") else 1
    problems: list[str] = []
    for _ in range(attempts):
        record = await scheduler.submit(workflow_of(entry), file=entry.file)
        timeout = float(entry.raw.get("max_seconds") or 60)
        await drive(scheduler, entry, record.namespace, record.name, timeout)
        final = await scheduler.wait_done(record.namespace, record.name, timeout)
        assert final.phase.done, f"{entry.id}: still {final.phase.value} after {timeout:.0f}s"
        _, nodes = await scheduler.get(record.namespace, record.name)
        problems = check(entry, final, nodes)
        if not problems:
            break
        await scheduler.delete(record.namespace, record.name)
    assert not problems, f"{entry.id}:\n  " + "\n  ".join(problems)
    min_seconds = entry.raw.get("min_seconds")
    if min_seconds and final.started_at and final.finished_at:
        took = (final.finished_at - final.started_at).total_seconds()
        assert took >= float(min_seconds) - 1, f"{entry.id}: finished in {took:.1f}s, expected >= {min_seconds}s"


async def drive(scheduler: Scheduler, entry: Entry, namespace: str, name: str, timeout: float) -> None:
    """SUITE.yaml's drivers: ``stop`` once a pod runs; ``node-set:<node>.<param>=<value>`` then
    ``resume`` once a suspend node waits."""

    async def first(kind: str) -> NodeStatus | None:
        _, nodes = await scheduler.get(namespace, name)
        return next((n for n in nodes.values() if n.type.value == kind and n.phase == NodePhase.RUNNING), None)

    needs = entry.needs
    if "stop" in needs:
        async def pod_running() -> bool:
            return await first("Pod") is not None

        await eventually(pod_running, timeout=timeout, what="a running pod to stop")
        await scheduler.terminate(namespace, name, "Stop")
    if "resume" in needs:
        async def suspended() -> bool:
            return await first("Suspend") is not None

        await eventually(suspended, timeout=timeout, what="a suspend node to resume")
        for need in needs:
            if need.startswith("node-set:"):
                target, _, value = need.split(":", 1)[1].partition("=")
                node_name, _, param = target.partition(".")
                await scheduler.set_node_outputs(
                    namespace, name, node_filter=lambda n, d=node_name: n.display_name == d, parameters={param: value}
                )
        await scheduler.resume(namespace, name)

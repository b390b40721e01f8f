"""Concurrency caps with real workflows. Every step appends ``start <epoch ns>`` and ``end <epoch ns>``
to its own file in the shared /dev/shm dir; overlaps are computed from those timestamps (what really ran
at once), never from node status, and each cap must be reached as well as respected."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.poll import eventually
from tests.workflows.lifecycle.helpers import run, workflow
from tests.workflows.sync.helpers import (
    assert_cap_reached_and_kept,
    call,
    cm_semaphore,
    config_map,
    finish_all,
    inputs,
    max_overlap,
    one_step,
    overlap,
    span,
    spans,
    started,
)
from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, WorkflowPhase
from workflows.sync import POSTPONED_MESSAGE


async def test_namespace_parallelism_runs_two_and_postpones_the_rest(scheduler: Scheduler, shm: Path) -> None:
    scheduler.configure_caps(0, 2, {})
    names = [f"np-{i}" for i in range(6)]
    for name in names:
        await scheduler.submit(one_step(name, shm, 0.8))

    async def four_postponed() -> bool:
        records = [(await scheduler.get("default", n))[0] for n in names]
        waiting = [r for r in records if r.phase == WorkflowPhase.PENDING and r.message == POSTPONED_MESSAGE]
        return len(waiting) == 4

    await eventually(four_postponed, timeout=5, what="four workflows postponed")
    await finish_all(scheduler, names)
    assert_cap_reached_and_kept(list(spans(shm).values()), 2)
    for name in names:
        record, _ = await scheduler.get("default", name)
        assert record.message != POSTPONED_MESSAGE


async def test_namespace_parallelism_starts_postponed_workflows_by_priority(
    scheduler: Scheduler, shm: Path
) -> None:
    scheduler.configure_caps(0, 2, {})
    for name in ["first-a", "first-b"]:
        await scheduler.submit(one_step(name, shm, 0.6))
    await started(shm, "first-a")
    await started(shm, "first-b")
    priorities = {"p1": 1, "p3": 3, "p2": 2, "p4": 4}
    for name, priority in priorities.items():
        await scheduler.submit(one_step(name, shm, 0.6, priority=priority))
    await finish_all(scheduler, ["first-a", "first-b", *priorities])
    found = spans(shm)
    order = sorted(priorities, key=lambda n: found[n][0])
    assert set(order[:2]) == {"p4", "p3"} and set(order[2:]) == {"p2", "p1"}, order
    assert_cap_reached_and_kept(list(found.values()), 2)


async def test_spec_parallelism_caps_a_fan_out(scheduler: Scheduler, shm: Path) -> None:
    fan_out = call("w", "work", {"i": "{{item}}"}, withSequence={"count": "12"})
    wf = workflow(
        "fan",
        {
            "entrypoint": "main",
            "parallelism": 3,
            "templates": [
                {"name": "main", "steps": [[fan_out]]},
                span("work", shm, "{{inputs.parameters.i}}", 0.4, **inputs("i")),
            ],
        },
    )
    final, _, _ = await run(scheduler, wf, timeout=10)
    assert final.phase == WorkflowPhase.SUCCEEDED, final.message
    found = spans(shm)
    assert len(found) == 12
    assert_cap_reached_and_kept(list(found.values()), 3)


async def test_nested_template_parallelism_bounds_the_whole_tree(scheduler: Scheduler, shm: Path) -> None:
    outer = call("o", "inner", {"outer": "{{item}}"}, withItems=["x", "y", "z"])
    inner = call(
        "i", "work", {"outer": "{{inputs.parameters.outer}}", "inner": "{{item}}"}, withItems=[1, 2, 3]
    )
    wf = workflow(
        "nested",
        {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "parallelism": 2, "steps": [[outer]]},
                {"name": "inner", "parallelism": 1, "steps": [[inner]], **inputs("outer")},
                span(
                    "work",
                    shm,
                    "{{inputs.parameters.outer}}-{{inputs.parameters.inner}}",
                    0.3,
                    **inputs("outer", "inner"),
                ),
            ],
        },
    )
    final, _, _ = await run(scheduler, wf, timeout=10)
    assert final.phase == WorkflowPhase.SUCCEEDED, final.message
    found = spans(shm)
    assert len(found) == 9
    assert_cap_reached_and_kept(list(found.values()), 2)
    for key in "xyz":  # one inner invocation runs its children one at a time
        assert max_overlap([v for k, v in found.items() if k.startswith(f"{key}-")]) == 1


# -- semaphores and mutexes -------------------------------------------------------------------

SEM_WF = "default/ConfigMap/my-config/workflow"
SEM_TMPL = "default/ConfigMap/my-config/template"


async def test_configmap_semaphore_caps_workflows(scheduler: Scheduler, shm: Path) -> None:
    await scheduler.store.put_resource(config_map({"workflow": "2"}))
    names = [f"sem-{i}" for i in range(5)]
    for name in names:
        await scheduler.submit(one_step(name, shm, 0.6, synchronization=cm_semaphore("workflow")))

    async def one_waits() -> bool:
        for name in names:
            record, _ = await scheduler.get("default", name)
            sync = record.status.get("synchronization") or {}
            if record.phase == WorkflowPhase.PENDING and sync.get("semaphore", {}).get("waiting"):
                assert (record.message or "").startswith(f"Waiting for {SEM_WF} lock. Lock status: 0/2")
                assert sync["semaphore"]["waiting"][0]["semaphore"] == SEM_WF
                return True
        return False

    await eventually(one_waits, timeout=5, what="a workflow waiting for the semaphore")
    await finish_all(scheduler, names)
    found = spans(shm)
    assert len(found) == 5
    assert_cap_reached_and_kept(list(found.values()), 2)
    for name in names:
        record, _ = await scheduler.get("default", name)
        assert "synchronization" not in record.status, record.status
    assert scheduler.sync.snapshot() == []


async def test_configmap_semaphore_caps_a_template_fan_out(scheduler: Scheduler, shm: Path) -> None:
    await scheduler.store.put_resource(config_map({"template": "2"}))
    fan_out = call("w", "work", {"i": "{{item}}"}, withSequence={"count": "6"})
    work = span(
        "work", shm, "{{inputs.parameters.i}}", 0.6, **inputs("i"), synchronization=cm_semaphore("template")
    )
    record = await scheduler.submit(
        workflow("tsem", {"entrypoint": "main", "templates": [{"name": "main", "steps": [[fan_out]]}, work]})
    )

    async def a_node_waits() -> bool:
        _, nodes = await scheduler.get("default", record.name)
        waiting = [n for n in nodes.values() if (n.message or "").startswith(f"Waiting for {SEM_TMPL} lock.")]
        if waiting:
            assert waiting[0].phase == NodePhase.PENDING
            assert waiting[0].message == f"Waiting for {SEM_TMPL} lock. Lock status: 0/2"
            assert waiting[0].synchronization_status == {"waiting": SEM_TMPL}
        return bool(waiting)

    await eventually(a_node_waits, timeout=5, what="a node waiting for the semaphore")
    await finish_all(scheduler, [record.name])
    found = spans(shm)
    assert len(found) == 6
    assert_cap_reached_and_kept(list(found.values()), 2)


@pytest.mark.parametrize("level", ["workflow", "template"])
async def test_mutex_shared_by_two_workflows_never_overlaps(
    scheduler: Scheduler, shm: Path, level: str
) -> None:
    mutex = {"mutex": {"name": "shared"}}
    names = ["mx-a", "mx-b"]
    for name in names:
        if level == "workflow":
            wf = one_step(name, shm, 0.5, synchronization=mutex)
        else:
            two = call("w", "work", {"i": "{{item}}"}, withItems=[1, 2])
            work = span(
                "work",
                shm,
                "{{workflow.name}}-{{inputs.parameters.i}}",
                0.5,
                **inputs("i"),
                synchronization=mutex,
            )
            wf = workflow(
                name, {"entrypoint": "main", "templates": [{"name": "main", "steps": [[two]]}, work]}
            )
        await scheduler.submit(wf)
    await finish_all(scheduler, names)
    found = spans(shm)
    assert len(found) == (2 if level == "workflow" else 4)
    assert_cap_reached_and_kept(list(found.values()), 1)


async def test_two_mutexes_are_taken_all_or_nothing(scheduler: Scheduler, shm: Path) -> None:
    m1, m2 = {"name": "m1"}, {"name": "m2"}
    await scheduler.submit(one_step("a", shm, 1.5, synchronization={"mutexes": [m1]}))
    await started(shm, "a")
    await scheduler.submit(one_step("b", shm, 0.3, synchronization={"mutexes": [m1, m2]}))

    async def b_waits_for_m1() -> bool:
        record, _ = await scheduler.get("default", "b")
        return (record.message or "").startswith("Waiting for default/Mutex/m1 lock")

    await eventually(b_waits_for_m1, timeout=5, what="b waiting for m1")
    record, _ = await scheduler.get("default", "b")
    assert "holding" not in record.status.get("synchronization", {}).get("mutex", {}), record.status
    assert all("default/b" not in row["holders"] for row in scheduler.sync.snapshot())
    await scheduler.submit(one_step("c", shm, 0.3, synchronization={"mutexes": [m2]}))
    await finish_all(scheduler, ["a", "b", "c"])
    found = spans(shm)
    assert not overlap(found["a"], found["b"])  # m1
    assert not overlap(found["b"], found["c"])  # m2
    # b held neither lock while it waited, but kept its place in m2's queue (Argo's rule): c, newer,
    # ran after b rather than starving it.
    assert found["b"][1] <= found["c"][0]


async def test_templated_mutex_name_excludes_per_key(scheduler: Scheduler, shm: Path) -> None:
    items = [{"key": k, "n": str(i)} for i, k in enumerate("aabb")]
    fan_out = call("w", "work", {"key": "{{item.key}}", "n": "{{item.n}}"}, withItems=items)
    work = span(
        "work", shm, "{{inputs.parameters.key}}{{inputs.parameters.n}}", 0.5, **inputs("key", "n"),
        synchronization={"mutex": {"name": "lock-{{inputs.parameters.key}}"}},
    )  # fmt: skip
    final, _, _ = await run(
        scheduler,
        workflow("keys", {"entrypoint": "main", "templates": [{"name": "main", "steps": [[fan_out]]}, work]}),
        timeout=10,
    )
    assert final.phase == WorkflowPhase.SUCCEEDED, final.message
    found = spans(shm)
    assert sorted(found) == ["a0", "a1", "b2", "b3"]
    assert not overlap(found["a0"], found["a1"])
    assert not overlap(found["b2"], found["b3"])
    assert any(overlap(found[a], found[b]) for a in ["a0", "a1"] for b in ["b2", "b3"])
    assert max_overlap(list(found.values())) == 2


# -- limits -----------------------------------------------------------------------------------


def _semaphore_workflow(name: str, level: str, shm: Path, config: str = "my-config") -> Workflow:
    """One short step under the semaphore ``<config>/workflow``, taken at workflow or template level."""
    sync = cm_semaphore("workflow", config)
    if level == "workflow":
        return one_step(name, shm, 0.1, synchronization=sync)
    step = {"name": "w", "template": "work"}
    work = span("work", shm, "{{workflow.name}}", 0.1, synchronization=sync)
    return workflow(name, {"entrypoint": "main", "templates": [{"name": "main", "steps": [[step]]}, work]})


@pytest.mark.parametrize("level", ["workflow", "template"])
async def test_semaphore_with_missing_configmap_errors(scheduler: Scheduler, shm: Path, level: str) -> None:
    final, _, _ = await run(scheduler, _semaphore_workflow("nocm", level, shm, config="absent"), timeout=10)
    assert final.phase == WorkflowPhase.ERROR
    assert 'ConfigMap "absent"' in (final.message or ""), final.message
    assert not list(shm.iterdir())  # nothing ran
    assert scheduler.sync.snapshot() == []


@pytest.mark.parametrize("level", ["workflow", "template"])
async def test_semaphore_limit_of_zero_errors(scheduler: Scheduler, shm: Path, level: str) -> None:
    await scheduler.store.put_resource(config_map({"workflow": "0"}))
    final, _, _ = await run(scheduler, _semaphore_workflow("zero", level, shm), timeout=10)
    assert final.phase == WorkflowPhase.ERROR
    assert SEM_WF in (final.message or "") and "got 0" in (final.message or ""), final.message
    assert not list(shm.iterdir())
    assert scheduler.sync.snapshot() == []


async def test_raising_a_configmap_limit_at_run_time_admits_more(scheduler: Scheduler, shm: Path) -> None:
    await scheduler.store.put_resource(config_map({"template": "1"}))
    fan_out = call("w", "work", {"i": "{{item}}"}, withSequence={"count": "6"})
    work = span(
        "work", shm, "{{inputs.parameters.i}}", 1.0, **inputs("i"), synchronization=cm_semaphore("template")
    )
    record = await scheduler.submit(
        workflow("grow", {"entrypoint": "main", "templates": [{"name": "main", "steps": [[fan_out]]}, work]})
    )
    await eventually(lambda: any(shm.iterdir()), timeout=10, what="the first step to start")
    changed = time.time_ns()
    await scheduler.store.put_resource(config_map({"template": "3"}))
    await scheduler.refresh_limits()
    await finish_all(scheduler, [record.name])
    found = spans(shm)
    assert len(found) == 6
    assert sum(1 for s, _ in found.values() if s < changed) == 1
    assert max_overlap(list(found.values())) == 3

"""Building blocks of the synchronization tests: steps that record their start and end (epoch ns) in a
/dev/shm file, and the overlap arithmetic over those records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.poll import eventually
from tests.workflows.lifecycle.helpers import IMAGE, workflow
from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.status import WorkflowPhase
from workflows.store import ResourceRecord

Span = tuple[int, int]


def span(name: str, shm: Path, file: str, seconds: float, **fields: Any) -> dict[str, Any]:
    """A container template that writes its start and end (epoch ns) to ``shm/<file>`` around a sleep;
    ``file`` may hold ``{{...}}`` (one file per step)."""
    script = f'f="{shm}/{file}"; echo "start $(date +%s%N)" >> "$f"; sleep {seconds}; echo "end $(date +%s%N)" >> "$f"'
    return {"name": name, "container": {"image": IMAGE, "command": ["sh", "-c"], "args": [script]}, **fields}


def spans(shm: Path) -> dict[str, Span]:
    """Each step file's (start, end), by file name."""
    out: dict[str, Span] = {}
    for path in shm.iterdir():
        stamps = dict(line.split() for line in path.read_text().splitlines())
        assert set(stamps) == {"start", "end"}, f"{path.name}: {path.read_text()!r}"
        out[path.name] = (int(stamps["start"]), int(stamps["end"]))
    return out


def max_overlap(intervals: list[Span]) -> int:
    """Most intervals open at one instant (one that ends as another starts does not count)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def idle_slot_seconds(intervals: list[Span], cap: int) -> float:
    """Slot-seconds left unused while some step had yet to start (from the first start to the last):
    about one hand-over latency per step when a freed slot goes straight to a waiter."""
    first, last = min(s for s, _ in intervals), max(s for s, _ in intervals)
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    idle = running = 0
    previous = first
    for at, delta in events:
        if at > last:
            break
        if at > previous:
            idle += (cap - running) * (at - previous)
            previous = at
        running += delta
    return idle / 1e9


def assert_cap_reached_and_kept(intervals: list[Span], cap: int) -> None:
    """At most ``cap`` at once, ``cap`` reached, and a freed slot goes to a waiting step at once (under
    0.2 s of idle slot per hand-over; a slot that stays free until another step ends costs a whole step)."""
    assert max_overlap(intervals) == cap
    handovers = len(intervals) - cap
    idle = idle_slot_seconds(intervals, cap)
    t0 = min(s for s, _ in intervals)
    seen = sorted(f"{(s - t0) / 1e9:.2f}-{(e - t0) / 1e9:.2f}" for s, e in intervals)
    assert idle < 0.2 * max(handovers, 1), (
        f"{idle:.2f} slot-seconds idle over {handovers} hand-overs; spans (s): {seen}"
    )


def overlap(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def one_step(name: str, shm: Path, seconds: float, **spec: Any) -> Workflow:
    """A workflow of a single step that records its span in ``shm/<workflow name>``."""
    return workflow(
        name, {"entrypoint": "main", "templates": [span("main", shm, "{{workflow.name}}", seconds)], **spec}
    )


def config_map(data: dict[str, str], name: str = "my-config") -> ResourceRecord:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    return ResourceRecord(kind="ConfigMap", namespace="default", name=name, manifest=manifest)


def cm_semaphore(key: str, name: str = "my-config") -> dict[str, Any]:
    return {"semaphore": {"configMapKeyRef": {"name": name, "key": key}}}


def call(name: str, template: str, params: dict[str, str], **loop: Any) -> dict[str, Any]:
    """A step calling ``template`` with ``params`` (``loop``: withItems/withSequence)."""
    arguments = {"parameters": [{"name": k, "value": v} for k, v in params.items()]}
    return {"name": name, "template": template, "arguments": arguments, **loop}


def inputs(*names: str) -> dict[str, Any]:
    return {"inputs": {"parameters": [{"name": n} for n in names]}}


async def started(shm: Path, file: str) -> None:
    await eventually(lambda: (shm / file).exists(), timeout=10, what=f"{file} to start")


async def finish_all(scheduler: Scheduler, names: list[str], timeout: float = 10) -> None:
    for name in names:
        final = await scheduler.wait_done("default", name, timeout)
        assert final.phase == WorkflowPhase.SUCCEEDED, f"{name}: {final.phase.value} {final.message}"


# -- server-wide caps -------------------------------------------------------------------------

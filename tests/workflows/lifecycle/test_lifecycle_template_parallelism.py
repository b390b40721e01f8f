"""template.parallelism: at most N children of one steps/DAG invocation run at once; with failFast
nothing new starts after a failure and the template fails with Argo's message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflows.lifecycle.helpers import run, sh, workflow
from workflows.operator.walker import FAIL_FAST_MESSAGE
from workflows.scheduler import Scheduler
from workflows.status import WorkflowPhase


def _max_overlap(shm: Path) -> int:
    """Most intervals (start, end) written by the steps that overlap at one instant."""
    events = []
    for line in (shm / "spans").read_text().splitlines():
        start, end = map(float, line.split())
        events += [(start, 1), (end, -1)]
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    return peak


SPAN = sh("work", 's=$(date +%s.%N); sleep 0.4; echo "$s $(date +%s.%N)" >> {spans}')


@pytest.mark.parametrize("kind", ["steps", "dag"])
async def test_parallelism_caps_running_children(scheduler: Scheduler, shm: Path, kind: str) -> None:
    span = {
        **SPAN,
        "container": {
            **SPAN["container"],
            "args": [SPAN["container"]["args"][0].format(spans=shm / "spans")],
        },
    }
    items = {"withItems": [1, 2, 3, 4, 5, 6]}
    body = (
        {"steps": [[{"name": "w", "template": "work", **items}]]}
        if kind == "steps"
        else {"dag": {"tasks": [{"name": f"t{i}", "template": "work"} for i in range(6)]}}
    )
    wf = workflow(
        f"cap-{kind}", {"entrypoint": "main", "templates": [{"name": "main", "parallelism": 2, **body}, span]}
    )
    final, _, _ = await run(scheduler, wf)
    assert final.phase == WorkflowPhase.SUCCEEDED, final.message
    assert len((shm / "spans").read_text().splitlines()) == 6
    assert _max_overlap(shm) == 2


async def test_fail_fast_stops_starting_children_after_a_failure(scheduler: Scheduler, shm: Path) -> None:
    work = sh(
        "work",
        f'echo "{{{{inputs.parameters.n}}}}" >> {shm}/ran; test {{{{inputs.parameters.n}}}} != 1',
        inputs={"parameters": [{"name": "n"}]},
    )
    step = {
        "name": "w",
        "template": "work",
        "arguments": {"parameters": [{"name": "n", "value": "{{item}}"}]},
        "withItems": [1, 2, 3, 4, 5],
    }
    wf = workflow(
        "ff",
        {
            "entrypoint": "main",
            "templates": [{"name": "main", "parallelism": 1, "failFast": True, "steps": [[step]]}, work],
        },
    )
    final, _, _ = await run(scheduler, wf)
    assert final.phase == WorkflowPhase.FAILED
    assert final.message == FAIL_FAST_MESSAGE
    assert (shm / "ran").read_text().split() == ["1"]  # one at a time, and none after the failure

"""Artifact cost, in one run on this machine.

    python bench/artifacts.py

A 20-step chain where each step reads its predecessor's output and writes its own, passed (a) as an
output parameter (the baseline: no artifact machinery) and (b) as a file artifact through the local
repository (tar+gzip, the default), plus (c) a 20 MiB file artifact through the same path. Prints
the extra time per step that artifacts cost and the ratio to the baseline.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.scheduler import running_scheduler  # noqa: E402  (the same set-up the tests use)
from workflows.models import Workflow  # noqa: E402
from workflows.scheduler import Scheduler  # noqa: E402

STEPS = 20


def chain(kind: str, size_mib: int = 0) -> Workflow:
    write = f"head -c {size_mib}M /dev/zero > /tmp/out" if size_mib else "echo x >> /tmp/out"
    if kind == "parameter":
        step_args = lambda i: {"parameters": [{"name": "in", "value": f"{{{{steps.s{i - 1}.outputs.parameters.out}}}}"}]}  # noqa: E731
        tmpl = {
            "name": "t", "inputs": {"parameters": [{"name": "in", "default": ""}]},
            "container": {"image": "alpine", "command": ["sh", "-c", f"echo '{{{{inputs.parameters.in}}}}' > /tmp/out; {write}"]},
            "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out"}}]},
        }  # fmt: skip
    else:
        step_args = lambda i: {"artifacts": [{"name": "in", "from": f"{{{{steps.s{i - 1}.outputs.artifacts.out}}}}"}]}  # noqa: E731
        tmpl = {
            "name": "t", "inputs": {"artifacts": [{"name": "in", "path": "/tmp/in", "optional": True}]},
            "container": {"image": "alpine", "command": ["sh", "-c", f"cat /tmp/in > /tmp/out 2>/dev/null; {write}"]},
            "outputs": {"artifacts": [{"name": "out", "path": "/tmp/out"}]},
        }  # fmt: skip
    steps = [[{"name": "s0", "template": "t"}]] + [
        [{"name": f"s{i}", "template": "t", "arguments": step_args(i)}] for i in range(1, STEPS)
    ]
    return Workflow.model_validate(
        {"metadata": {"generateName": f"{kind}-"}, "spec": {"entrypoint": "main", "templates": [{"name": "main", "steps": steps}, tmpl]}}
    )


async def timed(scheduler: Scheduler, wf: Workflow) -> float:
    start = time.perf_counter()
    record = await scheduler.submit(wf)
    final = await scheduler.wait_done(record.namespace, record.name, 600)
    assert final.phase.value == "Succeeded", final.message
    return time.perf_counter() - start


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_scheduler(Path(tmp)) as scheduler:
            await timed(scheduler, chain("parameter"))  # warm-up: roots mounted, caches filled
            rounds: dict[str, list[float]] = {"parameter": [], "artifact": [], "artifact-20MiB": []}
            for _ in range(5):
                rounds["parameter"].append(await timed(scheduler, chain("parameter")))
                rounds["artifact"].append(await timed(scheduler, chain("artifact")))
            for _ in range(2):
                rounds["artifact-20MiB"].append(await timed(scheduler, chain("artifact", 20)))
    med: dict[str, Any] = {k: statistics.median(v) for k, v in rounds.items()}
    base, art, big = med["parameter"], med["artifact"], med["artifact-20MiB"]
    print(f"{STEPS}-step chain, median of {len(rounds['parameter'])} rounds")
    print(f"  (a) output parameter (baseline): {base * 1000 / STEPS:7.2f} ms/step")
    print(f"  (b) file artifact:               {art * 1000 / STEPS:7.2f} ms/step  (+{(art - base) * 1000 / STEPS:.2f} ms/step, ratio {art / base:.2f})")
    print(f"  (c) 20 MiB file artifact:        {big * 1000 / STEPS:7.2f} ms/step  ({20 * STEPS / big:.0f} MiB/s through save+load)")


if __name__ == "__main__":
    asyncio.run(main())

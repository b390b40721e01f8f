"""Cost of a semaphore, in one run on this machine.

    python bench/sync.py

1,000 single-step workflows (``sh -c true``) submitted at once, (a) without synchronization
(baseline) and (b) through a workflow-level ConfigMap semaphore of 10: total wall time from the
first submission to the last completion, and the ratio b/a (target <= 1.2).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.scheduler import running_scheduler  # noqa: E402  (the same set-up the tests use)
from workflows.models import Workflow  # noqa: E402
from workflows.scheduler import Scheduler  # noqa: E402
from workflows.store import ResourceRecord  # noqa: E402

COUNT = 1000
LIMIT = 10


def workflow(locked: bool) -> Workflow:
    spec: dict[str, object] = {
        "entrypoint": "main",
        "templates": [{"name": "main", "container": {"image": "alpine", "command": ["sh", "-c", "true"]}}],
    }
    if locked:
        spec["synchronization"] = {"semaphores": [{"configMapKeyRef": {"name": "bench", "key": "limit"}}]}
    return Workflow.model_validate({"metadata": {"generateName": "sync-"}, "spec": spec})


async def batch(scheduler: Scheduler, locked: bool) -> float:
    start = time.perf_counter()
    records = [await scheduler.submit(workflow(locked)) for _ in range(COUNT)]
    for record in records:
        final = await scheduler.wait_done(record.namespace, record.name, 600)
        assert final.phase.value == "Succeeded", final.message
    return time.perf_counter() - start


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_scheduler(Path(tmp)) as scheduler:
            manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench"}, "data": {"limit": str(LIMIT)}}
            await scheduler.store.put_resource(ResourceRecord(kind="ConfigMap", namespace="default", name="bench", manifest=manifest))
            free = await batch(scheduler, False)
            locked = await batch(scheduler, True)
    print(f"{COUNT} single-step workflows submitted at once")
    print(f"  (a) no synchronization:  {free:6.2f} s  ({COUNT / free:.0f} workflows/s)")
    print(f"  (b) semaphore of {LIMIT}:     {locked:6.2f} s  ({COUNT / locked:.0f} workflows/s)")
    print(f"  ratio b/a: {locked / free:.2f} (target <= 1.2)")


if __name__ == "__main__":
    asyncio.run(main())

"""Scheduler overhead, in one run on this machine.

    python bench/engine.py

(a) a 40-step sequential workflow of ``sh -c true`` steps vs 40 bare
    ``asyncio.create_subprocess_exec`` spawns run one after another (target: <= 3 ms overhead per step);
(b) wall time of a 1,000-way ``withSequence`` fan-out of ``sh -c true`` with ``parallelism: 20``;
(c) store bytes per finished 10-step workflow (rows as stored, and SQLite file growth).
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

import sqlalchemy as sa  # noqa: E402

from eventflow.database import open_engine  # noqa: E402
from workflows.executor import LocalExecutor  # noqa: E402
from workflows.models import Workflow  # noqa: E402
from workflows.scheduler import Scheduler  # noqa: E402
from workflows.store import WorkflowStore  # noqa: E402


def sequential(n: int) -> Workflow:
    return Workflow.model_validate(
        {
            "metadata": {"generateName": "seq-"},
            "spec": {
                "entrypoint": "main",
                "templates": [
                    {"name": "main", "steps": [[{"name": f"s{i}", "template": "t"}] for i in range(n)]},
                    {"name": "t", "container": {"image": "alpine", "command": ["sh", "-c", "true"]}},
                ],
            },
        }
    )


def fan_out(n: int, parallelism: int) -> Workflow:
    return Workflow.model_validate(
        {
            "metadata": {"generateName": "fan-"},
            "spec": {
                "entrypoint": "main",
                "parallelism": parallelism,
                "templates": [
                    {"name": "main", "steps": [[{"name": "x", "template": "t", "withSequence": {"count": str(n)}}]]},
                    {"name": "t", "container": {"image": "alpine", "command": ["sh", "-c", "true"]}},
                ],
            },
        }
    )


async def bare_spawns(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec("sh", "-c", "true", stdin=asyncio.subprocess.DEVNULL)
        await proc.wait()
    return time.perf_counter() - start


async def run_one(scheduler: Scheduler, wf: Workflow, timeout: float = 600) -> tuple[float, Any]:
    start = time.perf_counter()
    record = await scheduler.submit(wf)
    rec = await scheduler.wait_done(record.namespace, record.name, timeout)
    return time.perf_counter() - start, rec


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{tmp}/store.db")
        store = WorkflowStore(engine)
        await store.migrate()
        executor = LocalExecutor(Path(tmp) / "nodes")
        scheduler = Scheduler(store, executor)
        await scheduler.start()
        try:
            await run_one(scheduler, sequential(3))  # warm-up
            bare, ours = [], []
            for _ in range(3):
                bare.append(await bare_spawns(40))
                took, rec = await run_one(scheduler, sequential(40))
                assert rec.phase.value == "Succeeded", rec.message
                ours.append(took)
            b, o = statistics.median(bare), statistics.median(ours)
            print(f"(a) 40 sequential steps: workflow {o * 1000:.0f} ms, bare spawns {b * 1000:.0f} ms; "
                  f"overhead {(o - b) / 40 * 1000:.2f} ms/step (target <= 3 ms); ratio {o / b:.2f}x")  # fmt: skip

            took, rec = await run_one(scheduler, fan_out(1000, 20))
            assert rec.phase.value == "Succeeded", rec.message
            print(f"(b) 1,000-way withSequence fan-out, parallelism 20: {took:.2f} s wall ({1000 / took:.0f} steps/s)")

            db = Path(tmp) / "store.db"
            async with engine.begin() as conn:
                await conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
            before = db.stat().st_size
            records = []
            for _ in range(20):
                _, rec = await run_one(scheduler, sequential(10))
                records.append(rec)
            async with engine.begin() as conn:
                await conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
                row_bytes = 0
                for rec in records:
                    row_bytes += (
                        await conn.execute(sa.text("SELECT coalesce(sum(length(data)),0) FROM ef_nodes WHERE workflow_uid=:u"), {"u": rec.uid})
                    ).scalar() or 0
                    row_bytes += (
                        await conn.execute(
                            sa.text("SELECT length(manifest)+length(status)+length(labels)+length(annotations)+200 FROM ef_workflows WHERE uid=:u"), {"u": rec.uid}
                        )
                    ).scalar() or 0
            growth = db.stat().st_size - before
            print(f"(c) store per finished 10-step workflow: {row_bytes / len(records) / 1024:.1f} KiB of rows, "
                  f"{growth / len(records) / 1024:.1f} KiB of SQLite file growth (12 nodes each)")  # fmt: skip
        finally:
            await scheduler.stop()
            executor.close()
            store.close()
            await engine.dispose()


if __name__ == "__main__":
    # eventflow serve runs on uvloop; uvloop spawns processes more slowly than asyncio does, so
    # both loops are measured, each side against a baseline on the same loop.
    loops: list[tuple[str, Any]] = [("asyncio", None)]
    try:
        import uvloop

        loops.append(("uvloop", uvloop.new_event_loop))
    except ImportError:  # pragma: no cover
        pass
    for label, factory in loops:
        print(f"== event loop: {label}")
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())

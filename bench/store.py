"""Sizing report of the workflow store, in one run on this machine (SQLite in a temp dir).

    python bench/store.py [--archived 100000]

(a) store bytes per finished workflow: a real 10-step workflow, and a real 10,000-node one (withSequence,
    parallelism 50), with its run time, this process's peak RSS, the summary get and a page of nodes;
(b) rows written per node transition, counted on the store's own connection while a 10-step workflow runs;
(c) time of get / list / archive queries with --archived archived workflows (generated), against the
    same queries on an archive of 100 as the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402

from tests.support.scheduler import running_scheduler  # noqa: E402  (the same set-up the tests use)
from workflows.models import Workflow  # noqa: E402
from workflows.scheduler import Scheduler  # noqa: E402
from workflows.store.schema import archived  # noqa: E402


def sequential(n: int) -> Workflow:
    return Workflow.model_validate({
        "metadata": {"generateName": "seq-"},
        "spec": {"entrypoint": "main", "templates": [
            {"name": "main", "steps": [[{"name": f"s{i}", "template": "t"}] for i in range(n)]},
            {"name": "t", "container": {"image": "alpine", "command": ["sh", "-c", "true"]}},
        ]},
    })  # fmt: skip


def _bytes(scheduler: Scheduler, uid: str) -> int:
    sync = scheduler.store._db._sync  # the store's own SQLite engine: measured as stored
    assert sync is not None
    with sync.connect() as conn:
        node_bytes = conn.execute(sa.text("SELECT coalesce(sum(length(data)),0) FROM ef_nodes WHERE workflow_uid=:u"), {"u": uid}).scalar() or 0
        row = conn.execute(
            sa.text("SELECT length(manifest)+length(status)+length(labels)+length(annotations)+200 FROM ef_workflows WHERE uid=:u"), {"u": uid}
        ).scalar() or 0
    return int(node_bytes) + int(row)


async def rows_per_transition(scheduler: Scheduler) -> tuple[float, int, int]:
    """(rows written per node transition, rows, transitions) while a 10-step workflow runs."""
    sync = scheduler.store._db._sync
    assert sync is not None
    written = {"rows": 0}

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        verb = statement.lstrip().split(" ", 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            written["rows"] += len(parameters) if executemany else 1

    event.listen(sync, "before_cursor_execute", count)
    try:
        record = await scheduler.submit(sequential(10))
        await scheduler.wait_done(record.namespace, record.name, 120)
    finally:
        event.remove(sync, "before_cursor_execute", count)
    _, node_map = await scheduler.get(record.namespace, record.name)
    transitions = 2 * len(node_map)  # each node: started (Pending/Running), finished
    return written["rows"] / transitions, written["rows"], transitions


def fanout(items: int, parallelism: int = 50) -> Workflow:
    """Issue 11's large workflow: withSequence of a trivial step, parallelism 50."""
    return Workflow.model_validate({
        "metadata": {"generateName": "big-"},
        "spec": {"entrypoint": "main", "parallelism": parallelism, "templates": [
            {"name": "main", "steps": [[{"name": "s", "template": "t", "withSequence": {"count": str(items)}}]]},
            {"name": "t", "container": {"image": "alpine", "command": ["true"]}},
        ]},
    })  # fmt: skip


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def big_run(scheduler: Scheduler, items: int) -> tuple[str, float, float]:
    """Run the large workflow for real; (uid, seconds, peak RSS of this process in MiB)."""
    start = time.perf_counter()
    record = await scheduler.submit(fanout(items))
    done = await scheduler.wait_done(record.namespace, record.name, 1800)
    assert done.phase.value == "Succeeded", done.message
    return done.uid, time.perf_counter() - start, _peak_rss_mib()


def fill_archive(scheduler: Scheduler, count: int, nodes_json: dict[str, Any]) -> None:
    sync = scheduler.store._db._sync
    assert sync is not None
    base = datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[dict[str, Any]] = []
    with sync.begin() as conn:
        for i in range(count):
            when = base + timedelta(seconds=i)
            batch.append({
                "uid": str(uuid.uuid4()), "namespace": f"team-{i % 10}", "name": f"wf-{i:07d}", "phase": "Succeeded" if i % 7 else "Failed",
                "message": None, "created_at": when, "started_at": when, "finished_at": when + timedelta(seconds=3), "archived_at": when,
                "labels": {"team": f"t{i % 10}", "workflows.argoproj.io/phase": "Succeeded"}, "annotations": {},
                "manifest": {"metadata": {"name": f"wf-{i:07d}"}, "spec": {"entrypoint": "main"}}, "status": {"progress": "10/10"}, "nodes": nodes_json,
            })  # fmt: skip
            if len(batch) == 5000:
                conn.execute(archived.insert(), batch)
                batch = []
        if batch:
            conn.execute(archived.insert(), batch)


async def timed(call: Callable[[], Awaitable[Any]], runs: int = 5) -> float:
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        took.append(time.perf_counter() - start)
    return statistics.median(took) * 1000


async def queries(scheduler: Scheduler) -> dict[str, float]:
    store = scheduler.store
    some = (await store.list_archived("team-3", limit=1))[0]
    return {
        "list one namespace, first page of 50": await timed(lambda: store.list_archived("team-3", limit=50)),
        "list by name prefix, first page of 50": await timed(lambda: store.list_archived(name_prefix="wf-00012", limit=50)),
        "count one namespace (for paging)": await timed(lambda: store.count_archived("team-3")),
        "get one archived workflow (with nodes)": await timed(lambda: store.get_archived(some.uid)),
        "list live workflows": await timed(lambda: store.list_workflows("default", limit=50)),
    }


async def summary_get(scheduler: Scheduler, namespace: str, name: str) -> dict[str, int]:
    """What the API's summary get (``fields=-status.nodes``) reads: the row and the counts by phase."""
    record = await scheduler.store.get_workflow(namespace, name)
    assert record is not None
    return await scheduler.store.count_nodes(record.uid)


async def main(archived_count: int, big_items: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_scheduler(Path(tmp)) as scheduler:
            per_row, rows, transitions = await rows_per_transition(scheduler)
            record = await scheduler.submit(sequential(10))
            done = await scheduler.wait_done(record.namespace, record.name, 120)
            ten = _bytes(scheduler, done.uid)
            big, took, peak = await big_run(scheduler, big_items)
            big_bytes = _bytes(scheduler, big)
            record = await scheduler.store.get_workflow_by_uid(big)
            assert record is not None
            summary = await timed(lambda: summary_get(scheduler, record.namespace, record.name))
            page = await timed(lambda: scheduler.store.page_nodes(big, limit=500))
            print(f"(a) store per finished workflow: 10-step {ten / 1024:.1f} KiB; {big_items:,}-node {big_bytes / 1024 / 1024:.2f} MiB "
                  f"({big_bytes / big_items:.0f} bytes a node)")  # fmt: skip
            print(f"    the {big_items:,}-node run (withSequence, parallelism 50): {took:.1f} s, {big_items / took:.0f} nodes/s; "
                  f"peak RSS of this process {peak:.0f} MiB; summary get {summary:.1f} ms; a page of 500 nodes {page:.1f} ms")  # fmt: skip
            print(f"(b) rows written per node transition: {per_row:.2f} ({rows} rows for {transitions} transitions of a 10-step workflow, "
                  "workflow row and lifecycle events included)")  # fmt: skip
            _, node_map = await scheduler.get(done.namespace, done.name)
            nodes_json = {nid: n.to_json() for nid, n in node_map.items()}
            fill_archive(scheduler, 100, nodes_json)
            small = await queries(scheduler)
            start = time.perf_counter()
            fill_archive(scheduler, archived_count - 100, nodes_json)
            filled = time.perf_counter() - start
            large = await queries(scheduler)
            print(f"(c) queries with {archived_count:,} archived workflows (generated in {filled:.1f} s) vs 100, median of 5:")
            for name, ms in large.items():
                print(f"    {name:<42} {ms:8.2f} ms   (100 archived: {small[name]:6.2f} ms; ratio {ms / max(small[name], 1e-6):.1f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--archived", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000, help="nodes of the large workflow run for real")
    args = parser.parse_args()
    asyncio.run(main(args.archived, args.items))

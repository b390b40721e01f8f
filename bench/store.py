"""Sizing report of the workflow store, in one run on this machine (SQLite in a temp dir).

    python bench/store.py [--archived 100000]

(a) store bytes per finished workflow: a real 10-step workflow, and a 10,000-node one (generated rows
    shaped as the scheduler writes them: running that many steps takes minutes here);
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
from workflows.status import NodePhase, NodeStatus, NodeType  # noqa: E402
from workflows.store.schema import archived, nodes, workflows  # noqa: E402


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


def _node(i: int, parent: str, started: datetime) -> dict[str, Any]:
    node = NodeStatus(
        id=f"{parent}-{i}", name=f"{parent}[0].x({i}:{i})", display_name=f"x({i}:{i})", type=NodeType.POD,
        phase=NodePhase.SUCCEEDED, template_name="t", started_at=started, finished_at=started + timedelta(milliseconds=20),
    )  # fmt: skip
    return {"workflow_uid": "", "node_id": node.id, "phase": node.phase.value, "data": node.to_json()}


def big_workflow(scheduler: Scheduler, count: int) -> str:
    """A finished workflow with ``count`` Succeeded pod nodes, written as the scheduler writes them."""
    sync = scheduler.store._db._sync
    assert sync is not None
    uid, now = str(uuid.uuid4()), datetime.now(UTC)
    manifest = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "big"}, "spec": sequential(1).model_dump(by_alias=True, exclude_none=True, mode="json")["spec"]}
    rows = [{**_node(i, uid[:8], now), "workflow_uid": uid} for i in range(count)]
    with sync.begin() as conn:
        conn.execute(workflows.insert().values(
            uid=uid, namespace="default", name=f"big-{uid[:5]}", phase="Succeeded", created_at=now, started_at=now, finished_at=now,
            labels={}, annotations={}, manifest=manifest, status={"progress": f"{count}/{count}"}, resource_version=1,
        ))  # fmt: skip
        conn.execute(nodes.insert(), rows)
    return uid


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


async def main(archived_count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_scheduler(Path(tmp)) as scheduler:
            per_row, rows, transitions = await rows_per_transition(scheduler)
            record = await scheduler.submit(sequential(10))
            done = await scheduler.wait_done(record.namespace, record.name, 120)
            ten = _bytes(scheduler, done.uid)
            big = big_workflow(scheduler, 10_000)
            big_bytes = _bytes(scheduler, big)
            print(f"(a) store per finished workflow: 10-step {ten / 1024:.1f} KiB; 10,000-node {big_bytes / 1024 / 1024:.2f} MiB "
                  f"({big_bytes / 10_000:.0f} bytes a node)")  # fmt: skip
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
    args = parser.parse_args()
    asyncio.run(main(args.archived))

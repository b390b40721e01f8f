from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventflow.database import open_engine
from workflows.status import NodePhase, NodeStatus, NodeType, WorkflowPhase
from workflows.store import AlreadyExists, OutboxEvent, ResourceRecord, WorkflowRecord, WorkflowStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WorkflowStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 's.db'}"
        schema = None
    else:
        import uuid

        import sqlalchemy as sa

        base = request.getfixturevalue("pg_url")
        schema = f"t_{uuid.uuid4().hex[:10]}"
        admin = open_engine(base)
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        await admin.dispose()
        url = base
    engine = open_engine(url, schema=schema) if schema else open_engine(url)
    store = WorkflowStore(engine)
    await store.migrate()
    yield store
    if schema:
        import sqlalchemy as sa

        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    store.close()
    await engine.dispose()


def _record(name: str = "wf-1", **kw: object) -> WorkflowRecord:
    return WorkflowRecord(namespace="default", name=name, manifest={"metadata": {"name": name}, "spec": {}}, **kw)  # type: ignore[arg-type]


def _node(wf: str, name: str, phase: NodePhase = NodePhase.RUNNING) -> NodeStatus:
    from workflows.status import node_id

    return NodeStatus(id=node_id(wf, name), name=name, display_name=name, type=NodeType.POD, phase=phase)


async def test_store_create_get_and_duplicate_name_rejected(store: WorkflowStore) -> None:
    rec = _record(labels={"app": "x"})
    await store.create_workflow(rec)
    got = await store.get_workflow("default", "wf-1")
    assert got is not None and got.uid == rec.uid and got.labels == {"app": "x"}
    with pytest.raises(AlreadyExists, match="default/wf-1 already exists"):
        await store.create_workflow(_record())


async def test_store_commit_writes_changed_nodes_and_events_atomically(store: WorkflowStore) -> None:
    rec = _record()
    await store.create_workflow(rec)
    a, b = _node("wf-1", "wf-1.a"), _node("wf-1", "wf-1.b")
    event = OutboxEvent(id=f"{rec.uid}.Running", subject="x.workflows.default.wf-1.Running", payload={"id": "1"})
    await store.commit(rec.uid, workflow={"phase": WorkflowPhase.RUNNING}, node_updates=[a, b], events=[event])
    await store.commit(rec.uid, node_updates=[a.model_copy(update={"phase": NodePhase.SUCCEEDED})])
    nodes = await store.load_nodes(rec.uid)
    assert {n.name: n.phase for n in nodes.values()} == {"wf-1.a": NodePhase.SUCCEEDED, "wf-1.b": NodePhase.RUNNING}
    got = await store.get_workflow("default", "wf-1")
    assert got is not None and got.phase == WorkflowPhase.RUNNING and got.resource_version == 2
    assert [e.id for e in await store.pending_events()] == [event.id]
    await store.remove_events([event.id])
    assert await store.pending_events() == []
    assert await store.count_nodes(rec.uid) == {"Succeeded": 1, "Running": 1}


async def test_store_failed_commit_leaves_nothing_behind(store: WorkflowStore) -> None:
    rec = _record()
    await store.create_workflow(rec)
    with pytest.raises(ValueError, match="not workflow columns"):
        await store.commit(rec.uid, workflow={"bogus": 1}, node_updates=[_node("wf-1", "wf-1.a")])
    assert await store.load_nodes(rec.uid) == {}


async def test_store_list_filters_by_namespace_phase_and_labels(store: WorkflowStore) -> None:
    await store.create_workflow(_record("a", labels={"team": "x"}))
    await store.create_workflow(_record("b", labels={"team": "y"}, phase=WorkflowPhase.RUNNING))
    await store.create_workflow(WorkflowRecord(namespace="other", name="c", manifest={}))
    assert {r.name for r in await store.list_workflows("default")} == {"a", "b"}
    assert [r.name for r in await store.list_workflows(phases=["Running"])] == ["b"]
    assert [r.name for r in await store.list_workflows(labels={"team": "x"})] == ["a"]
    assert {r.name for r in await store.unfinished_workflows()} == {"a", "b", "c"}


async def test_store_delete_removes_nodes(store: WorkflowStore) -> None:
    rec = _record()
    await store.create_workflow(rec)
    await store.commit(rec.uid, node_updates=[_node("wf-1", "wf-1.a")])
    assert await store.delete_workflow(rec.uid)
    assert await store.load_nodes(rec.uid) == {}
    assert await store.get_workflow("default", "wf-1") is None


async def test_store_resources_apply_keeps_uid_and_bumps_version(store: WorkflowStore) -> None:
    first = await store.put_resource(ResourceRecord(kind="WorkflowTemplate", namespace="default", name="t", manifest={"v": 1}))
    second = await store.put_resource(ResourceRecord(kind="WorkflowTemplate", namespace="default", name="t", manifest={"v": 2}))
    assert second.uid == first.uid and second.resource_version == 2
    got = await store.get_resource("WorkflowTemplate", "default", "t")
    assert got is not None and got.manifest == {"v": 2}
    with pytest.raises(AlreadyExists):
        await store.put_resource(ResourceRecord(kind="WorkflowTemplate", namespace="default", name="t", manifest={}), create_only=True)
    assert [r.name for r in await store.list_resources("WorkflowTemplate", "default")] == ["t"]
    assert await store.delete_resource("WorkflowTemplate", "default", "t")
    assert not await store.delete_resource("WorkflowTemplate", "default", "t")


async def test_store_migrate_twice_is_harmless(store: WorkflowStore) -> None:
    await store.migrate()
    await store.create_workflow(_record())


async def test_store_archive_outlives_the_workflow_and_pages_by_prefix(store: WorkflowStore) -> None:
    from datetime import UTC, datetime, timedelta

    from workflows.status import WorkflowPhase

    made = []
    for name in ("job-a", "job-b", "jobx-c", "other"):
        rec = _record(name, phase=WorkflowPhase.SUCCEEDED, finished_at=datetime.now(UTC), labels={"team": "x"})
        await store.create_workflow(rec)
        await store.commit(rec.uid, node_updates=[_node(name, f"{name}.a", NodePhase.SUCCEEDED)])
        assert await store.archive_workflow(rec.uid, {"workflows.argoproj.io/workflow-archiving-status": "Archived"})
        assert await store.delete_workflow(rec.uid)
        made.append(rec)
    assert not await store.archive_workflow(made[0].uid, {})  # the live row is gone: nothing to copy
    got = await store.get_archived(made[0].uid)
    assert got is not None and got.name == "job-a" and got.labels == {"team": "x", "workflows.argoproj.io/workflow-archiving-status": "Archived"}
    assert list(got.nodes) == [_node("job-a", "job-a.a").id]
    assert sorted(r.name for r in await store.list_archived("default", name_prefix="job-")) == ["job-a", "job-b"]
    assert [r.name for r in await store.list_archived(name_prefix="job_")] == []  # _ is not a wildcard
    assert await store.count_archived("default", name_prefix="job") == 3
    assert len(await store.list_archived("default", limit=2, offset=3)) == 1
    assert await store.delete_archived_before(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await store.delete_archived_before(datetime.now(UTC) + timedelta(seconds=5)) == 4
    assert await store.list_archived() == []


async def test_sqlite_writes_on_the_loop_still_checkpoint_and_keep_the_wal_bounded(tmp_path: Path) -> None:
    # The store writes on the event loop's thread and relies on SQLite's own checkpoints there; one
    # that never completes (a reader left open, checkpoints moved where they cannot catch up) leaves
    # the WAL holding every page ever written and the main file none.
    import sqlite3

    from tests.support.poll import eventually

    db = tmp_path / "s.db"
    engine = open_engine(f"sqlite:///{db}")
    store = WorkflowStore(engine)
    try:
        await store.migrate()
        wal = Path(f"{db}-wal")
        records = [_record(f"wf-{i}", labels={"pad": "x" * 60}) for i in range(1200)]
        for rec in records:
            await store.create_workflow(rec)
            await store.commit(rec.uid, node_updates=[_node(rec.name, f"{rec.name}.a")], workflow={"message": "m" * 200})
        written = 2400 * 2 * 4096  # at least two pages a write, had nothing been checkpointed
        assert wal.stat().st_size < written / 4, wal.stat().st_size

        def main_file_has_rows() -> bool:
            # Only a checkpoint moves rows from the WAL into the main file; read it without the WAL.
            with sqlite3.connect(f"file:{db}?immutable=1", uri=True) as plain:
                return plain.execute("SELECT count(*) FROM ef_workflows").fetchone()[0] >= 1000

        await eventually(main_file_has_rows, timeout=10, what="checkpointed rows in the main file")
        assert len(await store.list_workflows()) == 1200
    finally:
        store.close()
        await engine.dispose()

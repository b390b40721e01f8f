"""The workflow store: every transition is committed here before the scheduler acts on it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import uuid
import weakref
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from workflows.errors import WorkflowError
from workflows.status import NodeStatus, WorkflowPhase, now
from workflows.store.schema import archived, firings, leases, migrate, nodes, outbox, resources, workflows
from workflows.store.sqlite_direct import DirectTable, driver_cursor

__all__ = ["AlreadyExists", "ArchivedRecord", "FiringRecord", "OutboxEvent", "ResourceRecord", "WorkflowRecord", "WorkflowStore"]

T = TypeVar("T")


class AlreadyExists(WorkflowError):
    """A resource with this namespace/name exists already."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        self.kind, self.namespace, self.name = kind, namespace, name
        super().__init__(f"{kind} {namespace}/{name} already exists")


class WorkflowRecord(BaseModel):
    """One row of ``ef_workflows``."""

    model_config = ConfigDict(frozen=False)

    uid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    namespace: str
    name: str
    phase: WorkflowPhase = WorkflowPhase.PENDING
    message: str | None = None
    created_at: datetime = Field(default_factory=now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    manifest: dict[str, Any]
    status: dict[str, Any] = Field(default_factory=dict)
    resource_version: int = 1

    _aware = field_validator("created_at", "started_at", "finished_at")(classmethod(lambda cls, v: _utc(v)))


class ArchivedRecord(BaseModel):
    """One row of ``ef_archived_workflows``: a finished workflow with its nodes."""

    uid: str
    namespace: str
    name: str
    phase: WorkflowPhase
    message: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    archived_at: datetime
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    manifest: dict[str, Any]
    status: dict[str, Any] = Field(default_factory=dict)
    nodes: dict[str, Any] = Field(default_factory=dict)

    _aware = field_validator("created_at", "started_at", "finished_at", "archived_at")(classmethod(lambda cls, v: _utc(v)))

    def as_workflow(self) -> WorkflowRecord:
        return WorkflowRecord(
            uid=self.uid, namespace=self.namespace, name=self.name, phase=self.phase, message=self.message,
            created_at=self.created_at, started_at=self.started_at, finished_at=self.finished_at,
            labels=self.labels, annotations=self.annotations, manifest=self.manifest, status=self.status,
        )  # fmt: skip


class ResourceRecord(BaseModel):
    kind: str
    namespace: str
    name: str
    uid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    manifest: dict[str, Any]
    created_at: datetime = Field(default_factory=now)
    resource_version: int = 1

    _aware = field_validator("created_at")(classmethod(lambda cls, v: _utc(v)))


class FiringRecord(BaseModel):
    """One firing of a sensor's trigger: which events, what was resolved, what came of it."""

    key: str
    namespace: str
    sensor: str
    trigger: str
    fired_at: datetime = Field(default_factory=now)
    outcome: str  # Succeeded | Failed
    event_ids: list[str]
    detail: dict[str, Any] = Field(default_factory=dict)

    _aware = field_validator("fired_at")(classmethod(lambda cls, v: _utc(v)))


class OutboxEvent(BaseModel):
    """A lifecycle event committed with its transition, waiting to be published."""

    id: str
    subject: str
    payload: dict[str, Any]
    created_at: datetime = Field(default_factory=now)
    seq: int | None = None


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone-aware columns; everything we store is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


_WF_FIELDS = ("phase", "message", "started_at", "finished_at", "labels", "annotations", "manifest", "status")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL: readers never block the scheduler's writes; a committed row survives kill -9.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class _UnitOfWork:
    """Runs a store operation, written as a function of a sync Connection, in one trip to the database.

    SQLite, with the stdlib driver: writes and point reads run right here on the event loop's thread;
    reads that can be large (lists, a workflow's nodes, archives) run on one helper thread with their
    own connection. A transition's statements take SQLite ~0.1-0.3 ms; handing each one to a thread
    cost more than that in GIL hand-overs and context switches (at 200 workflows/s the server spent
    a quarter of its CPU switching threads; docs/benchmarks.md). Commits do not fsync (WAL,
    synchronous=NORMAL); SQLite's own checkpoint, every 1,000 pages, does, inside the commit that
    crosses that mark. (Checkpointing on the helper thread instead never caught up with a writer that
    kept writing, and the WAL grew without bound.) One writer, called in order on one thread: commit
    order is call order, and WAL readers never block it. The database file belongs to this process:
    another process holding its write lock would stall the loop for up to the busy timeout (sharing
    a database between servers is what Postgres is for).
    Postgres: ``run_sync`` on an asyncpg connection (statements stay async underneath).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._sync: sa.Engine | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._write_lock = asyncio.Lock()
        if self.sqlite:
            url = engine.url.set(drivername="sqlite")
            self._sync = sa.create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}, pool_reset_on_return=None
            )
            event.listen(self._sync, "connect", _sqlite_pragmas)
            self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="eventflow-sqlite")
            self._finalizer = weakref.finalize(self, _close_sqlite, self._sync, self._thread)

    async def write(self, work: Callable[[sa.Connection], T]) -> T:
        """``work`` in a transaction, committed before this returns."""
        if self._sync is None:
            # Postgres: writes commit in call order, as SQLite's one writer does (the scheduler's
            # transitions of one workflow must not overtake each other); reads wait for them below.
            async with self._write_lock, self.engine.begin() as conn:
                return await conn.run_sync(work)
        with self._sync.begin() as conn:
            result = work(conn)
        await asyncio.sleep(0)  # others run between two writes, as they did while a thread wrote
        return result

    async def read(self, work: Callable[[sa.Connection], T]) -> T:
        """``work`` on a connection, for reads of a few rows (one workflow, one resource)."""
        if self._sync is None:
            return await self._postgres_read(work)
        with self._sync.connect() as conn:
            result = work(conn)
        await asyncio.sleep(0)
        return result

    async def scan(self, work: Callable[[sa.Connection], T]) -> T:
        """``work`` on a connection, for reads of many rows: off the event loop on SQLite."""
        if self._sync is None:
            return await self._postgres_read(work)
        sync = self._sync

        def in_thread() -> T:
            with sync.connect() as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(self._thread, in_thread)

    async def _postgres_read(self, work: Callable[[sa.Connection], T]) -> T:
        async with self._write_lock:  # a read sees every write called before it, as on SQLite
            pass
        async with self.engine.connect() as conn:
            return await conn.run_sync(work)

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs at most once, here or when the store is collected


def _close_sqlite(engine: sa.Engine, thread: concurrent.futures.ThreadPoolExecutor) -> None:
    try:
        thread.submit(engine.dispose)  # the last connection to close checkpoints the WAL
    except RuntimeError:  # interpreter exit shut the thread down first: nothing else uses them now
        engine.dispose()
    thread.shutdown(wait=True)


def store_outage(exc: BaseException) -> str | None:
    """Why ``exc`` means the database cannot be written now (gone, refusing connections, read-only,
    disk full), as opposed to a statement that would fail again however often it is retried."""
    if isinstance(exc, sa.exc.DBAPIError):
        transient = exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
        text = str(exc.orig if exc.orig is not None else exc)
        if transient or "not currently accepting connections" in text or "terminating connection" in text:
            return f"{type(exc.orig or exc).__name__}: {text.splitlines()[0][:200] if text else ''}"
        return None
    if isinstance(exc, sqlite3.OperationalError):  # from a statement run on the driver directly
        return f"OperationalError: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if isinstance(exc, OSError | TimeoutError | sa.exc.DisconnectionError):
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    return None


class WorkflowStore:
    """Async access to workflows, nodes, stored resources and the lifecycle outbox."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._db = _UnitOfWork(engine)
        self._upsert_stmt: Any = None

    def __repr__(self) -> str:
        return f"<WorkflowStore {self._dialect}>"

    def close(self) -> None:
        """Release the store's own SQLite connections and thread (the engine is the caller's)."""
        self._db.close()

    async def migrate(self) -> None:
        await self._db.write(migrate)

    async def take_lease(self, name: str, holder: str, seconds: float) -> tuple[str, datetime]:
        """Take or renew the lease ``name`` for ``holder`` if it is free, expired or already its own;
        returns who holds it and until when. One statement, so two servers cannot both win."""
        at = now()
        until = at + timedelta(seconds=seconds)

        def work(conn: sa.Connection) -> tuple[str, datetime]:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(leases).values(name=name, holder=holder, expires_at=until)
            stmt = stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={"holder": holder, "expires_at": until},
                where=(leases.c.expires_at < at) | (leases.c.holder == holder),
            )
            conn.execute(stmt)
            row = conn.execute(sa.select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)).one()
            return row.holder, _utc(row.expires_at) or until

        return await self._db.write(work)

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once (a clean shutdown), if ``holder`` still holds it."""
        await self._db.write(
            lambda conn: conn.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))
        )

    async def ping(self) -> str | None:
        """None when the database answers a read, else why it does not."""
        try:
            await self._db.read(lambda conn: conn.execute(sa.text("SELECT 1")).all())
        except Exception as exc:  # noqa: BLE001 - any failure is the answer
            return store_outage(exc) or f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        return None

    # -- workflows --------------------------------------------------------------------------

    async def create_workflow(self, record: WorkflowRecord, events: Sequence[OutboxEvent] = ()) -> None:
        def work(conn: sa.Connection) -> None:
            if self._db.sqlite:
                _WORKFLOWS.insert(driver_cursor(conn), [record.model_dump()])
            else:
                conn.execute(workflows.insert(), [record.model_dump()])
            _add_events(conn, events)

        try:
            await self._db.write(work)
        except (IntegrityError, sqlite3.IntegrityError):
            raise AlreadyExists("workflow", record.namespace, record.name) from None

    async def get_workflow(self, namespace: str, name: str) -> WorkflowRecord | None:
        if self._db.sqlite:
            where = {"namespace": namespace, "name": name}
            rows = await self._db.read(lambda conn: _WORKFLOWS.select(driver_cursor(conn), where))
            return WorkflowRecord.model_validate(rows[0]) if rows else None
        params = {"namespace_": namespace, "name_": name}
        row = await self._db.read(lambda conn: conn.execute(_GET_WORKFLOW, params).first())
        return WorkflowRecord.model_validate(row._asdict()) if row else None

    async def get_workflow_by_uid(self, uid: str) -> WorkflowRecord | None:
        query = sa.select(workflows).where(workflows.c.uid == uid)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return WorkflowRecord.model_validate(row._asdict()) if row else None

    async def list_workflows(
        self,
        namespace: str | None = None,
        *,
        phases: Iterable[str] | None = None,
        labels: dict[str, str | None] | None = None,
        limit: int | None = None,
        name_prefix: str | None = None,
    ) -> list[WorkflowRecord]:
        """Newest first. ``labels`` maps key -> required value (``None`` = key must exist)."""
        query = sa.select(workflows).order_by(workflows.c.created_at.desc(), workflows.c.name)
        if namespace:
            query = query.where(workflows.c.namespace == namespace)
        if phases:
            query = query.where(workflows.c.phase.in_(list(phases)))
        if name_prefix:
            query = query.where(workflows.c.name.startswith(name_prefix))
        rows = await self._db.scan(lambda conn: conn.execute(query).all())
        out = []
        for row in rows:
            record = WorkflowRecord.model_validate(row._asdict())
            if labels and not all(
                (k in record.labels) if v is None else record.labels.get(k) == v for k, v in labels.items()
            ):
                continue
            out.append(record)
            if limit and len(out) >= limit:
                break
        return out

    async def unfinished_uids(self) -> list[str]:
        query = sa.select(workflows.c.uid).where(workflows.c.phase.in_([WorkflowPhase.PENDING.value, WorkflowPhase.RUNNING.value]))
        return list(await self._db.scan(lambda conn: conn.execute(query).scalars().all()))

    async def unfinished_workflows(self) -> list[WorkflowRecord]:
        return await self.list_workflows(phases=[WorkflowPhase.PENDING, WorkflowPhase.RUNNING])

    async def delete_workflow(self, uid: str, events: Sequence[OutboxEvent] = ()) -> bool:
        """Delete the workflow and its nodes; ``events`` (its deletion event) go out with it or not at all."""

        def work(conn: sa.Connection) -> bool:
            conn.execute(nodes.delete().where(nodes.c.workflow_uid == uid))
            gone = bool(conn.execute(workflows.delete().where(workflows.c.uid == uid)).rowcount)
            if gone:
                _add_events(conn, events)
            return gone

        return await self._db.write(work)

    async def commit(
        self,
        uid: str,
        *,
        workflow: dict[str, Any] | None = None,
        node_updates: Iterable[NodeStatus] = (),
        events: Sequence[OutboxEvent] = (),
        replace_nodes: bool = False,
    ) -> None:
        """One transition in one transaction: workflow fields, changed nodes, lifecycle events."""
        if workflow:
            unknown = set(workflow) - set(_WF_FIELDS)
            if unknown:
                raise ValueError(f"not workflow columns: {sorted(unknown)}")
        sqlite_rows: list[tuple[str, str, str, str]] = []
        batch: list[dict[str, Any]] = []
        if self._db.sqlite:
            # The per-step hot path: pydantic writes the JSON, the driver runs one executemany.
            sqlite_rows = [
                (uid, n.id, n.phase.value, n.model_dump_json(by_alias=True, exclude_none=True))
                for n in node_updates
            ]
        else:
            batch = [
                {"workflow_uid": uid, "node_id": n.id, "phase": n.phase.value, "data": n.to_json()}
                for n in node_updates
            ]
        upsert = self._upsert

        def work(conn: sa.Connection) -> None:
            if replace_nodes:
                conn.execute(nodes.delete().where(nodes.c.workflow_uid == uid))
            if sqlite_rows:
                conn.exec_driver_sql(_SQLITE_UPSERT, sqlite_rows)
            if batch:
                # executemany of one cached statement: compiled once, not once per batch size
                conn.execute(upsert, batch)
            if workflow:
                if self._db.sqlite:
                    _WORKFLOWS.update(driver_cursor(conn), workflow, {"uid": uid}, bump="resource_version")
                else:
                    conn.execute(_UPDATE_WORKFLOW, {**workflow, "uid_": uid})
            _add_events(conn, events)

        await self._db.write(work)

    @property
    def _upsert(self) -> Any:
        if self._upsert_stmt is None:
            dialect = postgresql if self._dialect == "postgresql" else sqlite
            stmt = dialect.insert(nodes)
            self._upsert_stmt = stmt.on_conflict_do_update(
                index_elements=[nodes.c.workflow_uid, nodes.c.node_id],
                set_={"phase": stmt.excluded.phase, "data": stmt.excluded.data},
            )
        return self._upsert_stmt

    async def load_nodes(self, uid: str) -> dict[str, NodeStatus]:
        query = sa.select(nodes.c.data).where(nodes.c.workflow_uid == uid)
        rows = await self._db.scan(lambda conn: conn.execute(query).all())
        loaded = (NodeStatus.model_validate(row.data) for row in rows)
        return {n.id: n for n in loaded}

    async def page_nodes(
        self, uid: str, *, phases: Collection[str] | None = None, after: str | None = None, limit: int = 500
    ) -> list[NodeStatus]:
        """Up to ``limit`` nodes in node-id order, after the id ``after``: a page costs an index range,
        however many nodes the workflow has."""
        query = sa.select(nodes.c.data).where(nodes.c.workflow_uid == uid)
        if phases:
            query = query.where(nodes.c.phase.in_(list(phases)))
        if after:
            query = query.where(nodes.c.node_id > after)
        query = query.order_by(nodes.c.node_id).limit(limit)
        rows = await self._db.scan(lambda conn: conn.execute(query).all())
        return [NodeStatus.model_validate(row.data) for row in rows]

    async def count_nodes(self, uid: str) -> dict[str, int]:
        query = (
            sa.select(nodes.c.phase, sa.func.count())
            .where(nodes.c.workflow_uid == uid)
            .group_by(nodes.c.phase)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return {phase: count for phase, count in rows}

    # -- outbox -----------------------------------------------------------------------------

    async def pending_events(self, limit: int = 500) -> list[OutboxEvent]:
        if self._db.sqlite:
            found = await self._db.read(lambda conn: _OUTBOX.select(driver_cursor(conn), {}, order_by="seq", limit=limit))
            return [OutboxEvent.model_validate(row) for row in found]
        query = sa.select(outbox).order_by(outbox.c.seq).limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [OutboxEvent.model_validate(row._asdict()) for row in rows]

    async def remove_events(self, ids: Sequence[str]) -> None:
        if ids and self._db.sqlite:
            await self._db.write(lambda conn: _OUTBOX.delete(driver_cursor(conn), "id", ids))
        elif ids:
            query = outbox.delete().where(outbox.c.id.in_(list(ids)))
            await self._db.write(lambda conn: conn.execute(query))

    # -- other resources --------------------------------------------------------------------

    async def put_resource(self, record: ResourceRecord, *, create_only: bool = False) -> ResourceRecord:
        """Create, or replace the manifest keeping uid and creation time (``eventflow apply``)."""
        key = (
            resources.c.kind == record.kind,
            resources.c.namespace == record.namespace,
            resources.c.name == record.name,
        )

        def work(conn: sa.Connection) -> ResourceRecord:
            existing = conn.execute(sa.select(resources).where(*key)).first()
            if existing is None:
                conn.execute(resources.insert().values(**record.model_dump()))
                return record
            if create_only:
                raise AlreadyExists(record.kind, record.namespace, record.name)
            version = existing.resource_version + 1
            conn.execute(
                resources.update().where(*key).values(manifest=record.manifest, resource_version=version)
            )
            return record.model_copy(
                update={"uid": existing.uid, "created_at": existing.created_at, "resource_version": version}
            )

        return await self._db.write(work)

    async def get_resource(self, kind: str, namespace: str, name: str) -> ResourceRecord | None:
        if self._db.sqlite:
            where = {"kind": kind, "namespace": namespace, "name": name}
            found = await self._db.read(lambda conn: _RESOURCES.select(driver_cursor(conn), where))
            return ResourceRecord.model_validate(found[0]) if found else None
        params = {"kind_": kind, "namespace_": namespace, "name_": name}
        row = await self._db.read(lambda conn: conn.execute(_GET_RESOURCE, params).first())
        return ResourceRecord.model_validate(row._asdict()) if row else None

    async def list_resources(self, kind: str, namespace: str | None = None) -> list[ResourceRecord]:
        query = sa.select(resources).where(resources.c.kind == kind).order_by(resources.c.name)
        if namespace is not None:
            query = query.where(resources.c.namespace == namespace)
        rows = await self._db.scan(lambda conn: conn.execute(query).all())
        return [ResourceRecord.model_validate(row._asdict()) for row in rows]

    async def delete_resource(self, kind: str, namespace: str, name: str) -> bool:
        query = resources.delete().where(
            resources.c.kind == kind, resources.c.namespace == namespace, resources.c.name == name
        )
        return await self._db.write(lambda conn: bool(conn.execute(query).rowcount))


    # -- the archive ----------------------------------------------------------------------------

    async def archive_workflow(self, uid: str, labels: dict[str, str]) -> bool:
        """Copy a finished workflow and its nodes into the archive (again: replaced), adding ``labels``."""
        stamp = now()

        def work(conn: sa.Connection) -> bool:
            row = conn.execute(sa.select(workflows).where(workflows.c.uid == uid)).first()
            if row is None:
                return False
            node_rows = conn.execute(sa.select(nodes.c.node_id, nodes.c.data).where(nodes.c.workflow_uid == uid)).all()
            values = {k: getattr(row, k) for k in ("uid", "namespace", "name", "phase", "message", "created_at", "started_at", "finished_at", "annotations", "manifest", "status")}
            values.update(labels={**row.labels, **labels}, archived_at=stamp, nodes={r.node_id: r.data for r in node_rows})
            conn.execute(archived.delete().where(archived.c.uid == uid))
            conn.execute(archived.insert().values(**values))
            return True

        return await self._db.write(work)

    async def list_archived(
        self,
        namespace: str | None = None,
        *,
        name_prefix: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        with_nodes: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ArchivedRecord]:
        """Newest first (by creation), ``limit``/``offset`` in SQL. Label selection is the caller's
        (selectors are richer than SQL here): a caller that selects by label pages after selecting."""
        columns = [c for c in archived.c if with_nodes or c.name != "nodes"]
        query = _archived_where(sa.select(*columns), namespace, name_prefix, created_after, created_before)
        query = query.order_by(archived.c.created_at.desc(), archived.c.name).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        rows = await self._db.scan(lambda conn: conn.execute(query).all())
        return [ArchivedRecord.model_validate(row._asdict()) for row in rows]

    async def count_archived(
        self,
        namespace: str | None = None,
        *,
        name_prefix: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> int:
        query = _archived_where(sa.select(sa.func.count()).select_from(archived), namespace, name_prefix, created_after, created_before)
        return int(await self._db.scan(lambda conn: conn.execute(query).scalar()) or 0)

    async def get_archived(self, uid: str) -> ArchivedRecord | None:
        query = sa.select(archived).where(archived.c.uid == uid)
        row = await self._db.scan(lambda conn: conn.execute(query).first())
        return ArchivedRecord.model_validate(row._asdict()) if row else None

    async def delete_archived(self, uid: str) -> bool:
        query = archived.delete().where(archived.c.uid == uid)
        return await self._db.write(lambda conn: bool(conn.execute(query).rowcount))

    async def delete_archived_before(self, cutoff: datetime) -> int:
        """archiveTTL: drop archived workflows that finished before ``cutoff``."""
        query = archived.delete().where(archived.c.finished_at < cutoff)
        return await self._db.write(lambda conn: int(conn.execute(query).rowcount))

    # -- sensor history -----------------------------------------------------------------------

    async def record_firings(self, records: Sequence[FiringRecord]) -> None:
        """Insert or replace (a firing retried after a failure keeps one row, the latest outcome)."""
        if not records:
            return
        rows = [dict(r) for r in records]  # its fields as they are: model_dump costs ~40 µs a row here
        keys = [r.key for r in records]

        def work(conn: sa.Connection) -> None:
            if self._db.sqlite:  # REPLACE: the row of the same key goes, as with the delete below
                _FIRINGS.insert(driver_cursor(conn), rows, verb="INSERT OR REPLACE")
                return
            conn.execute(firings.delete().where(firings.c.key.in_(keys)))
            conn.execute(firings.insert(), rows)

        await self._db.write(work)

    async def firing_outcome(self, key: str) -> str | None:
        query = sa.select(firings.c.outcome).where(firings.c.key == key)
        return await self._db.read(lambda conn: conn.execute(query).scalar())

    async def list_firings(
        self, namespace: str, sensor: str, *, limit: int = 100, trigger: str | None = None, event_id: str | None = None
    ) -> list[FiringRecord]:
        """Newest first. ``event_id`` keeps the firings that used that event."""
        query = (
            sa.select(firings)
            .where(firings.c.namespace == namespace, firings.c.sensor == sensor)
            .order_by(firings.c.fired_at.desc())
        )
        if trigger is not None:
            query = query.where(firings.c.trigger == trigger)
        if event_id is None:
            query = query.limit(limit)
        rows = await self._db.scan(lambda conn: conn.execute(query).all())
        out = [FiringRecord.model_validate(row._asdict()) for row in rows]
        if event_id is not None:
            out = [r for r in out if event_id in r.event_ids][:limit]
        return out

    async def delete_firings(self, namespace: str, sensor: str) -> int:
        query = firings.delete().where(firings.c.namespace == namespace, firings.c.sensor == sensor)
        return await self._db.write(lambda conn: int(conn.execute(query).rowcount))


# Statements of the per-transition path, built once: a Core statement built per call costs more
# to construct and to key for SQLAlchemy's compiled cache (~1 ms for the workflow update on this
# machine) than the database takes to run it.
_UPDATE_WORKFLOW = (
    workflows.update()
    .where(workflows.c.uid == sa.bindparam("uid_"))
    .values(resource_version=workflows.c.resource_version + 1)
)  # the changed columns come as parameters of each execute
_GET_WORKFLOW = sa.select(workflows).where(
    workflows.c.namespace == sa.bindparam("namespace_"), workflows.c.name == sa.bindparam("name_")
)
_GET_RESOURCE = sa.select(resources).where(
    resources.c.kind == sa.bindparam("kind_"),
    resources.c.namespace == sa.bindparam("namespace_"),
    resources.c.name == sa.bindparam("name_"),
)
_INSERT_EVENTS_POSTGRES = postgresql.insert(outbox).on_conflict_do_nothing(index_elements=["id"])

_WORKFLOWS, _OUTBOX, _RESOURCES, _FIRINGS = (DirectTable(t) for t in (workflows, outbox, resources, firings))

_SQLITE_UPSERT = (
    f"INSERT INTO {nodes.name} (workflow_uid, node_id, phase, data) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (workflow_uid, node_id) DO UPDATE SET phase = excluded.phase, data = excluded.data"
)


def _archived_where(query: Any, namespace: str | None, name_prefix: str | None, after: datetime | None, before: datetime | None) -> Any:
    if namespace:
        query = query.where(archived.c.namespace == namespace)
    if name_prefix:
        # The range lets an index on name narrow the rows; startswith keeps the answer exact whatever
        # the database's collation does with the range.
        query = query.where(archived.c.name >= name_prefix, archived.c.name < name_prefix + "\U0010ffff")
        query = query.where(archived.c.name.startswith(name_prefix, autoescape=True))
    if after is not None:
        query = query.where(archived.c.created_at >= after)
    if before is not None:
        query = query.where(archived.c.created_at <= before)
    return query


def _add_events(conn: sa.Connection, events: Sequence[OutboxEvent]) -> None:
    if events:
        # A transition retried after a lost connection may already have committed: its events
        # (unique ids) are not inserted twice.
        rows = [e.model_dump(exclude={"seq"}) for e in events]
        if conn.dialect.name == "sqlite":
            _OUTBOX.insert(driver_cursor(conn), rows, suffix="ON CONFLICT (id) DO NOTHING")
        else:
            conn.execute(_INSERT_EVENTS_POSTGRES, rows)

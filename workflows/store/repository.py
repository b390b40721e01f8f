"""The workflow store: every transition is committed here before the scheduler acts on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from workflows.errors import WorkflowError
from workflows.status import NodeStatus, WorkflowPhase, now
from workflows.store.schema import migrate, nodes, outbox, resources, workflows

__all__ = ["AlreadyExists", "OutboxEvent", "ResourceRecord", "WorkflowRecord", "WorkflowStore"]


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


class ResourceRecord(BaseModel):
    kind: str
    namespace: str
    name: str
    uid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    manifest: dict[str, Any]
    created_at: datetime = Field(default_factory=now)
    resource_version: int = 1

    _aware = field_validator("created_at")(classmethod(lambda cls, v: _utc(v)))


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


class WorkflowStore:
    """Async access to workflows, nodes, stored resources and the lifecycle outbox."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._upsert_stmt: Any = None
        if self._dialect == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)

    def __repr__(self) -> str:
        return f"<WorkflowStore {self._dialect}>"

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(migrate)

    # -- workflows --------------------------------------------------------------------------

    async def create_workflow(self, record: WorkflowRecord, events: Sequence[OutboxEvent] = ()) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(workflows.insert().values(**record.model_dump()))
                await self._add_events(conn, events)
        except IntegrityError:
            raise AlreadyExists("workflow", record.namespace, record.name) from None

    async def get_workflow(self, namespace: str, name: str) -> WorkflowRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(workflows).where(workflows.c.namespace == namespace, workflows.c.name == name))
            ).first()
        return WorkflowRecord.model_validate(row._asdict()) if row else None

    async def get_workflow_by_uid(self, uid: str) -> WorkflowRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(workflows).where(workflows.c.uid == uid))).first()
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
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
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

    async def unfinished_workflows(self) -> list[WorkflowRecord]:
        return await self.list_workflows(phases=[WorkflowPhase.PENDING, WorkflowPhase.RUNNING])

    async def delete_workflow(self, uid: str) -> bool:
        async with self.engine.begin() as conn:
            await conn.execute(nodes.delete().where(nodes.c.workflow_uid == uid))
            result = await conn.execute(workflows.delete().where(workflows.c.uid == uid))
        return bool(result.rowcount)

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
        async with self.engine.begin() as conn:
            if replace_nodes:
                await conn.execute(nodes.delete().where(nodes.c.workflow_uid == uid))
            batch = [{"workflow_uid": uid, "node_id": n.id, "phase": n.phase.value, "data": n.to_json()} for n in node_updates]
            if batch:
                # executemany of one cached statement: compiled once, not once per batch size
                await conn.execute(self._upsert, batch)
            if workflow:
                unknown = set(workflow) - set(_WF_FIELDS)
                if unknown:
                    raise ValueError(f"not workflow columns: {sorted(unknown)}")
                await conn.execute(
                    workflows.update()
                    .where(workflows.c.uid == uid)
                    .values(**workflow, resource_version=workflows.c.resource_version + 1)
                )
            await self._add_events(conn, events)

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
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(nodes.c.data).where(nodes.c.workflow_uid == uid))).all()
        loaded = (NodeStatus.model_validate(row.data) for row in rows)
        return {n.id: n for n in loaded}

    async def count_nodes(self, uid: str) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(nodes.c.phase, sa.func.count()).where(nodes.c.workflow_uid == uid).group_by(nodes.c.phase)
                )
            ).all()
        return {phase: count for phase, count in rows}

    # -- outbox -----------------------------------------------------------------------------

    async def _add_events(self, conn: AsyncConnection, events: Sequence[OutboxEvent]) -> None:
        if events:
            await conn.execute(outbox.insert(), [e.model_dump(exclude={"seq"}) for e in events])

    async def pending_events(self, limit: int = 500) -> list[OutboxEvent]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(outbox).order_by(outbox.c.seq).limit(limit))).all()
        return [OutboxEvent.model_validate(row._asdict()) for row in rows]

    async def remove_events(self, ids: Sequence[str]) -> None:
        if ids:
            async with self.engine.begin() as conn:
                await conn.execute(outbox.delete().where(outbox.c.id.in_(list(ids))))

    # -- other resources --------------------------------------------------------------------

    async def put_resource(self, record: ResourceRecord, *, create_only: bool = False) -> ResourceRecord:
        """Create, or replace the manifest keeping uid and creation time (``eventflow apply``)."""
        async with self.engine.begin() as conn:
            key = (resources.c.kind == record.kind, resources.c.namespace == record.namespace, resources.c.name == record.name)
            existing = (await conn.execute(sa.select(resources).where(*key))).first()
            if existing is None:
                await conn.execute(resources.insert().values(**record.model_dump()))
                return record
            if create_only:
                raise AlreadyExists(record.kind, record.namespace, record.name)
            version = existing.resource_version + 1
            await conn.execute(resources.update().where(*key).values(manifest=record.manifest, resource_version=version))
            return record.model_copy(
                update={"uid": existing.uid, "created_at": existing.created_at, "resource_version": version}
            )

    async def get_resource(self, kind: str, namespace: str, name: str) -> ResourceRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(resources).where(
                        resources.c.kind == kind, resources.c.namespace == namespace, resources.c.name == name
                    )
                )
            ).first()
        return ResourceRecord.model_validate(row._asdict()) if row else None

    async def list_resources(self, kind: str, namespace: str | None = None) -> list[ResourceRecord]:
        query = sa.select(resources).where(resources.c.kind == kind).order_by(resources.c.name)
        if namespace is not None:
            query = query.where(resources.c.namespace == namespace)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ResourceRecord.model_validate(row._asdict()) for row in rows]

    async def delete_resource(self, kind: str, namespace: str, name: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                resources.delete().where(
                    resources.c.kind == kind, resources.c.namespace == namespace, resources.c.name == name
                )
            )
        return bool(result.rowcount)

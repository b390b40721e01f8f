"""Tables of the workflow store and their versioned migrations (SQLite and Postgres alike).

Nodes live in their own rows so a node transition writes one row, not the whole workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["SCHEMA_VERSION", "archived", "firings", "metadata", "migrate", "nodes", "outbox", "resources", "workflows"]

metadata = sa.MetaData()

def _workflow_columns() -> list[sa.Column[Any]]:
    """A workflow run's own columns, in the live table and the archive alike (fresh objects per table)."""
    return [
        sa.Column("uid", sa.String(64), primary_key=True),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("annotations", sa.JSON, nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),  # metadata + spec as submitted (after defaults)
        sa.Column("status", sa.JSON, nullable=False),  # workflow-level status fields except nodes
    ]


workflows = sa.Table(
    "ef_workflows",
    metadata,
    *_workflow_columns(),
    sa.Column("resource_version", sa.Integer, nullable=False, default=1),
    sa.UniqueConstraint("namespace", "name", name="ef_workflows_ns_name"),
)
sa.Index("ef_workflows_phase", workflows.c.phase)

nodes = sa.Table(
    "ef_nodes",
    metadata,
    sa.Column("workflow_uid", sa.String(64), sa.ForeignKey("ef_workflows.uid", ondelete="CASCADE"), primary_key=True),
    sa.Column("node_id", sa.String(300), primary_key=True),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

outbox = sa.Table(
    "ef_outbox",
    metadata,
    # Lifecycle events committed with the transition that caused them; published afterwards.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

resources = sa.Table(
    "ef_resources",
    metadata,
    # Stored kinds other than Workflow: WorkflowTemplate, ClusterWorkflowTemplate, ConfigMap, ...
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("namespace", sa.String(253), primary_key=True),  # "" for cluster-scoped kinds
    sa.Column("name", sa.String(253), primary_key=True),
    sa.Column("uid", sa.String(64), nullable=False),
    sa.Column("manifest", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resource_version", sa.Integer, nullable=False, default=1),
)

firings = sa.Table(
    "ef_sensor_firings",
    metadata,
    # One row per trigger firing of a sensor (its history), keyed by the firing's idempotency key.
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("sensor", sa.String(253), nullable=False),
    sa.Column("trigger", sa.String(253), nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("event_ids", sa.JSON, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),  # events, parameters, result, error, latency
)
sa.Index("ef_sensor_firings_sensor", firings.c.namespace, firings.c.sensor, firings.c.fired_at)

archived = sa.Table(
    "ef_archived_workflows",
    metadata,
    # Finished workflows kept after the live row is gone (Argo's argo_archived_workflows): the whole
    # run, nodes included, in one row; queried by namespace, name, labels and time.
    *_workflow_columns(),
    sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("nodes", sa.JSON, nullable=False),  # node id -> node status, as the API shows it
)
# Listings are newest first, in a namespace or across all; archiveTTL goes by finishedAt.
sa.Index("ef_archived_ns_created", archived.c.namespace, archived.c.created_at)
sa.Index("ef_archived_created", archived.c.created_at)
sa.Index("ef_archived_finished", archived.c.finished_at)
sa.Index("ef_archived_name", archived.c.name)  # name prefixes, as a range

leases = sa.Table(
    "ef_leases",
    metadata,
    # Who holds what until when: one scheduler among the servers that share this database.
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

schema_version = sa.Table(
    "ef_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)


def _v1(conn: Connection) -> None:
    for table in (workflows, nodes, outbox, resources):
        table.create(conn, checkfirst=True)


def _v2(conn: Connection) -> None:
    firings.create(conn, checkfirst=True)


def _v3(conn: Connection) -> None:
    archived.create(conn, checkfirst=True)


def _v4(conn: Connection) -> None:
    leases.create(conn, checkfirst=True)


# Append-only: a released migration is never edited, a new one is added.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [(1, _v1), (2, _v2), (3, _v3), (4, _v4)]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(conn: Connection) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`; returns the version found before."""
    if conn.dialect.name == "postgresql":
        # Servers started together on one database migrate one after the other, not into each other.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7411)"))
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
    for version, step in MIGRATIONS:
        if version > current:
            step(conn)
            conn.execute(schema_version.insert().values(version=version))
    return current

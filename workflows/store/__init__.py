"""The durable store of workflows, nodes, stored resources and lifecycle events."""

from workflows.store.repository import (
    AlreadyExists,
    ArchivedRecord,
    FiringRecord,
    OutboxEvent,
    ResourceRecord,
    WorkflowRecord,
    WorkflowStore,
    store_outage,
)

__all__ = ["AlreadyExists", "ArchivedRecord", "FiringRecord", "OutboxEvent", "ResourceRecord", "WorkflowRecord", "WorkflowStore", "store_outage"]

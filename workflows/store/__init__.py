"""The durable store of workflows, nodes, stored resources and lifecycle events."""

from workflows.store.repository import AlreadyExists, OutboxEvent, ResourceRecord, WorkflowRecord, WorkflowStore

__all__ = ["AlreadyExists", "OutboxEvent", "ResourceRecord", "WorkflowRecord", "WorkflowStore"]

"""Workflow lifecycle events: built from committed state, stored in the outbox, published after.

An event's id is ``<uid>.<phase>``: if the server dies after committing a transition but before
publishing, the event is published again at start with the same id, and JetStream (and any
consumer) deduplicates it.
"""

from __future__ import annotations

from typing import Any

from eventbus import CloudEvent, JetStreamBus, Subjects
from workflows.status import NodeStatus, NodeType, WorkflowPhase
from workflows.store import OutboxEvent, WorkflowRecord, WorkflowStore

__all__ = ["DELETED", "OutboxPublisher", "deleted_event", "lifecycle_event", "progress"]

# Set by the sensors' workflow triggers (Argo Events' annotation namespace).
TRIGGER_EVENTS_ANNOTATION = "events.argoproj.io/event-ids"


def progress(nodes: dict[str, NodeStatus]) -> str:
    pods = [n for n in nodes.values() if n.type == NodeType.POD]
    return f"{sum(1 for n in pods if n.phase.done)}/{len(pods)}"


DELETED = "Deleted"  # the event name of a deletion; not a phase: data.phase keeps the last one


def lifecycle_event(subjects: Subjects, record: WorkflowRecord, phase: WorkflowPhase, nodes: dict[str, NodeStatus]) -> OutboxEvent:
    return _event(subjects, record, phase.value, phase.value, nodes)


def deleted_event(subjects: Subjects, record: WorkflowRecord, nodes: dict[str, NodeStatus]) -> OutboxEvent:
    """The workflow was deleted: event name ``Deleted``, its last phase still in ``data.phase``."""
    return _event(subjects, record, DELETED, record.phase.value, nodes)


def _event(subjects: Subjects, record: WorkflowRecord, name: str, phase: str, nodes: dict[str, NodeStatus]) -> OutboxEvent:
    outputs = record.status.get("outputs") or {}
    data: dict[str, Any] = {
        "name": record.name,
        "namespace": record.namespace,
        "uid": record.uid,
        "phase": phase,
        "message": record.message,
        "labels": record.labels,
        "annotations": record.annotations,
        "startedAt": record.started_at.isoformat() if record.started_at else None,
        "finishedAt": record.finished_at.isoformat() if record.finished_at else None,
        "progress": progress(nodes),
        "outputs": outputs,
    }
    if name == DELETED:
        data["deleted"] = True
    triggered_by = record.annotations.get(TRIGGER_EVENTS_ANNOTATION)
    if triggered_by:
        # Correlation: the events a sensor created this workflow from (the ids webhooks answered with).
        data["eventIds"] = triggered_by.split(",")
    # A retried workflow runs again under the same uid: its events need ids of their own, or the
    # outbox and the bus's dedupe would take them for the first run's.
    run = int(record.status.get("retries") or 0)
    event_id = f"{record.uid}.{name}" if run == 0 or name == DELETED else f"{record.uid}.retry{run}.{name}"
    envelope = CloudEvent(
        id=event_id,
        source=f"/eventflow/workflows/{record.namespace}",
        type=f"io.eventflow.workflow.{name.lower()}",
        subject=record.name,
        namespace=record.namespace,
        eventsource="workflows",
        eventname=name,
        data=data,
    )
    return OutboxEvent(
        id=event_id,
        subject=subjects.workflow(record.namespace, record.name, name),
        payload=envelope.model_dump(mode="json", exclude_none=True),
    )


class OutboxPublisher:
    """Moves committed lifecycle events from the store's outbox onto the bus."""

    def __init__(self, store: WorkflowStore, bus: JetStreamBus | None) -> None:
        self.store = store
        self.bus = bus
        self.published = 0

    async def flush(self) -> int:
        """Publish everything pending; returns how many were published. Failed ones stay."""
        if self.bus is None:
            return 0
        pending = await self.store.pending_events()
        if not pending:
            return 0
        items = [(e.subject, CloudEvent.model_validate(e.payload)) for e in pending]
        results = await self.bus.publish_many(items)
        done = [e.id for e, r in zip(pending, results, strict=True) if not isinstance(r, Exception)]
        await self.store.remove_events(done)
        self.published += len(done)
        return len(done)

"""Workflow and node status, shaped like Argo's ``status`` / ``status.nodes`` JSON.

Node ids follow Argo: the root node's id is the workflow name; every other node's id is
``<workflow name>-<fnv32a(node name)>`` so ids are stable across restarts and retries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "NodePhase",
    "NodeStatus",
    "NodeType",
    "OutputParameter",
    "NodeOutputs",
    "WorkflowPhase",
    "node_id",
    "now",
]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class WorkflowPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"

    @property
    def done(self) -> bool:
        return self in (WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED, WorkflowPhase.ERROR)


class NodePhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    SKIPPED = "Skipped"
    FAILED = "Failed"
    ERROR = "Error"
    OMITTED = "Omitted"

    @property
    def done(self) -> bool:
        # Identity tests: this runs for every node of every walk.
        return self is not NodePhase.PENDING and self is not NodePhase.RUNNING

    @property
    def ok(self) -> bool:
        """Argo's "fulfilled and not failed": Succeeded, Skipped or Omitted."""
        return self in (NodePhase.SUCCEEDED, NodePhase.SKIPPED, NodePhase.OMITTED)


class NodeType(StrEnum):
    POD = "Pod"
    STEPS = "Steps"
    STEP_GROUP = "StepGroup"
    DAG = "DAG"
    TASK_GROUP = "TaskGroup"
    RETRY = "Retry"
    SKIPPED = "Skipped"
    SUSPEND = "Suspend"
    CONTAINER = "Container"  # one container of a containerSet, a child of its Pod node


def _fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode():
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def node_id(workflow_name: str, node_name: str) -> str:
    """Argo's node id: the workflow name for the root node, else name-fnv32a(node name)."""
    return workflow_name if node_name == workflow_name else f"{workflow_name}-{_fnv32a(node_name)}"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class OutputParameter(_Model):
    name: str
    value: str | None = None


class NodeOutputs(_Model):
    parameters: list[OutputParameter] = Field(default_factory=list)
    # Each {name, path, key | raw | <location>, archive, kind, size}: see workflows.operator.artifacts.
    artifacts: list[dict[str, Any]] | None = None
    result: str | None = None
    exit_code: str | None = Field(default=None, alias="exitCode")

    def artifact(self, name: str) -> dict[str, Any] | None:
        return next((a for a in self.artifacts or () if a.get("name") == name), None)

    def parameter(self, name: str) -> str | None:
        for p in self.parameters:
            if p.name == name:
                return p.value
        return None


class NodeStatus(_Model):
    """One node of ``status.nodes``; serialised by alias it is Argo's NodeStatus JSON."""

    id: str
    name: str
    display_name: str = Field(alias="displayName")
    type: NodeType
    template_name: str | None = Field(default=None, alias="templateName")
    template_scope: str | None = Field(default=None, alias="templateScope")
    phase: NodePhase = NodePhase.PENDING
    boundary_id: str | None = Field(default=None, alias="boundaryID")
    message: str | None = None
    started_at: datetime | None = Field(default=None, alias="startedAt")
    finished_at: datetime | None = Field(default=None, alias="finishedAt")
    progress: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: NodeOutputs | None = None
    children: list[str] = Field(default_factory=list)
    outbound_nodes: list[str] = Field(default_factory=list, alias="outboundNodes")
    node_flag: dict[str, bool] | None = Field(default=None, alias="nodeFlag")  # {"hooked": true} on hook nodes
    # Argo's {"hit": bool, "key": str, "cacheName": str} on nodes of memoized templates.
    memoization_status: dict[str, Any] | None = Field(default=None, alias="memoizationStatus")
    # Argo's {"waiting": <lock name>} on a node that waits for a template-level semaphore or mutex.
    synchronization_status: dict[str, str] | None = Field(default=None, alias="synchronizationStatus")
    # eventflow's own bookkeeping, kept beside Argo's fields (Argo clients ignore unknown keys).
    pid: int | None = None
    log_path: str | None = Field(default=None, alias="logPath")
    attempt: int = 0

    @property
    def hooked(self) -> bool:
        """A lifecycle/exit hook's node: not an attempt, not aggregated, not a step's own work."""
        return bool(self.node_flag and self.node_flag.get("hooked"))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)

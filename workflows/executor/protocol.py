"""What the scheduler and remote workers say to each other over the bus (``eventbus.tasks``).

A task is one container or script step, already resolved (a :class:`ProcessSpec`). Everything a worker
reports names the task it is about, so a report of an earlier dispatch of the same node (a worker that
was given up for lost and answered late) is told apart and ignored.

``PROTOCOL`` changes whenever a message changes shape; a worker refuses (puts back, with the reason)
a task of another protocol, so a mixed fleet during an upgrade loses nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from workflows.executor.spec import ProcessSpec

__all__ = [
    "PROTOCOL",
    "Heartbeat",
    "Lost",
    "Refused",
    "Started",
    "Task",
    "TaskResult",
    "spec_from_json",
    "spec_to_json",
]

PROTOCOL = 1
TASK_TYPE = "io.eventflow.task"
REPORT_TYPE = "io.eventflow.task.report"

# What only the server's host has: a step with volumes cannot run on a worker. (Input artifacts travel
# apart, through the task files store: ``Task.inputs``.)
HOST_ONLY = ("mounts",)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Task(_Message):
    """One step for a worker. ``deadline_at`` is absolute (epoch seconds): time spent queued counts."""

    protocol: int
    task: str  # this dispatch of the node: "<node id>/<nonce>"
    node: str
    queue: str
    spec: dict[str, Any]
    deadline_at: float | None = None
    sent_by: str = ""
    # Input artifacts: {"key": object in the task files store, "path": where in the node, "tar": the
    # object is a tar of a directory}.
    inputs: list[dict[str, Any]] = []


class Started(_Message):
    task: str
    worker: str


class TaskResult(_Message):
    task: str
    worker: str
    exit_code: int | None
    result: str
    outputs: dict[str, str | None]
    error: str | None
    started_at: datetime
    finished_at: datetime
    log_bytes: int
    # Output artifacts as CollectedArtifact JSON, ``staged`` naming an object in the task files store.
    artifacts: dict[str, dict[str, Any]] = {}


class Refused(_Message):
    """The worker will not run the task: ``final`` when no worker could (the scheduler fails the
    node), else it was put back on the queue for another worker."""

    task: str
    worker: str
    reason: str
    final: bool = False


class Lost(_Message):
    """The worker stopped while the step ran (it was shut down): the step did not finish."""

    task: str
    worker: str
    reason: str


class Heartbeat(_Message):
    worker: str
    queue: str
    protocol: int
    version: str
    concurrency: int
    running: dict[str, str]  # node id -> task
    host: str = ""
    pid: int = 0


def spec_to_json(spec: ProcessSpec) -> dict[str, Any]:
    """The spec as JSON, without its staged input files (they travel as ``Task.inputs``); refuses
    what only the server's host has (its volumes)."""
    data = dataclasses.asdict(spec)
    data.pop("copy_in")
    for name in HOST_ONLY:
        if data.pop(name):
            raise ValueError(name)
    return data


def spec_from_json(data: dict[str, Any], copy_in: tuple[tuple[str, str], ...] = ()) -> ProcessSpec:
    """Raises ``TypeError``/``ValueError`` on a spec this version does not understand."""
    fields = {f.name for f in dataclasses.fields(ProcessSpec)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown spec fields {unknown}")
    values = dict(data)
    values["output_paths"] = tuple(values.get("output_paths") or ())
    values["output_artifacts"] = tuple(tuple(a) for a in values.get("output_artifacts") or ())
    values["copy_in"] = copy_in
    for name in HOST_ONLY:
        values.pop(name, None)
    return ProcessSpec(**values)

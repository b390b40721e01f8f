"""Workflow builders and node inspection for the lifecycle tests (exit handlers, hooks, deadlines...)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support.poll import eventually
from tests.workflows.executor.helpers import gone
from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, NodeStatus, NodeType
from workflows.store import WorkflowRecord

IMAGE = "alpine:3.20"
# Argo's messages (the kubelet's for a pod past activeDeadlineSeconds, the controller's otherwise).
POD_DEADLINE = "Pod was active on the node longer than the specified deadline"
STEP_DEADLINE = "Step exceeded its deadline"
# Prints the outcome an exit handler sees; the JSON list of failures is on its own line.
REPORT_STATUS = 'echo "status={{workflow.status}}"; printf "%s\\n" "$FAILURES"'


def workflow(name: str, spec: dict[str, Any]) -> Workflow:
    return Workflow.model_validate(
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": name}, "spec": spec}
    )


def sh(name: str, script: str, **fields: Any) -> dict[str, Any]:
    """A container template running ``sh -c script``; ``fields`` are other template fields."""
    return {"name": name, "container": {"image": IMAGE, "command": ["sh", "-c"], "args": [script]}, **fields}


def reporter(name: str) -> dict[str, Any]:
    """An exit handler that prints ``status=<workflow.status>`` and then ``workflow.failures``."""
    tmpl = sh(name, REPORT_STATUS)
    tmpl["container"]["env"] = [{"name": "FAILURES", "value": "{{workflow.failures}}"}]
    return tmpl


def sleeper(name: str, shm: Path, **fields: Any) -> dict[str, Any]:
    """``sleep 30`` under a shell; both pids are written to ``shm`` before it sleeps."""
    script = f"echo $$ > {shm}/{name}.sh.pid; sleep 30 & echo $! > {shm}/{name}.sleep.pid; wait"
    return sh(name, script, **fields)


def steps(*groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "main", "steps": [list(g) for g in groups]}


async def run(
    scheduler: Scheduler, wf: Workflow, timeout: float = 30
) -> tuple[WorkflowRecord, dict[str, NodeStatus], float]:
    """Submit, wait until done; the final record, its nodes and the seconds it took."""
    began = time.monotonic()
    record = await scheduler.submit(wf)
    final = await scheduler.wait_done(record.namespace, record.name, timeout)
    took = time.monotonic() - began
    assert final.phase.done, f"{record.name} still {final.phase.value} after {timeout:.0f}s"
    _, nodes = await scheduler.get(record.namespace, record.name)
    return final, nodes, took


def find(nodes: dict[str, NodeStatus], name: str) -> NodeStatus | None:
    return next((n for n in nodes.values() if n.name == name), None)


def node(nodes: dict[str, NodeStatus], name: str) -> NodeStatus:
    found = find(nodes, name)
    assert found is not None, f"no node {name!r}; nodes: {sorted(n.name for n in nodes.values())}"
    return found


def log_of(n: NodeStatus) -> str:
    assert n.log_path, f"node {n.name} has no log"
    return Path(n.log_path).read_text()


def pids(shm: Path, name: str) -> list[int]:
    """The shell and sleep pids a :func:`sleeper` node wrote."""
    return [int((shm / f"{name}.{kind}.pid").read_text()) for kind in ("sh", "sleep")]


async def assert_processes_gone(shm: Path, name: str) -> None:
    """Neither the shell nor its sleep outlives the node (a zombie awaiting its reaper is gone enough)."""
    found = pids(shm, name)
    await eventually(
        lambda: all(gone(p) for p in found),
        timeout=2,
        what=f"processes {found} of {name} to end",
    )


async def running_node(
    scheduler: Scheduler, namespace: str, name: str, kind: NodeType, timeout: float = 10
) -> NodeStatus:
    """Wait until a node of ``kind`` runs; return it."""
    seen: list[NodeStatus] = []

    async def check() -> bool:
        _, nodes = await scheduler.get(namespace, name)
        seen[:] = [n for n in nodes.values() if n.type == kind and n.phase == NodePhase.RUNNING]
        return bool(seen)

    await eventually(check, timeout=timeout, what=f"a running {kind.value} node in {name}")
    return seen[0]

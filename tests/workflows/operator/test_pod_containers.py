"""Init containers run first, in order, and can stop the main one; sidecars live as long as it does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.poll import eventually
from tests.workflows.executor.helpers import gone, needs_private_fs
from workflows.models import Workflow
from workflows.scheduler import Scheduler

pytestmark = needs_private_fs()


def _c(name: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "alpine", "command": ["sh", "-c", script], **fields}


async def _run(scheduler: Scheduler, template: dict[str, Any]) -> Any:
    spec = {
        "entrypoint": "main",
        "volumes": [{"name": "ws", "emptyDir": {}}],
        "templates": [{"name": "main", **template}],
    }
    record = await scheduler.submit(
        Workflow.model_validate({"metadata": {"generateName": "pod-"}, "spec": spec})
    )
    final = await scheduler.wait_done(record.namespace, record.name, 30)
    _, nodes = await scheduler.get(record.namespace, record.name)
    return final, nodes[record.name]


async def test_init_containers_run_in_order_with_mirrored_volumes(scheduler: Scheduler) -> None:
    final, node = await _run(
        scheduler,
        {
            "initContainers": [
                _c("one", "echo 1 > /ws/order", mirrorVolumeMounts=True),
                _c("two", "echo 2 >> /ws/order", mirrorVolumeMounts=True),
            ],
            "container": {
                "image": "alpine",
                "command": ["cat", "/ws/order"],
                "volumeMounts": [{"name": "ws", "mountPath": "/ws"}],
            },
        },
    )
    assert final.phase.value == "Succeeded"
    assert node.outputs.result.split() == ["1", "2"]


async def test_failed_init_container_fails_the_node_before_main_runs(scheduler: Scheduler, shm: Path) -> None:
    final, node = await _run(
        scheduler,
        {
            "initContainers": [_c("check", "exit 4")],
            "container": {"image": "alpine", "command": ["touch", f"{shm}/main-ran"]},
        },
    )
    assert final.phase.value == "Error"
    assert node.message == "init container check failed: Error (exit code 4)"
    assert not (shm / "main-ran").exists()


async def test_sidecar_is_stopped_when_main_ends(scheduler: Scheduler, shm: Path) -> None:
    final, _ = await _run(
        scheduler,
        {
            "sidecars": [_c("helper", f"echo $$ > {shm}/sidecar.pid; exec sleep 60")],
            "container": {
                "image": "alpine",
                "command": ["sh", "-c", f"while [ ! -s {shm}/sidecar.pid ]; do sleep 0.05; done; echo done"],
            },
        },
    )
    assert final.phase.value == "Succeeded"
    pid = int((shm / "sidecar.pid").read_text())
    await eventually(lambda: gone(pid), timeout=10, what="the sidecar to be stopped")

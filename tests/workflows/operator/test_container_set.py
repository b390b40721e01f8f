"""containerSet: containers run in dependency order as Container children of one Pod node, share the
set's volumes, and a failed container stops the ones that depend on it."""

from __future__ import annotations

from typing import Any

from tests.workflows.executor.helpers import needs_private_fs
from workflows.models import Workflow
from workflows.scheduler import Scheduler

pytestmark = needs_private_fs()


def _c(name: str, script: str, *deps: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": "alpine",
        "command": ["sh", "-c", script],
        **({"dependencies": list(deps)} if deps else {}),
    }


async def _run(
    scheduler: Scheduler, containers: list[dict[str, Any]], outputs: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    spec = {
        "entrypoint": "main",
        "volumes": [{"name": "ws", "emptyDir": {}}],
        "templates": [
            {
                "name": "main",
                "containerSet": {
                    "volumeMounts": [{"name": "ws", "mountPath": "/ws"}],
                    "containers": containers,
                },
                **({"outputs": outputs} if outputs else {}),
            }
        ],
    }
    record = await scheduler.submit(
        Workflow.model_validate({"metadata": {"generateName": "cs-"}, "spec": spec})
    )
    final = await scheduler.wait_done(record.namespace, record.name, 30)
    _, nodes = await scheduler.get(record.namespace, record.name)
    return final.phase.value, {n.display_name: n for n in nodes.values()}


async def test_containers_share_the_workspace_in_dependency_order(scheduler: Scheduler) -> None:
    phase, nodes = await _run(
        scheduler,
        [
            _c("main", "cat /ws/a /ws/b", "a", "b"),
            _c("a", "sleep 0.2; echo from-a > /ws/a"),
            _c("b", "echo from-b > /ws/b", "a"),
        ],
    )
    assert phase == "Succeeded"
    pod = next(n for n in nodes.values() if n.type.value == "Pod")
    assert sorted(nodes[c].type.value for c in ("a", "b", "main")) == ["Container"] * 3
    assert {nodes[c].id for c in ("a", "b", "main")} == set(pod.children)
    assert pod.outputs is not None and pod.outputs.result == "from-a\nfrom-b"  # main's stdout
    assert nodes["a"].finished_at <= nodes["b"].started_at  # type: ignore[operator]


async def test_a_failed_container_fails_the_pod_and_its_dependents(scheduler: Scheduler) -> None:
    phase, nodes = await _run(
        scheduler, [_c("a", "exit 3"), _c("b", "echo never", "a"), _c("c", "echo independent")]
    )
    assert phase == "Failed"
    assert (nodes["a"].phase.value, nodes["a"].message) == ("Failed", "Error (exit code 3)")
    assert (nodes["b"].phase.value, nodes["b"].message) == ("Failed", "dependency 'a' did not succeed")
    assert nodes["c"].phase.value == "Succeeded"


async def test_outputs_on_a_volume_are_read_once_every_container_has_ended(scheduler: Scheduler) -> None:
    # As Argo's wait container does: the file is written by a container that ends after main.
    # Main's own root (the base layer) is still read where main ends.
    phase, nodes = await _run(
        scheduler,
        [_c("main", "echo mine > /tmp/own"), _c("a", "sleep 0.3; echo late > /ws/out")],
        outputs={
            "parameters": [
                {"name": "out", "valueFrom": {"path": "/ws/out"}},
                {"name": "own", "valueFrom": {"path": "/tmp/own"}},
            ]
        },
    )
    assert phase == "Succeeded", nodes
    assert nodes["main"].finished_at <= nodes["a"].finished_at  # type: ignore[operator]  (whole seconds)
    pod = next(n for n in nodes.values() if n.type.value == "Pod")
    assert pod.outputs is not None
    assert {p.name: p.value for p in pod.outputs.parameters or []} == {"out": "late", "own": "mine"}


async def test_deleting_the_workflow_removes_the_files_of_every_container(scheduler: Scheduler) -> None:
    # Each container runs as its own process with its own log (<pod>-<container>.log): they go with
    # the workflow as the pod's own files do, and so does an init container's.
    from pathlib import Path

    spec = {
        "entrypoint": "main",
        "templates": [
            {
                "name": "main",
                "initContainers": [{"name": "setup", "image": "alpine", "command": ["true"]}],
                "containerSet": {"containers": [_c("main", "echo m"), _c("a", "echo a")]},
            }
        ],
    }
    record = await scheduler.submit(Workflow.model_validate({"metadata": {"generateName": "cs-"}, "spec": spec}))
    final = await scheduler.wait_done(record.namespace, record.name, 30)
    assert final.phase.value == "Succeeded"
    _, nodes = await scheduler.get(record.namespace, record.name)
    pod = next(n for n in nodes.values() if n.type.value == "Pod")
    main = next(n for n in nodes.values() if n.display_name == "main")
    work = Path(main.log_path or "").parent
    made = sorted(p.name for p in work.glob(f"{pod.id}*"))
    assert f"{pod.id}-main.log" in made and f"{pod.id}-a.log" in made, made
    await scheduler.delete(record.namespace, record.name)
    assert sorted(p.name for p in work.glob(f"{pod.id}*")) == []

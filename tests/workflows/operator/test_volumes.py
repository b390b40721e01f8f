"""Volumes: a workflow's claim is shared by its steps and removed with it; a named claim persists;
an emptyDir is the node's own; recycled roots never carry a volume (or reach into one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.workflows.executor.helpers import needs_private_fs
from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.status import NodeStatus

pytestmark = needs_private_fs()


def _sh(name: str, script: str, mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"image": "alpine", "command": ["sh", "-c", script]}
    if mounts:
        container["volumeMounts"] = mounts
    return {"name": name, "container": container}


async def _run(scheduler: Scheduler, spec: dict[str, Any]) -> tuple[str, str | None, dict[str, NodeStatus]]:
    record = await scheduler.submit(
        Workflow.model_validate({"metadata": {"generateName": "vol-"}, "spec": spec})
    )
    final = await scheduler.wait_done(record.namespace, record.name, 30)
    _, nodes = await scheduler.get(record.namespace, record.name)
    return final.phase.value, final.message, nodes


def _log(nodes: dict[str, NodeStatus], display: str) -> str:
    node = next(n for n in nodes.values() if n.display_name == display)
    return Path(node.log_path or "").read_text()


VOL = [{"name": "data", "mountPath": "/mnt/data"}]


async def test_claim_template_is_shared_by_steps_and_removed_with_the_workflow(scheduler: Scheduler) -> None:
    spec = {
        "entrypoint": "main",
        "volumeClaimTemplates": [
            {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
        ],
        "templates": [
            {
                "name": "main",
                "steps": [
                    [{"name": f"w{i}", "template": f"w{i}"} for i in range(3)],
                    [{"name": "gather", "template": "gather"}],
                ],
            },
            *(_sh(f"w{i}", f"echo {i} > /mnt/data/part-{i}", VOL) for i in range(3)),
            _sh("gather", "cat /mnt/data/part-* | sort | tr '\\n' ' '", VOL),
        ],
    }
    phase, message, nodes = await _run(scheduler, spec)
    assert phase == "Succeeded", message
    assert _log(nodes, "gather").split() == ["0", "1", "2"]  # fan-in of what parallel steps wrote
    volumes = Path(scheduler.executor.work_dir) / ".volumes"  # type: ignore[attr-defined]

    async def removed() -> bool:
        return not any(volumes.iterdir()) if volumes.exists() else True

    from tests.support.poll import eventually

    await eventually(removed, timeout=5, what="the workflow's claim to be removed")


async def test_named_claim_persists_and_recycled_roots_never_reach_it(scheduler: Scheduler) -> None:
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "keep"}}]
    write = {
        "entrypoint": "main",
        "volumes": volumes,
        "templates": [_sh("main", "echo run >> /mnt/data/log", VOL)],
    }
    # Between the writers, plain steps that scribble over /mnt and /tmp of whatever root they get.
    plain = {
        "entrypoint": "main",
        "templates": [_sh("main", "ls /mnt; rm -rf /mnt/* /tmp/*; echo x > /mnt/x")],
    }
    for _ in range(3):
        assert (await _run(scheduler, write))[0] == "Succeeded"
        phase, _, nodes = await _run(scheduler, plain)
        assert phase == "Succeeded"
        assert "data" not in _log(nodes, next(iter(n.display_name for n in nodes.values())))
    claim = Path(scheduler.executor.work_dir) / ".pvcs" / "default" / "keep"  # type: ignore[attr-defined]
    assert claim.joinpath("log").read_text().split() == ["run", "run", "run"]


async def test_empty_dir_is_a_real_mount_of_the_node_and_read_only_is_enforced(scheduler: Scheduler) -> None:
    spec = {
        "entrypoint": "main",
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "ro"}},
        ],
        "templates": [
            _sh(
                "main",
                "grep -q ' /scratch ' /proc/mounts && echo mounted; touch /data/f 2>/dev/null || echo read-only",
                [
                    {"name": "scratch", "mountPath": "/scratch"},
                    {"name": "data", "mountPath": "/data", "readOnly": True},
                ],
            )
        ],
    }
    phase, message, nodes = await _run(scheduler, spec)
    assert phase == "Succeeded", message
    assert _log(nodes, next(iter(n.display_name for n in nodes.values()))).split() == ["mounted", "read-only"]


async def test_unknown_volume_fails_the_node_with_its_name(scheduler: Scheduler) -> None:
    spec = {"entrypoint": "main", "templates": [_sh("main", "true", [{"name": "nope", "mountPath": "/x"}])]}
    phase, _, nodes = await _run(scheduler, spec)
    assert phase == "Error"
    assert next(iter(nodes.values())).message == "volumeMounts: volume 'nope' not found"


CLAIM = [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]


async def test_host_path_volume_is_bound_and_its_type_checked(scheduler: Scheduler, tmp_path: Path) -> None:
    shared = tmp_path / "host-dir"
    spec = {
        "entrypoint": "main",
        "volumes": [{"name": "h", "hostPath": {"path": str(shared), "type": "DirectoryOrCreate"}}],
        "templates": [_sh("main", "echo from-node > /host/out", [{"name": "h", "mountPath": "/host"}])],
    }
    phase, message, _ = await _run(scheduler, spec)
    assert phase == "Succeeded", message
    assert (shared / "out").read_text() == "from-node\n"  # hostPath is the host's own directory

    spec["volumes"] = [{"name": "h", "hostPath": {"path": str(shared / "out"), "type": "Directory"}}]
    phase, message, nodes = await _run(scheduler, spec)
    assert phase == "Error"
    assert f"hostPath type check failed: {shared / 'out'} is not a directory" in (message or "") + str(
        [n.message for n in nodes.values()]
    )


async def test_sub_path_cannot_leave_its_volume(scheduler: Scheduler, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    for sub in ("../../../../../../" + str(outside).lstrip("/"), "link/inner"):
        spec = {
            "entrypoint": "main",
            "volumeClaimTemplates": CLAIM,
            "templates": [
                {"name": "main", "steps": [[{"name": "plant", "template": "plant"}], [{"name": "use", "template": "use"}]]},
                # An earlier step leaves a symlink to a host dir in the shared claim...
                _sh("plant", f"ln -s {outside} /mnt/data/link", VOL),
                # ...which a later step's subPath must not follow out of the claim.
                _sh("use", "echo escaped > /mnt/x/f", [{"name": "data", "mountPath": "/mnt/x", "subPath": sub}]),
            ],
        }
        phase, _, nodes = await _run(scheduler, spec)
        use = next(n for n in nodes.values() if n.display_name == "use")
        assert phase != "Succeeded" and use.phase.value == "Error", use.message
        assert "leaves the volume" in (use.message or "")
        assert list(outside.iterdir()) == []


async def test_volume_claim_gc_on_success_keeps_a_failed_runs_claims_until_deletion(
    scheduler: Scheduler, tmp_path: Path
) -> None:
    spec = {
        "entrypoint": "main",
        "volumeClaimTemplates": CLAIM,
        "volumeClaimGC": {"strategy": "OnWorkflowSuccess"},
        "templates": [_sh("main", "echo evidence > /mnt/data/f; exit 1", VOL)],
    }
    record = await scheduler.submit(Workflow.model_validate({"metadata": {"generateName": "vcgc-"}, "spec": spec}))
    final = await scheduler.wait_done(record.namespace, record.name, 30)
    assert final.phase.value == "Failed"
    claim = Path(scheduler.executor.work_dir) / ".volumes" / record.uid / "claims" / "data"  # type: ignore[attr-defined]
    assert (claim / "f").read_text() == "evidence\n"  # kept for a look at what the failed run left
    await scheduler.delete(record.namespace, record.name)
    assert not claim.exists()

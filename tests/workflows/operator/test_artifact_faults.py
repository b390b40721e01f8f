"""Artifacts and volumes when things go wrong, through real workflows: read-only volumes, missing and
oversized outputs, unresolvable inputs, hostile keys and symlinks; and the round trips that must
survive them (directories in every archive format, an executable raw input)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.workflows.executor.helpers import needs_private_fs
from workflows.errors import LintError
from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, NodeStatus, NodeType

pytestmark = needs_private_fs()

TIMEOUT = 30


def _sh(name: str, script: str, **fields: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"image": "alpine", "command": ["sh", "-c", script]}
    if "volumeMounts" in fields:
        container["volumeMounts"] = fields.pop("volumeMounts")
    return {"name": name, "container": container, **fields}


def _claims(*names: str) -> list[dict[str, Any]]:
    return [{"metadata": {"name": n}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}} for n in names]


class Done:
    """A finished workflow: its phase and message, and its pods by display name."""

    def __init__(self, phase: str, message: str | None, nodes: dict[str, NodeStatus]) -> None:
        self.phase = phase
        self.message = message
        self.pods = {n.display_name: n for n in nodes.values() if n.type == NodeType.POD}

    @property
    def only(self) -> NodeStatus:
        """The one pod of a single-template workflow (its display name is the workflow's)."""
        (pod,) = self.pods.values()
        return pod

    def log(self, display: str) -> str:
        path = self.pods[display].log_path
        return Path(path).read_text() if path and Path(path).exists() else ""

    def describe(self) -> str:
        return "; ".join(f"{k}: {n.phase.value} {n.message!r}" for k, n in sorted(self.pods.items()))


async def _run(scheduler: Scheduler, spec: dict[str, Any], timeout: float = TIMEOUT) -> Done:
    name = f"art-{uuid.uuid4().hex[:10]}"
    record = await scheduler.submit(Workflow.model_validate({"metadata": {"name": name}, "spec": spec}))
    final = await scheduler.wait_done(record.namespace, record.name, timeout)
    assert final.phase.done, f"{name} still {final.phase.value} after {timeout:.0f}s"
    _, nodes = await scheduler.get(record.namespace, record.name)
    return Done(final.phase.value, final.message, nodes)


def _steps(*groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "main", "steps": [list(g) for g in groups]}


def _from(step: str, output: str, name: str = "in") -> dict[str, Any]:
    return {"artifacts": [{"name": name, "from": f"{{{{steps.{step}.outputs.artifacts.{output}}}}}"}]}


# -- volumes --------------------------------------------------------------------------------------


async def test_write_to_read_only_volume_fails_the_step_and_keeps_the_shared_file(
    scheduler: Scheduler,
) -> None:
    rw = [{"name": "work", "mountPath": "/w"}]
    ro = [{"name": "work", "mountPath": "/w", "readOnly": True}]
    spec = {
        "entrypoint": "main",
        "volumeClaimTemplates": _claims("work"),
        "templates": [
            _steps(
                [{"name": "write", "template": "write"}],
                [{"name": "tamper", "template": "tamper", "continueOn": {"failed": True}}],
                [{"name": "read", "template": "read"}],
            ),
            _sh("write", "echo original > /w/shared", volumeMounts=rw),
            _sh("tamper", "rm -f /w/shared; echo tampered > /w/shared", volumeMounts=ro),
            _sh("read", "cat /w/shared; ls /w", volumeMounts=rw),
        ],
    }
    done = await _run(scheduler, spec)
    assert done.pods["write"].phase == NodePhase.SUCCEEDED, done.describe()
    assert done.pods["tamper"].phase == NodePhase.FAILED, done.describe()
    tamper = f"{done.pods['tamper'].message}\n{done.log('tamper')}"
    assert "Read-only file system" in tamper
    assert done.pods["read"].phase == NodePhase.SUCCEEDED, done.describe()
    assert done.log("read").split() == ["original", "shared"]


def _symlink_escape(target: Path) -> dict[str, Any]:
    """Step 1 plants /w/link -> ``target`` in claim ``work``; step 2 mounts claim ``other`` at /w/link."""
    return {
        "entrypoint": "main",
        "volumeClaimTemplates": _claims("work", "other"),
        "templates": [
            _steps([{"name": "plant", "template": "plant"}], [{"name": "mount", "template": "mount"}]),
            _sh(
                "plant",
                f"ln -s {target} /w/link && ls -l /w/link",
                volumeMounts=[{"name": "work", "mountPath": "/w"}],
            ),
            _sh(
                "mount",
                "echo pwned > /w/link/pwned; ls -la /w /w/link",
                volumeMounts=[{"name": "work", "mountPath": "/w"}, {"name": "other", "mountPath": "/w/link"}],
            ),
        ],
    }


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        for child in path.iterdir():
            _remove(child)
        path.rmdir()


async def test_volume_symlink_to_a_missing_host_path_cannot_make_the_mount_there(
    scheduler: Scheduler,
) -> None:
    escape = Path("/etc") / f"eventflow-escape-{uuid.uuid4().hex[:12]}"
    try:
        done = await _run(scheduler, _symlink_escape(escape))
        assert done.pods["plant"].phase == NodePhase.SUCCEEDED, done.describe()
        assert "mount" in done.pods, done.describe()
        assert not escape.exists() and not escape.is_symlink(), (
            f"{escape} was made on the host: {done.describe()}"
        )
    finally:
        _remove(escape)


async def test_volume_symlink_to_an_existing_host_dir_mounts_only_in_the_node(scheduler: Scheduler) -> None:
    # The dir exists on the host, so it exists in the node's view too (its root is the host's /
    # under an overlay): the mount may land there, but in the node's view, never on the host.
    escape = Path("/var/tmp") / f"eventflow-escape-{uuid.uuid4().hex[:12]}"
    escape.mkdir()
    try:
        done = await _run(scheduler, _symlink_escape(escape))
        assert done.pods["plant"].phase == NodePhase.SUCCEEDED, done.describe()
        assert "mount" in done.pods, done.describe()
        assert list(escape.iterdir()) == [], done.describe()
        assert not os.path.ismount(escape)
        assert str(escape) not in Path("/proc/self/mountinfo").read_text()
    finally:
        _remove(escape)


async def test_mount_over_a_dangling_symlink_fails_naming_the_mount(scheduler: Scheduler) -> None:
    done = await _run(scheduler, _symlink_escape(Path("/nonexistent") / uuid.uuid4().hex))
    mount = done.pods["mount"]
    assert mount.phase in (NodePhase.FAILED, NodePhase.ERROR), done.describe()
    # The node could not be set up: say which mount, not that the command could not be run.
    assert "/w/link" in (mount.message or ""), done.describe()


# -- output artifacts -----------------------------------------------------------------------------


async def test_missing_output_artifact_errors_the_node_and_an_optional_one_succeeds(
    scheduler: Scheduler,
) -> None:
    spec = {
        "entrypoint": "main",
        "templates": [
            _steps([{"name": "needed", "template": "needed"}, {"name": "optional", "template": "optional"}]),
            _sh("needed", "true", outputs={"artifacts": [{"name": "out", "path": "/tmp/never-written"}]}),
            _sh(
                "optional",
                "true",
                outputs={"artifacts": [{"name": "out", "path": "/tmp/never-written", "optional": True}]},
            ),
        ],
    }
    done = await _run(scheduler, spec)
    needed = done.pods["needed"]
    assert needed.phase == NodePhase.ERROR, done.describe()
    assert "no such file or directory" in (needed.message or "")
    assert "/tmp/never-written" in (needed.message or "")
    assert done.pods["optional"].phase == NodePhase.SUCCEEDED, done.describe()


@pytest.mark.parametrize(
    ("script", "path"),
    [
        ("head -c 5000 /dev/zero > /tmp/big", "/tmp/big"),
        (
            "mkdir /tmp/big && head -c 600 /dev/zero > /tmp/big/a && head -c 600 /dev/zero > /tmp/big/b",
            "/tmp/big",
        ),
    ],
    ids=["file", "dir"],
)
async def test_output_artifact_over_the_size_limit_fails_the_node_naming_the_limit(
    scheduler: Scheduler, script: str, path: str
) -> None:
    scheduler.repositories.max_bytes = 1000
    spec = {
        "entrypoint": "main",
        "templates": [_sh("main", script, outputs={"artifacts": [{"name": "big", "path": path}]})],
    }
    done = await _run(scheduler, spec)
    node = done.only
    assert node.phase in (NodePhase.ERROR, NodePhase.FAILED), done.describe()
    assert "1000" in (node.message or ""), done.describe()
    assert "limit" in (node.message or ""), done.describe()
    stored = [p for p in scheduler.repositories.local_root.rglob("*") if p.is_file()]
    assert stored == []


@pytest.mark.parametrize(
    "archive",
    [None, {"tar": {}}, {"none": {}}, {"zip": {}}],
    ids=["default", "tar", "none", "zip"],
)
async def test_output_directory_artifact_round_trips_to_a_later_step(
    scheduler: Scheduler, archive: dict[str, Any] | None
) -> None:
    out: dict[str, Any] = {"name": "tree", "path": "/tmp/tree"}
    if archive is not None:
        out["archive"] = archive
    make = (
        "mkdir -p /tmp/tree/sub && printf 'top\\n' > /tmp/tree/a.txt && printf 'deep\\n' > /tmp/tree/sub/b.txt;"
        " cd /tmp/tree && find . | sort && cat a.txt sub/b.txt"
    )
    spec = {
        "entrypoint": "main",
        "templates": [
            _steps(
                [{"name": "make", "template": "make"}],
                [{"name": "use", "template": "use", "arguments": _from("make", "tree")}],
            ),
            _sh("make", make, outputs={"artifacts": [out]}),
            _sh(
                "use",
                "cd /in && find . | sort && cat a.txt sub/b.txt",
                inputs={"artifacts": [{"name": "in", "path": "/in"}]},
            ),
        ],
    }
    done = await _run(scheduler, spec)
    assert done.phase == "Succeeded", done.describe()
    assert done.log("use") == done.log("make")
    assert done.log("use").split() == [".", "./a.txt", "./sub", "./sub/b.txt", "top", "deep"]


async def test_raw_input_artifact_with_mode_0755_is_executable(scheduler: Scheduler) -> None:
    raw = {
        "name": "tool",
        "path": "/opt/eventflow-tool/run.sh",
        "mode": 0o755,
        "raw": {"data": "#!/bin/sh\necho ran-it\n"},
    }
    spec = {
        "entrypoint": "main",
        "templates": [_sh("main", "/opt/eventflow-tool/run.sh", inputs={"artifacts": [raw]})],
    }
    done = await _run(scheduler, spec)
    assert done.phase == "Succeeded", done.describe()
    assert done.log(done.only.display_name).split() == ["ran-it"]


# -- input artifacts ------------------------------------------------------------------------------


async def test_input_from_an_output_that_was_not_produced_errors_unable_to_resolve(
    scheduler: Scheduler,
) -> None:
    spec = {
        "entrypoint": "main",
        "templates": [
            _steps(
                [{"name": "gen", "template": "gen"}],
                [{"name": "use", "template": "use", "arguments": _from("gen", "out")}],
            ),
            _sh(
                "gen", "true", outputs={"artifacts": [{"name": "out", "path": "/tmp/out", "optional": True}]}
            ),
            _sh("use", "cat /in", inputs={"artifacts": [{"name": "in", "path": "/in"}]}),
        ],
    }
    done = await _run(scheduler, spec)
    assert done.pods["gen"].phase == NodePhase.SUCCEEDED, done.describe()
    assert done.phase in ("Error", "Failed")
    messages = f"{done.message} {done.describe()}"
    assert "Unable to resolve: {{steps.gen.outputs.artifacts.out}}" in messages


async def test_input_from_an_undeclared_output_is_refused(scheduler: Scheduler) -> None:
    spec = {
        "entrypoint": "main",
        "templates": [
            _steps(
                [{"name": "gen", "template": "gen"}],
                [{"name": "use", "template": "use", "arguments": _from("gen", "nope")}],
            ),
            _sh("gen", "echo x > /tmp/out", outputs={"artifacts": [{"name": "out", "path": "/tmp/out"}]}),
            _sh("use", "cat /in", inputs={"artifacts": [{"name": "in", "path": "/in"}]}),
        ],
    }
    try:
        done = await _run(scheduler, spec)
    except LintError as exc:  # refused at submission (Argo's validation may do so)
        assert "steps.gen.outputs.artifacts.nope" in str(exc)
        return
    assert done.phase in ("Error", "Failed")
    assert "use" not in done.pods or done.pods["use"].phase != NodePhase.SUCCEEDED
    assert "Unable to resolve: {{steps.gen.outputs.artifacts.nope}}" in f"{done.message} {done.describe()}"


async def test_template_input_artifact_not_supplied_is_refused_naming_it(scheduler: Scheduler) -> None:
    spec = {
        "entrypoint": "main",
        "templates": [
            _steps([{"name": "use", "template": "use"}]),
            _sh("use", "cat /in", inputs={"artifacts": [{"name": "data", "path": "/in"}]}),
        ],
    }
    wf = Workflow.model_validate({"metadata": {"name": f"art-{uuid.uuid4().hex[:10]}"}, "spec": spec})
    with pytest.raises(
        LintError, match=r"templates\.main\.steps\[0\]\.use .*inputs\.artifacts\.data was not supplied"
    ):
        await scheduler.submit(wf)


@pytest.mark.parametrize("key", ["../../etc/passwd", "../secret", "a/../../secret", "/../secret"])
async def test_input_key_leaving_the_repository_errors_and_reads_nothing(
    scheduler: Scheduler, key: str
) -> None:
    root = scheduler.repositories.local_root
    root.mkdir(parents=True, exist_ok=True)
    (root.parent / "secret").write_text("top-secret\n")  # just outside the repository
    art = {"name": "pw", "path": "/in/pw", "s3": {"key": key}}
    spec = {"entrypoint": "main", "templates": [_sh("main", "cat /in/pw", inputs={"artifacts": [art]})]}
    done = await _run(scheduler, spec)
    node = done.only
    assert done.phase in ("Error", "Failed"), done.describe()
    assert node.phase == NodePhase.ERROR, done.describe()
    assert key.lstrip("/") in (node.message or "") or key in (node.message or ""), done.describe()
    log = done.log(node.display_name)
    assert "top-secret" not in log
    assert "root:" not in log


async def test_output_key_leaving_the_repository_errors_and_writes_nothing_outside(
    scheduler: Scheduler,
) -> None:
    root = scheduler.repositories.local_root
    art = {"name": "out", "path": "/tmp/out", "s3": {"key": "../escaped"}}
    spec = {
        "entrypoint": "main",
        "templates": [_sh("main", "echo hi > /tmp/out", outputs={"artifacts": [art]})],
    }
    done = await _run(scheduler, spec)
    node = done.only
    assert node.phase == NodePhase.ERROR, done.describe()
    assert "../escaped" in (node.message or "")
    assert not (root.parent / "escaped").exists()


async def test_damaged_input_archive_errors_the_node(scheduler: Scheduler) -> None:
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        data = b"hello world " * 20_000
        info = tarfile.TarInfo("data.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    stored = scheduler.repositories.local_root / "damaged" / "data.tgz"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(raw.getvalue()[: len(raw.getvalue()) // 2])  # cut short
    art = {"name": "data", "path": "/in/data.txt", "s3": {"key": "damaged/data.tgz"}}
    spec = {
        "entrypoint": "main",
        "templates": [_sh("main", "wc -c /in/data.txt", inputs={"artifacts": [art]})],
    }
    done = await _run(scheduler, spec, timeout=10)
    node = done.only
    assert node.phase == NodePhase.ERROR, done.describe()
    assert "failed to load artifacts" in (node.message or ""), done.describe()

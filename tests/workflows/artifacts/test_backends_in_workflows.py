"""The same artifact-passing workflow on every repository kind: files, directories (archived and not),
key-only keys, and artifactGC, through a real scheduler."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from eventbus import JetStreamBus
from tests.support.poll import eventually
from tests.support.scheduler import running_scheduler
from workflows.artifacts.repositories import Repositories, parse_repository_config
from workflows.models import Workflow
from workflows import scheduler as scheduler_module
from workflows.scheduler import Scheduler

WORKFLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: backends-}
spec:
  entrypoint: main
  artifactGC: {strategy: OnWorkflowCompletion}
  templates:
  - name: main
    dag:
      tasks:
      - {name: make, template: make}
      - name: use
        template: use
        depends: make
        arguments:
          artifacts:
          - {name: file, from: "{{tasks.make.outputs.artifacts.file}}"}
          - {name: tree, from: "{{tasks.make.outputs.artifacts.tree}}"}
          - {name: flat, from: "{{tasks.make.outputs.artifacts.flat}}"}
  - name: make
    container:
      image: alpine
      command: [sh, -c]
      args: ["echo one > /tmp/file; mkdir -p /tmp/tree/sub /tmp/flat/sub; echo two > /tmp/tree/sub/b; echo three > /tmp/flat/sub/c; echo four > /tmp/keyed"]
    outputs:
      artifacts:
      - {name: file, path: /tmp/file}
      - {name: tree, path: /tmp/tree}
      - {name: flat, path: /tmp/flat, archive: {none: {}}}
      - {name: keyed, path: /tmp/keyed, s3: {key: "KEYED"}}
  - name: use
    inputs:
      artifacts:
      - {name: file, path: /in/file}
      - {name: tree, path: /in/tree}
      - {name: flat, path: /in/flat}
      - {name: keyed, path: /in/keyed, s3: {key: "KEYED"}}
    container:
      image: alpine
      command: [sh, -c]
      args: ["cat /in/file /in/tree/sub/b /in/flat/sub/c /in/keyed"]
"""


@pytest.mark.parametrize("copy_in_bytes", [16 << 20, 0], ids=["copied-in", "bound-in"])
async def test_on_the_local_repository(tmp_path: Path, copy_in_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small inputs are copied into the node's root, large ones bind-mounted: both must behave alike.
    monkeypatch.setattr(scheduler_module, "COPY_IN_BYTES", copy_in_bytes)
    repositories = Repositories(parse_repository_config({"local": {}}, "test"), local_root=tmp_path / "repo")
    async with running_scheduler(tmp_path, repositories=repositories) as scheduler:
        await artifacts_pass_between_steps_and_are_collected(scheduler, uuid.uuid4().hex[:10])


@pytest.mark.nats
async def test_on_the_nats_object_store(tmp_path: Path, bus: JetStreamBus) -> None:
    token = uuid.uuid4().hex[:10]
    config = parse_repository_config({"nats": {"bucket": f"t-wf-{token}"}}, "test")
    repositories = Repositories(config, local_root=tmp_path / "unused", bus=bus)
    try:
        async with running_scheduler(tmp_path, bus=bus, repositories=repositories) as scheduler:
            await artifacts_pass_between_steps_and_are_collected(scheduler, token)
    finally:
        await bus.js.delete_object_store(f"t-wf-{token}")
    assert not (tmp_path / "unused").exists()  # nothing went to the local directory


async def artifacts_pass_between_steps_and_are_collected(scheduler: Scheduler, token: str) -> None:
    text = WORKFLOW.replace("KEYED", f"keyed-{token}.txt")
    record = await scheduler.submit(Workflow.model_validate(yaml.safe_load(text)))
    final = await scheduler.wait_done(record.namespace, record.name, 60)
    _, nodes = await scheduler.get(record.namespace, record.name)
    assert final.phase.value == "Succeeded", [(n.display_name, n.message) for n in nodes.values()]
    use = next(n for n in nodes.values() if n.display_name == "use")
    assert use.log_path is not None
    assert Path(use.log_path).read_text().split() == ["one", "two", "three", "four"]
    make = next(n for n in nodes.values() if n.display_name == "make")
    assert make.outputs is not None
    arts = {a["name"]: a for a in make.outputs.artifacts or []}
    assert (arts["file"]["kind"], arts["tree"]["kind"], arts["flat"]["archive"]) == ("file", "dir", {"none": {}})
    assert arts["keyed"]["key"] == f"keyed-{token}.txt"
    repo = await scheduler.repositories.open(scheduler.repositories.config_of(final.status))
    # artifactGC OnWorkflowCompletion: everything the workflow stored goes once it ends.
    async def gone() -> bool:
        return not await repo.list_keys(record.name) and not await repo.list_keys(f"keyed-{token}.txt")

    await eventually(gone, timeout=10, what="artifacts deleted by artifactGC")


async def test_on_s3(tmp_path: Path, moto_url: str) -> None:
    bucket = f"ef-wf-{uuid.uuid4().hex[:12]}"
    s3 = {"bucket": bucket, "endpoint": moto_url, "region": "us-east-1", "accessKey": "k", "secretKey": "s", "createBucket": True}
    repositories = Repositories(parse_repository_config({"s3": s3}, "test"), local_root=tmp_path / "unused")
    async with running_scheduler(tmp_path, repositories=repositories) as scheduler:
        await artifacts_pass_between_steps_and_are_collected(scheduler, uuid.uuid4().hex[:10])
    assert not (tmp_path / "unused").exists()

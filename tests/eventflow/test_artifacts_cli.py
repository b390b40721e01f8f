"""Artifacts end to end against a real server process: the fan-in patterns users build (a shared
volume, or key-only artifacts plus ``from``), ``eventflow artifacts list/get``, Argo's download path,
and what is left in the data dir after a workflow is deleted."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.poll import eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv

pytestmark = pytest.mark.nats

# 20 items fan out; each writes one JSON file with a random name into a workflow-scoped claim at /mnt/vol;
# a collect step merges them with jq -s into one output artifact.
FAN_IN_VOLUME = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: fan-in-volume-}
spec:
  entrypoint: main
  volumeClaimTemplates:
  - metadata: {name: work}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  templates:
  - name: main
    steps:
    - - name: items
        template: items
    - - name: write
        template: write
        arguments: {parameters: [{name: i, value: "{{item}}"}]}
        withParam: "{{steps.items.outputs.result}}"
    - - name: collect
        template: collect
  - name: items
    script:
      image: python:alpine
      command: [python3]
      source: "import json; print(json.dumps(list(range(20))))"
  - name: write
    inputs: {parameters: [{name: i}]}
    container:
      image: alpine
      command: [sh, -c]
      args: ['echo "{\\"i\\": {{inputs.parameters.i}}}" > /mnt/vol/message-{{= sprig.randAlphaNum(6) }}.json']
      volumeMounts: [{name: work, mountPath: /mnt/vol}]
  - name: collect
    container:
      image: stedolan/jq
      command: [sh, -c]
      args: ["ls /mnt/vol | wc -l; jq -s . /mnt/vol/*.json > /tmp/all.json"]
      volumeMounts: [{name: work, mountPath: /mnt/vol}]
    outputs:
      artifacts: [{name: all, path: /tmp/all.json}]
"""

# The same without a shared volume: each item's output is a key-only artifact under one prefix, the
# collect step reads the prefix as a directory, and its result travels on by ``from``.
FAN_IN_ARTIFACTS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: fan-in-artifacts-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: write
        template: write
        arguments: {parameters: [{name: i, value: "{{item}}"}]}
        withSequence: {count: "20"}
    - - name: collect
        template: collect
    - - name: check
        template: check
        arguments:
          artifacts: [{name: all, from: "{{steps.collect.outputs.artifacts.all}}"}]
  - name: write
    inputs: {parameters: [{name: i}]}
    container:
      image: alpine
      command: [sh, -c]
      args: ['echo "{\\"i\\": {{inputs.parameters.i}}}" > /tmp/part.json']
    outputs:
      artifacts:
      - name: part
        path: /tmp/part.json
        archive: {none: {}}
        s3: {key: "{{workflow.name}}/parts/{{inputs.parameters.i}}.json"}
  - name: collect
    inputs:
      artifacts: [{name: parts, path: /tmp/parts, s3: {key: "{{workflow.name}}/parts"}}]
    container:
      image: stedolan/jq
      command: [sh, -c]
      args: ["jq -s . /tmp/parts/*.json > /tmp/all.json"]
    outputs:
      artifacts: [{name: all, path: /tmp/all.json}]
  - name: check
    inputs:
      artifacts: [{name: all, path: /data/all.json}]
    container:
      image: stedolan/jq
      command: [sh, -c]
      args: ["jq length /data/all.json"]
"""

GC = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: gc-}
spec:
  entrypoint: main
  artifactGC: {strategy: OnWorkflowDeletion}
  volumeClaimTemplates:
  - metadata: {name: scratch}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  templates:
  - name: main
    container:
      image: alpine
      command: [sh, -c]
      args: ["echo done > /tmp/a; echo kept > /tmp/b; echo x > /scratch/x"]
      volumeMounts: [{name: scratch, mountPath: /scratch}]
    outputs:
      artifacts:
      - {name: on-completion, path: /tmp/a, artifactGC: {strategy: OnWorkflowCompletion}}
      - {name: on-deletion, path: /tmp/b}
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess("--port", "0", "--data-dir", str(data_dir)).start()
    url = proc.base_url
    eventually_sync(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="ready")
    yield proc
    proc.stop()


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTFLOW_SERVER": server.base_url}
    return subprocess.run(eventflow_argv(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def submit(server: ServerProcess, tmp_path: Path, text: str) -> str:
    spec = tmp_path / "wf.yaml"
    spec.write_text(text)
    result = cli(server, "submit", str(spec), "--wait", "-o", "name")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[0]


def test_fan_in_through_a_shared_volume(server: ServerProcess, tmp_path: Path, data_dir: Path) -> None:
    name = submit(server, tmp_path, FAN_IN_VOLUME)
    out = tmp_path / "all.json"
    got = cli(server, "artifacts", "get", name, "collect", "all", "-o", str(out))
    assert got.returncode == 0, got.stderr
    merged = json.loads(out.read_text())
    assert sorted(entry["i"] for entry in merged) == list(range(20))
    wf = json.loads(cli(server, "get", name, "-o", "json").stdout)
    uid = wf["metadata"]["uid"]
    # 20 distinct random file names landed in the claim: no write overwrote another.
    collect = next(n for n in wf["status"]["nodes"].values() if n["displayName"] == "collect")
    assert Path(collect["logPath"]).read_text().split()[0] == "20"
    # The claim went with the finished workflow.
    eventually_sync(lambda: not (data_dir / "nodes" / ".volumes" / uid).exists(), what="claim dirs removed")


def test_fan_in_through_key_only_artifacts_and_from(server: ServerProcess, tmp_path: Path) -> None:
    name = submit(server, tmp_path, FAN_IN_ARTIFACTS)
    listing = cli(server, "artifacts", "list", name)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:4] == ["NODE", "NODE", "ID", "ARTIFACT"]
    assert sum(" part " in f" {line} " for line in lines) == 20
    assert any(line.startswith("collect ") and " all " in line for line in lines)
    stdout = cli(server, "artifacts", "get", name, "collect", "all")
    assert stdout.returncode == 0, stdout.stderr
    assert sorted(e["i"] for e in json.loads(stdout.stdout)) == list(range(20))
    wf = json.loads(cli(server, "get", name, "-o", "json").stdout)
    check = next(n for n in wf["status"]["nodes"].values() if n["displayName"] == "check")
    assert Path(check["logPath"]).read_text().strip() == "20"
    # Argo's download path serves the same bytes to any HTTP client.
    collect = next(n for n in wf["status"]["nodes"].values() if n["displayName"] == "collect")
    response = httpx.get(f"{server.base_url}/artifact-files/default/workflows/{name}/{collect['id']}/outputs/all")
    assert response.status_code == 200
    assert response.content == stdout.stdout.encode()


def test_artifacts_get_errors_are_one_line(server: ServerProcess, tmp_path: Path) -> None:
    name = submit(server, tmp_path, FAN_IN_ARTIFACTS.replace("fan-in-artifacts-", "errors-"))
    missing_node = cli(server, "artifacts", "get", name, "nope", "all")
    assert missing_node.returncode == 1 and "node 'nope' not found" in missing_node.stderr
    missing_art = cli(server, "artifacts", "get", name, "collect", "nope")
    assert missing_art.returncode == 1 and "artifact 'nope'" in missing_art.stderr
    missing_wf = cli(server, "artifacts", "list", "no-such-workflow")
    assert missing_wf.returncode == 1 and "not found" in missing_wf.stderr
    usage = cli(server, "artifacts", "get", name)
    assert usage.returncode == 2


def test_artifact_gc_and_deletion_leave_nothing_behind(server: ServerProcess, tmp_path: Path, data_dir: Path) -> None:
    name = submit(server, tmp_path, GC)
    wf = json.loads(cli(server, "get", name, "-o", "json").stdout)
    uid = wf["metadata"]["uid"]
    repo = data_dir / "artifacts"
    keys = {a["name"]: a["key"] for n in wf["status"]["nodes"].values() for a in (n.get("outputs") or {}).get("artifacts", [])}
    assert set(keys) == {"on-completion", "on-deletion"}
    eventually_sync(lambda: not (repo / keys["on-completion"]).exists(), what="OnWorkflowCompletion artifact deleted")
    assert (repo / keys["on-deletion"]).is_file()
    gone = cli(server, "artifacts", "get", name, name, "on-completion")
    assert gone.returncode == 1 and "no longer stored" in gone.stderr

    assert cli(server, "delete", name).returncode == 0
    eventually_sync(lambda: not (repo / keys["on-deletion"]).exists(), what="OnWorkflowDeletion artifact deleted")
    assert not (repo / name).exists()  # nothing left under the workflow's key prefix
    assert not (data_dir / "nodes" / ".volumes" / uid).exists()


def test_serve_rejects_a_bad_artifact_repository_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"artifacts": {"repository": {"gcs": {"bucket": "b"}}}}))
    result = subprocess.run(
        eventflow_argv("serve", "--config", str(config), "--data-dir", str(tmp_path / "d")),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "artifacts.repository" in result.stderr and "gcs artifact repositories are not supported" in result.stderr

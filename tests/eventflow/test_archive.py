"""The workflow archive on a real server: archive policy and strategy labels, the archived-workflows API
and CLI, a real Argo client reading it, and archiveTTL."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.poll import eventually, eventually_sync
from tests.support.scheduler import running_scheduler
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv, start_ready
from workflows.models import Workflow
from workflows.retention import ArchivePolicy

pytestmark = pytest.mark.nats

CONFIG = 'archive: {enabled: true, archiveLabelSelector: {matchLabels: {keep: "yes"}}}\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("config") / "eventflow.yaml"
    config.write_text(CONFIG)
    proc = start_ready(tmp_path_factory.mktemp("data"), "--config", str(config))
    yield proc
    proc.stop()


def workflow(name: str, labels: dict[str, str], *, ttl: int | None = 0, exit_code: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "entrypoint": "main",
        "templates": [{"name": "main", "outputs": {"parameters": [{"name": "said", "globalName": "said", "valueFrom": {"path": "/tmp/said"}}]},
                       "container": {"image": "alpine", "command": ["sh", "-c", f"echo -n {name} > /tmp/said; exit {exit_code}"]}}],
    }  # fmt: skip
    if ttl is not None:
        spec["ttlStrategy"] = {"secondsAfterCompletion": ttl}
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


def archived(server: ServerProcess, **params: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.base_url}/api/v1/archived-workflows", params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def submit(server: ServerProcess, manifest: dict[str, Any]) -> str:
    answer = httpx.post(f"{server.base_url}/api/v1/workflows/default", json={"workflow": manifest}, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["metadata"]["uid"])


def gone(server: ServerProcess, name: str) -> bool:
    return httpx.get(f"{server.base_url}/api/v1/workflows/default/{name}", timeout=30).status_code == 404


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTFLOW_SERVER": server.base_url}
    return subprocess.run(eventflow_argv(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_the_policy_and_strategy_labels_decide_what_outlives_its_ttl(server: ServerProcess) -> None:
    run = uuid.uuid4().hex[:6]
    names = {k: f"{k}-{run}" for k in ("kept", "plain", "always", "never")}
    uids = {
        "kept": submit(server, workflow(names["kept"], {"keep": "yes", "run": run})),
        "plain": submit(server, workflow(names["plain"], {"run": run})),
        "always": submit(server, workflow(names["always"], {"run": run, "workflows.argoproj.io/archive-strategy": "always"})),
        "never": submit(server, workflow(names["never"], {"keep": "yes", "run": run, "workflows.argoproj.io/archive-strategy": "false"})),
    }
    # ttlStrategy 0: each live workflow is deleted as soon as it ends; the archived ones stay.
    eventually_sync(lambda: all(gone(server, n) for n in names.values()), timeout=60, what="the live workflows deleted by their TTL")
    eventually_sync(lambda: len(archived(server, **{"listOptions.labelSelector": f"run={run}"})) == 2, timeout=30, what="two archived")
    items = archived(server, **{"listOptions.labelSelector": f"run={run}"})
    assert sorted(i["metadata"]["name"] for i in items) == sorted([names["kept"], names["always"]])
    kept = next(i for i in items if i["metadata"]["name"] == names["kept"])
    assert kept["metadata"]["uid"] == uids["kept"]
    assert kept["metadata"]["labels"]["workflows.argoproj.io/workflow-archiving-status"] == "Archived"
    assert kept["metadata"]["labels"]["workflows.argoproj.io/phase"] == "Succeeded"
    assert kept["metadata"]["labels"]["workflows.argoproj.io/completed"] == "true"
    assert "nodes" not in kept["status"]  # listings leave the nodes out

    whole = httpx.get(f"{server.base_url}/api/v1/archived-workflows/{uids['kept']}", timeout=30).json()
    assert whole["status"]["phase"] == "Succeeded"
    assert whole["status"]["outputs"]["parameters"] == [{"name": "said", "value": names["kept"]}]
    [pod] = [n for n in whole["status"]["nodes"].values() if n["type"] == "Pod"]
    assert pod["phase"] == "Succeeded" and pod["outputs"]["parameters"][0]["value"] == names["kept"]

    # Selection: name prefix, namespace, paging.
    assert [i["metadata"]["name"] for i in archived(server, namePrefix=f"kept-{run}")] == [names["kept"]]
    assert archived(server, namespace="elsewhere", namePrefix=f"kept-{run}") == []
    first = httpx.get(f"{server.base_url}/api/v1/archived-workflows", params={"listOptions.labelSelector": f"run={run}", "listOptions.limit": "1"}).json()
    assert len(first["items"]) == 1 and first["metadata"]["continue"] == "1"
    sql_page = httpx.get(f"{server.base_url}/api/v1/archived-workflows", params={"namespace": "default", "listOptions.limit": "1"}).json()
    assert len(sql_page["items"]) == 1 and sql_page["metadata"]["continue"] == "1" and sql_page["metadata"]["remainingItemCount"] >= 1
    assert httpx.get(f"{server.base_url}/api/v1/archived-workflows", params={"createdAfter": "yesterday"}).status_code == 400

    keys = httpx.get(f"{server.base_url}/api/v1/archived-workflows-label-keys").json()["items"]
    assert {"keep", "run", "workflows.argoproj.io/phase"} <= set(keys)
    values = httpx.get(f"{server.base_url}/api/v1/archived-workflows-label-values", params={"listOptions.labelSelector": "run"}).json()["items"]
    assert run in values


def test_argo_client_reads_the_archive_and_the_cli_drives_it(server: ServerProcess) -> None:
    import argo_workflows
    from argo_workflows.api.archived_workflow_service_api import ArchivedWorkflowServiceApi

    run = uuid.uuid4().hex[:6]
    name = f"client-{run}"
    uid = submit(server, workflow(name, {"keep": "yes", "run": run}))
    eventually_sync(lambda: any(i["metadata"]["uid"] == uid for i in archived(server)), timeout=60, what="archived")
    eventually_sync(lambda: gone(server, name), timeout=30, what="the live one deleted")

    client = argo_workflows.ApiClient(argo_workflows.Configuration(host=server.base_url))
    api = ArchivedWorkflowServiceApi(client)
    listed = api.list_archived_workflows(namespace="default", list_options_label_selector=f"run={run}")
    assert [w.metadata.name for w in listed.items] == [name]
    got = api.get_archived_workflow(uid=uid)
    assert got.status.phase == "Succeeded" and got.metadata.uid == uid

    listing = cli(server, "archive", "list", "-l", f"run={run}")
    assert listing.returncode == 0 and name in listing.stdout and uid in listing.stdout
    assert json.loads(cli(server, "archive", "get", uid, "-o", "json").stdout)["metadata"]["name"] == name
    refused = cli(server, "archive", "retry", uid)
    assert refused.returncode == 1 and "only in the archive" in refused.stderr
    again = cli(server, "archive", "resubmit", uid)
    assert again.returncode == 0, again.stderr
    new_name = again.stdout.split()[0].split("/")[1]
    assert new_name.startswith(f"{name}-")
    eventually_sync(lambda: gone(server, new_name), timeout=60, what="the resubmitted run done (and deleted by its TTL)")
    assert "keep" in cli(server, "archive", "list-label-keys").stdout.split()
    assert cli(server, "archive", "delete", uid).returncode == 0
    assert httpx.get(f"{server.base_url}/api/v1/archived-workflows/{uid}").status_code == 404
    missing = cli(server, "archive", "get", uid)
    assert missing.returncode == 1 and uid in missing.stderr


async def test_archive_ttl_drops_archived_workflows_that_finished_longer_ago(tmp_path: Path) -> None:
    wf = Workflow.model_validate({"metadata": {"generateName": "old-"}, "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "alpine", "command": ["true"]}}]}})
    async with running_scheduler(tmp_path) as scheduler:  # no archiveTTL: kept
        record = await scheduler.submit(wf)
        done = await scheduler.wait_done(record.namespace, record.name, 30)
        assert await scheduler.store.archive_workflow(done.uid, {})
        assert await scheduler.store.delete_archived_before(datetime.now(UTC) - timedelta(hours=1)) == 0
    async with running_scheduler(tmp_path, archive=ArchivePolicy(enabled=True, ttl_seconds=1)) as scheduler:
        await eventually(lambda: _archive_empty(scheduler), timeout=15, what="archiveTTL to drop the archived workflow")


async def _archive_empty(scheduler: Any) -> bool:
    return not await scheduler.store.list_archived()

"""The workflow CLI and Argo REST paths against a real server process (embedded NATS, SQLite)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml
import nats
import pytest

from tests.support.poll import eventually, eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv

pytestmark = pytest.mark.nats

HELLO = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: hello-
  labels: {team: docs}
spec:
  entrypoint: main
  arguments:
    parameters: [{name: message, value: hi}]
  templates:
  - name: main
    steps:
    - - name: say
        template: echo
        arguments: {parameters: [{name: msg, value: "{{workflow.parameters.message}}"}]}
  - name: echo
    inputs: {parameters: [{name: msg}]}
    outputs: {parameters: [{name: said, globalName: said, valueFrom: {path: /tmp/said}}]}
    container:
      image: alpine
      command: [sh, -c, "echo {{inputs.parameters.msg}}; echo -n {{inputs.parameters.msg}} > /tmp/said"]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess("--port", "0", "--data-dir", str(tmp_path_factory.mktemp("data"))).start()
    url = proc.base_url
    eventually_sync(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="ready")
    yield proc
    proc.stop()


def cli(server: ServerProcess, *args: str, input_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTFLOW_SERVER": server.base_url}
    return subprocess.run(eventflow_argv(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_cli_submit_wait_get_logs_list_delete(server: ServerProcess, tmp_path: Path) -> None:
    spec = tmp_path / "hello.yaml"
    spec.write_text(HELLO)
    result = cli(server, "submit", str(spec), "-p", "message=bonjour", "--wait", "-o", "name")
    assert result.returncode == 0, result.stderr
    name = result.stdout.strip().splitlines()[0]
    assert name.startswith("hello-")

    got = json.loads(cli(server, "get", name, "-o", "json").stdout)
    assert got["status"]["phase"] == "Succeeded"
    assert got["status"]["outputs"]["parameters"] == [{"name": "said", "value": "bonjour"}]
    say = next(n for n in got["status"]["nodes"].values() if n["displayName"] == "say")
    assert say["outputs"]["parameters"] == [{"name": "said", "value": "bonjour"}]
    assert say["inputs"]["parameters"] == [{"name": "msg", "value": "bonjour"}]
    assert say["outputs"]["exitCode"] == "0"

    tree = cli(server, "get", name).stdout
    assert "Succeeded" in tree and "say" in tree
    logs = cli(server, "logs", name)
    assert logs.returncode == 0 and "bonjour" in logs.stdout
    listing = cli(server, "list", "-l", "team=docs")
    assert name in listing.stdout
    assert name not in cli(server, "list", "-l", "team=other").stdout

    assert cli(server, "delete", name).returncode == 0
    missing = cli(server, "get", name)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_cli_submit_failing_workflow_wait_exits_1(server: ServerProcess, tmp_path: Path) -> None:
    spec = tmp_path / "fail.yaml"
    spec.write_text(HELLO.replace('command: [sh, -c, "echo', 'command: [sh, -c, "exit 3; echo'))
    result = cli(server, "submit", str(spec), "--wait")
    assert result.returncode == 1
    assert "Failed" in result.stdout and "exit code 3" in result.stdout


def test_cli_submit_invalid_workflow_names_yaml_path(server: ServerProcess, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(HELLO.replace("template: echo", "template: ech0"))
    result = cli(server, "submit", str(spec))
    assert result.returncode == 1
    assert "templates.main.steps[0].say template name 'ech0' undefined" in result.stderr


def test_api_missing_command_fails_node_with_exec_message(server: ServerProcess) -> None:
    wf = {
        "metadata": {"name": "nocmd"},
        "spec": {"entrypoint": "m", "templates": [{"name": "m", "container": {"image": "alpine", "command": ["no-such-cmd-xyz"]}}]},
    }
    assert httpx.post(f"{server.base_url}/api/v1/workflows/default", json={"workflow": wf}).status_code == 200

    def finished() -> bool:
        return httpx.get(f"{server.base_url}/api/v1/workflows/default/nocmd").json()["status"].get("phase") == "Failed"

    eventually_sync(finished, what="nocmd failed")
    node = httpx.get(f"{server.base_url}/api/v1/workflows/default/nocmd").json()["status"]["nodes"]["nocmd"]
    assert 'exec: "no-such-cmd-xyz": executable file not found in $PATH' in node["message"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"{}", 400, "body.workflow"),
        (b'{"workflow": {"metadata": {"name": "x"}, "spec": {"entrypoint": "m", "templates": "nope"}}}', 400, "spec.templates"),
    ],
)
def test_api_bad_requests_get_json_400(server: ServerProcess, body: bytes, status: int, fragment: str) -> None:
    response = httpx.post(f"{server.base_url}/api/v1/workflows/default", content=body)
    assert response.status_code == status
    assert fragment in response.json()["message"] and response.json()["code"] == 3


def test_lint_cli_reports_path_and_exit_1(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(HELLO.replace("template: echo", "template: ech0"))
    result = subprocess.run(eventflow_argv("lint", str(spec)), cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 1
    assert "templates.main.steps[0].say template name 'ech0' undefined" in result.stderr
    good = tmp_path / "good.yaml"
    good.write_text(HELLO)
    ok = subprocess.run(eventflow_argv("lint", str(good)), cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert ok.returncode == 0, ok.stderr


async def test_lifecycle_events_running_then_succeeded_once_each(server: ServerProcess, tmp_path: Path) -> None:
    nats_url = server.wait_for(r"embedded nats-server pid=\d+ listening on (nats://\S+)").group(1)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe("eventflow.workflows.default.lifecycle-check.>", ordered_consumer=True)
        wf = {
            "metadata": {"name": "lifecycle-check", "labels": {"k": "v"}},
            "spec": {"entrypoint": "m", "templates": [{"name": "m", "container": {"image": "alpine", "command": ["true"]}}]},
        }
        response = await asyncio.to_thread(httpx.post, f"{server.base_url}/api/v1/workflows/default", json={"workflow": wf})
        assert response.status_code == 200
        seen: list[dict[str, object]] = []

        async def collect() -> bool:
            try:
                msg = await sub.next_msg(timeout=0.2)
            except nats.errors.TimeoutError:
                return False
            seen.append(json.loads(msg.data))
            return len(seen) >= 2

        await eventually(collect, timeout=20, what="two lifecycle events")
        assert [e["data"]["phase"] for e in seen] == ["Running", "Succeeded"]  # type: ignore[index]
        assert len({e["id"] for e in seen}) == 2
        done = seen[1]["data"]
        assert done["labels"] == {"k": "v"} and done["progress"] == "1/1"  # type: ignore[index]
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.5)  # nothing more: each phase once
    finally:
        await nc.close()


def _wf(server: ServerProcess, name: str) -> dict[str, object]:
    return httpx.get(f"{server.base_url}/api/v1/workflows/default/{name}").json()  # type: ignore[no-any-return]


def _phase(server: ServerProcess, name: str) -> str:
    return str(_wf(server, name)["status"].get("phase"))  # type: ignore[union-attr]


def test_api_suspend_step_waits_until_resumed(server: ServerProcess) -> None:
    wf = {
        "metadata": {"name": "approval"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [[{"name": "approve", "template": "wait"}], [{"name": "after", "template": "ok"}]]},
                {"name": "wait", "suspend": {}},
                {"name": "ok", "container": {"image": "alpine", "command": ["true"]}},
            ],
        },
    }
    assert httpx.post(f"{server.base_url}/api/v1/workflows/default", json={"workflow": wf}).status_code == 200

    def suspended() -> bool:
        nodes = _wf(server, "approval")["status"].get("nodes", {})  # type: ignore[union-attr]
        return any(n["displayName"] == "approve" and n["phase"] == "Running" for n in nodes.values())

    eventually_sync(suspended, what="suspend node running")
    assert _phase(server, "approval") == "Running"
    response = httpx.put(f"{server.base_url}/api/v1/workflows/default/approval/resume", json={"nodeFieldSelector": "displayName=approve"})
    assert response.status_code == 200, response.text
    eventually_sync(lambda: _phase(server, "approval") == "Succeeded", what="resumed workflow succeeded")


def test_api_terminate_stops_running_step_and_fails_workflow(server: ServerProcess) -> None:
    wf = {
        "metadata": {"name": "long"},
        "spec": {"entrypoint": "m", "templates": [{"name": "m", "container": {"image": "alpine", "command": ["sleep", "60"]}}]},
    }
    assert httpx.post(f"{server.base_url}/api/v1/workflows/default", json={"workflow": wf}).status_code == 200
    eventually_sync(lambda: _wf(server, "long")["status"].get("nodes", {}).get("long", {}).get("phase") == "Running", what="running")  # type: ignore[union-attr]
    assert httpx.put(f"{server.base_url}/api/v1/workflows/default/long/terminate", json={}).status_code == 200
    status = _wf(server, "long")["status"]
    assert status["phase"] == "Failed" and status["message"] == "Stopped with strategy 'Terminate'"  # type: ignore[index]
    # terminating twice is harmless; resuming a finished workflow is a conflict with a JSON body
    assert httpx.put(f"{server.base_url}/api/v1/workflows/default/long/terminate", json={}).status_code == 200
    conflict = httpx.put(f"{server.base_url}/api/v1/workflows/default/long/resume", json={})
    assert conflict.status_code == 409 and "Failed" in conflict.json()["message"]


def test_api_retry_reruns_only_failed_steps(server: ServerProcess, tmp_path: Path) -> None:
    # Steps see the host's files read-only through their private root, so a flag the test creates
    # after the first run is what lets the retried step pass.
    flag = Path("/var/tmp") / f"eventflow-retry-{os.getpid()}-{tmp_path.name}"
    wf = {
        "metadata": {"name": "flaky"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [[{"name": "first", "template": "ok"}], [{"name": "second", "template": "gate"}]]},
                {"name": "ok", "container": {"image": "alpine", "command": ["true"]}},
                {"name": "gate", "container": {"image": "alpine", "command": ["sh", "-c", f"test -e {flag}"]}},
            ],
        },
    }

    def node(name: str) -> dict[str, object]:
        nodes = _wf(server, "flaky")["status"]["nodes"]  # type: ignore[index]
        return next(n for n in nodes.values() if n["displayName"] == name)  # type: ignore[no-any-return]

    try:
        assert httpx.post(f"{server.base_url}/api/v1/workflows/default", json={"workflow": wf}).status_code == 200
        eventually_sync(lambda: _phase(server, "flaky") == "Failed", what="first run failed")
        first_before, second_before = node("first"), node("second")
        assert second_before["phase"] == "Failed"
        flag.write_text("")
        assert httpx.put(f"{server.base_url}/api/v1/workflows/default/flaky/retry", json={}).status_code == 200
        eventually_sync(lambda: _phase(server, "flaky") == "Succeeded", what="retry succeeded")
        assert node("first") == first_before, "the succeeded step must not run again"
        assert node("second")["phase"] == "Succeeded"
    finally:
        flag.unlink(missing_ok=True)


def test_api_resubmit_creates_new_workflow(server: ServerProcess) -> None:
    wf = {"metadata": {"name": "orig"}, "spec": {"entrypoint": "m", "templates": [{"name": "m", "container": {"image": "alpine", "command": ["true"]}}]}}
    assert httpx.post(f"{server.base_url}/api/v1/workflows/default", json={"workflow": wf}).status_code == 200
    eventually_sync(lambda: _phase(server, "orig") == "Succeeded", what="original done")
    copy = httpx.put(f"{server.base_url}/api/v1/workflows/default/orig/resubmit", json={}).json()
    name = copy["metadata"]["name"]
    assert name.startswith("orig-") and copy["metadata"]["labels"]["workflows.argoproj.io/resubmitted-from-workflow"] == "orig"
    eventually_sync(lambda: _phase(server, name) == "Succeeded", what="resubmitted done")


TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: greeter
spec:
  templates:
  - name: greet
    inputs: {parameters: [{name: who}]}
    container: {image: alpine, command: [echo, "hello {{inputs.parameters.who}}"]}
"""


def test_cli_apply_template_then_submit_by_reference(server: ServerProcess, tmp_path: Path) -> None:
    tmpl = tmp_path / "tmpl.yaml"
    tmpl.write_text(TEMPLATE)
    first = cli(server, "apply", "-f", str(tmpl))
    assert first.returncode == 0 and "workflowtemplate.argoproj.io/greeter created" in first.stdout
    again = cli(server, "apply", "-f", str(tmp_path))
    assert again.returncode == 0 and "greeter configured" in again.stdout
    duplicate = httpx.post(f"{server.base_url}/api/v1/workflow-templates/default", json={"template": yaml.safe_load(TEMPLATE)})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == 6

    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: ref-}\n"
        "spec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n"
        "    - - name: hi\n        templateRef: {name: greeter, template: greet}\n"
        "        arguments: {parameters: [{name: who, value: world}]}\n"
    )
    result = cli(server, "submit", str(wf), "--wait", "-o", "name")
    assert result.returncode == 0, result.stderr
    assert "hello world" in cli(server, "logs", result.stdout.split()[0]).stdout

    removed = cli(server, "delete", "-f", str(tmpl))
    assert removed.returncode == 0 and "greeter deleted" in removed.stdout
    missing = cli(server, "submit", str(wf))
    assert missing.returncode == 1 and "greeter" in missing.stderr


def test_cli_apply_configmap_feeds_an_input_parameter(server: ServerProcess, tmp_path: Path) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {greeting: bonjour}\n")
    applied = cli(server, "apply", "-f", str(cm))
    assert applied.returncode == 0 and "configmap/settings created" in applied.stdout, applied.stderr
    listed = httpx.get(f"{server.base_url}/api/v1/config-maps/default").json()
    assert [item["metadata"]["name"] for item in listed["items"]] == ["settings"]

    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: cm-}\n"
        "spec:\n  entrypoint: main\n  templates:\n  - name: main\n"
        "    inputs: {parameters: [{name: g, valueFrom: {configMapKeyRef: {name: settings, key: greeting}}}]}\n"
        "    container: {image: alpine, command: [echo, '{{inputs.parameters.g}}']}\n"
    )
    result = cli(server, "submit", str(wf), "--wait", "-o", "name")
    assert result.returncode == 0, result.stderr
    assert "bonjour" in cli(server, "logs", result.stdout.split()[0]).stdout

    bad = httpx.post(f"{server.base_url}/api/v1/config-maps/default", json={"configMap": {"metadata": {"name": "x"}, "data": "nope"}})
    assert bad.status_code == 400 and "configMap" in bad.json()["message"]
    removed = cli(server, "delete", "-f", str(cm))
    assert removed.returncode == 0 and "configmap/settings deleted" in removed.stdout


CRON = """
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedules: ["{schedule}"]
  timezone: Europe/Berlin
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      container: {image: alpine, command: [echo, hi]}
"""


def test_cli_cron_apply_list_suspend_resume_delete(server: ServerProcess, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(CRON.replace("{schedule}", "61 * * * *"))
    rejected = cli(server, "apply", "-f", str(bad))
    assert rejected.returncode == 1
    assert "spec.schedules[0]: invalid cron expression '61 * * * *'" in rejected.stderr, rejected.stderr

    good = tmp_path / "cron.yaml"
    good.write_text(CRON.replace("{schedule}", "30 1 * * *"))
    applied = cli(server, "apply", "-f", str(good))
    assert applied.returncode == 0 and "cronworkflow.argoproj.io/nightly created" in applied.stdout, applied.stderr
    listed = cli(server, "cron", "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[1].split()[:3] == ["nightly", "30", "1"]

    assert cli(server, "cron", "suspend", "nightly").returncode == 0
    shown = yaml.safe_load(cli(server, "cron", "get", "nightly").stdout)
    assert shown["spec"]["suspend"] is True
    assert cli(server, "cron", "resume", "nightly").returncode == 0
    assert yaml.safe_load(cli(server, "cron", "get", "nightly").stdout)["spec"]["suspend"] is False

    assert cli(server, "cron", "delete", "nightly").returncode == 0
    missing = cli(server, "cron", "get", "nightly")
    assert missing.returncode == 1 and "nightly" in missing.stderr


APPROVAL = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: approval-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: approval, template: approval}
    - - {name: deploy, template: deploy, when: "{{steps.approval.outputs.parameters.approve}} == YES"}
  - name: approval
    suspend: {}
    inputs: {parameters: [{name: approve, default: "NO", enum: ["YES", "NO"]}]}
    outputs: {parameters: [{name: approve, valueFrom: {supplied: {}}}]}
  - name: deploy
    container: {image: alpine, command: [echo, deployed]}
"""


def test_resume_with_a_value_outside_the_enum_is_400_and_stays_suspended(server: ServerProcess, tmp_path: Path) -> None:
    spec = tmp_path / "approval.yaml"
    spec.write_text(APPROVAL)
    name = cli(server, "submit", str(spec), "-o", "name").stdout.split()[0]
    url = f"{server.base_url}/api/v1/workflows/default/{name}"

    def suspended() -> bool:
        nodes = httpx.get(url).json()["status"].get("nodes") or {}
        return any(n["type"] == "Suspend" and n["phase"] == "Running" for n in nodes.values())

    eventually_sync(suspended, timeout=20, what="the approval step to wait")
    bad = httpx.put(f"{url}/resume", json={"outputParameters": '{"approve": "MAYBE"}'})
    assert bad.status_code == 400
    assert "'MAYBE' is not one of [YES, NO]" in bad.json()["message"]
    assert suspended()
    assert cli(server, "set", name, "-p", "approve=YES").returncode == 2  # which nodes: --node-field-selector
    updated = cli(server, "set", name, "--node-field-selector", "displayName=approval", "-p", "approve=YES")
    assert updated.returncode == 0, updated.stderr
    assert suspended()  # set does not resume
    approval = next(n for n in httpx.get(url).json()["status"]["nodes"].values() if n["displayName"] == "approval")
    assert {"name": "approve", "value": "YES"}.items() <= approval["outputs"]["parameters"][0].items()
    resumed = cli(server, "resume", name)
    assert resumed.returncode == 0, resumed.stderr
    eventually_sync(lambda: _phase(server, name) == "Succeeded", timeout=20, what="the approved run")
    nodes = httpx.get(url).json()["status"]["nodes"].values()
    assert {n["displayName"]: n["phase"] for n in nodes if n["displayName"] == "deploy"} == {"deploy": "Succeeded"}


RUNNABLE_TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: runnable
  labels: {team: cli}
spec:
  entrypoint: greet
  arguments: {parameters: [{name: who, value: nobody}]}
  templates:
  - name: greet
    inputs: {parameters: [{name: who}]}
    container: {image: alpine, command: [echo, "hi {{inputs.parameters.who}}"]}
"""


def test_cli_template_verbs_and_submit_from_a_template(server: ServerProcess, tmp_path: Path) -> None:
    spec = tmp_path / "runnable.yaml"
    spec.write_text(RUNNABLE_TEMPLATE)
    assert cli(server, "apply", "-f", str(spec)).returncode == 0
    listed = cli(server, "template", "list", "-o", "wide")
    assert listed.returncode == 0 and "runnable" in listed.stdout and "team=cli" in listed.stdout
    assert cli(server, "template", "list", "-o", "name").stdout.split() == ["runnable"]
    got = json.loads(cli(server, "template", "get", "runnable", "-o", "json").stdout)
    assert got["kind"] == "WorkflowTemplate" and got["metadata"]["name"] == "runnable"

    done = cli(server, "submit", "--from", "workflowtemplate/runnable", "-p", "who=cli", "--wait", "-o", "name")
    assert done.returncode == 0, done.stderr
    name = done.stdout.split()[0]
    assert name.startswith("runnable-")
    assert "hi cli" in cli(server, "logs", name).stdout
    wf = json.loads(cli(server, "get", name, "-o", "json").stdout)
    assert wf["metadata"]["labels"]["workflows.argoproj.io/workflow-template"] == "runnable"

    both = cli(server, "submit", str(spec), "--from", "workflowtemplate/runnable")
    assert both.returncode == 2 and "not both" in both.stderr
    bad = cli(server, "submit", "--from", "pod/runnable")
    assert bad.returncode == 2 and "workflowtemplate/NAME" in bad.stderr
    missing = cli(server, "submit", "--from", "workflowtemplate/nope")
    assert missing.returncode == 1 and "nope" in missing.stderr

    assert cli(server, "template", "delete", "runnable").returncode == 0
    assert "no WorkflowTemplates in namespace default" in cli(server, "template", "list").stdout
    gone = cli(server, "template", "get", "runnable")
    assert gone.returncode == 1 and "runnable" in gone.stderr


def test_cli_configmap_cluster_template_and_version(server: ServerProcess, tmp_path: Path) -> None:
    spec = tmp_path / "cm.yaml"
    spec.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cli-settings}\ndata: {colour: blue}\n")
    assert cli(server, "apply", "-f", str(spec)).returncode == 0
    assert "cli-settings" in cli(server, "configmap", "list").stdout
    assert json.loads(cli(server, "configmap", "get", "cli-settings", "-o", "json").stdout)["data"] == {"colour": "blue"}
    assert cli(server, "configmap", "delete", "cli-settings").returncode == 0
    assert cli(server, "cluster-template", "list").returncode == 0
    version = cli(server, "version")
    assert version.returncode == 0 and version.stdout.startswith("eventflow: ") and "server: " in version.stdout


WIDE = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: wide-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: skip, template: noop, withSequence: {count: "250"}, when: "1 == 2"}
    - - {name: last, template: noop}
  - name: noop
    container: {image: alpine, command: ["true"]}
"""


def test_cli_get_of_a_large_workflow_counts_nodes_by_phase_unless_asked(server: ServerProcess, tmp_path: Path) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(WIDE)
    done = cli(server, "submit", str(spec), "--wait", "-o", "name")
    assert done.returncode == 0, done.stderr
    name = done.stdout.split()[0]
    brief = httpx.get(f"{server.base_url}/api/v1/workflows/default/{name}", params={"fields": "-status.nodes"}).json()
    assert "nodes" not in brief["status"] and brief["status"]["phase"] == "Succeeded"
    counts = brief["status"]["nodeCounts"]
    assert counts["Skipped"] == 250 and counts["Succeeded"] >= 2 and sum(counts.values()) > 250
    slim = httpx.get(f"{server.base_url}/api/v1/workflows/default/{name}", params={"fields": "metadata.name,status.phase"}).json()
    assert slim["metadata"] == {"name": name} and slim["status"]["phase"] == "Succeeded" and "nodes" not in slim["status"]

    shown = cli(server, "get", name)
    assert shown.returncode == 0, shown.stderr
    assert f"Nodes:         {sum(counts.values())} (Skipped 250, " in shown.stdout and "--nodes lists them" in shown.stdout
    assert len(shown.stdout.splitlines()) < 30
    every = cli(server, "get", name, "--nodes")
    assert every.returncode == 0 and len(every.stdout.splitlines()) > 250

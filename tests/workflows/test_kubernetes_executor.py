"""Steps as pods: a real scheduler with the Kubernetes executor against kmock's KubernetesEmulator over
HTTP, with a fake kubelet that runs each pod's main container as a local process
(tests/support/kubelet.py). What is checked is what the API sees (the pod we create, when we delete
it) and what the workflow shows (phases, results, output parameters, messages)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.kubelet import KubeApi, kube_scheduler
from tests.support.poll import eventually
from tests.support.scheduler import run_to_end
from workflows.kube import Cluster
from workflows.models import Workflow
from workflows.status import NodeStatus

ON_KUBE = {"eventflow.io/executor": "kubernetes"}


def workflow(
    templates: list[dict[str, Any]],
    *,
    spec: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> Workflow:
    return Workflow.model_validate(
        {
            "metadata": {"generateName": "kube-", "labels": labels if labels is not None else ON_KUBE},
            "spec": {"entrypoint": templates[0]["name"], "templates": templates, **(spec or {})},
        }
    )


def pods_of(nodes: dict[str, NodeStatus]) -> dict[str, NodeStatus]:
    return {n.display_name: n for n in nodes.values() if n.type.value == "Pod"}


async def test_a_step_becomes_a_pod_with_its_result_outputs_and_pod_fields(
    api: KubeApi, tmp_path: Path
) -> None:
    out = tmp_path / f"out-{uuid.uuid4().hex[:6]}.txt"
    templates = [
        {
            "name": "main",
            "steps": [
                [
                    {
                        "name": "produce",
                        "template": "produce",
                        "arguments": {"parameters": [{"name": "word", "value": "hello"}]},
                    }
                ]
            ],
        },
        {
            "name": "produce",
            "inputs": {"parameters": [{"name": "word"}]},
            "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
            "nodeSelector": {"disk": "ssd"},
            "podSpecPatch": '{"containers": [{"name": "main", "resources": {"limits": {"cpu": "1"}}}]}',
            "container": {
                "image": "alpine:3.20",
                "command": ["sh", "-c"],
                "args": [f"echo {{{{inputs.parameters.word}}}} from $WHO; printf 42 > {out}"],
                "env": [
                    {"name": "WHO", "value": "pod"},
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                ],
                "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
            },
            "outputs": {"parameters": [{"name": "answer", "valueFrom": {"path": str(out)}}]},
        },
    ]
    spec = {
        "serviceAccountName": "runner",
        "tolerations": [{"key": "gpu", "operator": "Exists"}],
        "volumes": [{"name": "cache", "emptyDir": {}}],
        "podMetadata": {"labels": {"tier": "batch"}},
    }
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        done, nodes = await run_to_end(scheduler, workflow(templates, spec=spec))
    assert done.phase.value == "Succeeded", done.message
    node = pods_of(nodes)["produce"]
    assert node.outputs is not None
    assert node.outputs.result == "hello from pod"
    assert node.outputs.parameter("answer") == "42"
    assert Path(node.log_path or "").read_text() == "hello from pod\n"
    # What the API got: one pod named after the node, Argo's labels and annotations, the pod fields.
    pod = api.kubelet.pods()[node.id]
    meta, pod_spec = pod["metadata"], pod["spec"]
    assert meta["namespace"] == "default"
    assert meta["labels"] == {
        "team": "a",
        "tier": "batch",
        "workflows.argoproj.io/workflow": done.name,
        "workflows.argoproj.io/completed": "false",
    }
    assert meta["annotations"]["workflows.argoproj.io/node-name"] == node.name
    assert meta["annotations"]["note"] == "x"
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["serviceAccountName"] == "runner"
    assert pod_spec["nodeSelector"] == {"disk": "ssd"}
    assert pod_spec["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod_spec["volumes"] == [{"name": "cache", "emptyDir": {}}]
    (main,) = pod_spec["containers"]
    assert main["name"] == "main" and main["image"] == "alpine:3.20"
    assert main["resources"] == {"limits": {"cpu": "1"}}  # from podSpecPatch
    assert main["volumeMounts"] == [{"name": "cache", "mountPath": "/cache"}]
    assert {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}} in main["env"]
    assert main["terminationMessagePath"] == "/dev/termination-log"


async def test_script_steps_failures_and_exit_codes(api: KubeApi, tmp_path: Path) -> None:
    templates = [
        {
            "name": "main",
            "steps": [[{"name": "ok", "template": "script"}, {"name": "bad", "template": "bad"}]],
        },
        {
            "name": "script",
            "script": {"image": "python:3.12", "command": ["python3"], "source": "print(6 * 7)"},
        },
        {"name": "bad", "container": {"image": "alpine", "command": ["sh", "-c", "echo oops; exit 3"]}},
    ]
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        done, nodes = await run_to_end(scheduler, workflow(templates))
    assert done.phase.value == "Failed"
    pods = pods_of(nodes)
    assert (
        pods["ok"].phase.value == "Succeeded"
        and pods["ok"].outputs is not None
        and pods["ok"].outputs.result == "42"
    )
    assert pods["bad"].phase.value == "Failed" and pods["bad"].message == "Error (exit code 3)"
    assert pods["bad"].outputs is not None and pods["bad"].outputs.exit_code == "3"


async def test_pod_gc_deletes_pods_and_a_deleted_workflow_takes_its_pods(
    api: KubeApi, tmp_path: Path
) -> None:
    step = {"name": "s", "container": {"image": "alpine", "command": ["sh", "-c", "echo hi"]}}
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        _, nodes = await run_to_end(
            scheduler, workflow([step], spec={"podGC": {"strategy": "OnPodCompletion"}})
        )
        (node,) = pods_of(nodes).values()
        await eventually(lambda: node.id not in api.kubelet.pods(), timeout=10, what="the pod collected")
        done, nodes = await run_to_end(scheduler, workflow([step]))
        (kept,) = pods_of(nodes).values()
        assert kept.id in api.kubelet.pods()  # no podGC: the pod stays, as in Argo
        await scheduler.delete(done.namespace, done.name)
        assert kept.id not in api.kubelet.pods()


async def test_a_pod_deleted_under_a_running_step_is_an_error_and_retried(
    api: KubeApi, tmp_path: Path
) -> None:
    step = {
        "name": "s",
        "retryStrategy": {"limit": 1, "retryPolicy": "Always"},
        "container": {
            "image": "alpine",
            "command": ["sh", "-c", "if [ {{retries}} = 0 ]; then sleep 30; fi; echo attempt {{retries}}"],
        },
    }
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        record = await scheduler.submit(workflow([step]))
        await eventually(lambda: len(api.kubelet.started) == 1, timeout=10, what="the first pod running")
        (first,) = api.kubelet.started
        pod = api.kubelet.pods()[first]
        client = api.cluster()()
        try:
            await client.delete(("v1", "Pod", pod["metadata"]["namespace"], first))
        finally:
            await client.close()
        done = await scheduler.wait_done(record.namespace, record.name, 30)
        _, nodes = await scheduler.get(done.namespace, done.name)
    assert done.phase.value == "Succeeded", done.message
    attempts = sorted((n for n in nodes.values() if n.type.value == "Pod"), key=lambda n: n.name)
    assert [(a.phase.value, a.message) for a in attempts] == [("Error", "pod deleted"), ("Succeeded", None)]
    assert attempts[1].outputs is not None and attempts[1].outputs.result == "attempt 1"


async def test_terminating_a_workflow_deletes_its_running_pods(api: KubeApi, tmp_path: Path) -> None:
    step = {"name": "s", "container": {"image": "alpine", "command": ["sh", "-c", "sleep 30"]}}
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        record = await scheduler.submit(workflow([step]))
        await eventually(lambda: len(api.kubelet.started) == 1, timeout=10, what="the pod running")
        await scheduler.terminate(record.namespace, record.name)
        done = await scheduler.wait_done(record.namespace, record.name, 30)
        assert done.phase.value == "Failed"
        assert api.kubelet.pods() == {}


async def test_step_deadline_deletes_the_pod(api: KubeApi, tmp_path: Path) -> None:
    step = {
        "name": "s",
        "activeDeadlineSeconds": 1,
        "container": {"image": "alpine", "command": ["sh", "-c", "sleep 30"]},
    }
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        done, nodes = await run_to_end(scheduler, workflow([step]))
    (node,) = pods_of(nodes).values()
    assert done.phase.value == "Failed"
    assert node.message == "Pod was active on the node longer than the specified deadline"
    assert api.kubelet.pods() == {}


async def test_without_a_cluster_or_with_an_unreachable_one_the_step_says_why(tmp_path: Path) -> None:
    step = {"name": "s", "container": {"image": "alpine", "command": ["true"]}}
    async with kube_scheduler(tmp_path / "none", None) as scheduler:
        _, nodes = await run_to_end(scheduler, workflow([step]))
    (node,) = pods_of(nodes).values()
    assert node.phase.value == "Error"
    assert (
        node.message
        == "executor 'kubernetes' needs a cluster: start the server with --kubeconfig FILE (or in-cluster)"
    )
    async with kube_scheduler(
        tmp_path / "gone", Cluster.from_url("http://127.0.0.1:9", timeout=1)
    ) as scheduler:
        _, nodes = await run_to_end(scheduler, workflow([step]), timeout=60)
    (node,) = pods_of(nodes).values()
    assert node.phase.value == "Error"
    assert node.message is not None and node.message.startswith("cannot create pod default/")
    assert "cannot reach the API server at http://127.0.0.1:9" in node.message


async def test_a_script_without_command_is_refused_with_the_reason(api: KubeApi, tmp_path: Path) -> None:
    step = {"name": "s", "script": {"image": "python:3.12", "source": "print(1)"}}
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        _, nodes = await run_to_end(scheduler, workflow([step]))
    (node,) = pods_of(nodes).values()
    assert node.phase.value == "Error"
    assert (
        node.message
        == "a script template needs command (e.g. [python] or [sh]) under the Kubernetes executor"
    )
    assert api.kubelet.pods() == {}


@pytest.mark.slow
async def test_serve_with_a_kubeconfig_runs_labelled_steps_as_pods(api: KubeApi, tmp_path: Path) -> None:
    import asyncio

    import httpx

    from tests.support.server_proc import ServerProcess

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: emu\n"
        f"clusters: [{{name: emu, cluster: {{server: '{api.url}'}}}}]\n"
        "users: [{name: me, user: {}}]\n"
        "contexts: [{name: emu, context: {cluster: emu, user: me, namespace: default}}]\n"
    )
    server = ServerProcess(
        "--port", "0", "--data-dir", str(tmp_path / "data"), "--kubeconfig", str(kubeconfig)
    ).start()
    try:
        base = await asyncio.to_thread(lambda: server.base_url)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=30, what="server ready")
            body = {
                "metadata": {"generateName": "served-", "labels": ON_KUBE},
                "spec": {
                    "entrypoint": "s",
                    "templates": [
                        {
                            "name": "s",
                            "container": {"image": "alpine", "command": ["sh", "-c", "echo from a pod"]},
                        }
                    ],
                },
            }
            name = (await http.post("/api/v1/workflows/default", json={"workflow": body})).json()["metadata"][
                "name"
            ]

            async def done() -> bool:
                return (await http.get(f"/api/v1/workflows/default/{name}")).json()["status"].get(
                    "phase"
                ) == "Succeeded"

            await eventually(done, timeout=30, what="the workflow run as a pod")
            wf = (await http.get(f"/api/v1/workflows/default/{name}")).json()
        (node,) = [n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]
        assert node["outputs"]["result"] == "from a pod"
        assert node["id"] in api.kubelet.pods()
    finally:
        await asyncio.to_thread(server.stop)


def test_serve_refuses_the_kubernetes_executor_without_a_cluster(tmp_path: Path) -> None:
    import subprocess

    from tests.support.server_proc import REPO, eventflow_argv

    run = subprocess.run(
        eventflow_argv("serve", "--executor", "kubernetes", "--data-dir", str(tmp_path), "--port", "0"),
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert run.returncode == 2
    assert (
        run.stderr.strip()
        == "eventflow: error: invalid setting: executor kubernetes needs a cluster: give --kubeconfig FILE (or in-cluster)"
    )


async def test_a_new_scheduler_follows_the_pods_of_the_one_before(api: KubeApi, tmp_path: Path) -> None:
    step = {
        "name": "s",
        "container": {"image": "alpine", "command": ["sh", "-c", "echo begun; sleep 1; echo ended"]},
    }
    async with kube_scheduler(tmp_path, api.cluster()) as first:
        record = await first.submit(workflow([step]))
        await eventually(lambda: len(api.kubelet.started) == 1, timeout=10, what="the pod running")
        assert first.kubernetes is not None
        first.kubernetes._delete = _keep  # type: ignore[method-assign] # killed: it deletes nothing on its way out
    async with kube_scheduler(tmp_path, api.cluster()) as second:
        done = await second.wait_done(record.namespace, record.name, 30)
        _, nodes = await second.get(record.namespace, record.name)
    assert done.phase.value == "Succeeded", done.message
    (node,) = pods_of(nodes).values()
    assert node.outputs is not None and node.outputs.result == "begun\nended"
    assert api.kubelet.started == [node.id]  # one pod, run once


async def _keep(*_: Any) -> None:
    return None


@pytest.mark.skipif(
    not os.environ.get("KUBECONFIG"), reason="KUBECONFIG is not set: no real cluster to test against"
)
async def test_real_cluster_runs_a_step_as_a_pod_and_a_resource_step(tmp_path: Path) -> None:
    cluster = Cluster.from_kubeconfig(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    name = f"eventflow-test-{uuid.uuid4().hex[:8]}"
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n"
    templates = [
        {
            "name": "main",
            "steps": [
                [{"name": "echo", "template": "echo"}],
                [{"name": "make", "template": "make"}],
                [{"name": "drop", "template": "drop"}],
            ],
        },
        {
            "name": "echo",
            "container": {"image": "busybox:1.36", "command": ["sh", "-c", "echo from a real pod"]},
        },
        {
            "name": "make",
            "resource": {"action": "create", "manifest": manifest},
            "outputs": {"parameters": [{"name": "uid", "valueFrom": {"jsonPath": "{.metadata.uid}"}}]},
        },
        {"name": "drop", "resource": {"action": "delete", "manifest": manifest}},
    ]
    wf = Workflow.model_validate(
        {
            "metadata": {"generateName": "real-", "namespace": cluster.namespace, "labels": ON_KUBE},
            "spec": {"entrypoint": "main", "templates": templates, "podGC": {"strategy": "OnPodCompletion"}},
        }
    )
    async with kube_scheduler(tmp_path, cluster) as scheduler:
        done, nodes = await run_to_end(scheduler, wf, timeout=300)
    assert done.phase.value == "Succeeded", done.message
    pods = pods_of(nodes)
    assert pods["echo"].outputs is not None and pods["echo"].outputs.result == "from a real pod"
    assert pods["make"].outputs is not None and pods["make"].outputs.parameter("uid")


def test_lint_refuses_an_unknown_executor_label_with_its_yaml_path() -> None:
    from workflows.lint import lint

    wf = Workflow.model_validate(
        {
            "metadata": {"generateName": "x-", "labels": {"eventflow.io/executor": "kubernets"}},
            "spec": {
                "entrypoint": "s",
                "templates": [
                    {
                        "name": "s",
                        "metadata": {"labels": {"eventflow.io/executor": "lambda"}},
                        "container": {"image": "alpine"},
                    }
                ],
            },
        }
    )
    assert [str(f) for f in lint(wf)] == [
        "metadata.labels unknown executor 'kubernets': expected local, workers, kubernetes",
        "templates.s.metadata.labels unknown executor 'lambda': expected local, workers, kubernetes",
    ]

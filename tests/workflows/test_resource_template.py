"""Resource templates against kmock's KubernetesEmulator over HTTP: the action lands in the API, the
conditions are read from the object as it changes, outputs come from jsonPath and jqFilter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.support.kubelet import KubeApi, kube_scheduler
from tests.support.poll import eventually
from tests.support.scheduler import run_to_end
from workflows.executor.resource import ConditionError, parse_condition
from workflows.models import Workflow
from workflows.status import NodeStatus

JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  generateName: rand-num-
spec:
  completions: 3
"""


WATCHED_JOB = {
    "action": "create",
    "successCondition": "status.succeeded > 2",
    "failureCondition": "status.failed > 1",
    "manifest": JOB,
}


def resource_workflow(resource: dict[str, Any], outputs: list[dict[str, Any]] | None = None) -> Workflow:
    tmpl: dict[str, Any] = {"name": "main", "resource": resource}
    if outputs:
        tmpl["outputs"] = {"parameters": outputs}
    return Workflow.model_validate(
        {"metadata": {"generateName": "res-"}, "spec": {"entrypoint": "main", "templates": [tmpl]}}
    )


def only_node(nodes: dict[str, NodeStatus]) -> NodeStatus:
    (node,) = [n for n in nodes.values() if n.type.value == "Pod"]
    return node


def objects(api: KubeApi, plural: str) -> dict[str, dict[str, Any]]:
    return {
        name: obj.raw
        for (res, _, name), obj in api.emulator.objects.items()
        if res.plural == plural and not obj.deleted
    }


async def test_create_with_generate_name_and_outputs_from_jsonpath_and_jq(
    api: KubeApi, tmp_path: Path
) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: owned-eg-\n  name: owned-eg-1\ndata:\n  some: value\n"
    wf = resource_workflow(
        {"action": "create", "setOwnerReference": True, "manifest": manifest},
        [
            {"name": "name", "valueFrom": {"jsonPath": "{.metadata.name}"}},
            {"name": "data", "valueFrom": {"jqFilter": ".data"}},
            {"name": "some", "valueFrom": {"jqFilter": ".data.some"}},
        ],
    )
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        done, nodes = await run_to_end(scheduler, wf)
    node = only_node(nodes)
    assert done.phase.value == "Succeeded", node.message
    assert node.outputs is not None
    assert node.outputs.parameter("name") == "owned-eg-1"
    assert node.outputs.parameter("data") == '{"some":"value"}'
    assert node.outputs.parameter("some") == "value"
    assert objects(api, "configmaps")["owned-eg-1"]["metadata"]["namespace"] == "default"
    log = Path(node.log_path or "").read_text()
    assert "setOwnerReference: the workflow is not a Kubernetes object here" in log


async def _set_job_status(api: KubeApi, status: dict[str, Any]) -> None:
    async def created() -> bool:
        return bool(objects(api, "jobs"))

    await eventually(created, timeout=10, what="the job created")
    for (res, _, _), obj in api.emulator.objects.items():
        if res.plural == "jobs" and not obj.deleted:
            obj.patch({"status": status})


async def test_success_condition_waits_until_the_object_says_so(api: KubeApi, tmp_path: Path) -> None:
    wf = resource_workflow(WATCHED_JOB)
    api.kubelet.controls = False  # else its fake controller may mark the Job done before the test does
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        record = await scheduler.submit(wf)
        await _set_job_status(api, {"succeeded": 1})
        await asyncio.sleep(0.3)  # several polls see 1 of 3: still running
        assert (await scheduler.get(record.namespace, record.name))[0].phase.value == "Running"
        await _set_job_status(api, {"succeeded": 3})
        done = await scheduler.wait_done(record.namespace, record.name, 10)
    assert done.phase.value == "Succeeded"


async def test_failure_condition_fails_the_step_with_argos_message(api: KubeApi, tmp_path: Path) -> None:
    wf = resource_workflow(WATCHED_JOB)
    api.kubelet.controls = False  # else its fake controller may mark the Job done before the test does
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        record = await scheduler.submit(wf)
        await _set_job_status(api, {"failed": 2})
        done = await scheduler.wait_done(record.namespace, record.name, 10)
        _, nodes = await scheduler.get(record.namespace, record.name)
    assert done.phase.value == "Failed"
    assert only_node(nodes).message == "failure condition 'status.failed>1' evaluated true"


async def test_apply_patch_and_delete(api: KubeApi, tmp_path: Path) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n"
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        done, _ = await run_to_end(scheduler, resource_workflow({"action": "apply", "manifest": cm}))
        assert done.phase.value == "Succeeded"
        assert objects(api, "configmaps")["settings"]["data"] == {"a": "1"}
        patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  b: '2'\n"
        done, _ = await run_to_end(
            scheduler, resource_workflow({"action": "patch", "mergeStrategy": "merge", "manifest": patch})
        )
        assert done.phase.value == "Succeeded"
        assert objects(api, "configmaps")["settings"]["data"] == {"a": "1", "b": "2"}
        done, _ = await run_to_end(
            scheduler, resource_workflow({"action": "apply", "manifest": cm.replace("'1'", "'3'")})
        )
        assert objects(api, "configmaps")["settings"]["data"]["a"] == "3"
        done, _ = await run_to_end(scheduler, resource_workflow({"action": "delete", "manifest": cm}))
        assert done.phase.value == "Succeeded"
        assert "settings" not in objects(api, "configmaps")
        # Already gone: Argo deletes with --ignore-not-found.
        done, nodes = await run_to_end(scheduler, resource_workflow({"action": "delete", "manifest": cm}))
        assert done.phase.value == "Succeeded"
        assert "was already gone" in Path(only_node(nodes).log_path or "").read_text()


async def test_refusals_and_bad_input_say_why(api: KubeApi, tmp_path: Path) -> None:
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        _, nodes = await run_to_end(
            scheduler,
            resource_workflow({"action": "create", "successCondition": "status.x >", "manifest": JOB}),
        )
        node = only_node(nodes)
        assert node.phase.value == "Error"
        assert node.message is not None and node.message.startswith(
            "success condition 'status.x >' failed to parse"
        )
        unknown = "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n"
        _, nodes = await run_to_end(scheduler, resource_workflow({"action": "create", "manifest": unknown}))
        node = only_node(nodes)
        assert node.phase.value == "Failed"
        assert node.message is not None and "does not serve example.com/v1" in node.message
    async with kube_scheduler(tmp_path / "none", None) as scheduler:
        _, nodes = await run_to_end(scheduler, resource_workflow({"action": "create", "manifest": JOB}))
    node = only_node(nodes)
    assert node.phase.value == "Error"
    assert (
        node.message
        == "resource templates need a Kubernetes cluster: start the server with --kubeconfig FILE (or in-cluster)"
    )


def test_conditions_follow_kubernetes_label_selector_semantics() -> None:
    obj = {"status": {"phase": "Running", "succeeded": 3, "ok": True}, "items": [1, 2]}

    def holds(text: str) -> bool:
        return all(r.matches(obj) for r in parse_condition(text))

    assert holds("status.phase == Running") and holds("status.phase=Running")
    assert holds("status.phase in (Pending,Running)") and not holds("status.phase notin (Running)")
    assert holds("status.missing != x")  # a missing key satisfies != and notin, as in Kubernetes
    assert not holds("status.missing = x") and not holds("status.missing > 1")
    assert holds("status.succeeded > 2, status.succeeded < 4") and not holds("status.succeeded > 3")
    assert holds("status.ok = true") and holds("items.# = 2") and holds("items.1 = 2")
    assert holds("status.phase") and holds("!status.gone") and not holds("!status.phase")
    assert [str(r) for r in parse_condition("a in (y, x), b==1, !c")] == ["a in (x,y)", "b==1", "!c"]
    for bad in ("", "a >", "a > x", "a in x"):
        try:
            parse_condition(bad)
        except ConditionError:
            continue
        raise AssertionError(f"{bad!r} parsed")

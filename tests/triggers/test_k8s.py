"""The k8s trigger against an API server: kmock's KubernetesEmulator over HTTP (objects kept in
memory, discovery served from the declared resources), sensors on the real bus. A real cluster is
used too when KUBECONFIG is set.

Emulator gaps filled here, not in our code: it has no PUT (an update), so a reaction replaces the
stored object; it cannot create cluster-scoped objects; it stores an object even when a reaction
answers the create with an error.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kmock import (
    KubernetesEmulator,
    KubernetesError,
    KubernetesObjectNotFoundError,
    ResourceInfo,
    Server,
    resource,
)

from sensors.cel import CelEnvironment
from sensors.compile import SensorError, compile_sensor
from tests.sensors.conftest import SensorHarness, dep, sensor_harness, sensor_manifest, webhook_event
from tests.support.poll import eventually
from tests.support.scheduler import running_scheduler
from triggers.k8s import K8sConfig, K8sPolicy, K8sTrigger, wait_for_labels
from workflows.kube import Cluster, KubeConfigError, KubeNotFound, ObjectRef

pytestmark = pytest.mark.nats

KEY = "events.argoproj.io/idempotency-key"
RESOURCES = {
    "v1/configmaps": ResourceInfo(kind="ConfigMap", namespaced=True),
    "v1/secrets": ResourceInfo(kind="Secret", namespaced=True),
    "argoproj.io/v1alpha1/workflows": ResourceInfo(kind="Workflow", namespaced=True),
    "example.com/v1/widgets": ResourceInfo(kind="Widget", namespaced=True),
}
FORBIDDEN = 'secrets is forbidden: User "system:serviceaccount:default:eventflow" cannot create resource "secrets"'
WORKFLOW = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "from-event-"},
    "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "message", "value": "-"}]},
             "templates": [{"name": "main", "container": {"image": "busybox", "command": ["echo"]}}]},
}  # fmt: skip


@dataclass
class Api:
    emulator: KubernetesEmulator
    url: str
    cluster: Cluster

    def objects(self, plural: str) -> dict[str, dict[str, Any]]:
        return {name: obj.raw for (res, _, name), obj in self.emulator.objects.items() if res.plural == plural and not obj.deleted}

    def seed(self, plural: str, name: str, obj: dict[str, Any]) -> None:
        self.emulator.objects[f"v1/{plural}", "default", name] = obj

    def requests(self, method: str) -> list[Any]:
        return [r for r in list(self.emulator) if r.method.value == method]


def _replace_on_put(emulator: KubernetesEmulator) -> Callable[[Any], dict[str, Any]]:
    def put(request: Any) -> dict[str, Any]:
        key = (request.resource, request.namespace, request.name)
        if key not in emulator.objects or emulator.objects[key].deleted:
            raise KubernetesObjectNotFoundError()
        emulator.objects[key].create(request.data)  # a new version: the whole object replaced
        raw: dict[str, Any] = emulator.objects[key].raw
        return raw

    return put


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with KubernetesEmulator() as emulator, Server(emulator) as server:
        for key, info in RESOURCES.items():
            emulator.resources[key] = info
        emulator["put"] << _replace_on_put(emulator)
        emulator["post", resource("", "v1", "secrets")] << KubernetesError(status=403, reason="Forbidden", message=FORBIDDEN)
        url = str(server.url).rstrip("/")
        yield Api(emulator, url, Cluster.from_url(url))


@pytest.fixture
async def sensors(bus: Any, tmp_path: Path, api: Api) -> AsyncIterator[SensorHarness]:
    async with sensor_harness(bus, tmp_path) as harness:
        harness.runtime.trigger_context["kube"] = api.cluster
        yield harness


def _k8s(resource: dict[str, Any], *, operation: str = "create", name: str = "act", parameters: list[dict[str, Any]] | None = None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"operation": operation, "source": {"resource": resource}, **more}
    if parameters:
        body["parameters"] = parameters
    return {"template": {"name": name, "k8s": body}}


def _message_to(dest: str, **more: Any) -> list[dict[str, Any]]:
    return [{"src": {"dependencyName": "a", "dataKey": "body.message"}, "dest": dest, **more}]


def _configmap(**meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"message": "-"}}


async def _fire(s: SensorHarness, sensor: str, trigger: dict[str, Any], message: str = "hello") -> Any:
    await s.apply(sensor_manifest(sensor, [dep("a", event=sensor)], [trigger]))
    event = webhook_event({"message": message}, event=sensor)
    await s.publish(event)
    firings = await s.wait_firings(sensor, 1)
    [firing] = [f for f in firings if f.event_ids == [event.id]]
    return firing


# -- create --------------------------------------------------------------------------------------


async def test_configmap_is_created_with_the_event_parameter_and_argo_labels(sensors: SensorHarness, api: Api) -> None:
    firing = await _fire(sensors, "cm", _k8s(_configmap(generateName="hello-"), parameters=_message_to("data.message")))
    assert firing.outcome == "Succeeded", firing.detail
    name = f"hello-{firing.key[:10]}"
    assert firing.detail["result"] == {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": name, "operation": "create"}
    obj = api.objects("configmaps")[name]
    assert obj["data"] == {"message": "hello"}
    labels = obj["metadata"]["labels"]
    assert labels["events.argoproj.io/sensor"] == "cm" and labels["events.argoproj.io/trigger"] == "act"
    assert labels["events.argoproj.io/action-timestamp"].isdigit()
    assert obj["metadata"]["annotations"][KEY] == firing.key
    assert obj["metadata"]["namespace"] == "default"


@pytest.mark.parametrize(
    ("resource", "extra", "plural"),
    [
        (WORKFLOW, {"target": "cluster"}, "workflows"),  # an Argo Workflow CR, opted out of the built-in scheduler
        ({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"generateName": "w-"}, "spec": {"message": "-"}}, {}, "widgets"),
    ],
    ids=["argo-workflow-target-cluster", "custom-kind"],
)
async def test_custom_resource_is_created_through_the_api(sensors: SensorHarness, api: Api, resource: dict[str, Any], extra: dict[str, Any], plural: str) -> None:
    dest = "spec.arguments.parameters.0.value" if resource["kind"] == "Workflow" else "spec.message"
    firing = await _fire(sensors, "cr", _k8s(resource, parameters=_message_to(dest), **extra))
    assert firing.outcome == "Succeeded", firing.detail
    result = firing.detail["result"]
    assert (result["apiVersion"], result["kind"]) == (resource["apiVersion"], resource["kind"])
    [obj] = api.objects(plural).values()
    assert obj["metadata"]["name"] == result["name"] and obj["metadata"]["labels"]["events.argoproj.io/sensor"] == "cr"
    assert "hello" in str(obj["spec"])


async def test_workflow_without_target_goes_to_the_built_in_scheduler_not_the_api(bus: Any, tmp_path: Path, api: Api) -> None:
    async with running_scheduler(tmp_path, bus=bus) as scheduler, sensor_harness(bus, tmp_path, scheduler=scheduler) as s:
        s.runtime.trigger_context["kube"] = api.cluster
        firing = await _fire(s, "wf", _k8s(WORKFLOW))
        assert firing.outcome == "Succeeded", firing.detail
        assert firing.detail["result"]["workflow"].startswith("from-event-")
        assert await scheduler.store.get_workflow("default", firing.detail["result"]["workflow"]) is not None
    assert api.objects("workflows") == {} and not api.requests("POST")


async def test_redelivered_create_finds_its_object_and_creates_no_second(sensors: SensorHarness, api: Api) -> None:
    s = sensors
    manifest = sensor_manifest("idem", [dep("a", event="idem")], [_k8s(_configmap(generateName="once-"), parameters=_message_to("data.message"))])
    await s.apply(manifest)
    await s.publish(webhook_event({"message": "hello"}, event="idem"))
    [firing] = await s.wait_firings("idem", 1)
    await s.settled("idem")
    # As if the server died after creating the object, before recording the firing: forget it was
    # fired and deliver the event again from the start of the stream.
    await (await s.bus.kv("sensor_fired")).delete(firing.key)
    await s.runtime.close()
    assert await s.bus.delete_consumer(s.runtime.consumer_name("default", "idem"))
    await s.apply({**manifest, "spec": {**manifest["spec"], "deliver": "all"}})
    await s.settled("idem")
    [again] = await s.history("idem")
    assert again.outcome == "Succeeded" and again.detail["result"]["existing"] is True
    assert again.detail["result"]["name"] == firing.detail["result"]["name"]
    assert list(api.objects("configmaps")) == [firing.detail["result"]["name"]]
    assert len(api.requests("POST")) == 2  # the first create, and the redelivery's "already exists"


async def test_create_of_a_name_taken_by_another_object_is_rejected_without_retries(sensors: SensorHarness, api: Api) -> None:
    api.seed("configmaps", "taken", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "taken", "namespace": "default"}})
    trigger = {**_k8s(_configmap(name="taken")), "retryStrategy": {"steps": 3, "duration": "10ms"}}
    firing = await _fire(sensors, "taken", trigger)
    assert firing.outcome == "Failed" and firing.detail["attempts"] == 1
    assert "create v1 ConfigMap default/taken: 409" in firing.detail["error"] and "not created by this firing" in firing.detail["error"]


# -- update, patch, delete -----------------------------------------------------------------------


def _seed_cm(api: Api, name: str = "cfg", **data: str) -> None:
    api.seed("configmaps", name, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "resourceVersion": "7"}, "data": data})


async def test_update_merges_the_resource_into_the_object(sensors: SensorHarness, api: Api) -> None:
    _seed_cm(api, keep="1", message="old")
    firing = await _fire(sensors, "upd", _k8s(_configmap(name="cfg"), operation="update", parameters=_message_to("data.message")))
    assert firing.outcome == "Succeeded", firing.detail
    assert firing.detail["result"] == {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": "cfg", "operation": "update"}
    [put] = api.requests("PUT")
    assert put.data["metadata"]["resourceVersion"] == "7"  # the read version: a concurrent change conflicts
    assert api.objects("configmaps")["cfg"]["data"] == {"keep": "1", "message": "hello"}


async def test_update_with_live_object_applies_parameters_to_the_object_in_the_cluster(sensors: SensorHarness, api: Api) -> None:
    _seed_cm(api, message="old ")
    trigger = _k8s(_configmap(name="cfg"), operation="update", liveObject=True, parameters=_message_to("data.message", operation="append"))
    firing = await _fire(sensors, "live", trigger)
    assert firing.outcome == "Succeeded", firing.detail
    assert api.objects("configmaps")["cfg"]["data"] == {"message": "old hello"}


async def test_update_of_a_missing_object_creates_it(sensors: SensorHarness, api: Api) -> None:
    firing = await _fire(sensors, "upnew", _k8s(_configmap(name="fresh"), operation="update", parameters=_message_to("data.message")))
    assert firing.outcome == "Succeeded", firing.detail
    assert firing.detail["result"]["created"] is True
    obj = api.objects("configmaps")["fresh"]
    assert obj["data"] == {"message": "hello"} and obj["metadata"]["annotations"][KEY] == firing.key


@pytest.mark.parametrize(
    ("strategy", "resource"),
    [
        (None, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"message": "-"}}),
        ("application/strategic-merge-patch+json", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"message": "-"}}),
        ("application/json-patch+json", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "patch": [{"op": "replace", "path": "/data/message", "value": "-"}]}),
    ],
    ids=["merge-default", "strategic-merge", "json-patch"],
)
async def test_patch_sends_the_strategy_and_changes_the_object(sensors: SensorHarness, api: Api, strategy: str | None, resource: dict[str, Any]) -> None:
    _seed_cm(api, keep="1", message="old")
    dest = "patch.0.value" if "patch" in resource else "data.message"
    extra = {"patchStrategy": strategy} if strategy else {}
    firing = await _fire(sensors, "pat", _k8s(resource, operation="patch", parameters=_message_to(dest), **extra))
    assert firing.outcome == "Succeeded", firing.detail
    assert firing.detail["result"]["operation"] == "patch" and firing.detail["result"]["name"] == "cfg"
    [request] = api.requests("PATCH")
    assert request.headers["Content-Type"] == (strategy or "application/merge-patch+json")
    assert api.objects("configmaps")["cfg"]["data"] == {"keep": "1", "message": "hello"}


async def test_patch_with_live_object_sends_the_live_object_with_parameters(sensors: SensorHarness, api: Api) -> None:
    _seed_cm(api, message="old ")
    trigger = _k8s(_configmap(name="cfg"), operation="patch", liveObject=True, parameters=_message_to("data.message", operation="append"))
    firing = await _fire(sensors, "livepatch", trigger)
    assert firing.outcome == "Succeeded", firing.detail
    [request] = api.requests("PATCH")
    assert request.data["metadata"]["resourceVersion"] == "7" and request.data["data"] == {"message": "old hello"}
    assert api.objects("configmaps")["cfg"]["data"] == {"message": "old hello"}


async def test_delete_removes_the_object_and_a_missing_one_is_fine(sensors: SensorHarness, api: Api) -> None:
    _seed_cm(api, message="x")
    trigger = _k8s(_configmap(name="cfg"), operation="delete")
    first = await _fire(sensors, "del", trigger)
    assert first.outcome == "Succeeded", first.detail
    assert first.detail["result"] == {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": "cfg", "operation": "delete"}
    assert "cfg" not in api.objects("configmaps")
    [request] = api.requests("DELETE")
    assert request.data["propagationPolicy"] == "Background"
    await sensors.publish(webhook_event({"message": "again"}, event="del"))
    [second] = [f for f in await sensors.wait_firings("del", 2) if f.key != first.key]
    assert second.outcome == "Succeeded" and second.detail["result"]["missing"] is True


# -- failures ------------------------------------------------------------------------------------


async def test_forbidden_create_fails_at_once_naming_the_verb_and_resource(sensors: SensorHarness, api: Api) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"t": "-"}}
    firing = await _fire(sensors, "forbidden", {**_k8s(secret), "retryStrategy": {"steps": 3, "duration": "10ms"}})
    assert firing.outcome == "Failed" and firing.detail["attempts"] == 1  # permanent: not retried
    assert firing.detail["error"] == f"create v1 Secret default/token: 403 Forbidden: {FORBIDDEN}"


async def test_unreachable_api_server_fails_after_the_retries(bus: Any, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed once the block ends: connection refused
    async with sensor_harness(bus, tmp_path) as s:
        s.runtime.trigger_context["kube"] = Cluster.from_url(url, timeout=2)
        trigger = {**_k8s(_configmap(name="cfg")), "retryStrategy": {"steps": 2, "duration": "10ms"}}
        firing = await _fire(s, "down", trigger)
    assert firing.outcome == "Failed" and firing.detail["attempts"] == 2  # transient: retried
    assert firing.detail["error"].startswith(f"create v1 ConfigMap default/cfg: cannot reach the API server at {url}: ConnectError")


async def test_kind_the_api_does_not_serve_is_rejected_naming_it(sensors: SensorHarness, api: Api) -> None:
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    firing = await _fire(sensors, "gadget", _k8s(gadget))
    assert firing.outcome == "Failed"
    assert firing.detail["error"] == "create example.com/v1 Gadget default/g: the API server serves no kind Gadget in example.com/v1 (kinds there: Widget)"
    missing = {"apiVersion": "nope.io/v1", "kind": "Thing", "metadata": {"name": "t"}}
    firing = await _fire(sensors, "nope", _k8s(missing))
    assert "404 the API server does not serve nope.io/v1 (is its CustomResourceDefinition installed?)" in firing.detail["error"]


async def test_resource_with_malformed_metadata_is_rejected(sensors: SensorHarness, api: Api) -> None:
    firing = await _fire(sensors, "malformed", _k8s({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": ["a"]}}))
    assert firing.outcome == "Failed"
    assert firing.detail["error"] == "create v1 ConfigMap: metadata, metadata.labels and metadata.annotations must be mappings"
    assert api.objects("configmaps") == {}


async def test_without_a_cluster_a_configmap_trigger_is_refused_at_apply_with_how_to_configure_one(bus: Any, tmp_path: Path) -> None:
    async with sensor_harness(bus, tmp_path) as s:
        with pytest.raises(SensorError) as info:
            await s.apply(sensor_manifest("nocluster", [dep("a", event="nocluster")], [_k8s(_configmap(name="cfg"))]))
    [problem] = info.value.problems
    assert problem.startswith("spec.triggers[0].template.k8s.source.resource: create of v1 ConfigMap objects needs a Kubernetes cluster and none is configured")
    assert "--kubeconfig" in problem


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"operation": "replace"}, r"template\.k8s\.operation: 'replace' is not supported \(supported: create, update, patch, delete\)"),
        ({"patchStrategy": "application/merge-patch+json"}, r"template\.k8s\.patchStrategy: only used by operation patch, not 'create'"),
        ({"operation": "patch", "patchStrategy": "application/apply-patch+yaml"}, r"template\.k8s\.patchStrategy: 'application/apply-patch\+yaml' is not supported"),
        ({"liveObject": True}, r"template\.k8s\.liveObject: only used by operations update and patch, not 'create'"),
        ({"operation": "patch", "patchStrategy": "application/json-patch+json"}, r"template\.k8s\.source\.resource\.patch: a JSON patch needs its operations as a list"),
        ({"target": "scheduler"}, r"template\.k8s\.target: only a kind: Workflow \(argoproj\.io\) can go to the built-in scheduler, not v1 ConfigMap"),
        ({"target": "elsewhere"}, r"template\.k8s\.target: "),
        ({"source": {"resource": {"metadata": {"name": "x"}}}}, r"template\.k8s\.source\.resource: expected apiVersion and kind"),
        ({"operation": "delete", "source": {"resource": WORKFLOW}}, r"template\.k8s\.operation: 'delete' of a Workflow in the built-in scheduler is not supported"),
    ],
)
def test_invalid_k8s_trigger_is_refused_naming_the_yaml_path(body: dict[str, Any], message: str) -> None:
    k8s = {"operation": "create", "source": {"resource": _configmap(name="cfg")}, **body}
    manifest = sensor_manifest("bad", [dep("a")], [{"template": {"name": "t", "k8s": k8s}}])
    with pytest.raises(SensorError, match=r"spec\.triggers\[0\]\." + message):
        compile_sensor(manifest, "sensors/bad.yaml", "default", CelEnvironment())


def test_workflow_update_with_target_cluster_is_accepted() -> None:
    k8s = {"operation": "update", "target": "cluster", "source": {"resource": {**WORKFLOW, "metadata": {"name": "w"}}}}
    compile_sensor(sensor_manifest("ok", [dep("a")], [{"template": {"name": "t", "k8s": k8s}}]), "ok.yaml", "default", CelEnvironment())


def test_check_context_without_a_cluster_names_the_path_and_how_to_configure_one() -> None:
    config = K8sConfig.model_validate({"source": {"resource": _configmap(name="cfg")}})
    [problem] = K8sTrigger.check_context(config, "spec.triggers[0].template.k8s", {"kube": None})
    assert problem.startswith("spec.triggers[0].template.k8s.source.resource: create of v1 ConfigMap objects needs a Kubernetes cluster")
    assert "--kubeconfig" in problem
    workflow = K8sConfig.model_validate({"source": {"resource": WORKFLOW}})
    assert K8sTrigger.check_context(workflow, "w", {"kube": None}) == []
    assert K8sTrigger.check_context(config, "w", {"kube": Cluster.from_url("http://127.0.0.1:1")}) == []


# -- the client and policy.k8s -------------------------------------------------------------------


async def test_client_from_a_kubeconfig_sends_its_token_and_caches_discovery(api: Api, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: emu\n"
        f"clusters: [{{name: emu, cluster: {{server: '{api.url}'}}}}]\n"
        "users: [{name: bot, user: {token: s3cret}}]\n"
        "contexts: [{name: emu, context: {cluster: emu, user: bot, namespace: team}}]\n"
    )
    cluster = Cluster.from_kubeconfig(kubeconfig)
    assert cluster.namespace == "team"
    client = cluster()
    try:
        for i in range(3):
            await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
        got = await client.get(("v1", "ConfigMap", "team", "c2"))
    finally:
        await client.close()
    assert got["metadata"] == {"name": "c2", "namespace": "team"}
    assert all(r.headers["Authorization"] == "Bearer s3cret" for r in list(api.emulator))
    assert [r.url.path for r in list(api.emulator)].count("/api/v1") == 1  # discovered once


def test_missing_kubeconfig_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match=r"kubeconfig .*/absent: Configuration file .*absent not found"):
        Cluster.from_kubeconfig(tmp_path / "absent")


async def test_wait_for_labels_sees_them_appear_and_gives_up_after_the_steps(api: Api) -> None:
    client = api.cluster()
    ref = ObjectRef("v1", "ConfigMap", "default", "job")
    try:
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "job"}})
        policy = K8sPolicy.model_validate({"labels": {"phase": "Succeeded"}, "backoff": {"steps": 50, "duration": "20ms"}})

        async def finish() -> None:
            await asyncio.sleep(0.1)
            await client.patch(ref, {"metadata": {"labels": {"phase": "Succeeded"}}})

        done = asyncio.create_task(finish())
        assert await wait_for_labels(client, ref, policy)
        await done
        never = K8sPolicy.model_validate({"labels": {"phase": "Failed"}, "backoff": {"steps": 3, "duration": 10_000_000, "factor": "2"}})
        assert not await wait_for_labels(client, ref, never)
    finally:
        await client.close()


# -- a real cluster ------------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG is not set: no real cluster to test against")
async def test_real_cluster_configmap_create_and_delete(bus: Any, tmp_path: Path) -> None:
    cluster = Cluster.from_kubeconfig(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    name = f"eventflow-test-{uuid.uuid4().hex[:8]}"
    async with sensor_harness(bus, tmp_path) as s:
        s.runtime.trigger_context["kube"] = cluster
        resource = {**_configmap(name=name), "metadata": {"name": name, "namespace": cluster.namespace}}
        created = await _fire(s, "real", _k8s(resource, parameters=_message_to("data.message")))
        assert created.outcome == "Succeeded", created.detail
        client = cluster()
        try:
            obj = await client.get(("v1", "ConfigMap", cluster.namespace, name))
            assert obj["data"] == {"message": "hello"} and obj["metadata"]["labels"]["events.argoproj.io/sensor"] == "real"
        finally:
            await client.delete(("v1", "ConfigMap", cluster.namespace, name))
            await client.close()

    async def gone() -> bool:
        probe = cluster()
        try:
            await probe.get(("v1", "ConfigMap", cluster.namespace, name))
        except KubeNotFound:
            return True
        finally:
            await probe.close()
        return False

    await eventually(gone, timeout=30, what=f"ConfigMap {name} to be deleted")


# -- argoWorkflow with target: cluster -------------------------------------------------------------


def _argo(operation: str, resource: dict[str, Any], *, name: str = "argo", **more: Any) -> dict[str, Any]:
    return {"template": {"name": name, "argoWorkflow": {"operation": operation, "source": {"resource": resource}, "target": "cluster", **more}}}


async def test_argo_workflow_submit_and_terminate_through_the_cluster(sensors: SensorHarness, api: Api) -> None:
    submitted = await _fire(sensors, "argo-submit", _argo("submit", WORKFLOW, args=["-p", "message=from-args", "-l", "team=a"]))
    assert submitted.outcome == "Succeeded", submitted.detail
    result = submitted.detail["result"]
    assert result["target"] == "cluster" and result["workflow"].startswith("from-event-")
    [obj] = api.objects("workflows").values()
    assert obj["metadata"]["name"] == result["workflow"]
    assert obj["metadata"]["labels"]["team"] == "a" and obj["metadata"]["annotations"][KEY] == submitted.key
    assert obj["spec"]["arguments"]["parameters"] == [{"name": "message", "value": "from-args"}]
    target = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": result["workflow"]}}
    stopped = await _fire(sensors, "argo-terminate", _argo("terminate", target))
    assert stopped.outcome == "Succeeded", stopped.detail
    [obj] = api.objects("workflows").values()
    assert obj["spec"]["shutdown"] == "Terminate"


def test_argo_workflow_target_cluster_refuses_what_needs_the_argo_server() -> None:
    env = CelEnvironment()
    with pytest.raises(SensorError, match=r"retry is not supported with target: cluster"):
        compile_sensor(sensor_manifest("s", [dep("a")], [_argo("retry", {**WORKFLOW, "metadata": {"name": "x"}})]), "s.yaml", None, env)
    with pytest.raises(SensorError, match=r"target: cluster needs a Kubernetes cluster and none is configured"):
        compile_sensor(sensor_manifest("s", [dep("a")], [_argo("submit", WORKFLOW)]), "s.yaml", None, env, {"kube": None})

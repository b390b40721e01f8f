"""The argoWorkflow trigger on the built-in scheduler: every operation, resource sources, idempotency."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from eventbus import decode
from sensors.cel import CelEnvironment
from sensors.compile import SensorError, compile_sensor
from tests.sensors.conftest import SensorHarness, dep, sensor_manifest, webhook_event
from tests.support.poll import eventually
from workflows.store import ResourceRecord

pytestmark = pytest.mark.nats

SUSPENDING = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "waits"},
    "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "steps": [[{"name": "pause", "template": "pause"}], [{"name": "after", "template": "ok"}]]},
        {"name": "pause", "suspend": {}},
        {"name": "ok", "container": {"image": "x", "command": ["true"]}},
    ]},
}  # fmt: skip
HELLO = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "hello-"},
    "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "msg", "value": "-"}]},
             "templates": [{"name": "main", "inputs": {"parameters": [{"name": "msg"}]}, "container": {"image": "x", "command": ["echo", "{{inputs.parameters.msg}}"]}}]},
}  # fmt: skip


def _trigger(operation: str, source: dict[str, Any], *, args: list[str] | None = None, name: str = "act", **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"operation": operation, "source": source, **more}
    if args:
        body["args"] = args
    return {"template": {"name": name, "argoWorkflow": body}}


def _named(name: str) -> dict[str, Any]:
    return {"resource": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": name}}}


async def _fire(s: SensorHarness, sensor: str, trigger: dict[str, Any], count: int = 1) -> Any:
    await s.apply(sensor_manifest(sensor, [dep("a", event=sensor)], [trigger]))
    await s.publish(webhook_event({"msg": "hi", "target": "waits"}, event=sensor))
    firings = await s.wait_firings(sensor, count)
    return firings[0]


def _scheduler(s: SensorHarness) -> Any:
    return s.runtime.trigger_context["scheduler"]


async def test_submit_with_args_parameters_and_labels(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    firing = await _fire(s, "submit", _trigger("submit", {"resource": HELLO}, args=["-p", "msg=from-args", "--labels", "team=a,env=b"]))
    assert firing.outcome == "Succeeded", firing.detail
    record = await _scheduler(s).wait_done("default", firing.detail["result"]["workflow"], 30)
    assert record.phase.value == "Succeeded"
    assert record.labels["team"] == "a" and record.labels["events.argoproj.io/trigger"] == "act"
    assert record.name.startswith("hello-") and firing.key[:10] in record.name


async def test_suspend_resume_stop_terminate_act_on_the_named_workflow(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    scheduler = _scheduler(s)
    from workflows.models import Workflow

    await scheduler.submit(Workflow.model_validate(SUSPENDING))

    async def suspended_node() -> bool:
        _, nodes = await scheduler.get("default", "waits")
        return any(n.type.value == "Suspend" and n.phase.value == "Running" for n in nodes.values())

    await eventually(suspended_node, what="the suspend step to run")
    firing = await _fire(s, "resume", _trigger("resume", _named("waits"), args=["--node-field-selector", "displayName=pause"]))
    assert firing.outcome == "Succeeded", firing.detail
    record = await scheduler.wait_done("default", "waits", 30)
    assert record.phase.value == "Succeeded"
    # acting on a finished workflow is refused with the reason, and the firing is recorded as failed
    failed = await _fire(s, "suspend", _trigger("suspend", _named("waits")))
    assert failed.outcome == "Failed" and "suspend" in failed.detail["error"]


async def test_terminate_ends_a_running_workflow(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    scheduler = _scheduler(s)
    from workflows.models import Workflow

    await scheduler.submit(Workflow.model_validate(SUSPENDING))
    firing = await _fire(s, "terminate", _trigger("terminate", _named("waits")))
    assert firing.outcome == "Succeeded", firing.detail
    record = await scheduler.wait_done("default", "waits", 30)
    assert record.phase.value == "Failed" and "Terminate" in (record.message or "")


async def test_submit_from_workflow_template_and_cron_workflow(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    store = _scheduler(s).store
    template = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "tmpl", "namespace": "default"}, "spec": HELLO["spec"]}
    await store.put_resource(ResourceRecord(kind="WorkflowTemplate", namespace="default", name="tmpl", manifest=template))
    cron = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "nightly", "namespace": "default"},
            "spec": {"schedule": "0 3 * * *", "workflowSpec": HELLO["spec"]}}  # fmt: skip
    await store.put_resource(ResourceRecord(kind="CronWorkflow", namespace="default", name="nightly", manifest=cron))
    from_template = await _fire(s, "from-tmpl", _trigger("submit-from", {"resource": {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "tmpl"}}}, args=["-p", "msg=x"]))
    from_cron = await _fire(s, "from-cron", _trigger("submit-from", {"resource": {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "nightly"}}}))
    for firing, prefix in ((from_template, "tmpl-"), (from_cron, "nightly-")):
        assert firing.outcome == "Succeeded", firing.detail
        name = firing.detail["result"]["workflow"]
        assert name.startswith(prefix)
        assert (await _scheduler(s).wait_done("default", name, 30)).phase.value == "Succeeded"
    record = await store.get_workflow("default", from_cron.detail["result"]["workflow"])
    assert record.labels["workflows.argoproj.io/cron-workflow"] == "nightly"


async def test_resubmit_and_retry(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    scheduler = _scheduler(s)
    from workflows.models import Workflow

    failing = {**HELLO, "metadata": {"name": "flaky"}, "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "x", "command": ["false"]}}]}}
    await scheduler.submit(Workflow.model_validate(failing))
    assert (await scheduler.wait_done("default", "flaky", 30)).phase.value == "Failed"
    resubmitted = await _fire(s, "resubmit", _trigger("resubmit", _named("flaky")))
    assert resubmitted.outcome == "Succeeded", resubmitted.detail
    assert resubmitted.detail["result"]["workflow"] == f"flaky-{resubmitted.key[:10]}"
    retried = await _fire(s, "retry", _trigger("retry", _named("flaky")))
    assert retried.outcome == "Succeeded", retried.detail
    record = await scheduler.wait_done("default", "flaky", 30)
    assert record.status.get("retries") == 1


async def test_resource_from_configmap_file_and_url(sensors_with_scheduler: SensorHarness, tmp_path: Any) -> None:
    s = sensors_with_scheduler
    store = _scheduler(s).store
    text = yaml.safe_dump(HELLO)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "wf"}, "data": {"hello.yaml": text}}
    await store.put_resource(ResourceRecord(kind="ConfigMap", namespace="default", name="wf", manifest=cm))
    resources = tmp_path / "trigger-resources"
    resources.mkdir(exist_ok=True)
    (resources / "hello.yaml").write_text(text)
    params = [{"src": {"dependencyName": "a", "dataKey": "body.msg"}, "dest": "spec.arguments.parameters.0.value"}]
    from_cm = await _fire(s, "cm", _trigger("submit", {"configmap": {"name": "wf", "key": "hello.yaml"}}, parameters=params))
    from_file = await _fire(s, "file", _trigger("submit", {"file": {"path": "hello.yaml"}}))
    outside = await _fire(s, "outside", _trigger("submit", {"file": {"path": "../../etc/passwd"}}))
    for firing in (from_cm, from_file):
        assert firing.outcome == "Succeeded", firing.detail
    record = await store.get_workflow("default", from_cm.detail["result"]["workflow"])
    assert record.manifest["spec"]["arguments"]["parameters"][0]["value"] == "hi"
    assert outside.outcome == "Failed" and "outside the trigger resources directory" in outside.detail["error"]
    missing = await _fire(s, "missing-cm", _trigger("submit", {"configmap": {"name": "wf", "key": "nope.yaml"}}))
    assert missing.outcome == "Failed" and "has no key 'nope.yaml'" in missing.detail["error"]


def test_unknown_operation_and_arg_are_refused_at_apply() -> None:
    env = CelEnvironment()
    for trigger, message in (
        (_trigger("explode", _named("x")), "is not an operation"),
        (_trigger("submit", {"resource": HELLO}, args=["--watch"]), "'--watch' is not supported"),
        (_trigger("retry", {"resource": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "x-"}}}), "needs the name"),
        (_trigger("submit", {"git": {"url": "x"}}), "resources from git are not supported yet"),
    ):
        with pytest.raises(SensorError, match=message):
            compile_sensor(sensor_manifest("s", [dep("a")], [trigger]), "s.yaml", None, env)


async def test_completion_event_carries_the_triggering_event_id(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    received: list[Any] = []

    async def collect(msg: Any) -> None:
        received.append(decode(msg.data))

    sub = await s.bus.nc.subscribe(s.bus.subjects.workflow("default", "*", "Succeeded"), cb=collect)
    try:
        await s.apply(sensor_manifest("correlate", [dep("a", event="correlate")], [_trigger("submit", {"resource": HELLO})]))
        event = webhook_event({"msg": "hi"}, event="correlate")
        await s.publish(event)
        [firing] = await s.wait_firings("correlate", 1)
        await eventually(lambda: bool(received), what="the Succeeded lifecycle event")
    finally:
        await sub.unsubscribe()
    [done] = received
    assert done.subject == firing.detail["result"]["workflow"]
    assert done.data["eventIds"] == [event.id]
    assert done.data["labels"]["events.argoproj.io/sensor"] == "correlate"


async def test_policy_k8s_waits_for_the_workflow_phase(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    waits = {"k8s": {"backoff": {"duration": "50ms", "factor": 1.5, "steps": 40}, "labels": {"workflows.argoproj.io/phase": "Succeeded"}, "errorOnBackoffTimeout": True}}
    ok = await _fire(s, "policy-ok", {**_trigger("submit", {"resource": HELLO}), "policy": waits})
    assert ok.outcome == "Succeeded" and ok.detail["result"]["policy"] == "labels matched"
    record = await s.store.get_workflow("default", ok.detail["result"]["workflow"])
    assert record.phase.value == "Succeeded"  # the firing finished only once the workflow had
    never = {"k8s": {"backoff": {"duration": "10ms", "steps": 3}, "labels": {"workflows.argoproj.io/phase": "Failed"}, "errorOnBackoffTimeout": True}}
    failed = await _fire(s, "policy-timeout", {**_trigger("submit", {"resource": HELLO}), "policy": never})
    assert failed.outcome == "Failed" and "did not get labels" in failed.detail["error"]

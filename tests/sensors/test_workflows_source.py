"""The built-in event source ``workflows``: sensors on workflow lifecycle events, with the real bus and
the real scheduler publishing them (chaining, failure notification, ``*``, mixing with ordinary
dependencies, restarts), and the checks made when a Sensor or an EventSource is applied."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import nats.js.errors
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from eventbus import CloudEvent, JetStreamBus
from eventbus.subjects import encode_token
from eventflow.api.errors import ApiError, error_response
from eventflow.api.event_sources import routes as event_source_routes
from eventflow.database import open_engine
from sensors.cel import CelEnvironment
from sensors.compile import SensorError, compile_sensor
from sensors.explain import explain, sample_events
from tests.sensors.conftest import (
    SensorHarness,
    dep,
    log_trigger,
    sensor_harness,
    sensor_manifest,
    webhook_event,
)
from tests.support.database import async_database_url
from tests.support.poll import eventually
from tests.support.scheduler import running_scheduler
from workflows.loader import load_file
from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.status import WorkflowPhase
from workflows.store import WorkflowRecord, WorkflowStore
from workflows.submit import SubmitOptions

pytestmark = pytest.mark.nats

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RESULT = 'data.outputs.parameters.filter(p, p.name == "result")[0].value'


def _spec(
    script: str, *, result: bool = False, arguments: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """One container step running ``sh -c script``; with ``result``, the file /tmp/result it writes is
    the workflow's output parameter ``result``."""
    main: dict[str, Any] = {
        "name": "main",
        "container": {"image": "alpine", "command": ["sh", "-c"], "args": [script]},
    }
    if result:
        main["outputs"] = {
            "parameters": [{"name": "result", "globalName": "result", "valueFrom": {"path": "/tmp/result"}}]
        }
    spec: dict[str, Any] = {"entrypoint": "main", "templates": [main]}
    if arguments is not None:
        spec["arguments"] = {"parameters": arguments}
    return spec


def _scheduler(s: SensorHarness) -> Scheduler:
    scheduler: Scheduler = s.runtime.trigger_context["scheduler"]
    return scheduler


async def _run(
    s: SensorHarness,
    script: str,
    *,
    result: bool = False,
    labels: dict[str, str] | None = None,
    namespace: str = "default",
) -> WorkflowRecord:
    """Submit a workflow and wait until it is done and its lifecycle events are on the bus."""
    manifest = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": f"wf-{uuid.uuid4().hex[:8]}"},
        "spec": _spec(script, result=result),
    }
    scheduler = _scheduler(s)
    record = await scheduler.submit(
        Workflow.model_validate(manifest), SubmitOptions(namespace=namespace, labels=labels or {})
    )
    final = await scheduler.wait_done(record.namespace, record.name, 20)
    await _published(scheduler)
    return final


async def _published(scheduler: Scheduler) -> None:
    async def empty() -> bool:
        return not await scheduler.store.pending_events()

    await eventually(empty, what="the lifecycle events to be published")


def _chain_trigger() -> dict[str, Any]:
    """Submits workflow B with A's output ``result`` and A's name as its arguments; B exports ``result`` too."""
    resource: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "after-"},
        "spec": _spec("echo -n from-$UPSTREAM > /tmp/result", result=True, arguments=[{"name": "input", "value": "-"}, {"name": "upstream", "value": "-"}]),
    }  # fmt: skip
    resource["spec"]["templates"][0]["container"]["env"] = [
        {"name": "UPSTREAM", "value": "{{workflow.parameters.upstream}}/{{workflow.parameters.input}}"}
    ]
    parameters = [
        {
            "src": {"dependencyName": "built", "expression": RESULT},
            "dest": "spec.arguments.parameters.[name=input].value",
        },
        {
            "src": {"dependencyName": "built", "dataKey": "name"},
            "dest": "spec.arguments.parameters.[name=upstream].value",
        },
    ]
    return {
        "template": {
            "name": "next",
            "argoWorkflow": {
                "operation": "submit",
                "source": {"resource": resource},
                "parameters": parameters,
            },
        }
    }


async def test_succeeded_workflow_chains_one_workflow_with_its_output_and_redelivery_adds_none(
    sensors_with_scheduler: SensorHarness,
) -> None:
    s = sensors_with_scheduler
    # Matches every workflow with an output "result", B included: only the loop guard keeps B's own
    # Succeeded from starting a C, C a D, ...
    built = dep(
        "built",
        "workflows",
        "Succeeded",
        filters={"cel": 'data.outputs.parameters.exists(p, p.name == "result" && p.value != "")'},
    )
    manifest = sensor_manifest("chain", [built], [_chain_trigger()])
    await s.apply(manifest)
    a = await _run(s, "echo -n ok-42 > /tmp/result", result=True, labels={"team": "data"})
    assert a.phase == WorkflowPhase.SUCCEEDED
    [firing] = await s.wait_firings("chain", 1)
    assert firing.outcome == "Succeeded", firing.detail
    assert firing.event_ids == [f"{a.uid}.Succeeded"]
    scheduler = _scheduler(s)
    b = await scheduler.wait_done("default", firing.detail["result"]["workflow"], 20)
    await _published(scheduler)
    await s.settled("chain")  # B's Succeeded was delivered too, and fired nothing
    assert b.phase == WorkflowPhase.SUCCEEDED
    args = {p["name"]: p["value"] for p in b.manifest["spec"]["arguments"]["parameters"]}
    assert args == {"input": "ok-42", "upstream": a.name}
    assert b.status["outputs"]["parameters"][0]["value"] == f"from-{a.name}/ok-42"
    assert b.annotations["events.argoproj.io/event-ids"] == f"{a.uid}.Succeeded"
    assert (
        b.labels["events.argoproj.io/sensor"] == "chain" and b.labels["events.argoproj.io/trigger"] == "next"
    )
    assert sorted(w.name for w in await scheduler.store.list_workflows("default")) == sorted([a.name, b.name])
    assert len(await s.history("chain")) == 1

    # Redelivery as after a crash between creating B and recording it: the firing is forgotten and
    # every lifecycle event comes back. The same key finds B; nothing new is created.
    await (await s.bus.kv("sensor_fired")).delete(firing.key)
    await s.runtime.close()
    assert await s.bus.delete_consumer(
        s.runtime.consumer_name("default", "chain"), stream=s.bus.subjects.workflows_stream
    )
    await s.apply({**manifest, "spec": {**manifest["spec"], "deliver": "all"}})
    await s.settled("chain")
    [again] = await s.history("chain")
    assert again.key == firing.key
    assert again.detail["result"] == {"workflow": b.name, "namespace": "default", "existing": True}
    assert len(await scheduler.store.list_workflows("default")) == 2


async def test_failed_filter_on_labels_fires_only_for_a_failing_workflow_with_that_label(
    sensors_with_scheduler: SensorHarness,
) -> None:
    s = sensors_with_scheduler
    cel = '"team" in data.labels && data.labels["team"] == "data" && data.phase == "Failed"'
    await s.apply(
        sensor_manifest(
            "on-failure",
            [dep("failed", "workflows", "Failed", filters={"cel": cel})],
            [log_trigger("notify")],
        )
    )
    failing = await _run(s, "exit 3", labels={"team": "data"})
    passing = await _run(s, "true", labels={"team": "data"})
    other_team = await _run(s, "exit 3", labels={"team": "web"})
    unlabelled = await _run(s, "exit 3")
    elsewhere = await _run(
        s, "exit 3", labels={"team": "data"}, namespace="other"
    )  # not the sensor's namespace
    assert [w.phase for w in (failing, passing, other_team, unlabelled, elsewhere)] == [
        WorkflowPhase.FAILED,
        WorkflowPhase.SUCCEEDED,
    ] + [WorkflowPhase.FAILED] * 3
    [firing] = await s.wait_firings("on-failure", 1)
    await s.settled("on-failure")
    assert firing.event_ids == [f"{failing.uid}.Failed"]
    assert [f.key for f in await s.history("on-failure")] == [firing.key]
    stats = s.runtime.stats("default", "on-failure")
    # Only the Failed events of its namespace reach it; the two with other labels are filtered.
    assert stats is not None and (stats["received"], stats["filtered"], stats["errors"]) == (3, 2, 0)


async def test_any_phase_sees_running_and_succeeded_beside_a_succeeded_dependency(
    sensors_with_scheduler: SensorHarness,
) -> None:
    s = sensors_with_scheduler
    every = log_trigger("every", template={"conditions": "any"})
    finished = log_trigger("finished", template={"conditions": "done"})
    await s.apply(
        sensor_manifest(
            "phases", [dep("any", "workflows", "*"), dep("done", "workflows", "Succeeded")], [every, finished]
        )
    )
    info = await s.bus.js.consumer_info(
        s.bus.subjects.workflows_stream, encode_token(s.runtime.consumer_name("default", "phases"))
    )
    assert (
        info.config.filter_subject == f"{s.bus.subjects.prefix}.workflows.default.*.*"
    )  # "*" covers Succeeded: one filter
    w = await _run(s, "true")
    firings = await s.wait_firings("phases", 3)
    await s.settled("phases")
    by_trigger: dict[str, list[str]] = {}
    for f in await s.history("phases"):
        by_trigger.setdefault(f.trigger, []).extend(f.event_ids)
    assert len(firings) == 3
    assert sorted(by_trigger["every"]) == sorted([f"{w.uid}.Running", f"{w.uid}.Succeeded"])
    assert by_trigger["finished"] == [f"{w.uid}.Succeeded"]


async def test_deleted_fires_its_own_dependency_and_not_the_any_phase_one(
    sensors_with_scheduler: SensorHarness,
) -> None:
    s = sensors_with_scheduler
    every = log_trigger("every", template={"conditions": "any"})
    gone = log_trigger("gone", template={"conditions": "deleted"})
    await s.apply(sensor_manifest("deletions", [dep("any", "workflows", "*"), dep("deleted", "workflows", "Deleted")], [every, gone]))
    w = await _run(s, "true")
    scheduler = _scheduler(s)
    await scheduler.delete(w.namespace, w.name)
    await _published(scheduler)
    await s.wait_firings("deletions", 3)
    await s.settled("deletions")
    by_trigger: dict[str, list[str]] = {}
    for f in await s.history("deletions"):
        by_trigger.setdefault(f.trigger, []).extend(f.event_ids)
    assert by_trigger["gone"] == [f"{w.uid}.Deleted"]
    assert sorted(by_trigger["every"]) == sorted([f"{w.uid}.Running", f"{w.uid}.Succeeded"])  # "*": phases only


async def test_sensor_mixing_webhook_and_workflow_dependencies_reads_both_streams(
    sensors_with_scheduler: SensorHarness,
) -> None:
    s = sensors_with_scheduler
    name = s.runtime.consumer_name("default", "release")
    streams = (s.bus.subjects.events_stream, s.bus.subjects.workflows_stream)

    async def consumers() -> list[bool]:
        out = []
        for stream in streams:
            try:
                await s.bus.js.consumer_info(stream, encode_token(name))
                out.append(True)
            except nats.js.errors.NotFoundError:
                out.append(False)
        return out

    manifest = sensor_manifest(
        "release",
        [dep("approved", event="approve"), dep("built", "workflows", "Succeeded")],
        [log_trigger(template={"conditions": "approved && built"})],
    )
    await s.apply(manifest)
    assert await consumers() == [True, True]
    approval = webhook_event({"by": "ops"}, event="approve")
    await s.publish(approval)
    await s.settled("release")
    assert await s.history("release") == []  # half of the && condition
    w = await _run(s, "true")
    [firing] = await s.wait_firings("release", 1)
    assert firing.detail["dependencies"] == {"approved": approval.id, "built": f"{w.uid}.Succeeded"}
    # An update without workflow dependencies drops the workflows stream's consumer; delete drops the other.
    await s.apply(sensor_manifest("release", [dep("approved", event="approve")], [log_trigger()]))
    assert await consumers() == [True, False]
    assert await s.runtime.remove("default", "release")
    assert await consumers() == [False, False]


async def test_lifecycle_event_published_while_the_sensor_is_stopped_fires_when_it_starts_again(
    bus: JetStreamBus, tmp_path: Path
) -> None:
    manifest = sensor_manifest("durable", [dep("done", "workflows", "Succeeded")], [log_trigger()])
    async with running_scheduler(tmp_path, bus=bus) as scheduler:
        async with sensor_harness(bus, tmp_path / "first", scheduler=scheduler) as s:
            await s.apply(manifest)
        # The sensor is down (its durable consumer stays) while a workflow succeeds.
        async with sensor_harness(bus, tmp_path / "second", scheduler=scheduler) as s:
            w = await _run(s, "true")
            await s.apply(manifest)
            [firing] = await s.wait_firings("durable", 1)
            assert firing.event_ids == [f"{w.uid}.Succeeded"]


async def test_chain_example_runs_a_follow_up_of_hello_with_its_output(
    sensors_with_scheduler: SensorHarness,
) -> None:
    s = sensors_with_scheduler
    await s.apply(yaml.safe_load((EXAMPLES / "sensors" / "workflow-chain.yaml").read_text()))
    [hello] = load_file(EXAMPLES / "workflows" / "hello.yaml")
    assert isinstance(hello, Workflow)
    scheduler = _scheduler(s)
    record = await scheduler.submit(hello, SubmitOptions(parameters={"message": "bonjour"}))
    assert (await scheduler.wait_done("default", record.name, 30)).phase == WorkflowPhase.SUCCEEDED
    [firing] = await s.wait_firings("workflow-chain", 1)
    assert firing.trigger == "follow-up" and firing.outcome == "Succeeded", firing.detail
    follow_up = await scheduler.store.get_workflow("default", firing.detail["result"]["workflow"])
    assert follow_up is not None and follow_up.name.startswith("after-hello-")
    args = {p["name"]: p["value"] for p in follow_up.manifest["spec"]["arguments"]["parameters"]}
    assert args == {"shouted": "BONJOUR", "upstream": record.name}


# -- checks when a Sensor is applied (no server needed) ---------------------------------------------


def _compile(dependency: dict[str, Any], parameters: list[dict[str, Any]] | None = None) -> None:
    trigger = log_trigger()
    if parameters:
        trigger["parameters"] = parameters
    compile_sensor(sensor_manifest("s", [dependency], [trigger]), "chain.yaml", "default", CelEnvironment())


@pytest.mark.parametrize(
    ("dependency", "parameters", "message"),
    [
        (dep("w", "workflows", "Done"), None, r"^chain\.yaml: spec\.dependencies\[0\]\.eventName: 'Done' is not a workflow phase or Deleted \(one of: Running, Succeeded, Failed, Error, Deleted, or '\*' for every phase\)$"),
        (dep("w", "workflows", "succeeded"), None, r"spec\.dependencies\[0\]\.eventName: 'succeeded' is not a workflow phase .*; did you mean 'Succeeded'\?"),
        (dep("w", "workflows", "Pending"), None, r"spec\.dependencies\[0\]\.eventName: no event is published for 'Pending': a workflow's first event is Running"),
        (dep("w", "workflows", "Failed", filters={"cel": 'body.labels["team"] == "data"'}), None, r"spec\.dependencies\[0\]\.filters\.cel: workflow events have no 'body': their data is the workflow itself; write data\.labels"),
        (dep("w", "workflows", "*", filters={"data": [{"path": "header.x", "type": "string", "value": ["y"]}]}), None, r"spec\.dependencies\[0\]\.filters\.data\[0\]\.path: workflow events have no 'header'"),
        (dep("w", "workflows", "*", transform={"cel": "body"}), None, r"spec\.dependencies\[0\]\.transform\.cel: workflow events have no 'body'"),
        (dep("w", "workflows", "Succeeded"), [{"src": {"dependencyName": "w", "dataKey": "body.name"}, "dest": "log.x"}], r"spec\.triggers\[0\]\.parameters\[0\]\.src\.dataKey: workflow events have no 'body'.* paths start at its fields"),
        (dep("w", "hooks", "*"), None, r"spec\.dependencies\[0\]\.eventName: '\*' \(every event\) is only for eventSourceName: workflows; name the event of EventSource 'hooks'"),
    ],
)  # fmt: skip
def test_workflows_dependency_with_a_mistake_is_refused_with_its_path(
    dependency: dict[str, Any], parameters: list[dict[str, Any]] | None, message: str
) -> None:
    with pytest.raises(SensorError, match=message):
        _compile(dependency, parameters)


@pytest.mark.parametrize(
    "dependency",
    [
        dep(
            "w",
            "workflows",
            "*",
            filters={
                "cel": 'data.outputs.parameters.exists(body, body.name == "x") && data.labels.body == "body"'
            },
        ),
        dep(
            "w",
            "workflows",
            "Error",
            transform={"cel": '{"body": data}'},
            filters={"cel": 'body.labels["team"] == "data"'},
        ),
        dep("w", "webhook", "Done", filters={"cel": "body.ok"}),  # any eventName for other sources
    ],
)
def test_workflows_dependency_reading_data_or_a_transformed_body_is_accepted(
    dependency: dict[str, Any],
) -> None:
    _compile(dependency)


def _lifecycle(labels: dict[str, str]) -> CloudEvent:
    data = {"name": "b-1", "namespace": "default", "phase": "Succeeded", "labels": labels, "outputs": {}}
    return CloudEvent(
        source="/eventflow/workflows/default",
        type="io.eventflow.workflow.succeeded",
        subject="b-1",
        data=data,
        namespace="default",
        eventsource="workflows",
        eventname="Succeeded",
    )


def test_sensor_test_explains_the_loop_guard_and_builds_lifecycle_events_from_data() -> None:
    env = CelEnvironment()
    sensor = compile_sensor(
        sensor_manifest("chain", [dep("built", "workflows", "*")], [log_trigger("next")]),
        "chain.yaml",
        "default",
        env,
    )
    own = _lifecycle({"events.argoproj.io/sensor": "chain", "events.argoproj.io/trigger": "next"})
    assert (
        explain(sensor, own, env).triggers[0]["verdict"]
        == "not fired: the event is about a workflow this trigger created (loop guard)"
    )
    foreign = _lifecycle({"events.argoproj.io/sensor": "chain", "events.argoproj.io/trigger": "another"})
    assert explain(sensor, foreign, env).triggers[0]["verdict"] == "would fire"
    [sample] = sample_events(sensor, {"name": "x", "phase": "Failed", "labels": {}})
    assert (sample.eventsource, sample.eventname, sample.type, sample.data["name"]) == (
        "workflows",
        "Failed",
        "io.eventflow.workflow.failed",
        "x",
    )


# -- an EventSource named "workflows" is refused when applied -----------------------------------------


async def test_event_source_named_workflows_is_refused_by_the_api(tmp_path: Path) -> None:
    async with async_database_url(tmp_path, "api") as url:
        engine = open_engine(url)
        store = WorkflowStore(engine)
        await store.migrate()

        async def api_error(request: Request, exc: Exception) -> JSONResponse:
            assert isinstance(exc, ApiError)
            return error_response(exc.status, exc.message)

        app = Starlette(routes=event_source_routes(), exception_handlers={ApiError: api_error})
        app.state.eventflow = SimpleNamespace(
            extra={"scheduler": SimpleNamespace(store=store)}
        )  # no sources role: validate only
        source: dict[str, Any] = {
            "metadata": {"name": "workflows"},
            "spec": {"webhook": {"example": {"port": "12000", "endpoint": "/x", "method": "POST"}}},
        }
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
                refused = await client.post("/api/v1/event-sources/default", json={"eventSource": source})
                source["metadata"]["name"] = "github"
                accepted = await client.post("/api/v1/event-sources/default", json={"eventSource": source})
            assert refused.status_code == 400
            assert refused.json()["message"].startswith(
                "metadata.name: 'workflows' is reserved: Sensors read eventSourceName: workflows from the workflow lifecycle events"
            )
            assert accepted.status_code == 200, accepted.text
            assert [r.name for r in await store.list_resources("EventSource")] == ["github"]
        finally:
            store.close()
            await engine.dispose()

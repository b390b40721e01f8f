"""Sensors on the real bus: filters, conditions and their state, parameters, delivery guarantees."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from eventbus import JetStreamBus, decode
from tests.conftest import SHARED
from tests.sensors.conftest import SensorHarness, dep, log_trigger, sensor_harness, sensor_manifest, webhook_event
from tests.support.poll import eventually

pytestmark = pytest.mark.nats

GITHUB = SHARED / "github-webhooks"


def _github(name: str) -> dict[str, Any]:
    path = GITHUB / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared not checked out)")
    return dict(json.loads(path.read_text()))


def _workflow_trigger(name: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    resource = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "from-sensor-"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "first", "value": "-"}, {"name": "message", "value": "-"}]},
            "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}],
        },
    }  # fmt: skip
    return {"template": {"name": name, "k8s": {"operation": "create", "source": {"resource": resource}, "parameters": parameters}}}


async def test_github_pull_request_opened_matches_the_cel_filter_and_closed_does_not(sensors: SensorHarness) -> None:
    opened, closed = _github("pull_request.opened.json"), _github("pull_request.closed.json")
    base = opened["pull_request"]["base"]["ref"]  # the sample's base branch ("master")
    await sensors.apply(sensor_manifest(
        "pr-opened",
        [dep("pr", "github", "pr", filters={"cel": f'body.action == "opened" && body.pull_request.base.ref == "{base}"'})],
        [log_trigger()],
    ))  # fmt: skip
    hit = webhook_event(opened, source="github", event="pr", header={"X-Github-Event": ["pull_request"]})
    miss = webhook_event(closed, source="github", event="pr")
    await sensors.publish(miss, hit)
    firings = await sensors.wait_firings("pr-opened", 1)
    await sensors.settled("pr-opened")
    firings = await sensors.history("pr-opened")
    assert [f.event_ids for f in firings] == [[hit.id]]
    assert firings[0].outcome == "Succeeded"
    stats = sensors.runtime.stats("default", "pr-opened")
    assert stats is not None and stats["received"] == 2 and stats["filtered"] == 1


async def test_filter_on_another_branch_does_not_match_the_sample(sensors: SensorHarness) -> None:
    opened = _github("pull_request.opened.json")
    await sensors.apply(sensor_manifest(
        "pr-main", [dep("pr", filters={"cel": 'body.action == "opened" && body.pull_request.base.ref == "main-not-in-sample"'})], [log_trigger()],
    ))  # fmt: skip
    await sensors.publish(webhook_event(opened))
    await sensors.settled("pr-main")
    assert await sensors.history("pr-main") == []


async def test_and_condition_fires_once_with_both_events_in_parameters(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    params = [
        {"src": {"dependencyName": "build", "dataKey": "body.commit"}, "dest": "spec.arguments.parameters.0.value"},
        {"src": {"dependencyName": "pr", "dataTemplate": "{{ .Input.body.title | upper }}"}, "dest": "spec.arguments.parameters.[name=message].value"},
    ]
    await s.apply(sensor_manifest("pr-and-build", [dep("pr", event="pr"), dep("build", event="build")], [_workflow_trigger("run", params)]))
    await s.publish(webhook_event({"title": "fix it"}, event="pr"))
    await s.settled("pr-and-build")
    assert await s.history("pr-and-build") == []  # one half of && does not fire
    await s.publish(webhook_event({"commit": "abc123"}, event="build"))
    [firing] = await s.wait_firings("pr-and-build", 1)
    workflow = firing.detail["result"]["workflow"]
    record = await s.runtime.trigger_context["scheduler"].store.get_workflow("default", workflow)
    args = {p["name"]: p["value"] for p in record.manifest["spec"]["arguments"]["parameters"]}
    assert args == {"first": "abc123", "message": "FIX IT"}
    assert record.labels["events.argoproj.io/sensor"] == "pr-and-build"
    assert record.annotations["events.argoproj.io/idempotency-key"] == firing.key
    assert sorted(firing.detail["dependencies"]) == ["build", "pr"]


async def test_and_condition_state_survives_a_sensor_restart(bus: JetStreamBus, tmp_path: Path) -> None:
    manifest = sensor_manifest("restart-and", [dep("a", event="a"), dep("b", event="b")], [log_trigger()])
    first = webhook_event({"n": 1}, event="a")
    async with sensor_harness(bus, tmp_path / "one") as s:
        await s.apply(manifest)
        await s.publish(first)
        await s.settled("restart-and")
        assert await s.history("restart-and") == []
    second = webhook_event({"n": 2}, event="b")
    (tmp_path / "two").mkdir()
    async with sensor_harness(bus, tmp_path / "two") as s:
        await s.apply(manifest)
        await s.publish(second)
        [firing] = await s.wait_firings("restart-and", 1)
        assert firing.event_ids == sorted([first.id, second.id])


async def test_and_condition_keeps_the_latest_event_and_clears_after_firing(sensors: SensorHarness) -> None:
    await sensors.apply(sensor_manifest("latest", [dep("a", event="a"), dep("b", event="b")], [log_trigger()]))
    a1, a2, b1 = webhook_event({"n": 1}, event="a"), webhook_event({"n": 2}, event="a"), webhook_event({}, event="b")
    await sensors.publish(a1)
    await sensors.settled("latest")
    await sensors.publish(a2)
    await sensors.settled("latest")
    await sensors.publish(b1)
    [firing] = await sensors.wait_firings("latest", 1)
    assert firing.detail["dependencies"] == {"a": a2.id, "b": b1.id}
    b2 = webhook_event({}, event="b")
    await sensors.publish(b2)  # the state was cleared: b alone does not fire again
    await sensors.settled("latest")
    assert len(await sensors.history("latest")) == 1


async def test_conditions_reset_drops_events_from_before_the_last_tick(sensors: SensorHarness) -> None:
    trigger = log_trigger(template={"conditionsReset": [{"byTime": {"cron": "0 0 * * *", "timezone": "UTC"}}]})
    await sensors.apply(sensor_manifest("reset", [dep("a", event="a"), dep("b", event="b")], [trigger]))
    yesterday = datetime.now(UTC) - timedelta(days=1, minutes=1)
    await sensors.publish(webhook_event({}, event="a", time=yesterday))
    await sensors.settled("reset")
    await sensors.publish(webhook_event({}, event="b"))
    await sensors.settled("reset")
    assert await sensors.history("reset") == []  # a was before midnight's reset
    a = webhook_event({}, event="a")
    await sensors.publish(a)
    [firing] = await sensors.wait_firings("reset", 1)
    assert firing.detail["dependencies"]["a"] == a.id


async def test_within_window_ignores_older_events(sensors: SensorHarness) -> None:
    await sensors.apply(sensor_manifest("within", [dep("a", event="a"), dep("b", event="b")], [log_trigger(within="1m")]))
    await sensors.publish(webhook_event({}, event="a", time=datetime.now(UTC) - timedelta(minutes=5)))
    await sensors.publish(webhook_event({}, event="b"))
    await sensors.settled("within")
    assert await sensors.history("within") == []
    await sensors.publish(webhook_event({}, event="a"))
    await sensors.wait_firings("within", 1)


async def test_count_fires_after_n_matching_events(sensors: SensorHarness) -> None:
    await sensors.apply(sensor_manifest("count", [dep("a", count=3, filters={"cel": "body.ok"})], [log_trigger()]))
    events = [webhook_event({"ok": i != 1}) for i in range(4)]  # the second does not match
    for event in events[:3]:
        await sensors.publish(event)
    await sensors.settled("count")
    assert await sensors.history("count") == []  # two matches so far
    await sensors.publish(events[3])
    [firing] = await sensors.wait_firings("count", 1)
    assert firing.event_ids == [events[3].id]


async def test_or_condition_fires_per_event(sensors: SensorHarness) -> None:
    trigger = log_trigger(template={"conditions": "a-dep || b-dep"})
    await sensors.apply(sensor_manifest("or", [dep("a-dep", event="a"), dep("b-dep", event="b")], [trigger]))
    await sensors.publish(webhook_event({}, event="a"), webhook_event({}, event="a"), webhook_event({}, event="b"))
    firings = await sensors.wait_firings("or", 3)
    assert len({f.key for f in firings}) == 3


async def test_runtime_cel_error_does_not_match_and_the_sensor_keeps_running(sensors: SensorHarness) -> None:
    await sensors.apply(sensor_manifest("err", [dep("a", filters={"cel": "body.count > 2"})], [log_trigger()]))
    await sensors.publish(webhook_event({"other": 1}), webhook_event({"count": "text"}))
    good = webhook_event({"count": 3})
    await sensors.publish(good)
    [firing] = await sensors.wait_firings("err", 1)
    assert firing.event_ids == [good.id]
    stats = sensors.runtime.stats("default", "err")
    assert stats is not None and stats["errors"] == 2


async def test_burst_of_500_fires_500_times_and_a_redelivery_fires_none(bus: JetStreamBus, tmp_path: Path) -> None:
    manifest = sensor_manifest("burst", [dep("a", filters={"cel": "body.n >= 0"})], [log_trigger()])
    events = [webhook_event({"n": i}) for i in range(500)]
    async with sensor_harness(bus, tmp_path) as s:
        await s.apply(manifest)
        await bus.publish_many(events)
        firings = await s.wait_firings("burst", 500, timeout=30)
        await s.settled("burst")
        assert len(firings) == 500 and len({f.key for f in firings}) == 500
        # Redeliver everything: the consumer is recreated from the start of the stream.
        await s.runtime.close()
        assert await bus.delete_consumer(s.runtime.consumer_name("default", "burst"))
        await s.apply({**manifest, "spec": {**manifest["spec"], "deliver": "all"}})
        await s.settled("burst")
        stats = s.runtime.stats("default", "burst")
        assert stats is not None and stats["duplicates"] == 500
        assert len(await s.history("burst")) == 500


async def test_update_keeps_the_consumer_position(sensors: SensorHarness) -> None:
    manifest = sensor_manifest("update", [dep("a")], [log_trigger()])
    await sensors.apply(manifest)
    await sensors.publish(*(webhook_event({"n": i}) for i in range(3)))
    await sensors.wait_firings("update", 3)
    changed = sensor_manifest("update", [dep("a", filters={"cel": "body.n >= 0"})], [log_trigger()])
    await sensors.apply(changed)
    await sensors.publish(*(webhook_event({"n": i}) for i in range(3, 5)))
    await sensors.wait_firings("update", 5)
    await sensors.settled("update")
    assert len(await sensors.history("update")) == 5  # nothing replayed, nothing skipped


async def test_delete_removes_the_consumer_and_the_condition_state(sensors: SensorHarness) -> None:
    await sensors.apply(sensor_manifest("gone", [dep("a", event="a"), dep("b", event="b")], [log_trigger()]))
    await sensors.publish(webhook_event({}, event="a"))

    async def recorded() -> bool:
        return bool((await sensors.runtime.condition_state("default", "gone", "log-it"))["dependencies"])

    # Polled, not read after `settled`: a consumer can report nothing pending for a moment before it
    # has taken in a message just stored (seen once under load).
    await eventually(recorded, timeout=15, what="the event in the condition state")
    await sensors.settled("gone")
    assert await sensors.runtime.remove("default", "gone")
    assert (await sensors.runtime.condition_state("default", "gone", "log-it"))["dependencies"] == {}
    with pytest.raises(Exception, match="consumer not found"):
        await sensors.bus.js.consumer_info(sensors.bus.subjects.events_stream, "sensor~2Edefault~2Egone")


async def test_failed_trigger_goes_to_the_dlq_trigger(sensors_with_scheduler: SensorHarness) -> None:
    bad = _workflow_trigger("bad", [])
    bad["template"]["k8s"]["source"]["resource"]["spec"]["entrypoint"] = "nope"  # fails Argo's lint at submit
    bad["retryStrategy"] = {"steps": 2, "duration": "10ms"}
    bad["dlqTrigger"] = {"template": {"name": "dead-letters", "log": {}}, "atLeastOnce": True}
    await sensors_with_scheduler.apply(sensor_manifest("dlq", [dep("a")], [bad]))
    event = webhook_event({})
    await sensors_with_scheduler.publish(event)
    firings = await sensors_with_scheduler.wait_firings("dlq", 2)
    by_trigger = {f.trigger: f for f in firings}
    assert by_trigger["bad"].outcome == "Failed" and "nope" in by_trigger["bad"].detail["error"]
    assert by_trigger["bad/dlq"].outcome == "Succeeded" and by_trigger["bad/dlq"].event_ids == [event.id]


async def test_failed_trigger_without_dlq_parks_the_event(sensors_with_scheduler: SensorHarness) -> None:
    bad = _workflow_trigger("bad", [])
    bad["template"]["k8s"]["source"]["resource"]["spec"]["entrypoint"] = "nope"
    await sensors_with_scheduler.apply(sensor_manifest("park", [dep("a")], [bad]))
    event = webhook_event({})
    await sensors_with_scheduler.publish(event)
    bus = sensors_with_scheduler.bus

    async def parked() -> bool:
        info = await bus.js.stream_info(bus.subjects.undeliverable_stream)
        return bool(info.state.messages)

    await eventually(parked, what="the event on the undeliverable stream")
    info = await bus.js.stream_info(bus.subjects.undeliverable_stream)
    msg = await bus.js.get_msg(bus.subjects.undeliverable_stream, info.state.last_seq)
    assert decode(msg.data).id == event.id
    assert "nope" in (msg.headers or {}).get("Eventflow-Error", "")
    [firing] = await sensors_with_scheduler.history("park")
    assert firing.outcome == "Failed"


async def test_rate_limit_spaces_the_firings(sensors: SensorHarness) -> None:
    await sensors.apply(sensor_manifest("slow", [dep("a")], [log_trigger(rateLimit={"unit": "Second", "requestsPerUnit": 20})]))
    await sensors.publish(*(webhook_event({"n": i}) for i in range(10)))
    firings = await sensors.wait_firings("slow", 10)
    times = sorted(f.fired_at for f in firings)
    assert (times[-1] - times[0]).total_seconds() >= 0.4  # 10 starts at 20/s are at least 9 x 50 ms apart


async def test_redelivered_workflow_firing_finds_the_workflow_it_created(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    manifest = sensor_manifest("idem", [dep("a")], [_workflow_trigger("run", [])])
    await s.apply(manifest)
    event = webhook_event({})
    await s.publish(event)
    [firing] = await s.wait_firings("idem", 1)
    await s.settled("idem")
    for _ in range(2):  # delivered three times in all
        # Forget that it fired (as if the server died after creating the workflow, before recording it).
        await (await s.bus.kv("sensor_fired")).delete(firing.key)
        await s.runtime.close()
        assert await s.bus.delete_consumer(s.runtime.consumer_name("default", "idem"))
        await s.apply({**manifest, "spec": {**manifest["spec"], "deliver": "all"}})
        await s.settled("idem")
    [again] = await s.history("idem")
    assert again.detail["result"] == {"workflow": firing.detail["result"]["workflow"], "namespace": "default", "existing": True}
    scheduler = s.runtime.trigger_context["scheduler"]
    records = await scheduler.store.list_workflows("default")
    assert len(records) == 1


async def test_at_most_once_trigger_still_fires_every_event(sensors: SensorHarness) -> None:
    await sensors.apply(sensor_manifest("amo", [dep("a")], [log_trigger(atLeastOnce=False, rateLimit={"unit": "Second", "requestsPerUnit": 1000})]))
    events = [webhook_event({"n": i}) for i in range(20)]
    await sensors.publish(*events)
    firings = await sensors.wait_firings("amo", 20)
    assert sorted(f.event_ids[0] for f in firings) == sorted(e.id for e in events)


async def test_failed_and_firing_is_not_performed_again_after_its_event_was_parked(sensors_with_scheduler: SensorHarness) -> None:
    s = sensors_with_scheduler
    bad = _workflow_trigger("bad", [])
    bad["template"]["k8s"]["source"]["resource"]["spec"]["entrypoint"] = "nope"
    manifest = sensor_manifest("parked-and", [dep("a", event="a"), dep("b", event="b")], [bad])
    await s.apply(manifest)
    await s.publish(webhook_event({}, event="a"))
    await s.settled("parked-and")
    await s.publish(webhook_event({}, event="b"))
    await s.settled("parked-and")
    [failed] = await s.history("parked-and")
    assert failed.outcome == "Failed"
    assert (await s.runtime.condition_state("default", "parked-and", "bad"))["pending"] == []
    await s.apply(manifest)  # a restart performs left-over firings: there must be none
    [again] = await s.history("parked-and")
    assert again.fired_at == failed.fired_at

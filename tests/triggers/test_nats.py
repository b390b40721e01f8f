"""The nats trigger on the test's real NATS server: core subscribers, JetStream dedup, external urls."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from eventbus import JetStreamBus
from sensors.compile import SensorError
from tests.conftest import NatsServer
from tests.sensors.conftest import SensorHarness, dep, sensor_manifest, webhook_event
from tests.support.poll import eventually

pytestmark = pytest.mark.nats

PAYLOAD = [
    {"src": {"dependencyName": "hook", "dataKey": "body.order"}, "dest": "order.id"},
    {"src": {"dependencyName": "hook", "dataKey": "body.amount", "useRawData": True}, "dest": "amount"},
]

Subscribe = Callable[[str], Awaitable[list[Msg]]]


@pytest.fixture
def subject(bus_prefix: str) -> str:
    return f"triggered.{bus_prefix}.orders"  # outside the bus prefix, unique per test


@pytest.fixture
async def client(nats_server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    try:
        yield nc
    finally:
        await nc.close()


@pytest.fixture
async def subscribe(client: Client) -> Subscribe:
    async def subscribe(subject: str) -> list[Msg]:
        received: list[Msg] = []

        async def on_message(msg: Msg) -> None:
            received.append(msg)

        await client.subscribe(subject, cb=on_message)
        await client.flush()
        return received

    return subscribe


@pytest.fixture
async def stream(client: Client, subject: str, bus_prefix: str) -> AsyncIterator[str]:
    name = f"{bus_prefix.upper()}_TRIGGERED"
    js = client.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[subject], duplicate_window=120.0))
    try:
        yield name
    finally:
        await js.delete_stream(name)


def _nats_trigger(name: str = "publish", **nats_config: Any) -> dict[str, Any]:
    return {"template": {"name": name, "nats": {"payload": PAYLOAD, **nats_config}}}


async def test_nats_trigger_publishes_the_payload_with_the_firing_key_as_msg_id(
    sensors: SensorHarness, subject: str, subscribe: Subscribe
) -> None:
    received = await subscribe(subject)
    await sensors.apply(
        sensor_manifest(
            "nats-core", [dep("hook")], [_nats_trigger(subject=subject, headers={"X-Team": "shop"})]
        )
    )
    event = webhook_event({"order": "A-17", "amount": 12})
    await sensors.publish(event)
    [firing] = await sensors.wait_firings("nats-core", 1)
    await eventually(lambda: len(received) == 1, what="the message")
    [msg] = received
    assert json.loads(msg.data) == {"order": {"id": "A-17"}, "amount": 12}
    assert msg.headers == {
        "Nats-Msg-Id": firing.key, "Eventflow-Event-Ids": event.id, "Eventflow-Sensor": "nats-core",
        "Eventflow-Trigger": "publish", "X-Team": "shop",
    }  # fmt: skip
    assert firing.outcome == "Succeeded"
    assert firing.detail["result"]["subject"] == subject and "stream" not in firing.detail["result"]


async def test_nats_redelivered_firing_is_stored_once_by_the_stream(
    sensors: SensorHarness, subject: str, stream: str, client: Client
) -> None:
    manifest = sensor_manifest("nats-js", [dep("hook")], [_nats_trigger(subject=subject)])
    await sensors.apply(manifest)
    await sensors.publish(webhook_event({"order": "A-18", "amount": 3}))
    [firing] = await sensors.wait_firings("nats-js", 1)
    await sensors.settled("nats-js")
    assert firing.detail["result"]["stream"] == stream
    assert (firing.detail["result"]["seq"], firing.detail["result"]["duplicate"]) == (1, False)
    # Forget that it fired (as if the server died after publishing, before recording it) and
    # deliver the event again: the firing is performed again with the same key.
    await (await sensors.bus.kv("sensor_fired")).delete(firing.key)
    await sensors.runtime.close()
    assert await sensors.bus.delete_consumer(sensors.runtime.consumer_name("default", "nats-js"))
    await sensors.apply({**manifest, "spec": {**manifest["spec"], "deliver": "all"}})
    await sensors.settled("nats-js")
    [again] = await sensors.history("nats-js")
    assert again.key == firing.key
    assert again.detail["result"]["duplicate"] is True
    info = await client.jetstream().stream_info(stream)
    assert info.state.messages == 1
    msg = await client.jetstream().get_msg(stream, 1)
    assert (msg.headers or {})["Nats-Msg-Id"] == firing.key


async def test_nats_trigger_with_an_explicit_url_uses_its_own_connection(
    sensors: SensorHarness, subject: str, subscribe: Subscribe, nats_server: NatsServer
) -> None:
    received = await subscribe(subject)
    await sensors.apply(
        sensor_manifest("nats-url", [dep("hook")], [_nats_trigger(url=nats_server.url, subject=subject)])
    )
    await sensors.publish(
        webhook_event({"order": "A-19", "amount": 1}), webhook_event({"order": "A-20", "amount": 2})
    )
    firings = await sensors.wait_firings("nats-url", 2)
    await eventually(lambda: len(received) == 2, what="two messages")
    assert sorted(m.headers["Nats-Msg-Id"] for m in received if m.headers) == sorted(f.key for f in firings)
    assert sorted(json.loads(m.data)["order"]["id"] for m in received) == ["A-19", "A-20"]
    instance = sensors.runtime._running[("default", "nats-url")].triggers["publish"]
    assert "connections=1" in repr(instance)  # one connection for both firings


async def test_nats_unreachable_url_fails_with_the_url_and_without_its_password(
    sensors: SensorHarness, subject: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    trigger = _nats_trigger(url=f"nats://robot:hunter2-secret@127.0.0.1:{port}", subject=subject)
    await sensors.apply(sensor_manifest("nats-down", [dep("hook")], [trigger]))
    await sensors.publish(webhook_event({"order": "A-21", "amount": 1}))
    [firing] = await sensors.wait_firings("nats-down", 1)
    assert firing.outcome == "Failed"
    assert firing.detail["error"].startswith(f"cannot connect to NATS at nats://***@127.0.0.1:{port}: ")
    assert "hunter2-secret" not in json.dumps(firing.detail)


async def test_nats_trigger_refuses_eventflow_own_subjects_on_the_bus_connection(
    sensors: SensorHarness, bus: JetStreamBus
) -> None:
    own = bus.subjects.event("default", "webhook", "example")
    await sensors.apply(sensor_manifest("nats-own", [dep("hook")], [_nats_trigger(subject=own)]))
    await sensors.publish(webhook_event({"order": "A-22", "amount": 1}))
    [firing] = await sensors.wait_firings("nats-own", 1)
    assert firing.outcome == "Failed"
    assert (
        firing.detail["error"]
        == f"subject {own!r} is under {bus.config.prefix!r}, eventflow's own subjects; publish events through an event source instead"
    )


async def test_nats_check_refuses_what_cannot_work(sensors: SensorHarness) -> None:
    bad = [
        _nats_trigger("wild", subject="orders.*"),
        _nats_trigger("api", subject="$JS.API.STREAM.DELETE.X"),
        _nats_trigger(
            "nkey", url="nats://example:4222", subject="x", auth={"nkey": {"name": "n", "key": "seed"}}
        ),
        _nats_trigger("auth", subject="x", auth={"token": {"name": "t", "key": "token"}}),
        _nats_trigger("scheme", url="http://example:4222", subject="x"),
    ]
    with pytest.raises(SensorError) as caught:
        sensors.runtime.compile(sensor_manifest("bad", [dep("hook")], bad), "default", "bad.yaml")
    problems = caught.value.problems
    assert (
        "spec.triggers[0].template.nats.subject: a message goes to one subject: wildcards (* and >) are for subscribing"
        in problems
    )
    assert any(
        p.startswith("spec.triggers[1].template.nats.subject: '$' subjects are NATS system subjects")
        for p in problems
    )
    assert (
        "spec.triggers[2].template.nats.auth.nkey: not supported yet (use auth.basic or auth.token)"
        in problems
    )
    assert any(p.startswith("spec.triggers[3].template.nats.auth: applies to a url only") for p in problems)
    assert (
        "spec.triggers[4].template.nats.url: expected nats://, tls://, ws:// or wss:// URLs, got 'http://example:4222'"
        in problems
    )

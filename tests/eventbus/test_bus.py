from __future__ import annotations

import asyncio
import time

import pytest

from eventbus import (
    BusConfig,
    CloudEvent,
    ConsumerOptions,
    Delivery,
    JetStreamBus,
    PublishRejected,
    RevisionMismatch,
    StreamLimits,
)
from tests.support.poll import eventually

pytestmark = pytest.mark.nats


def _event(i: int, **kw: object) -> CloudEvent:
    return CloudEvent(
        id=f"ev-{i}", source="/test", type="test.event", namespace="default",
        eventsource="src", eventname="name", data={"i": i}, **kw,
    )  # fmt: skip


async def test_bus_publish_then_consume_roundtrip(bus: JetStreamBus) -> None:
    got: list[tuple[CloudEvent, Delivery]] = []

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        got.append((event, delivery))

    for i in range(5):
        ack = await bus.publish(_event(i))
        assert ack.stream == bus.subjects.events_stream and not ack.duplicate
    consumer = bus.consumer("roundtrip", handler)
    await consumer.start()
    await eventually(lambda: len(got) == 5, what="5 deliveries")
    assert [e.data["i"] for e, _ in got] == [0, 1, 2, 3, 4]
    assert all(d.subject == bus.subjects.event("default", "src", "name") for _, d in got)
    assert all(d.attempt == 1 for _, d in got)
    await consumer.stop()
    assert consumer.handled == 5


async def test_bus_duplicate_event_id_is_stored_once(bus: JetStreamBus) -> None:
    first = await bus.publish(_event(1))
    second = await bus.publish(_event(1))
    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.seq == first.seq
    info = await bus.js.stream_info(bus.subjects.events_stream)
    assert info.state.messages == 1


async def test_bus_failing_handler_backs_off_then_parks_message(bus: JetStreamBus) -> None:
    attempts: list[float] = []

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        attempts.append(time.monotonic())
        raise ValueError("boom")

    opts = ConsumerOptions(max_deliveries=3, backoff_seconds=(0.2, 0.4))
    consumer = bus.consumer("failing", handler, options=opts)
    await consumer.start()
    await bus.publish(_event(7))
    await eventually(lambda: consumer.parked == 1, what="message parked")
    assert len(attempts) == 3
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.18 and gaps[1] >= 0.38, gaps
    parked = await bus.js.get_last_msg(bus.subjects.undeliverable_stream, bus.subjects.undeliverable("failing"))
    assert parked.headers is not None
    assert parked.headers["Eventflow-Deliveries"] == "3"
    assert parked.headers["Eventflow-Error"] == "ValueError: boom"
    assert parked.headers["Eventflow-Original-Subject"] == bus.subjects.event("default", "src", "name")
    assert b'"ev-7"' in (parked.data or b"")
    await consumer.stop()
    # Parked means settled: the original is no longer pending for the consumer.
    info = await bus.js.consumer_info(bus.subjects.events_stream, consumer.durable)
    assert info.num_pending == 0 and info.num_ack_pending == 0


async def test_bus_handler_failing_once_is_redelivered_and_not_parked(bus: JetStreamBus) -> None:
    seen: list[int] = []

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        seen.append(delivery.attempt)
        if delivery.attempt == 1:
            raise ConnectionError("transient")

    consumer = bus.consumer("flaky", handler, options=ConsumerOptions(backoff_seconds=(0.05,)))
    await consumer.start()
    await bus.publish(_event(1))
    await eventually(lambda: consumer.handled == 1, what="second attempt handled")
    assert seen == [1, 2] and consumer.parked == 0
    await consumer.stop()


async def test_bus_invalid_payload_is_parked_not_dropped(bus: JetStreamBus) -> None:
    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        raise AssertionError("never called for a non-CloudEvent")

    consumer = bus.consumer("poison", handler)
    await consumer.start()
    await bus.js.publish(bus.subjects.event("default", "x", "y"), b"{not json")
    await eventually(lambda: consumer.parked == 1, what="poison message parked")
    parked = await bus.js.get_last_msg(bus.subjects.undeliverable_stream, bus.subjects.undeliverable("poison"))
    assert parked.data == b"{not json"
    assert "invalid CloudEvent" in (parked.headers or {})["Eventflow-Error"]
    await consumer.stop()


async def test_bus_slow_handler_is_kept_alive_by_heartbeats(bus: JetStreamBus) -> None:
    attempts: list[int] = []

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        await asyncio.sleep(2.5)

    consumer = bus.consumer("slow", handler, options=ConsumerOptions(ack_wait_seconds=1.0))
    await consumer.start()
    await bus.publish(_event(1))
    await eventually(lambda: consumer.handled == 1, timeout=10, what="slow handler done")
    assert attempts == [1]
    await consumer.stop()


async def test_bus_full_stream_rejects_new_publishes(bus_config: BusConfig) -> None:
    config = bus_config.model_copy(update={"events": StreamLimits(max_msgs=3)})
    bus = await JetStreamBus.connect(config)
    try:
        for i in range(3):
            await bus.publish(_event(i))
        with pytest.raises(PublishRejected, match="maximum messages exceeded"):
            await bus.publish(_event(99))
        info = await bus.js.stream_info(bus.subjects.events_stream)
        assert info.state.messages == 3 and info.state.first_seq == 1
        assert bus.rejected == 1
    finally:
        await bus.close()


async def test_bus_publish_many_reports_each_result_in_order(bus: JetStreamBus) -> None:
    items: list[CloudEvent | tuple[str, CloudEvent]] = [_event(i) for i in range(50)]
    items.insert(10, ("nowhere.subject", _event(1000)))
    results = await bus.publish_many(items)
    assert len(results) == 51
    assert isinstance(results[10], PublishRejected)
    seqs = [r.seq for i, r in enumerate(results) if i != 10 and not isinstance(r, Exception)]
    assert seqs == list(range(1, 51))


async def test_bus_ensure_streams_is_idempotent(bus: JetStreamBus) -> None:
    await bus.publish(_event(1))
    await bus.ensure_streams()
    info = await bus.js.stream_info(bus.subjects.events_stream)
    assert info.state.messages == 1
    assert await bus.missing_streams() == []


async def test_kv_revision_checked_updates(bus: JetStreamBus) -> None:
    kv = await bus.kv("state")
    rev = await kv.create("sensor.a", b"1")
    with pytest.raises(RevisionMismatch):
        await kv.create("sensor.a", b"again")
    rev2 = await kv.update("sensor.a", b"2", rev)
    with pytest.raises(RevisionMismatch, match="revision"):
        await kv.update("sensor.a", b"stale", rev)
    entry = await kv.get("sensor.a")
    assert entry is not None and (entry.value, entry.revision) == (b"2", rev2)
    assert await kv.get("missing") is None


async def test_kv_concurrent_mutations_all_apply(bus: JetStreamBus) -> None:
    kv = await bus.kv("counter")

    def incr(old: bytes | None) -> bytes:
        return str(int(old or b"0") + 1).encode()

    await asyncio.gather(*(kv.mutate("n", incr) for _ in range(10)))
    entry = await kv.get("n")
    assert entry is not None and entry.value == b"10"

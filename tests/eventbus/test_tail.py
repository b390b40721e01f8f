from __future__ import annotations

import asyncio

import pytest

from eventbus import BusError, CloudEvent, JetStreamBus, StreamEvent, Tail, TailClosed
from tests.support.poll import eventually

pytestmark = pytest.mark.nats


async def _publish(bus: JetStreamBus, name: str, phase: str, i: int, namespace: str = "ns") -> int:
    event = CloudEvent(id=f"{name}.{phase}.{i}", source="/test", type="test", namespace=namespace, data={"i": i})
    ack = await bus.publish(event, subject=bus.subjects.workflow(namespace, name, phase))
    return ack.seq


async def _read(tail: Tail, count: int) -> list[StreamEvent]:
    got: list[StreamEvent] = []
    for _ in range(count):
        item = await tail.next(timeout=5)
        assert item is not None, f"only {len(got)} of {count} events arrived"
        got.append(item)
    return got


async def _consumers(bus: JetStreamBus) -> int:
    info = await bus.js.stream_info(bus.subjects.workflows_stream)
    return info.state.consumer_count


async def test_tail_without_position_sees_only_new_events_in_order(bus: JetStreamBus) -> None:
    await _publish(bus, "old", "Running", 0)
    tail = await bus.tail([bus.subjects.workflow("ns", "*", "*")], stream=bus.subjects.workflows_stream, batch=2)
    try:
        seqs = [await _publish(bus, f"w{i}", "Running", i) for i in range(5)]
        got = await _read(tail, 5)
        assert [g.seq for g in got] == seqs
        assert [g.event.data["i"] for g in got] == [0, 1, 2, 3, 4]
        assert got[0].subject == bus.subjects.workflow("ns", "w0", "Running")
        assert await tail.next(timeout=0.2) is None
    finally:
        await tail.close()


async def test_tail_after_position_replays_then_follows_live(bus: JetStreamBus) -> None:
    seqs = [await _publish(bus, "w", phase, i) for i, phase in enumerate(["Running", "Succeeded", "Running"])]
    tail = await bus.tail([bus.subjects.workflow("ns", "*", "*")], stream=bus.subjects.workflows_stream, after=seqs[0])
    try:
        replayed = await _read(tail, 2)
        assert [r.seq for r in replayed] == seqs[1:]
        live = await _publish(bus, "w", "Failed", 3)
        assert [r.seq for r in await _read(tail, 1)] == [live]
    finally:
        await tail.close()


async def test_tail_filters_by_subjects(bus: JetStreamBus) -> None:
    subjects = [bus.subjects.workflow("ns", "*", "Succeeded"), bus.subjects.workflow("ns", "*", "Failed")]
    tail = await bus.tail(subjects, stream=bus.subjects.workflows_stream)
    try:
        await _publish(bus, "a", "Running", 0)
        ok = await _publish(bus, "a", "Succeeded", 1)
        await _publish(bus, "b", "Running", 2, namespace="other")
        bad = await _publish(bus, "b", "Failed", 3)
        assert [g.seq for g in await _read(tail, 2)] == [ok, bad]
        assert await tail.next(timeout=0.2) is None
    finally:
        await tail.close()


async def test_tail_whose_consumer_vanishes_resumes_without_gap_or_duplicate(bus: JetStreamBus) -> None:
    tail = await bus.tail([bus.subjects.workflow("ns", "*", "*")], stream=bus.subjects.workflows_stream, heartbeat_seconds=0.2)
    try:
        first = [await _publish(bus, "w", "Running", i) for i in range(3)]
        assert [g.seq for g in await _read(tail, 3)] == first
        lost = tail.consumer_name
        assert lost is not None
        # Deleted under the tail (as the server does after a restart or an inactivity timeout) while it waits.
        waiting = asyncio.create_task(tail.next(timeout=5))
        await eventually(lambda: tail._outstanding > 0, what="a pull request open")
        await bus.js.delete_consumer(bus.subjects.workflows_stream, lost)
        later = [await _publish(bus, "w", "Succeeded", i) for i in range(3, 6)]
        got = [await waiting, *await _read(tail, 2)]
        assert [g.seq for g in got if g is not None] == later
        assert tail.resets >= 1 and tail.consumer_name != lost
        assert await tail.next(timeout=0.3) is None
        assert await _consumers(bus) == 1
    finally:
        await tail.close()


async def test_tail_close_deletes_its_consumer_even_when_the_reader_was_cancelled(bus: JetStreamBus) -> None:
    before = bus.open_tails
    tails = [await bus.tail([bus.subjects.all_workflows], stream=bus.subjects.workflows_stream) for _ in range(3)]
    assert bus.open_tails == before + 3
    assert await _consumers(bus) == 3
    reader = asyncio.create_task(tails[0].next())
    await eventually(lambda: tails[0]._outstanding > 0, what="reader waiting")
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    for tail in tails:
        await tail.close()
        await tail.close()  # idempotent
    assert bus.open_tails == before
    assert await _consumers(bus) == 0
    with pytest.raises(TailClosed):
        await tails[0].next()


async def test_tail_of_missing_stream_raises_bus_error_and_is_not_counted(bus: JetStreamBus) -> None:
    before = bus.open_tails
    with pytest.raises(BusError, match="cannot tail stream NO_SUCH_STREAM"):
        await bus.tail(["nothing.here"], stream="NO_SUCH_STREAM")
    assert bus.open_tails == before


async def test_bus_close_closes_open_tails(bus: JetStreamBus) -> None:
    tail = await bus.tail([bus.subjects.all_workflows], stream=bus.subjects.workflows_stream)
    await bus.close(grace_seconds=0)
    assert tail.closed and bus.open_tails == 0

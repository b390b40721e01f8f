from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from eventbus import (
    BusConfig,
    BusUnavailable,
    CloudEvent,
    Delivery,
    EmbeddedNats,
    EmbeddedServerError,
    JetStreamBus,
)
from tests.support.poll import eventually

pytestmark = pytest.mark.nats


def _event(i: int) -> CloudEvent:
    return CloudEvent(id=f"e{i}", source="/t", type="t", eventsource="s", eventname="n", data={"i": i})


async def test_embedded_events_survive_restart_with_same_store(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    url = await server.start()
    bus = await JetStreamBus.connect(BusConfig(url=url))
    for i in range(20):
        await bus.publish(_event(i))
    await bus.close()
    await server.stop()
    assert server.pid is None

    again = EmbeddedNats(tmp_path / "nats")
    bus = await JetStreamBus.connect(BusConfig(url=await again.start()))
    try:
        got: list[int] = []

        async def handler(event: CloudEvent, delivery: Delivery) -> None:
            got.append(event.data["i"])

        consumer = bus.consumer("after-restart", handler)
        await consumer.start()
        await eventually(lambda: len(got) == 20, what="20 events after restart")
        assert got == list(range(20))
        # The duplicate window survives too: re-publishing an old id is still recognised.
        assert (await bus.publish(_event(3))).duplicate
    finally:
        await bus.close()
        await again.stop()


async def test_embedded_crash_is_restarted_once_and_clients_reconnect(tmp_path: Path) -> None:
    fatal: list[EmbeddedServerError] = []
    server = EmbeddedNats(tmp_path / "nats", on_fatal=fatal.append)
    url = await server.start()
    bus = await JetStreamBus.connect(BusConfig(url=url, publish_timeout_seconds=1))
    try:
        await bus.publish(_event(1))
        first_pid = server.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        await eventually(lambda: server.restarts == 1 and server.pid not in (None, first_pid), what="restart")
        assert server.url == url  # same port, so the client reconnects on its own
        await eventually(lambda: bus.is_connected, what="client reconnected")
        ack = await bus.publish(_event(2))
        assert ack.seq == 2  # the store was kept: event 1 is still there

        second_pid = server.pid
        assert second_pid is not None
        os.kill(second_pid, signal.SIGKILL)
        await eventually(lambda: len(fatal) == 1, what="fatal report after a second crash")
        assert "crashed again" in str(fatal[0])
    finally:
        await bus.close(grace_seconds=0)
        await server.stop()


async def test_bus_publish_while_nats_down_raises_then_recovers(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", restart_window_seconds=3600)
    url = await server.start()
    bus = await JetStreamBus.connect(BusConfig(url=url, publish_timeout_seconds=0.5))
    try:
        await bus.publish(_event(1))
        await server.stop()  # a deliberate stop: no watchdog restart
        with pytest.raises(BusUnavailable):
            await bus.publish(_event(2))
        await server.start()
        await eventually(lambda: bus.is_connected, what="reconnect")

        async def stored() -> bool:
            try:
                await bus.publish(_event(3))
            except BusUnavailable:
                return False
            return True

        await eventually(stored, what="publish after recovery")
    finally:
        await bus.close(grace_seconds=0)
        await server.stop()


async def test_bus_connect_to_nothing_gives_up_with_clear_error() -> None:
    config = BusConfig(url="nats://user:secret@127.0.0.1:1", connect_timeout_seconds=0.5)
    with pytest.raises(BusUnavailable, match=r"gave up after") as info:
        await JetStreamBus.connect(config)
    assert "secret" not in str(info.value)


async def test_embedded_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path, binary=tmp_path / "no-such-nats-server")
    with pytest.raises(EmbeddedServerError, match="cannot run"):
        await server.start()
    await asyncio.sleep(0)

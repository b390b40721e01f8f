from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from eventbus import BusConfig, CloudEvent, ConsumerOptions, Delivery, JetStreamBus
from tests.support.poll import eventually, eventually_sync

pytestmark = pytest.mark.nats

REPO = Path(__file__).resolve().parents[2]
N = 400


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def _publish_all(bus: JetStreamBus) -> set[str]:
    events = [CloudEvent(id=f"sig-{i}", source="/t", type="t", eventsource="s", eventname="n") for i in range(N)]
    results = await bus.publish_many(events)
    assert not [r for r in results if isinstance(r, Exception)]
    return {e.id for e in events}


async def _drain_rest(
    bus: JetStreamBus, name: str, expected: int, options: ConsumerOptions | None = None
) -> list[str]:
    rest: list[str] = []

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        rest.append(event.id)

    consumer = bus.consumer(name, handler, options=options)
    await consumer.start()
    await eventually(lambda: len(rest) >= expected, timeout=20, what=f"{expected} remaining events")
    await consumer.stop()
    info = await bus.js.consumer_info(bus.subjects.events_stream, consumer.durable)
    assert info.num_pending == 0 and info.num_ack_pending == 0
    return rest


def _start(bus_config: BusConfig, name: str, out: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.consumer_proc", bus_config.url, bus_config.prefix, name, str(out)],
        cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


async def test_consumer_sigterm_loses_nothing_acked_and_acks_nothing_unhandled(
    bus: JetStreamBus, bus_config: BusConfig, tmp_path: Path
) -> None:
    everything = await _publish_all(bus)
    out = tmp_path / "handled.txt"
    proc = _start(bus_config, "graceful", out)
    eventually_sync(lambda: len(_lines(out)) >= 60, what="some events handled")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert proc.stdout is not None
    proc.stdout.close()
    handled = _lines(out)
    assert 60 <= len(handled) < N, "SIGTERM must land mid-stream for this test to mean anything"
    assert len(handled) == len(set(handled))

    rest = await _drain_rest(bus, "graceful", N - len(handled))
    # Nothing acked without being handled: every unhandled event comes back.
    assert set(handled) | set(rest) == everything
    # A graceful stop finishes and acks what it started: nothing handled is delivered again.
    assert not set(handled) & set(rest)


async def test_consumer_kill9_redelivers_everything_not_acked(
    bus: JetStreamBus, bus_config: BusConfig, tmp_path: Path
) -> None:
    everything = await _publish_all(bus)
    out = tmp_path / "handled.txt"
    proc = _start(bus_config, "killed", out)
    eventually_sync(lambda: len(_lines(out)) >= 60, what="some events handled")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()
    handled = set(_lines(out))
    assert len(handled) < N

    # In-flight messages of the dead process return after ack_wait; restarting the durable with
    # a shorter ack_wait updates it in place (same position) and keeps the test fast.
    rest = await _drain_rest(bus, "killed", N - len(handled), ConsumerOptions(ack_wait_seconds=1.0))
    assert handled | set(rest) == everything

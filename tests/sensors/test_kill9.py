"""kill -9 of the server while sensor firings are in flight: after the restart every firing happened
exactly once by its idempotency key and no event is lost.

The NATS server is started here, not embedded in ``eventflow serve``, so that it (the events, the
sensor's durable consumer with its unacknowledged deliveries, the ``sensor_fired`` and
``sensor_state`` KV buckets) outlives the killed server the way a production NATS would. Events go
straight onto the bus, as a source would put them there. The history is read from the API.

The ``log`` trigger's effect (a log line) is not idempotent, so a firing whose line was written but
whose history record was not yet committed when the process died is legitimately performed again
after the restart (at-least-once). Such repeats are bounded by the handlers in flight and only
concern lines the killed process wrote; every other event is logged exactly once.

The ``&&`` variant publishes its pairs one at a time. Published all at once, the sensor's 64
concurrent handlers see ``a2`` before ``b1`` in some runs, and ``&&`` keeps only the latest event per
dependency (Argo's "latest wins"), so ``a1`` is rightly replaced and the number of firings depends on
scheduling: not a number a test can assert. One pair in flight at a time makes it exactly 500,
whichever phase of the pair's handling (stored half, decided and pending, effect done but not
acknowledged) the kill lands in. The killed server's unacknowledged deliveries come back (after the
ack wait) while later pairs are being published: an event already used must not be counted again.
"""

from __future__ import annotations

import asyncio
import collections
import random
import re
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from eventbus import BusConfig, BusError, JetStreamBus
from eventbus.subjects import encode_token
from tests.sensors.conftest import dep, log_trigger, sensor_manifest, webhook_event
from tests.support.consumers import consumer_settled
from tests.support.nats_process import NatsProcess
from tests.support.poll import eventually
from tests.support.server_proc import ServerProcess, start_ready

pytestmark = [pytest.mark.nats, pytest.mark.slow, pytest.mark.timeout(300)]

EVENTS = 1000
PAIRS = 500
HANDLERS = 64  # ConsumerOptions.max_in_flight of the server's sensor runtime
# The consumer's ack_wait (30 s) bounds when a delivery the killed server held comes back.
REDELIVERY_TIMEOUT = 90.0


@pytest.fixture
def nats_proc(tmp_path: Path) -> Iterator[NatsProcess]:
    proc = NatsProcess(tmp_path / "nats")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def bus(nats_proc: NatsProcess) -> AsyncIterator[JetStreamBus]:
    # The server's default prefix: the test publishes where `eventflow serve` listens.
    bus = await JetStreamBus.connect(BusConfig(url=nats_proc.url, connect_timeout_seconds=5))
    yield bus
    await bus.close(grace_seconds=1)


class Servers:
    """``eventflow serve`` on one data dir and the external NATS, (re)started as needed."""

    def __init__(self, data: Path, nats_url: str) -> None:
        self.data = data
        self.nats_url = nats_url
        self.started: list[ServerProcess] = []

    @property
    def current(self) -> ServerProcess:
        return self.started[-1]

    async def start(self) -> ServerProcess:
        server = await asyncio.to_thread(start_ready, self.data, "--nats-url", self.nats_url)
        self.started.append(server)
        return server

    async def kill9(self) -> None:
        self.current.signal(signal.SIGKILL)
        assert await asyncio.to_thread(self.current.wait) == -signal.SIGKILL

    def stop(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def servers(tmp_path: Path, nats_proc: NatsProcess) -> Iterator[Servers]:
    started = Servers(tmp_path / "data", nats_proc.url)
    yield started
    started.stop()


async def _apply(base: str, manifest: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        response = await client.post("/api/v1/sensors/default", json={"sensor": manifest})
    assert response.status_code == 200, response.text


async def _history(base: str, sensor: str, **params: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        response = await client.get(
            f"/api/v1/sensors/default/{sensor}/history", params={"limit": "10000"} | params
        )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _wait_history(servers: Servers, sensor: str, count: int) -> list[dict[str, Any]]:
    async def enough() -> bool:
        return len(await _history(servers.current.base_url, sensor)) >= count

    await eventually(enough, timeout=REDELIVERY_TIMEOUT, what=f"{count} firings of {sensor}")
    return await _history(servers.current.base_url, sensor)


async def _wait_latest(servers: Servers, sensor: str, event_ids: list[str]) -> None:
    async def fired() -> bool:
        latest = await _history(servers.current.base_url, sensor, limit="1")
        return bool(latest) and sorted(latest[0]["event_ids"]) == sorted(event_ids)

    await eventually(fired, timeout=REDELIVERY_TIMEOUT, what=f"the firing of {event_ids}")


async def _settled(bus: JetStreamBus, sensor: str) -> None:
    """The sensor's durable consumer has nothing left to deliver and nothing unacknowledged."""
    durable = encode_token(f"sensor.default.{sensor}")

    async def drained() -> bool:
        return bool(await consumer_settled(bus.js, bus.subjects.events_stream, durable))

    await eventually(drained, timeout=REDELIVERY_TIMEOUT, what=f"the consumer of {sensor} to drain")


async def _parked(bus: JetStreamBus) -> int:
    info = await bus.js.stream_info(bus.subjects.undeliverable_stream)
    return int(info.state.messages)


def _logged_ids(server: ServerProcess, sensor: str, run: str) -> list[str]:
    """The event ids in the ``log`` trigger's lines of ``server`` (one per firing it performed)."""
    pattern = re.compile(rf"triggers\.log: sensor default/{sensor} trigger ")
    ids = re.compile(rf'"id":"({run}-[ab]?\d+)"')
    return [m for line in server.lines if pattern.search(line) for m in ids.findall(line)]


def _assert_exactly_once(firings: list[dict[str, Any]], expected: list[list[str]]) -> None:
    failed = [f for f in firings if f["outcome"] != "Succeeded"]
    assert failed == [], yaml.safe_dump(failed[:5])
    assert len({f["key"] for f in firings}) == len(firings) == len(expected)
    uses = collections.Counter(event_id for f in firings for event_id in f["event_ids"])
    assert [i for i, n in uses.items() if n > 1] == []
    assert sorted(sorted(f["event_ids"]) for f in firings) == sorted(sorted(ids) for ids in expected)


async def test_kill9_with_1000_events_in_flight_fires_each_exactly_once(
    servers: Servers, bus: JetStreamBus
) -> None:
    run = f"k{uuid.uuid4().hex[:8]}"
    sensor = "bulk"
    server = await servers.start()
    # A rate limit stretches the 1,000 firings over ~5 s so that the kill lands mid-way; handlers
    # wait in it after claiming their key, so the kill also leaves claimed-but-unperformed firings.
    trigger = log_trigger("log-it", rateLimit={"unit": "Second", "requestsPerUnit": 200})
    await _apply(
        server.base_url,
        sensor_manifest(sensor, [dep("any", "bulk", "e", filters={"cel": "true"})], [trigger]),
    )
    events = [webhook_event({"n": i}, source="bulk", event="e", id=f"{run}-{i}") for i in range(EVENTS)]
    acks = await bus.publish_many(events)
    assert [a for a in acks if isinstance(a, BusError)] == []

    threshold = random.Random().randrange(EVENTS // 10, EVENTS // 2)

    async def some_fired() -> bool:
        fired = len(await _history(server.base_url, sensor))
        assert fired < EVENTS, "every event fired before the kill"
        return fired >= threshold

    await eventually(some_fired, timeout=30, what=f"{threshold} firings")
    await servers.kill9()
    await servers.start()

    await _wait_history(servers, sensor, EVENTS)
    await _settled(bus, sensor)
    firings = await _history(servers.current.base_url, sensor)
    _assert_exactly_once(firings, [[e.id] for e in events])
    assert await _parked(bus) == 0
    # The effect itself: every event was logged; a repeat only for firings the killed process had
    # performed without committing their record, at most one per handler it was running.
    killed, restarted = (_logged_ids(s, sensor, run) for s in servers.started)
    assert 0 < len(set(killed)) < EVENTS, "the kill did not land mid-way"
    logged = collections.Counter(killed + restarted)
    assert set(logged) == {e.id for e in events}
    repeated = [i for i, n in logged.items() if n > 1]
    assert all(logged[i] == 2 and i in killed and i in restarted for i in repeated), repeated
    assert len(repeated) <= HANDLERS, repeated


def _pairs_sensor(sensor: str) -> dict[str, Any]:
    return sensor_manifest(
        sensor,
        [dep("a", "pairs", "a"), dep("b", "pairs", "b")],
        [log_trigger("both", template={"conditions": "a && b"})],
    )


async def test_kill9_during_and_pairs_loses_and_repeats_no_pair(servers: Servers, bus: JetStreamBus) -> None:
    run = f"p{uuid.uuid4().hex[:8]}"
    sensor = "pairs"
    server = await servers.start()
    await _apply(server.base_url, _pairs_sensor(sensor))
    kill_at = random.Random().randrange(PAIRS // 4, 3 * PAIRS // 4)
    pairs: list[list[str]] = []
    for i in range(PAIRS):
        a = webhook_event({"i": i}, source="pairs", event="a", id=f"{run}-a{i}")
        b = webhook_event({"i": i}, source="pairs", event="b", id=f"{run}-b{i}")
        await bus.publish(a)
        await bus.publish(b)
        pairs.append([a.id, b.id])
        if i == kill_at:
            # At once, with the pair in flight: the kill lands before or between the handling of its
            # two events (mostly), or after its firing was decided and before it was recorded.
            await servers.kill9()
            server = await servers.start()
        await _wait_latest(servers, sensor, pairs[-1])
    firings = await _history(server.base_url, sensor)
    await _settled(bus, sensor)
    _assert_exactly_once(firings, pairs)
    assert await _parked(bus) == 0
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        status = (await client.get(f"/api/v1/sensors/default/{sensor}")).json()["status"]
    assert status["triggers"]["both"] == {"dependencies": {}, "pending": []}


async def test_event_redelivered_after_256_more_pairs_is_not_counted_again(bus: JetStreamBus) -> None:
    """What the kill test above saw in about one run in eight when it went on publishing at once:
    the server was killed after pair k's firing was decided (``pending``), the restarted server
    performed it from ``pending`` at once, more pairs fired, and 30 s later ``b<k>`` came back."""
    from sensors.cel import CelEnvironment
    from sensors.compile import compile_sensor
    from sensors.state import ConditionStore

    sensor = compile_sensor(_pairs_sensor("pairs"), "pairs", "default", CelEnvironment())
    [trigger] = sensor.triggers
    store = ConditionStore(await bus.kv("sensor_state"), await bus.kv("sensor_used"))
    now = datetime.now(UTC)

    async def offer(dependency: str, event_id: str) -> list[str]:
        event = webhook_event({}, source="pairs", event=dependency, id=event_id)
        due = (await store.offer("default", "pairs", trigger, sensor.counts, {dependency: event}, now)).due
        for key in due:
            await store.settle("default", "pairs", "both", key)
        return list(due)

    for i in range(257):
        assert await offer("a", f"a{i}") == []
        assert len(await offer("b", f"b{i}")) == 1
    assert await offer("b", "b0") == []  # the redelivery: already used
    assert await offer("a", "a257") == [], "a257 fired with b0, which pair 0 had used already"

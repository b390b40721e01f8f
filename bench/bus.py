"""Event bus throughput: raw nats-py JetStream vs eventbus, on the same embedded server, same run.

    python bench/bus.py [--n 20000] [--size 256] [--rounds 3]

Each side publishes N events (pipelined, every PubAck awaited) and then consumes them with a
durable pull consumer (JSON-decoded, acked one by one). Prints msgs/s per phase, the combined
publish+consume rate and eventbus/raw. Target: eventbus >= 70 % of raw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig  # noqa: E402

from eventbus import BusConfig, CloudEvent, ConsumerOptions, Delivery, EmbeddedNats, JetStreamBus  # noqa: E402


def _payload(size: int) -> dict[str, str]:
    return {"body": "x" * max(size - 150, 1)}


async def raw_round(url: str, n: int, size: int, tag: str) -> tuple[float, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    stream, subject = f"RAW{tag}", f"raw{tag}.events.default.src.name"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"raw{tag}.>"], duplicate_window=300))
    data = _payload(size)
    bodies = [
        json.dumps({"id": f"e{i}", "source": "/bench", "type": "bench", "specversion": "1.0", "data": data}).encode()
        for i in range(n)
    ]
    start = time.perf_counter()
    futures = [await js.publish_async(subject, b, headers={"Nats-Msg-Id": f"e{i}"}) for i, b in enumerate(bodies)]
    await asyncio.gather(*futures)
    published = time.perf_counter() - start

    await js.add_consumer(stream, ConsumerConfig(durable_name="c", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=4096))
    psub = await js.pull_subscribe_bind("c", stream)
    got = 0
    start = time.perf_counter()
    while got < n:
        for msg in await psub.fetch(256, timeout=1):
            json.loads(msg.data)
            await msg.ack()
            got += 1
    await nc.flush()
    consumed = time.perf_counter() - start
    await js.delete_stream(stream)
    await nc.close()
    return published, consumed


async def eventbus_round(url: str, n: int, size: int, tag: str) -> tuple[float, float]:
    bus = await JetStreamBus.connect(BusConfig(url=url, prefix=f"bench{tag}"))
    data = _payload(size)
    events = [CloudEvent(id=f"e{i}", source="/bench", type="bench", eventsource="src", eventname="name", data=data) for i in range(n)]
    start = time.perf_counter()
    results = await bus.publish_many(events)
    published = time.perf_counter() - start
    assert not [r for r in results if isinstance(r, Exception)], "publish failed"

    done = asyncio.Event()
    count = 0

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    consumer = bus.consumer("c", handler, options=ConsumerOptions(max_in_flight=256))
    start = time.perf_counter()
    await consumer.start()
    await done.wait()
    await bus.nc.flush()
    consumed = time.perf_counter() - start
    await consumer.stop(grace_seconds=1)
    for name in (bus.subjects.events_stream, bus.subjects.workflows_stream, bus.subjects.undeliverable_stream):
        await bus.js.delete_stream(name)
    await bus.close()
    return published, consumed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp))
        url = await server.start()
        raw: list[tuple[float, float]] = []
        ours: list[tuple[float, float]] = []
        try:
            for r in range(args.rounds):  # interleaved so drift hits both sides alike
                raw.append(await raw_round(url, args.n, args.size, f"{r}"))
                ours.append(await eventbus_round(url, args.n, args.size, f"{r}"))
        finally:
            await server.stop()

    def rates(rounds: list[tuple[float, float]]) -> tuple[float, float, float]:
        pub = statistics.median(args.n / p for p, _ in rounds)
        con = statistics.median(args.n / c for _, c in rounds)
        both = statistics.median(args.n / (p + c) for p, c in rounds)
        return pub, con, both

    rp, rc, rb = rates(raw)
    ep, ec, eb = rates(ours)
    print(f"events: {args.n} x ~{args.size} B, {args.rounds} rounds, median; embedded nats-server, one process")
    print(f"{'':28}{'publish/s':>12}{'consume/s':>12}{'pub+consume/s':>15}")
    print(f"{'raw nats-py JetStream':28}{rp:>12,.0f}{rc:>12,.0f}{rb:>15,.0f}")
    print(f"{'eventbus':28}{ep:>12,.0f}{ec:>12,.0f}{eb:>15,.0f}")
    print(f"ratio eventbus/raw: publish {ep / rp:.2f}, consume {ec / rc:.2f}, publish+consume {eb / rb:.2f} (target >= 0.70)")


if __name__ == "__main__":
    asyncio.run(main())

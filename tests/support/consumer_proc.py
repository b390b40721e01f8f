"""A consumer in its own process, for signal tests: ``python -m tests.support.consumer_proc URL PREFIX NAME OUT``.

Each handled event id is appended to OUT (flushed) *before* the handler returns, so the file
is the truth of what was handled. SIGTERM stops the consumer gracefully and exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from eventbus import BusConfig, CloudEvent, ConsumerOptions, Delivery, JetStreamBus


async def main(url: str, prefix: str, name: str, out_path: str) -> int:
    bus = await JetStreamBus.connect(BusConfig(url=url, prefix=prefix))
    out = open(out_path, "a", buffering=1)  # noqa: SIM115 - closed below

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        await asyncio.sleep(0.01)  # real work takes time; SIGTERM lands mid-handler
        out.write(event.id + "\n")
        out.flush()

    consumer = bus.consumer(name, handler, options=ConsumerOptions(max_in_flight=8, shutdown_grace_seconds=5))
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await bus.close()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:5])))

"""Webhook -> sensor -> workflow, end to end through ``eventflow serve``, in one run on this machine.

    python bench/e2e.py [--rate 200] [--seconds 5]

A real server process (its own embedded NATS is replaced by one this script starts, so it can listen
to the lifecycle events), a webhook EventSource, and a Sensor whose CEL filter passes every event and
whose trigger submits a one-step ``sh -c true`` workflow with a parameter from the body. Requests are
sent at --rate per second; for each, the time from sending the POST to (a) the workflow's Running
lifecycle event and (b) its Succeeded event, matched by the triggering event id the events carry.
Prints p50/p99 of both (target: p99 webhook -> Running < 20 ms). For scale: Argo Workflows starts a
pod per step, which takes seconds.

The server's data dir (store, step logs) is a temp dir under --data-dir (default: $TMPDIR or /tmp);
the line printed first says which file system that is. It matters on some disks: on ext4 without a
journal every file creation checks the inodes deleted in the last seconds to minutes, so the same
run is slower right after anything deleted many files there (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.webhook import free_port  # noqa: E402
from eventbus import EmbeddedNats, decode  # noqa: E402

EVENT_SOURCE = {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "hooks"}, "spec": {"webhook": {"push": {"endpoint": "/push", "method": "POST"}}}}


def sensor() -> dict[str, object]:
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "e2e-"},
        "spec": {
            "entrypoint": "main", "arguments": {"parameters": [{"name": "ref", "value": "-"}]},
            "templates": [{"name": "main", "inputs": {"parameters": [{"name": "ref"}]}, "container": {"image": "alpine", "command": ["sh", "-c", "true"]}}],
        },
    }  # fmt: skip
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": "e2e"},
        "spec": {
            "dependencies": [{"name": "push", "eventSourceName": "hooks", "eventName": "push", "filters": {"cel": 'body.ref.startsWith("refs/heads/")'}}],
            "triggers": [{"template": {"name": "run", "k8s": {"operation": "create", "source": {"resource": workflow},
                          "parameters": [{"src": {"dependencyName": "push", "dataKey": "body.ref"}, "dest": "spec.arguments.parameters.0.value"}]}}}],
        },
    }  # fmt: skip


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def file_system(path: str) -> str:
    """The type and mount point of the file system that holds ``path`` (from /proc/mounts)."""
    best = ("?", "")
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                _, point, kind, *_ = line.split()
                if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[1]):
                    best = (kind, point)
    except OSError:
        pass
    return f"{best[0]} at {best[1] or '?'}"


async def run(rate: int, seconds: float, data_dir: str | None) -> None:
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        print(f"data dir {tmp} on {file_system(str(Path(tmp).resolve()))}", flush=True)
        nats = EmbeddedNats(Path(tmp) / "nats")
        url = await nats.start()
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "eventflow.cli", "serve", "--port", str(port), "--data-dir", str(Path(tmp) / "data"),
             "--nats-url", url, "--log-level", "warning"],
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        if (await client.get("/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("server did not come up")
                    await asyncio.sleep(0.05)
                for path, body in (("/api/v1/event-sources/default", {"eventSource": EVENT_SOURCE}), ("/api/v1/sensors/default", {"sensor": sensor()})):
                    answer = await client.post(path, json=body)
                    answer.raise_for_status()
                running, succeeded, sent = await measure(client, url, rate, seconds)
        finally:
            server.terminate()
            server.wait(30)
            await nats.stop()
    to_running = [(running[i] - sent[i]) * 1000 for i in sent if i in running]
    to_done = [(succeeded[i] - sent[i]) * 1000 for i in sent if i in succeeded]
    print(f"{len(sent)} webhooks at {rate}/s -> sensor (CEL filter, parameter) -> one-step `sh -c true` workflow")
    print(f"  webhook -> Running:   p50 {pct(to_running, 50):6.1f} ms  p99 {pct(to_running, 99):6.1f} ms  ({len(to_running)} seen; target p99 < 20 ms)")
    print(f"  webhook -> Succeeded: p50 {pct(to_done, 50):6.1f} ms  p99 {pct(to_done, 99):6.1f} ms  ({len(to_done)} seen)")


async def measure(client: httpx.AsyncClient, url: str, rate: int, seconds: float) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    import nats as nats_client

    nc = await nats_client.connect(url)
    running: dict[str, float] = {}
    succeeded: dict[str, float] = {}

    async def on_event(msg: object) -> None:
        now = time.perf_counter()
        event = decode(msg.data)  # type: ignore[attr-defined]
        for event_id in (event.data or {}).get("eventIds") or ():
            (running if event.eventname == "Running" else succeeded).setdefault(event_id, now)

    await nc.subscribe("eventflow.workflows.default.*.Running", cb=on_event)
    await nc.subscribe("eventflow.workflows.default.*.Succeeded", cb=on_event)
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    begin = time.perf_counter()

    hooks = f"http://127.0.0.1:{client.base_url.port}/push"  # webhooks without a port are served on the main port
    # aiohttp for the load: httpx's pool costs milliseconds of CPU per request, which on a small
    # machine would be taken from the server being measured.
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    async def post(i: int) -> None:
        started = time.perf_counter()
        body = json.dumps({"ref": f"refs/heads/b{i}"})
        async with session.post(hooks, data=body, headers={"Content-Type": "application/json"}) as answer:
            sent[(await answer.json())["id"]] = started

    tasks = []
    try:
        for i in range(total):
            tasks.append(asyncio.create_task(post(i)))
            delay = begin + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*tasks)
    finally:
        await session.close()
    deadline = time.monotonic() + 60
    while len(succeeded) < len(sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await nc.close()
    return running, succeeded, sent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--data-dir", help="where the server's temp data dir goes (default: $TMPDIR or /tmp)")
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds, args.data_dir))


if __name__ == "__main__":
    main()

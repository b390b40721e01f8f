"""Remote workers: the same 1,000-step fan-out on one worker, then on two, in one run on this machine.

    python bench/workers.py [--tasks 1000] [--concurrency 8] [--sleep 0.05]

A real ``eventflow serve`` (on a NATS server this script starts) and real ``eventflow worker``
processes. Each step is ``sh -c 'sleep 0.05'`` on the workers (label ``eventflow.io/executor:
workers``). Prints each run's wall time (submit -> Succeeded seen, polled every 50 ms), steps per second, and the
speed-up of two workers over one (the baseline, measured in the same run). For context it also runs
the fan-out on the server's own executor with ``parallelism`` = one worker's concurrency.

Workers on one machine share its CPUs: the speed-up here is bounded by what spawning a process costs
on this host, not by the queue. On separate machines each worker brings its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.webhook import free_port  # noqa: E402
from eventbus import EmbeddedNats  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def workflow(tasks: int, sleep: float, executor: str, parallelism: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "entrypoint": "main",
        "templates": [
            {
                "name": "main",
                "steps": [[{"name": "t", "template": "work", "withSequence": {"count": str(tasks)}}]],
            },
            {"name": "work", "container": {"image": "alpine", "command": ["sh", "-c", f"sleep {sleep}"]}},
        ],
    }
    if parallelism:
        spec["parallelism"] = parallelism
    return {
        "metadata": {"generateName": "bench-", "labels": {"eventflow.io/executor": executor}},
        "spec": spec,
    }


def spawn(*args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "eventflow.cli", *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=log.open("wb"), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(url: str, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not become ready")


def wait_workers(base: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        queues = httpx.get(f"{base}/readyz", timeout=5).json()["checks"]["scheduler"].get("workerQueues", {})
        if queues.get("default", {}).get("workers", 0) == count:
            return
        time.sleep(0.2)
    raise SystemExit(f"{count} worker(s) did not show up")


def run_once(base: str, body: dict[str, Any]) -> tuple[float, str]:
    api = f"{base}/api/v1/workflows/default"
    began = time.monotonic()
    created = httpx.post(api, json={"workflow": body}, timeout=30)
    created.raise_for_status()
    name = created.json()["metadata"]["name"]
    while True:
        time.sleep(0.05)
        status = httpx.get(f"{api}/{name}", params={"fields": "status.phase"}, timeout=30).json()["status"]
        if status.get("phase") in ("Succeeded", "Failed", "Error"):
            return time.monotonic() - began, status["phase"]


def main() -> None:
    asyncio.run(_main())


async def _main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp_name:
        tmp = Path(tmp_name)
        nats = EmbeddedNats(tmp / "nats", port=free_port())
        url = await nats.start()
        port = free_port()
        server = spawn(
            "serve",
            "--data-dir",
            str(tmp / "data"),
            "--port",
            str(port),
            "--nats-url",
            url,
            "--log-level",
            "warning",
            log=tmp / "server.log",
        )
        workers: list[subprocess.Popen[bytes]] = []
        base = f"http://127.0.0.1:{port}"
        results: dict[str, float] = {}
        try:
            wait_ready(f"{base}/readyz", "the server")
            print(
                f"{args.tasks} steps of sh -c 'sleep {args.sleep}', workers of concurrency {args.concurrency}, {os.cpu_count()} CPUs"
            )
            wall, phase = run_once(base, workflow(args.tasks, args.sleep, "local", args.concurrency))
            results["local"] = wall
            print(
                f"  server's own executor, parallelism {args.concurrency}: {wall:6.2f} s  {args.tasks / wall:6.1f} steps/s  ({phase})"
            )
            for count in (1, 2):
                while len(workers) < count:
                    n = len(workers) + 1
                    workers.append(spawn(
                        "worker", "--nats-url", url, "--name", f"bench-w{n}", "--concurrency", str(args.concurrency),
                        "--work-dir", str(tmp / f"w{n}"), "--log-level", "warning", log=tmp / f"w{n}.log",
                    ))  # fmt: skip
                wait_workers(base, count)
                wall, phase = run_once(base, workflow(args.tasks, args.sleep, "workers"))
                results[str(count)] = wall
                print(
                    f"  {count} worker(s):{'':30} {wall:6.2f} s  {args.tasks / wall:6.1f} steps/s  ({phase})"
                )
            print(f"speed-up, 2 workers over 1 (baseline, same run): {results['1'] / results['2']:.2f}x")
            ideal = args.tasks * args.sleep / args.concurrency
            print(
                f"(sleep alone, {args.concurrency} at a time: {ideal:.2f} s for one worker, {ideal / 2:.2f} s for two)"
            )
        finally:
            for proc in workers:
                stop(proc)
            stop(server)
            await nats.stop()


if __name__ == "__main__":
    main()

"""Webhook ingest, in one run on this machine.

    python bench/webhook.py

The webhook route of ``eventflow serve`` (each request answered only after JetStream stored the
event) against a bare Starlette handler that only parses the JSON body, both on uvicorn in their own
process, loaded by the same client: (1) as fast as 50 connections go: requests/s, p50, p99, and the
ratio webhook/bare (target >= 0.5); (2) at a fixed 1,000 requests/s: p50 and p99 (target p99 < 20 ms).
The client is wrk when installed (for (1)); otherwise, and always for (2), a small asyncio HTTP/1.1
client on keep-alive connections.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BODY = json.dumps({"repository": {"full_name": "acme/app"}, "ref": "refs/heads/main", "commits": [{"id": "abc"}] * 5}).encode()
CONNECTIONS = 50
SECONDS = 5.0
RATE = 1000

BARE = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def hook(request):
    body = await request.json()
    return JSONResponse({"id": "x", "subject": "y", "n": len(body)})
app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.post(url, content=BODY, headers={"Content-Type": "application/json"}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def request_bytes(port: int) -> bytes:
    head = (
        f"POST /hook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


async def _connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> int:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    await reader.readexactly(int(match.group(1)) if match else 0)
    return status


async def closed_loop(port: int) -> tuple[float, list[float]]:
    """As fast as CONNECTIONS connections go for SECONDS: (requests/s, latencies in s)."""
    payload = request_bytes(port)
    latencies: list[float] = []
    end = time.perf_counter() + SECONDS

    async def worker() -> None:
        reader, writer = await _connection(port)
        while time.perf_counter() < end:
            start = time.perf_counter()
            assert await _one(reader, writer, payload) == 200
            latencies.append(time.perf_counter() - start)
        writer.close()

    begun = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return len(latencies) / (time.perf_counter() - begun), latencies


async def open_loop(port: int) -> list[float]:
    """RATE requests/s for SECONDS, each on a free connection; latency from its scheduled start."""
    payload = request_bytes(port)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(CONNECTIONS * 2):
        pool.put_nowait(await _connection(port))
    latencies: list[float] = []

    async def send(due: float) -> None:
        conn = await pool.get()
        assert await _one(*conn, payload) == 200
        latencies.append(time.perf_counter() - due)
        pool.put_nowait(conn)

    start = time.perf_counter()
    tasks = []
    for i in range(int(RATE * SECONDS)):
        due = start + i / RATE
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(due)))
    await asyncio.gather(*tasks)
    return latencies


def wrk(port: int) -> tuple[float, float, float] | None:
    if shutil.which("wrk") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY.decode())}\nwrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{int(SECONDS)}s", "--latency", "-s", script.name, f"http://127.0.0.1:{port}/hook"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    os.unlink(script.name)

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rps, ms("50%"), ms("99%")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def measure(name: str, port: int) -> dict[str, float]:
    figures = wrk(port)
    if figures is None:
        rps, lat = asyncio.run(closed_loop(port))
        figures = (rps, pct(lat, 50), pct(lat, 99))
    fixed = asyncio.run(open_loop(port))
    out = {"rps": figures[0], "p50": figures[1], "p99": figures[2], "fixed_p50": pct(fixed, 50), "fixed_p99": pct(fixed, 99)}
    print(f"  {name:8s} {out['rps']:8.0f} req/s  p50 {out['p50']:6.2f} ms  p99 {out['p99']:6.2f} ms   "
          f"at {RATE}/s: p50 {out['fixed_p50']:5.2f} ms  p99 {out['fixed_p99']:5.2f} ms")  # fmt: skip
    return out


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        bare_port, server_port, hook_port = free_port(), free_port(), free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE, str(bare_port)], env=env)
        server = subprocess.Popen(
            [sys.executable, "-m", "eventflow.cli", "serve", "--port", str(server_port), "--data-dir", tmp, "--log-level", "warning"],
            env=env, cwd=REPO,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{server_port}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not come up")
                time.sleep(0.05)
            manifest = {"metadata": {"name": "bench"}, "spec": {"webhook": {"hook": {"endpoint": "/hook", "port": hook_port}}}}
            created = httpx.post(f"http://127.0.0.1:{server_port}/api/v1/event-sources/default", json={"eventSource": manifest})
            assert created.status_code == 200, created.text
            wait_up(f"http://127.0.0.1:{bare_port}/hook")
            wait_up(f"http://127.0.0.1:{hook_port}/hook")
            client = "wrk" if shutil.which("wrk") else "asyncio client"
            print(f"{CONNECTIONS} connections for {SECONDS:.0f} s ({client}); then {RATE} req/s for {SECONDS:.0f} s; {len(BODY)}-byte JSON body")
            base = measure("bare", bare_port)
            hook = measure("webhook", hook_port)
            print(f"  ratio webhook/bare: {hook['rps'] / base['rps']:.2f} (target >= 0.5); "
                  f"webhook p99 at {RATE}/s: {hook['fixed_p99']:.2f} ms (target < 20 ms)")  # fmt: skip
        finally:
            for proc in (bare, server):
                proc.terminate()
                proc.wait(timeout=20)


if __name__ == "__main__":
    main()

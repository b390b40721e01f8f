"""Per-step overhead of LocalExecutor.run over a bare ``asyncio.create_subprocess_exec`` (not a test).

    .venv/bin/python -m tests.workflows.executor.bench_overhead [runs]

Runs ``sh -c true`` ``runs`` times (default 200) each way, one after the other: bare, without and with a
private filesystem (the latter needs root and overlayfs). Three rounds; each figure is the median of
the round means, in ms per run. Runs are back to back, so background work (recycling the previous
node's root for the pool) competes with the next start.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from workflows.executor import LocalExecutor, ProcessSpec

Step = Callable[[], Awaitable[None]]
ROUNDS = 3


async def _bare() -> None:
    proc = await asyncio.create_subprocess_exec("sh", "-c", "true", stdin=asyncio.subprocess.DEVNULL)
    await proc.wait()


def _executor_step(executor: LocalExecutor, done: list[str]) -> Step:
    async def step() -> None:
        node = f"n{len(done)}"
        result = await executor.run(
            ProcessSpec(node, "alpine", ["sh", "-c", "true"], None, {}, None, None, ())
        )
        assert result.exit_code == 0, result
        done.append(node)

    return step


async def _batch(step: Step, runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        await step()
    return (time.perf_counter() - start) / runs * 1000


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        host = LocalExecutor(Path(tmp) / "host", private_fs=False)
        private = LocalExecutor(Path(tmp) / "private")
        done: dict[str, list[str]] = {"host": [], "private": []}
        steps: dict[str, Step] = {"bare": _bare, "host": _executor_step(host, done["host"])}
        if private.private_fs:
            steps["private"] = _executor_step(private, done["private"])
        samples: dict[str, list[float]] = {name: [] for name in steps}
        for name, step in steps.items():  # warm-up: page cache, first cgroup migration
            await _batch(step, 10)
        for _ in range(ROUNDS):
            for name, step in steps.items():
                samples[name].append(await _batch(step, runs))
        bare = statistics.median(samples["bare"])
        print(f"bare create_subprocess_exec(sh -c true): {bare:.3f} ms/run")
        for name, executor in (("host", host), ("private", private)):
            if name not in samples:
                print(f"LocalExecutor private_fs=True: unavailable here ({executor!r})")
                continue
            mean = statistics.median(samples[name])
            start = time.perf_counter()
            for node in done[name]:
                executor.cleanup(node)
            cleanup = (time.perf_counter() - start) / len(done[name]) * 1000
            print(
                f"LocalExecutor.run private_fs={name == 'private'}: {mean:.3f} ms/run "
                f"(+{mean - bare:.3f} ms over bare); cleanup() {cleanup:.3f} ms"
            )
        host.close()
        private.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))

"""Wait for state by polling with a deadline (never a bare sleep).

Checks are 10 ms apart. A wait whose check is costly for a server under test (a summary of a
workflow of 10,000 nodes, say) passes ``max_interval``: the pause then grows by a quarter each time
up to it, so a long wait leaves the CPU to the server (CI shares two cores between three test
workers and the servers they start).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

FIRST_INTERVAL = 0.01
GROWTH = 1.25


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float = 10.0,
    what: str = "condition",
    max_interval: float = FIRST_INTERVAL,
) -> None:
    deadline = time.monotonic() + timeout
    interval = FIRST_INTERVAL
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        await asyncio.sleep(interval)
        interval = min(interval * GROWTH, max_interval)


def eventually_sync(
    check: Callable[[], bool],
    *,
    timeout: float = 10.0,
    what: str = "condition",
    max_interval: float = FIRST_INTERVAL,
) -> None:
    deadline = time.monotonic() + timeout
    interval = FIRST_INTERVAL
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * GROWTH, max_interval)

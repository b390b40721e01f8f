"""Wait for state by polling with a deadline (never a bare sleep).

The pause between checks starts at 10 ms and grows by a quarter each time up to ``max_interval``
(100 ms unless told): a short wait ends within a few ms of its state, and a long one does not
spend the CPU that the servers under test need (CI shares two cores between three test workers
and the servers they start) on checking again every 10 ms.
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
    max_interval: float = 0.1,
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
    check: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition", max_interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    interval = FIRST_INTERVAL
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * GROWTH, max_interval)

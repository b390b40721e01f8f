"""One scheduler among the servers that share a database: a lease row, taken and renewed in one
statement, that names its holder and runs out unless renewed.

Two schedulers on one store would both recover, walk and commit the same workflows. The holder
runs the scheduler; the others serve the API, webhooks and sensors, store what is submitted to
them (the holder adopts it), and take the lease over when the holder stops renewing it.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime
from pathlib import Path

from workflows.store import WorkflowStore

__all__ = ["LEASE_SECONDS", "SchedulerLease", "holder_name"]

LEASE_SECONDS = 6.0  # a dead holder is replaced within this plus one renewal interval


def holder_name(data_dir: Path) -> str:
    """Host and data dir: a server restarted on the same data dir (after kill -9, say) is the same
    holder and takes its lease back at once instead of waiting for it to run out."""
    return f"{socket.gethostname()}:{data_dir.resolve()}"[:200]


class SchedulerLease:
    """The ``scheduler`` lease as seen by one server."""

    NAME = "scheduler"

    def __init__(self, store: WorkflowStore, holder: str, *, seconds: float = LEASE_SECONDS) -> None:
        self.store = store
        self.holder = holder
        self.seconds = seconds
        self.held_by: str | None = None  # the holder seen on the last attempt
        self.expires_at: datetime | None = None
        self._mine_until = 0.0  # monotonic: until when a lease we took is surely still ours

    @property
    def renew_every(self) -> float:
        return self.seconds / 3

    async def try_take(self) -> bool:
        """Take or renew the lease; True when this server holds it now."""
        asked = time.monotonic()
        self.held_by, self.expires_at = await self.store.take_lease(self.NAME, self.holder, self.seconds)
        if self.held_by != self.holder:
            return False
        # Counted from before the request: the database's expiry is at least this late.
        self._mine_until = asked + self.seconds
        return True

    def still_mine(self) -> bool:
        """Whether a lease we took cannot have run out yet (no other server can hold it)."""
        return time.monotonic() < self._mine_until

    async def release(self) -> None:
        """Give the lease up so that a standby takes over at once (a clean shutdown)."""
        await self.store.release_lease(self.NAME, self.holder)
        self._mine_until = 0.0

"""Concurrency controls shared by workflows: semaphores and mutexes (``locks``), and the server-wide
caps on running workflows (``throttle``). In-memory, no I/O: the scheduler persists holders in the
workflows' statuses with each transition and rebuilds them from there at start."""

from workflows.sync.locks import LockRequest, SyncManager, lock_requests
from workflows.sync.throttle import POSTPONED_MESSAGE, Throttler

__all__ = ["POSTPONED_MESSAGE", "LockRequest", "SyncManager", "Throttler", "lock_requests"]

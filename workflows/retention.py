"""``ttlStrategy``: finished workflows are deleted when their time is up, as Argo's TTL controller does.

A workflow's TTL is ``secondsAfterSuccess`` when it Succeeded, ``secondsAfterFailure`` when it Failed or
Errored, else ``secondsAfterCompletion``; its own ``spec.ttlStrategy`` wins over the server's default
(Argo's ``workflowDefaults``), field by field. The deadline counts from ``finishedAt``, so it survives
restarts: at start the sweeper reads every finished workflow's deadline from the store; while running,
the scheduler tells it about each workflow that ends. Deleting goes through the scheduler (locks,
volumes, artifact GC, the ``Deleted`` lifecycle event), one workflow at a time, off the scheduler's loop:
a slow deletion delays other deletions, never a workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflows.models import TTLStrategy
from workflows.status import WorkflowPhase
from workflows.store import WorkflowRecord

if TYPE_CHECKING:
    from workflows.scheduler import Scheduler

__all__ = ["RetentionSweeper", "ttl_seconds"]

log = logging.getLogger("workflows.retention")

_RETRY_SECONDS = 30.0  # a deletion that failed (the database was away) is tried again this much later


def ttl_seconds(own: TTLStrategy | None, default: TTLStrategy | None, phase: WorkflowPhase) -> int | None:
    """Seconds after finishing that a workflow in ``phase`` is kept; None = kept until deleted."""

    def pick(field: str) -> int | None:
        for strategy in (own, default):
            value = getattr(strategy, field, None) if strategy is not None else None
            if value is not None:
                return int(value)
        return None

    if phase == WorkflowPhase.SUCCEEDED and (seconds := pick("seconds_after_success")) is not None:
        return seconds
    if phase in (WorkflowPhase.FAILED, WorkflowPhase.ERROR) and (seconds := pick("seconds_after_failure")) is not None:
        return seconds
    return pick("seconds_after_completion")


def _own_strategy(manifest: dict[str, Any]) -> TTLStrategy | None:
    raw = (manifest.get("spec") or {}).get("ttlStrategy")
    if not raw:
        return None
    try:
        return TTLStrategy.model_validate(raw)
    except ValueError:  # validated at submission; an old row that no longer parses is kept, not deleted
        return None


class RetentionSweeper:
    """Deletes finished workflows whose TTL ran out; one task, sleeping until the next deadline."""

    def __init__(
        self, scheduler: Scheduler, default: TTLStrategy | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.scheduler = scheduler
        self.default = default
        self.clock = clock
        self.deleted = 0
        self._due: list[tuple[float, str, str, str]] = []  # (deadline, uid, namespace, name), a heap
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<RetentionSweeper due={len(self._due)} deleted={self.deleted}>"

    def finished(self, record: WorkflowRecord) -> None:
        """A workflow ended: remember when it is to go (if its TTL says it does)."""
        seconds = ttl_seconds(_own_strategy(record.manifest), self.default, record.phase)
        if seconds is None or record.finished_at is None:
            return
        deadline = record.finished_at.timestamp() + max(0, seconds)
        heapq.heappush(self._due, (deadline, record.uid, record.namespace, record.name))
        self._wake.set()

    async def start(self) -> None:
        done = [p for p in WorkflowPhase if p.done]
        for record in await self.scheduler.store.list_workflows(phases=done):
            self.finished(record)
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock()
            if not self._due or self._due[0][0] > now:
                timeout = None if not self._due else self._due[0][0] - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            deadline, uid, namespace, name = heapq.heappop(self._due)
            try:
                await self._delete(uid, namespace, name)
            except Exception as exc:  # noqa: BLE001 - kept for the next try, never lost, never fatal
                log.warning("could not delete workflow %s/%s after its TTL (%s); trying again in %.0fs", namespace, name, exc, _RETRY_SECONDS)
                heapq.heappush(self._due, (self.clock() + _RETRY_SECONDS, uid, namespace, name))

    async def _delete(self, uid: str, namespace: str, name: str) -> None:
        from workflows.scheduler import WorkflowNotFound

        record = await self.scheduler.store.get_workflow(namespace, name)
        if record is None or record.uid != uid or not record.phase.done:
            return  # deleted already, or a new workflow of that name, or running again (retry)
        seconds = ttl_seconds(_own_strategy(record.manifest), self.default, record.phase)
        if seconds is None or record.finished_at is None:
            return
        due = record.finished_at.timestamp() + seconds
        if due > self.clock():  # retried and finished again since: a later deadline
            heapq.heappush(self._due, (due, uid, namespace, name))
            return
        with contextlib.suppress(WorkflowNotFound):
            await self.scheduler.delete(namespace, name)
            self.deleted += 1
            log.info("deleted workflow %s/%s: its ttlStrategy ran out (%ss after %s)", namespace, name, seconds, _when(record.finished_at))


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")

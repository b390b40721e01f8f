"""``ttlStrategy``: finished workflows are deleted when their time is up, as Argo's TTL controller does.

A workflow's TTL is ``secondsAfterSuccess`` when it Succeeded, ``secondsAfterFailure`` when it Failed or
Errored, else ``secondsAfterCompletion``; its own ``spec.ttlStrategy`` wins over the server's default
(Argo's ``workflowDefaults``), field by field. The deadline counts from ``finishedAt``, so it survives
restarts: at start the sweeper reads every finished workflow's deadline from the store; while running,
the scheduler tells it about each workflow that ends. Deleting goes through the scheduler (locks,
volumes, artifact GC, the ``Deleted`` lifecycle event), one workflow at a time, off the scheduler's loop:
a slow deletion delays other deletions, never a workflow.

The archive (Argo's workflow archive) works through the same task: a workflow that ends is copied, nodes
included, into the archive table when the :class:`ArchivePolicy` says so (``archive: true`` and the
``archiveLabelSelector``, or the workflow's label ``workflows.argoproj.io/archive-strategy: "always"``;
``"false"`` keeps it out), so a later TTL deletion leaves the archived copy; ``archiveTTL`` drops archived
workflows that finished longer ago than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from workflows.models import TTLStrategy
from workflows.status import WorkflowPhase
from workflows.store import WorkflowRecord

if TYPE_CHECKING:
    from workflows.scheduler import Scheduler

__all__ = ["ARCHIVE_STRATEGY", "ArchivePolicy", "RetentionSweeper", "archive_labels", "should_archive", "ttl_seconds"]

ARCHIVE_STRATEGY = "workflows.argoproj.io/archive-strategy"
_ARCHIVE_SWEEP_SECONDS = 300.0  # how often archiveTTL is applied (and once at start)


class ArchivePolicy(BaseModel):
    """Argo's ``persistence`` archive settings."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = False
    ttl_seconds: float = Field(default=0.0, ge=0, description="archived workflows older than this go; 0 = kept forever")
    match_labels: dict[str, str] = Field(default_factory=dict, description="archiveLabelSelector.matchLabels")


def should_archive(policy: ArchivePolicy, labels: dict[str, str]) -> bool:
    strategy = labels.get(ARCHIVE_STRATEGY)
    if strategy == "false":
        return False
    if strategy == "always":
        return True
    return policy.enabled and all(labels.get(k) == v for k, v in policy.match_labels.items())


def archive_labels(record: WorkflowRecord) -> dict[str, str]:
    """The labels Argo puts on an archived workflow."""
    return {
        "workflows.argoproj.io/completed": "true",
        "workflows.argoproj.io/phase": record.phase.value,
        "workflows.argoproj.io/workflow-archiving-status": "Archived",
    }

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
        self,
        scheduler: Scheduler,
        default: TTLStrategy | None = None,
        *,
        archive: ArchivePolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scheduler = scheduler
        self.default = default
        self.archive = archive or ArchivePolicy()
        self.clock = clock
        self.deleted = 0
        self.archived = 0
        self._due: list[tuple[float, str, str, str]] = []  # (deadline, uid, namespace, name), a heap
        self._to_archive: list[WorkflowRecord] = []
        self._next_archive_sweep = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<RetentionSweeper due={len(self._due)} deleted={self.deleted}>"

    def finished(self, record: WorkflowRecord) -> None:
        """A workflow ended: archive it if the policy says so, and remember when it is to go."""
        if should_archive(self.archive, record.labels):
            self._to_archive.append(record.model_copy())
            self._wake.set()
        seconds = ttl_seconds(_own_strategy(record.manifest), self.default, record.phase)
        if seconds is None or record.finished_at is None:
            return
        deadline = record.finished_at.timestamp() + max(0, seconds)
        heapq.heappush(self._due, (deadline, record.uid, record.namespace, record.name))
        self._wake.set()

    async def start(self) -> None:
        done = [p for p in WorkflowPhase if p.done]
        for record in await self.scheduler.store.list_workflows(phases=done):
            self.finished(record)  # archiving again replaces the archived copy: harmless after a restart
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
            if self._to_archive:
                await self._archive(self._to_archive.pop(0))
                continue
            now = self.clock()
            if self.archive.ttl_seconds and now >= self._next_archive_sweep:
                await self._sweep_archive(now)
            if not self._due or self._due[0][0] > now:
                waits = [d for d in (self._due[0][0] if self._due else None, self._next_archive_sweep if self.archive.ttl_seconds else None) if d is not None]
                timeout = max(0.0, min(waits) - now) if waits else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            deadline, uid, namespace, name = heapq.heappop(self._due)
            try:
                await self._delete(uid, namespace, name)
            except Exception as exc:  # noqa: BLE001 - kept for the next try, never lost, never fatal
                log.warning("could not delete workflow %s/%s after its TTL (%s); trying again in %.0fs", namespace, name, exc, _RETRY_SECONDS)
                heapq.heappush(self._due, (self.clock() + _RETRY_SECONDS, uid, namespace, name))

    async def _archive(self, record: WorkflowRecord) -> None:
        try:
            if await self.scheduler.store.archive_workflow(record.uid, archive_labels(record)):
                self.archived += 1
                log.debug("archived workflow %s/%s", record.namespace, record.name)
        except Exception as exc:  # noqa: BLE001 - tried again a little later; the live row is still there
            log.warning("could not archive workflow %s/%s (%s); trying again in %.0fs", record.namespace, record.name, exc, _RETRY_SECONDS)
            asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._retry_archive, record)

    def _retry_archive(self, record: WorkflowRecord) -> None:
        self._to_archive.append(record)
        self._wake.set()

    async def _sweep_archive(self, now: float) -> None:
        self._next_archive_sweep = now + min(_ARCHIVE_SWEEP_SECONDS, max(1.0, self.archive.ttl_seconds / 10))
        cutoff = datetime.fromtimestamp(now - self.archive.ttl_seconds, UTC)
        try:
            dropped = await self.scheduler.store.delete_archived_before(cutoff)
        except Exception as exc:  # noqa: BLE001 - the next sweep tries again
            log.warning("could not apply archiveTTL (%s)", exc)
            return
        if dropped:
            log.info("archiveTTL: %d archived workflow(s) older than %.0fs dropped", dropped, self.archive.ttl_seconds)

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

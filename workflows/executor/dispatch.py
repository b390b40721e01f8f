"""WorkerDispatcher: run a step on a remote worker (``eventflow worker``) instead of in this process.

The scheduler calls :meth:`WorkerDispatcher.run` as it calls ``LocalExecutor.run``, and gets the same
:class:`ProcessResult`. In between, on the bus (``eventbus.tasks``):

1. the step goes on its queue's work-queue stream as one task, ``<node id>/<nonce>``;
2. a worker takes it, reports ``started``, only then acknowledges it (so a task is always either
   queued or known to be on a worker), runs it, streams its log (``log`` reports, written into the
   node's log here at their offsets, so ``eventflow logs --follow`` works as for a local step), and
   reports the ``result``;
3. while it runs, the worker heartbeats every second with the tasks it holds. A task whose worker
   has not been heard of for ``lost_after_seconds`` is given up: :class:`WorkerLost` (the node ends
   ``Error`` with "executor lost: ...", and its ``retryStrategy`` decides whether it runs again, as a
   new node, on whichever worker takes it). A late report of that dispatch names its task and is
   ignored. So is a task a worker took from the queue and never reported started.

Input artifacts (staged here from the workflow's repository) go to the worker through the task files
store, and output artifacts come back the same way; what was carried is deleted once the step ends.

The result is also saved beside the node's log here (``save_result``), like a local step's, so a
scheduler that dies before committing it settles the node from it after the restart. A step still
running on a worker when the scheduler restarts is treated as a local one would be: ``executor lost``
and retried per its policy (the worker's late result is ignored).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from eventbus import BusError, CloudEvent, Tail, TaskQueue, new_event_id
from eventbus.subjects import decode_token
from workflows.executor.carry import fetch, send
from workflows.executor.errors import ExecutorError
from workflows.executor.layout import NodeDirs
from workflows.executor.outputs import CollectedArtifact
from workflows.executor.protocol import (
    PROTOCOL,
    TASK_TYPE,
    Heartbeat,
    Lost,
    Refused,
    Started,
    Task,
    TaskResult,
    spec_to_json,
)
from workflows.executor.spec import ProcessResult, ProcessSpec, save_result

__all__ = ["NotRemotable", "TaskRefused", "WorkerDispatcher", "WorkerLost", "WorkerSeen"]

log = logging.getLogger("workflows.executor.dispatch")


class WorkerLost(ExecutorError):
    """The worker running the step stopped answering (or stopped): the step did not finish."""


class TaskRefused(ExecutorError):
    """No worker can run the step (the task itself is unreadable)."""


class NotRemotable(ExecutorError):
    """The step needs something only the server's host has (its volumes, staged artifacts)."""


@dataclass
class _Dispatch:
    node: str
    task: str
    queue: str
    future: asyncio.Future[ProcessResult]
    log_fd: int
    seq: int = 0
    worker: str | None = None
    started: bool = False
    heard: float = field(default_factory=time.monotonic)
    probed: float = 0.0
    taken_at: float | None = None  # when the queue was first seen without it, before ``started``
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # as the worker reported them


@dataclass(frozen=True)
class WorkerSeen:
    """A worker as its last heartbeat described it, and how long ago that was."""

    beat: Heartbeat
    seconds_ago: float


class WorkerDispatcher:
    """Sends container and script steps to remote workers; one per scheduler (see the module doc)."""

    def __init__(
        self,
        tasks: TaskQueue,
        work_dir: Path,
        *,
        lost_after_seconds: float = 10.0,
        probe_seconds: float = 5.0,
        submit_patience_seconds: float = 60.0,
    ) -> None:
        self.tasks = tasks
        self.work_dir = Path(work_dir)
        self.lost_after_seconds = lost_after_seconds
        self.probe_seconds = probe_seconds
        self.submit_patience_seconds = submit_patience_seconds
        self.sender = f"{socket.gethostname()}:{os.getpid()}"
        self._dispatches: dict[str, _Dispatch] = {}  # node id -> its current dispatch
        self._workers: dict[str, tuple[Heartbeat, float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._beats: Any = None
        self.dispatched = 0
        self.ignored_reports = 0

    def __repr__(self) -> str:
        return f"<WorkerDispatcher running={len(self._dispatches)} workers={len(self.workers())} dispatched={self.dispatched}>"

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.tasks.open()
        self._beats = await self.tasks.on_heartbeats(self._on_heartbeat)
        tail = await self.tasks.follow_reports()
        self._tasks = [
            asyncio.create_task(self._follow(tail), name="worker-reports"),
            asyncio.create_task(self._watch(), name="worker-watchdog"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._beats is not None:
            with contextlib.suppress(Exception):
                await self._beats.unsubscribe()
            self._beats = None

    def workers(self, within_seconds: float | None = None) -> list[WorkerSeen]:
        """Workers heard from within ``within_seconds`` (default: ``lost_after_seconds``)."""
        now = time.monotonic()
        limit = self.lost_after_seconds if within_seconds is None else within_seconds
        return [WorkerSeen(beat, now - at) for beat, at in self._workers.values() if now - at <= limit]

    # -- running a step ---------------------------------------------------------------------------

    async def run(
        self,
        spec: ProcessSpec,
        *,
        queue: str = "default",
        deadline_at: float | None = None,
        gate: Awaitable[None] | None = None,
        attempt: str = "",
        resume: bool = False,
    ) -> ProcessResult:
        """Run the step on a worker of ``queue`` and return how it ended (see the module doc).

        ``attempt`` names this run of the node (the scheduler passes its start time): the task id is
        derived from it, so a scheduler that took over from another (``resume``) finds the task the
        other one queued: its result if it ended, its worker if it runs, else it queues it again
        (JetStream drops the copy if the first is still within the duplicate window).

        Raises :class:`NotRemotable`, :class:`WorkerLost`, :class:`TaskRefused`, or
        :class:`ExecutorError` when the task cannot be queued; on cancellation the task is withdrawn
        from the queue or its worker told to stop, then the cancellation propagates.
        """
        if gate is not None:
            await gate
        try:
            body = spec_to_json(spec)
        except ValueError as exc:
            raise NotRemotable(
                f"executor 'workers' cannot run this step: its volumes ({exc}) live on the server's host; "
                "use eventflow.io/executor: local"
            ) from None
        dirs = NodeDirs(self.work_dir / spec.node_id)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        dirs.result.unlink(missing_ok=True)
        token = hashlib.sha256(attempt.encode()).hexdigest()[:8] if attempt else new_event_id()[:8]
        task_id = f"{spec.node_id}/{token}"
        inputs = await self._send_inputs(task_id, spec.copy_in)
        loop = asyncio.get_running_loop()
        fd = os.open(dirs.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        d = _Dispatch(node=spec.node_id, task=task_id, queue=queue, future=loop.create_future(), log_fd=fd)
        previous = self._dispatches.get(spec.node_id)
        if previous is not None and not previous.future.done():
            previous.future.cancel()
        self._dispatches[spec.node_id] = d
        task = Task(
            protocol=PROTOCOL,
            task=task_id,
            node=spec.node_id,
            queue=queue,
            spec=body,
            deadline_at=deadline_at,
            sent_by=self.sender,
            inputs=inputs,
        )
        event = CloudEvent(
            id=task_id,
            source="eventflow/scheduler",
            type=TASK_TYPE,
            eventsource="tasks",
            eventname=queue,
            data=task.model_dump(mode="json"),
        )
        try:
            if not (resume and await self._resume(d)):
                d.seq = await self._submit(queue, event)
                self.dispatched += 1
            result = await d.future
            if resume:
                await self._backfill_log(d)
        except asyncio.CancelledError:
            await asyncio.shield(self._withdraw(d))
            raise
        finally:
            if self._dispatches.get(spec.node_id) is d:
                del self._dispatches[spec.node_id]
            os.close(fd)
        result = ProcessResult(
            exit_code=result.exit_code, result=result.result, log_path=dirs.log, outputs=result.outputs,
            error=result.error, started_at=result.started_at, finished_at=result.finished_at,
            artifacts=await self._fetch_artifacts(d, dirs.node / "artifacts"),
        )  # fmt: skip
        if spec.copy_in or d.artifacts:
            asyncio.get_running_loop().create_task(self._forget_files(task_id))
        try:
            save_result(dirs.result, result)
        except OSError as exc:
            log.warning(
                "could not save the result of %s (%s); a crash now would re-run it", spec.node_id, exc
            )
        return result

    async def _resume(self, d: _Dispatch) -> bool:
        """A task queued by the scheduler this one took over from: True when a worker has it (or it
        ended; the future is then set), False when it has to be queued (again)."""
        try:
            result = await self.tasks.last_report(d.node, "result")
            started = await self.tasks.last_report(d.node, "started")
        except BusError as exc:
            log.warning("cannot read the reports of %s (%s); queueing it again", d.node, exc)
            return False
        if d.future.done():  # its report arrived meanwhile
            return True
        if result is not None and isinstance(result.data, dict) and result.data.get("task") == d.task:
            self._on_report(self.tasks.subjects.task_report(d.node, "result"), result)
            return True
        if started is not None and isinstance(started.data, dict) and started.data.get("task") == d.task:
            # From now on its worker's heartbeats keep it, or their absence gives it up.
            d.started, d.worker, d.heard = True, str(started.data.get("worker")), time.monotonic()
            log.info("step %s: still running on worker %s; following it", d.node, d.worker)
            return True
        return False

    async def _backfill_log(self, d: _Dispatch) -> None:
        """The log chunks a resumed step sent before this scheduler followed it."""
        try:
            chunks = await self.tasks.reports(d.node, "log")
        except BusError as exc:
            log.warning("cannot read the earlier log of %s: %s", d.node, exc)
            return
        for event in chunks:
            extra = event.model_extra or {}
            if extra.get("task") == d.task and event.data_base64:
                os.pwrite(d.log_fd, base64.b64decode(event.data_base64), int(extra.get("offset", 0)))

    async def _send_inputs(self, task_id: str, copy_in: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
        """The step's staged input artifacts, into the task files store for its worker."""
        if not copy_in:
            return []
        try:
            store = await self.tasks.files()
            sent = []
            for i, (host, path) in enumerate(copy_in):
                key = f"{task_id}/in/{i}"
                sent.append({"key": key, "path": path, "tar": await send(store, key, Path(host))})
        except (BusError, OSError) as exc:
            raise ExecutorError(f"cannot send the step's input artifacts to the workers: {exc}") from None
        return sent

    async def _fetch_artifacts(self, d: _Dispatch, dest: Path) -> dict[str, CollectedArtifact]:
        """The output artifacts the worker took, from the task files store into the node's dir."""
        found: dict[str, CollectedArtifact] = {}
        for name, data in d.artifacts.items():
            art = CollectedArtifact.from_json(data)
            if art.staged is not None:
                local = dest / name
                try:
                    await fetch(await self.tasks.files(), art.staged, local, tar=False)
                    art = dataclasses.replace(art, staged=str(local))
                except (BusError, OSError) as exc:
                    art = dataclasses.replace(
                        art, staged=None, error=f"could not bring it back from the worker: {exc}"
                    )
            found[name] = art
        return found

    async def _forget_files(self, task_id: str) -> None:
        """Delete what this task carried through the task files store (once it is no longer needed)."""
        with contextlib.suppress(BusError):
            store = await self.tasks.files()
            for name in await store.list_names(f"{task_id}/"):
                with contextlib.suppress(BusError):
                    await store.delete(name)

    async def _submit(self, queue: str, event: CloudEvent) -> int:
        """Queue the task, retrying while the bus is away (the same id cannot be stored twice)."""
        deadline = time.monotonic() + self.submit_patience_seconds
        delay = 0.2
        while True:
            try:
                return await self.tasks.submit(queue, event)
            except BusError as exc:
                if time.monotonic() + delay > deadline:
                    raise ExecutorError(f"cannot queue the step for a worker: {exc}") from None
                log.warning("queueing %s failed (%s); retrying in %.1fs", event.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _withdraw(self, d: _Dispatch) -> None:
        with contextlib.suppress(BusError):
            if d.seq and not d.started and await self.tasks.withdraw(d.seq):
                return
        await self.tasks.cancel(d.node, json.dumps({"task": d.task}).encode())

    # -- what comes back --------------------------------------------------------------------------

    async def _follow(self, tail: Tail) -> None:
        """Apply every report in order; re-open the tail after a failure, from where it stopped."""
        while True:
            try:
                async for item in tail:
                    self._on_report(item.subject, item.event)
            except asyncio.CancelledError:
                await asyncio.shield(tail.close())
                raise
            except Exception as exc:  # noqa: BLE001 - whatever broke the tail, reports must keep coming
                log.warning("following worker reports failed (%s); re-opening", exc)
            after = tail.last_seq
            await tail.close()
            while True:
                await asyncio.sleep(1.0)
                try:
                    tail = await self.tasks.follow_reports_after(after)
                    break
                except BusError as exc:
                    log.warning("cannot re-open worker reports (%s); retrying", exc)

    def _on_report(self, subject: str, event: CloudEvent) -> None:
        parts = subject.rsplit(".", 2)
        try:
            node, kind = decode_token(parts[1]), parts[2]
        except (IndexError, ValueError):
            return
        d = self._dispatches.get(node)
        data = event.data if isinstance(event.data, dict) else {}
        extra = event.model_extra or {}
        if d is None or d.future.done() or (data.get("task") or extra.get("task")) != d.task:
            self.ignored_reports += 1
            return
        try:
            if kind == "log":
                os.pwrite(d.log_fd, base64.b64decode(event.data_base64 or ""), int(extra.get("offset", 0)))
                d.heard = time.monotonic()
            elif kind == "started":
                started = Started.model_validate(data)
                d.started, d.worker, d.heard = True, started.worker, time.monotonic()
            elif kind == "result":
                r = TaskResult.model_validate(data)
                d.artifacts = r.artifacts
                d.future.set_result(ProcessResult(
                    exit_code=r.exit_code, result=r.result, log_path=NodeDirs(self.work_dir / node).log, outputs=r.outputs,
                    error=r.error, started_at=r.started_at, finished_at=r.finished_at,
                ))  # fmt: skip
            elif kind == "refused":
                refused = Refused.model_validate(data)
                why = f"refused by worker {refused.worker}: {refused.reason}"
                log.warning("step %s %s", node, why)
                if refused.final:
                    d.future.set_exception(TaskRefused(why))
            elif kind == "lost":
                lost = Lost.model_validate(data)
                d.future.set_exception(WorkerLost(f"executor lost: worker {lost.worker} {lost.reason}"))
        except (ValidationError, ValueError, OSError) as exc:
            log.warning("ignoring a bad %s report about %s: %s", kind, node, exc)

    async def _on_heartbeat(self, payload: bytes) -> None:
        try:
            beat = Heartbeat.model_validate_json(payload)
        except ValidationError:
            return
        now = time.monotonic()
        self._workers[beat.worker] = (beat, now)
        for node, task in beat.running.items():
            d = self._dispatches.get(node)
            if d is not None and d.task == task:
                d.started, d.worker, d.heard = True, beat.worker, now

    async def _watch(self) -> None:
        """Give up on steps whose worker went silent, or that a worker took and never started."""
        while True:
            await asyncio.sleep(min(1.0, self.lost_after_seconds / 4))
            now = time.monotonic()
            for d in list(self._dispatches.values()):
                if d.future.done():
                    continue
                if d.started:
                    if now - d.heard > self.lost_after_seconds:
                        self._lose(
                            d,
                            f"executor lost: worker {d.worker} sent no heartbeat for {self.lost_after_seconds:g}s while the step ran",
                        )
                    continue
                if not d.seq or now - d.probed < self.probe_seconds:
                    continue
                d.probed = now
                try:
                    waiting = await self.tasks.waiting(d.seq)
                except BusError as exc:  # the bus is away: nobody can take it meanwhile
                    log.debug("probing task %s failed: %s", d.task, exc)
                    continue
                if waiting:
                    d.taken_at = None
                elif d.taken_at is None:
                    d.taken_at = now
                elif now - d.taken_at > self.lost_after_seconds and not d.started:
                    self._lose(
                        d,
                        "executor lost: a worker took the step from the queue and never reported it started",
                    )
            stale = [w for w, (_, at) in self._workers.items() if now - at > 3600]
            for w in stale:
                del self._workers[w]

    def _lose(self, d: _Dispatch, message: str) -> None:
        log.warning("step %s: %s", d.node, message)
        d.future.set_exception(WorkerLost(message))
        # If the worker is alive but cut off, it stops the step once it hears this.
        asyncio.get_running_loop().create_task(
            self.tasks.cancel(d.node, json.dumps({"task": d.task}).encode())
        )

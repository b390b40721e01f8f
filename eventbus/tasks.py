"""A queue of workflow steps for remote workers, and what the workers report back.

Two streams and an object store, all file-backed:

``<P>_TASKS`` (work-queue retention)
    A task is stored until one worker acknowledges it, and a worker acknowledges only after it has
    reported the task started, so a task is either waiting here or known to be on a worker: a
    worker that dies before that leaves it here for another (after ``ack_wait``), one that dies after
    is noticed by its missing heartbeats. One durable pull consumer per queue (``workers-<queue>``)
    is shared by the workers of that queue, so each task goes to exactly one of them. A refused task
    is put back (``nak`` with a delay), never dropped. Tasks survive a NATS restart.
``<prefix>_task_files`` (an object store)
    A step's input artifacts on their way to a worker, and its output artifacts on their way back;
    the scheduler deletes them once the step is settled.
``<P>_TASK_REPORTS`` (limits retention, ``report_max_age_seconds``)
    ``started``, ``log``, ``result`` and ``refused`` per node, published with a PubAck. The scheduler
    follows them with a :class:`~eventbus.tail.Tail` (in order, no gaps, across reconnects); a
    scheduler that restarted reads a node's last result directly.

Heartbeats and cancellations are core NATS: a lost heartbeat is made up for by the next one, and a
cancel that finds no worker had nothing to stop.

Everything on these subjects is a CloudEvent, except heartbeats (a JSON object each).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from eventbus.codec import decode
from eventbus.envelope import CloudEvent
from eventbus.errors import BusError, BusUnavailable, InvalidEvent, InvalidSubjectToken
from eventbus.objects import ObjectStore
from eventbus.subjects import decode_token, encode_token
from eventbus.tail import Tail

if TYPE_CHECKING:
    from eventbus.jetstream import JetStreamBus

__all__ = ["TaskDelivery", "TaskQueue", "Undecodable"]

log = logging.getLogger("eventbus.tasks")

_NATS_ERRORS = (nats.errors.Error, OSError, TimeoutError)


@dataclass(slots=True)
class TaskDelivery:
    """One task handed to this worker: the event, which delivery this is, and how to settle it."""

    event: CloudEvent
    attempt: int
    _msg: Msg

    async def ack(self) -> None:
        """Take the task off the queue for good (the server confirms; :class:`BusError` if not)."""
        try:
            await self._msg.ack_sync(timeout=5.0)
        except _NATS_ERRORS as exc:
            raise BusError(f"task not acknowledged: {str(exc) or type(exc).__name__}") from None

    async def refuse(self, delay_seconds: float) -> None:
        """Put the task back for another worker (or this one after ``delay_seconds``)."""
        try:
            await self._msg.nak(delay=delay_seconds)
        except _NATS_ERRORS as exc:  # unacknowledged, it comes back after the ack wait anyway
            log.warning("could not put a task back at once (%s); it returns after the ack wait", exc)


@dataclass(slots=True)
class Undecodable:
    """A message on the task queue that is not a CloudEvent: nobody can run it."""

    reason: str
    subject: str
    _msg: Msg

    async def drop(self) -> None:
        with contextlib.suppress(*_NATS_ERRORS):
            await self._msg.term()


class TaskQueue:
    """The task streams of one bus prefix. Open with :meth:`open` (creates the streams if needed)."""

    def __init__(
        self,
        bus: JetStreamBus,
        *,
        report_max_age_seconds: float = 24 * 3600.0,
        ack_wait_seconds: float = 30.0,
    ) -> None:
        self.bus = bus
        self.subjects = bus.subjects
        self.report_max_age_seconds = report_max_age_seconds
        self.ack_wait_seconds = ack_wait_seconds
        self._pulls: dict[str, JetStreamPull] = {}
        self._files: ObjectStore | None = None

    def __repr__(self) -> str:
        return f"<TaskQueue {self.subjects.tasks_stream} queues={sorted(self._pulls)}>"

    async def open(self) -> Self:
        """Create or update both streams (idempotent)."""
        s = self.subjects
        replicas = self.bus.config.events.replicas
        configs = [
            StreamConfig(
                name=s.tasks_stream, subjects=[s.task("*")], retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE, num_replicas=replicas, duplicate_window=self.bus.config.duplicate_window_seconds,
            ),
            StreamConfig(
                name=s.task_reports_stream, subjects=[s.task_report("*", "*")], storage=StorageType.FILE,
                max_age=self.report_max_age_seconds, num_replicas=replicas, duplicate_window=120.0,
            ),
        ]  # fmt: skip
        for cfg in configs:
            try:
                try:
                    await self.bus.js.stream_info(cfg.name or "")
                except nats.js.errors.NotFoundError:
                    await self.bus.js.add_stream(cfg)
                    log.info("created stream %s for %s", cfg.name, cfg.subjects)
                    continue
                await self.bus.js.update_stream(cfg)
            except nats.js.errors.APIError as exc:
                raise BusError(f"stream {cfg.name}: cannot apply configuration: {exc.description}") from None
            except _NATS_ERRORS as exc:
                raise BusUnavailable(
                    self.bus._safe_url, f"JetStream did not answer: {str(exc) or type(exc).__name__}"
                ) from None
        return self

    # -- the scheduler's side ---------------------------------------------------------------------

    async def submit(self, queue: str, event: CloudEvent) -> int:
        """Queue one task for the workers of ``queue``; its stream sequence. The event id
        de-duplicates: submitting the same id again within the window stores nothing new."""
        ack = await self.bus.publish(event, subject=self.subjects.task(queue))
        return ack.seq

    async def waiting(self, seq: int) -> bool:
        """Whether the task stored at ``seq`` is still waiting (no worker has taken it for good)."""
        try:
            await self.bus.js.get_msg(self.subjects.tasks_stream, seq)
        except nats.js.errors.NotFoundError:
            return False
        except _NATS_ERRORS as exc:
            raise BusError(f"cannot read the task queue: {str(exc) or type(exc).__name__}") from None
        return True

    async def withdraw(self, seq: int) -> bool:
        """Remove a waiting task; False if a worker already took it (or it was never there)."""
        try:
            return bool(await self.bus.js.delete_msg(self.subjects.tasks_stream, seq))
        except nats.js.errors.NotFoundError:
            return False
        except nats.js.errors.APIError as exc:
            if exc.err_code == 10057:  # no message found
                return False
            raise BusError(f"cannot withdraw task {seq}: {exc.description}") from None
        except _NATS_ERRORS as exc:
            raise BusError(f"cannot withdraw task {seq}: {str(exc) or type(exc).__name__}") from None

    async def follow_reports(self) -> Tail:
        """Every report stored from now on, in order (close the tail when done)."""
        return await self.follow_reports_after(None)

    async def follow_reports_after(self, seq: int | None) -> Tail:
        """Every report stored after stream sequence ``seq`` (None: from now on), in order."""
        return await self.bus.tail(
            [self.subjects.task_report("*", "*")],
            stream=self.subjects.task_reports_stream,
            after=seq,
            internal=True,
        )

    async def last_report(self, node: str, kind: str) -> CloudEvent | None:
        """The newest report of ``kind`` about ``node`` still kept, or None."""
        subject = self.subjects.task_report(node, kind)
        try:
            raw = await self.bus.js.get_last_msg(self.subjects.task_reports_stream, subject)
        except nats.js.errors.NotFoundError:
            return None
        except _NATS_ERRORS as exc:
            raise BusError(f"cannot read {subject}: {str(exc) or type(exc).__name__}") from None
        try:
            return decode(raw.data or b"", subject=subject)
        except InvalidEvent as exc:
            log.warning("ignoring an unreadable report on %s: %s", subject, exc)
            return None

    async def reports(self, node: str, kind: str) -> list[CloudEvent]:
        """Every report of ``kind`` about ``node`` still kept, oldest first (one request each)."""
        subject = self.subjects.task_report(node, kind)
        found: list[CloudEvent] = []
        seq = 1
        while True:
            try:
                raw = await self.bus.js.get_msg(
                    self.subjects.task_reports_stream, seq=seq, subject=subject, next=True
                )
            except nats.js.errors.NotFoundError:
                return found
            except _NATS_ERRORS as exc:
                raise BusError(f"cannot read {subject}: {str(exc) or type(exc).__name__}") from None
            try:
                found.append(decode(raw.data or b"", subject=subject))
            except InvalidEvent as exc:
                log.warning("ignoring an unreadable report on %s: %s", subject, exc)
            seq = int(raw.seq or seq) + 1

    async def on_heartbeats(self, callback: Callable[[bytes], Awaitable[None]]) -> Subscription:
        async def deliver(msg: Msg) -> None:
            await callback(msg.data)

        return await self.bus.nc.subscribe(self.subjects.task_worker("*"), cb=deliver)

    async def cancel(self, node: str, payload: bytes) -> None:
        """Ask whichever worker runs ``node``'s step to stop it (best effort; core NATS)."""
        with contextlib.suppress(*_NATS_ERRORS):
            await self.bus.nc.publish(self.subjects.task_cancel(node), payload)

    # -- a worker's side --------------------------------------------------------------------------

    async def take(self, queue: str, batch: int, timeout: float) -> list[TaskDelivery | Undecodable]:
        """Up to ``batch`` tasks of ``queue``, waiting at most ``timeout`` seconds for the first."""
        try:
            pull = self._pulls.get(queue)
            if pull is None:
                pull = self._pulls[queue] = await JetStreamPull.open(self, queue)
            msgs = await pull.sub.fetch(batch, timeout=timeout)
        except nats.errors.TimeoutError:
            return []
        except _NATS_ERRORS as exc:
            raise BusUnavailable(
                self.bus._safe_url, f"cannot take tasks: {str(exc) or type(exc).__name__}"
            ) from None
        taken: list[TaskDelivery | Undecodable] = []
        for msg in msgs:
            try:
                event = decode(msg.data, subject=msg.subject)
            except InvalidEvent as exc:
                taken.append(Undecodable(str(exc), msg.subject, msg))
                continue
            taken.append(TaskDelivery(event, int(msg.metadata.num_delivered or 1), msg))
        return taken

    async def report(self, node: str, kind: str, event: CloudEvent) -> None:
        """Store one report about ``node`` (raises :class:`BusError` if it was not stored)."""
        await self.bus.publish(event, subject=self.subjects.task_report(node, kind))

    async def heartbeat(self, worker: str, payload: bytes) -> None:
        with contextlib.suppress(*_NATS_ERRORS):
            await self.bus.nc.publish(self.subjects.task_worker(worker), payload)

    async def on_cancel(self, callback: Callable[[str, bytes], Awaitable[None]]) -> Subscription:
        """``callback(node, payload)`` for every cancellation."""

        async def deliver(msg: Msg) -> None:
            with contextlib.suppress(InvalidSubjectToken):
                await callback(decode_token(msg.subject.rpartition(".")[2]), msg.data)

        return await self.bus.nc.subscribe(self.subjects.task_cancel("*"), cb=deliver)

    async def files(self) -> ObjectStore:
        """The object store that carries steps' input and output artifacts between the scheduler and
        the workers (``<prefix>_task_files``), created on first use."""
        if self._files is None:
            self._files = await self.bus.object_store(
                f"{self.bus.config.prefix.replace('.', '_')}_task_files"
            )
        return self._files

    async def close(self) -> None:
        for pull in self._pulls.values():
            with contextlib.suppress(*_NATS_ERRORS, nats.errors.ConnectionClosedError):
                await pull.sub.unsubscribe()
        self._pulls.clear()


@dataclass(slots=True)
class JetStreamPull:
    """The durable pull consumer of one queue (shared by every worker of that queue)."""

    sub: nats.js.JetStreamContext.PullSubscription

    @classmethod
    async def open(cls, tasks: TaskQueue, queue: str) -> JetStreamPull:
        s = tasks.subjects
        durable = f"workers-{encode_token(queue)}"
        config = ConsumerConfig(
            durable_name=durable,
            filter_subject=s.task(queue),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=tasks.ack_wait_seconds,
            max_deliver=-1,
            max_ack_pending=100_000,
        )
        try:
            sub = await tasks.bus.js.pull_subscribe(
                s.task(queue), durable=durable, stream=s.tasks_stream, config=config
            )
        except nats.js.errors.APIError as exc:
            raise BusError(f"queue {queue!r}: cannot open consumer {durable}: {exc.description}") from None
        return cls(sub)

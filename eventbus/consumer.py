"""A durable pull consumer: bounded in-flight handlers, heartbeats, backoff, undeliverable parking.

The loop, top to bottom:

1. keep pull requests for up to ``max_in_flight`` messages open at the server (one request per
   refill, answered on our own inbox as messages arrive: no per-message round trip or future, the
   way nats-py's ``fetch`` has);
2. hand each arriving message to the handler; a handler that finishes synchronously is acked at
   once, any other runs in its own task while a shared heartbeat task tells JetStream the message
   is still in progress so a slow handler is not redelivered under it;
3. settle: success -> ack; exception -> nak with the backoff for this delivery; the last
   allowed delivery fails, or the handler raises ``Undeliverable`` -> the message is copied to the undeliverable stream (awaiting its
   PubAck) and only then terminated. A message that cannot be parked is nak'ed, never dropped.

Retry decisions live here and nowhere else: handlers signal failure by raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from eventbus.codec import decode
from eventbus.config import ConsumerOptions
from eventbus.envelope import CloudEvent
from eventbus.errors import InvalidEvent, Undeliverable
from eventbus.subjects import encode_token

if TYPE_CHECKING:
    from eventbus.jetstream import JetStreamBus

__all__ = ["Consumer", "Delivery", "Handler"]

log = logging.getLogger("eventbus.consumer")


@dataclass(frozen=True, slots=True)
class Delivery:
    """Facts about one delivery of a message, handed to the handler with the event."""

    subject: str
    stream_seq: int
    attempt: int  # 1 on first delivery


# A handler returns an awaitable (an ``async def`` does) that settles the message when it finishes,
# or ``None`` when it finished synchronously: then the message is acknowledged at once, with no task
# per message (a sensor filtering out most events pays only for its filter).
Handler = Callable[[CloudEvent, Delivery], Awaitable[None] | None]


class Consumer:
    """One durable pull consumer on one stream. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(
        self,
        bus: JetStreamBus,
        *,
        name: str,
        stream: str,
        subjects: list[str],
        handler: Handler,
        options: ConsumerOptions,
    ) -> None:
        self.bus = bus
        self.name = name
        self.durable = encode_token(name)
        self.stream = stream
        self.subjects = subjects
        self.handler = handler
        self.options = options
        self.handled = 0
        self.failed = 0
        self.parked = 0
        self._running: dict[asyncio.Task[None], tuple[Msg, float]] = {}
        self._slot_free = asyncio.Event()
        self._drained = asyncio.Event()  # no pull request is open
        self._outstanding = 0  # messages requested and not yet received (nor expired)
        self._last_heard = 0.0
        # Refill in batches: fetching whenever a single slot frees up would mean one fetch
        # round trip per message under load.
        self._refill_at = max(1, (options.max_in_flight + 1) // 2)
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"<Consumer {self.durable} in_flight={len(self._running)} handled={self.handled} "
            f"failed={self.failed} parked={self.parked}>"
        )

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        """Create (or update, keeping its position) the durable consumer and start pulling."""
        opts = self.options
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=opts.ack_wait_seconds,
            # Deliveries are counted and capped by us, so a message is parked with its error
            # instead of the server silently ceasing to deliver it.
            max_deliver=-1,
            max_ack_pending=max(opts.max_in_flight * 4, 256),
            deliver_policy=DeliverPolicy.ALL if opts.deliver == "all" else DeliverPolicy.NEW,
            filter_subjects=self.subjects if len(self.subjects) > 1 else None,
            filter_subject=self.subjects[0] if len(self.subjects) == 1 else None,
        )
        js = self.bus.js
        try:
            existing = await js.consumer_info(self.stream, self.durable)
        except nats.js.errors.NotFoundError:
            existing = None
        if existing is not None:
            # An update keeps the consumer's position; JetStream refuses to change where it starts.
            config.deliver_policy = existing.config.deliver_policy
            config.opt_start_seq = existing.config.opt_start_seq
            config.opt_start_time = existing.config.opt_start_time
        await js.add_consumer(self.stream, config)
        prefix = getattr(js, "_prefix", "$JS.API")  # the JetStream API prefix (a domain changes it)
        self._next_subject = f"{prefix}.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}"
        self._inbox = self.bus.nc.new_inbox()
        self._outstanding = 0
        self._drained.set()
        self._sub = await self.bus.nc.subscribe(self._inbox, cb=self._on_message)
        self._stopping = False
        self._loop_task = asyncio.create_task(self._pull_loop(), name=f"consumer-{self.durable}")
        self._heartbeat_task = asyncio.create_task(self._heartbeats(), name=f"heartbeat-{self.durable}")

    def _room(self) -> int:
        """How many more messages to ask for: free handler slots not already requested."""
        return self.options.max_in_flight - self._outstanding - len(self._running)

    async def _pull_loop(self) -> None:
        opts = self.options
        expires = opts.fetch_timeout_seconds
        backoff = 0.05
        while not self._stopping:
            want = self._room()
            if want < self._refill_at:
                self._slot_free.clear()
                try:
                    await asyncio.wait_for(self._slot_free.wait(), expires + 1)
                except TimeoutError:
                    if time.monotonic() - self._last_heard > expires + 1:
                        # Neither messages nor the request's expiry notice came back (a reconnect
                        # lost them): the requests are gone.
                        self._settle_outstanding(self._outstanding)
                continue
            request = json.dumps({"batch": want, "expires": int(expires * 1e9)}).encode()
            try:
                await self.bus.nc.publish(self._next_subject, request, reply=self._inbox)
            except (nats.errors.Error, OSError) as exc:
                if self._stopping:
                    break
                log.warning("consumer %s: pull request failed (%s); retrying in %.2fs", self.durable, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            self._outstanding += want
            self._drained.clear()
            self._last_heard = time.monotonic()

    def _settle_outstanding(self, count: int) -> None:
        self._outstanding = max(0, self._outstanding - count)
        if self._outstanding == 0:
            self._drained.set()
        if self._room() >= self._refill_at:
            self._slot_free.set()

    async def _on_message(self, msg: Msg) -> None:
        self._last_heard = time.monotonic()
        status = msg.headers.get("Status") if msg.headers and not msg.data else None
        if status is not None:
            self._on_status(status, msg)
            return
        self._settle_outstanding(1)
        if self._stopping:
            # Arrived for a request made before stop(): hand it straight back for redelivery.
            with contextlib.suppress(nats.errors.Error, OSError):
                await msg.nak()
            return
        work = self._start(msg)
        if work is None:
            with contextlib.suppress(nats.errors.Error, OSError):
                await msg.ack()
            return
        task = asyncio.create_task(work)
        self._running[task] = (msg, time.monotonic())
        task.add_done_callback(self._done)

    def _on_status(self, status: str, msg: Msg) -> None:
        headers = msg.headers or {}
        if status == "100":  # idle heartbeat
            return
        try:
            unfilled = int(headers.get("Nats-Pending-Messages", ""))
        except ValueError:
            unfilled = None
        if status not in ("404", "408"):
            log.warning("consumer %s: pull request ended: %s %s", self.durable, status, headers.get("Description", ""))
        # 408: a request expired with this many messages unfilled. Without the count (some 409s),
        # assume every request is over; the loop asks again.
        self._settle_outstanding(self._outstanding if unfilled is None else unfilled)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        if self._room() >= self._refill_at:
            self._slot_free.set()

    async def _heartbeats(self) -> None:
        interval = self.options.ack_wait_seconds / 3
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - interval
            for msg, started in list(self._running.values()):
                if started < cutoff:
                    with contextlib.suppress(nats.errors.Error, OSError):
                        await msg.in_progress()

    def _start(self, msg: Msg) -> Coroutine[Any, Any, None] | None:
        """Decode and hand the message to the handler; ``None`` when that finished it already
        (ack it), else the coroutine that settles it."""
        meta = msg.metadata  # parsed from the reply subject on every access: read it once
        attempt = meta.num_delivered
        try:
            event = decode(msg.data, subject=msg.subject)
        except InvalidEvent as exc:
            return self._park(msg, attempt, str(exc))
        if attempt > self.options.max_deliveries:
            # Delivered more often than allowed without a verdict: the handling process died.
            return self._park(msg, attempt, "delivered more times than max_deliveries without being settled")
        try:
            pending = self.handler(event, Delivery(msg.subject, meta.sequence.stream, attempt))
        except Exception as exc:  # noqa: BLE001 - any handler failure is a retry decision
            return self._failed(msg, event, attempt, exc)
        if pending is None:
            self.handled += 1
            return None
        return self._settle(msg, event, attempt, pending)

    async def _settle(self, msg: Msg, event: CloudEvent, attempt: int, pending: Awaitable[None]) -> None:
        try:
            await pending
        except asyncio.CancelledError:
            # Shutdown cut this handler short: hand the message back for immediate redelivery.
            with contextlib.suppress(nats.errors.Error, OSError):
                await msg.nak()
            raise
        except Exception as exc:  # noqa: BLE001 - any handler failure is a retry decision
            await self._failed(msg, event, attempt, exc)
            return
        self.handled += 1
        with contextlib.suppress(nats.errors.Error, OSError):
            await msg.ack()

    async def _failed(self, msg: Msg, event: CloudEvent, attempt: int, exc: Exception) -> None:
        self.failed += 1
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, Undeliverable):
            await self._park(msg, attempt, str(exc))
        elif attempt >= self.options.max_deliveries:
            await self._park(msg, attempt, reason)
        else:
            delay = self._backoff(attempt)
            log.info("↻ %s event=%s try=%d failed (%s); retrying in %.2fs", self.durable, event.id, attempt, reason, delay)
            with contextlib.suppress(nats.errors.Error, OSError):
                await msg.nak(delay=delay)

    def _backoff(self, attempt: int) -> float:
        steps = self.options.backoff_seconds or (0.0,)
        return steps[min(attempt - 1, len(steps) - 1)]

    async def _park(self, msg: Msg, attempt: int, reason: str) -> None:
        subject = self.bus.subjects.undeliverable(self.name)
        seq = msg.metadata.sequence.stream
        headers = {
            # Same id for the same original message: parking twice (after a crash) stores it once.
            "Nats-Msg-Id": f"{self.stream}:{seq}:{self.durable}",
            "Eventflow-Original-Subject": msg.subject,
            "Eventflow-Original-Stream": self.stream,
            "Eventflow-Original-Sequence": str(seq),
            "Eventflow-Consumer": self.name,
            "Eventflow-Deliveries": str(attempt),
            "Eventflow-Error": reason[:1000],
        }
        try:
            await self.bus.js.publish(subject, msg.data, headers=headers)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            log.error("consumer %s: cannot park message seq=%d (%s); will retry it", self.durable, seq, exc)
            with contextlib.suppress(nats.errors.Error, OSError):
                await msg.nak(delay=self._backoff(attempt))
            return
        self.parked += 1
        log.error("! %s seq=%d undeliverable after %d deliveries: %s", self.durable, seq, attempt, reason)
        with contextlib.suppress(nats.errors.Error, OSError):
            await msg.term()

    async def stop(self, *, grace_seconds: float | None = None) -> None:
        """Stop fetching, let running handlers finish (bounded), nak the rest, flush acks."""
        if self._loop_task is None:
            return
        self._stopping = True
        self._slot_free.set()
        grace = self.options.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await asyncio.wait_for(asyncio.shield(self._loop_task), self.options.fetch_timeout_seconds + 1)
            except TimeoutError:
                self._loop_task.cancel()
        # Open pull requests end by their own expiry; messages the server sends them meanwhile are
        # nak'ed on arrival. Unsubscribing first would strand those until their ack_wait expires.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), self.options.fetch_timeout_seconds + 0.5)
        if self._running:
            _, late = await asyncio.wait(list(self._running), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning("consumer %s: %d handler(s) cut short at shutdown; returned for redelivery", self.durable, len(late))
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
        with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
            await self.bus.nc.flush(timeout=2)
        with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
            await self._sub.unsubscribe()
        self._loop_task = None
        self.bus._forget(self)

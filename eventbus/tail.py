"""Tail a stream: every message after a position, in stream order, then live; no gaps, no duplicates.

A :class:`Tail` is what a watcher needs (an HTTP client following workflow lifecycle events, resuming
after the last sequence it saw): an *ephemeral* pull consumer that acknowledges nothing, starts at a
stream sequence (or at the next new message) and is deleted when the tail closes.

How it stays ordered and complete:

* one pull request is open at a time, for at most ``batch`` messages, answered on an inbox of this
  tail's own; the server sends idle heartbeats while it waits, so a request lost to a reconnect is
  noticed within two heartbeats;
* every message carries its consumer sequence: a jump (a message lost on the way) or a silent
  request makes the tail *reset*: a new consumer starting right after the last stream sequence handed
  out, on a new inbox (late messages for the old one are ignored), and the old consumer is deleted;
* a message at or below the last sequence handed out is dropped, so a reset never repeats one.

Memory is bounded by ``batch``: nothing is requested while the reader has not taken what arrived, so a
slow reader slows the pull instead of filling memory (and if it stalls past ``inactive_seconds`` the
server drops the consumer, which the next read replaces).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from eventbus.codec import decode
from eventbus.envelope import CloudEvent
from eventbus.errors import BusError, InvalidEvent

if TYPE_CHECKING:
    from eventbus.jetstream import JetStreamBus

__all__ = ["StreamEvent", "Tail", "TailClosed"]

log = logging.getLogger("eventbus.tail")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event read from a stream; ``seq`` is its stream sequence, the position to resume after."""

    seq: int
    subject: str
    event: CloudEvent


class TailClosed(BusError):
    """Raised by :meth:`Tail.next` once the tail has been closed."""

    def __init__(self) -> None:
        super().__init__("the tail is closed")


class Tail:
    """An ordered read of ``subjects`` in ``stream`` from after ``after`` (``None``: new messages only).

    Open with :meth:`JetStreamBus.tail`; read with :meth:`next` or ``async for``; always :meth:`close`
    it (or use ``async with``), which deletes its consumer at once.
    """

    def __init__(
        self,
        bus: JetStreamBus,
        *,
        stream: str,
        subjects: Sequence[str],
        after: int | None,
        batch: int = 64,
        heartbeat_seconds: float = 2.0,
        inactive_seconds: float = 30.0,
    ) -> None:
        if not subjects:
            raise ValueError("a tail needs at least one subject")
        self.bus = bus
        self.stream = stream
        self.subjects = list(subjects)
        self.batch = batch
        self.heartbeat_seconds = heartbeat_seconds
        self.inactive_seconds = inactive_seconds
        self.last_seq = after  # the last stream sequence handed out (None: none yet, new-only start)
        self.first_seq = 0  # the stream's first and last sequences when the tail opened
        self.stream_last_seq = 0
        self.resets = 0
        self._fruitless = 0  # resets in a row with no message or heartbeat since
        self.consumer_name: str | None = None
        self._buffer: deque[StreamEvent] = deque()
        self._arrived = asyncio.Event()
        self._generation = 0  # which consumer (and inbox) is current
        self._inbox = ""
        self._sub: Subscription | None = None
        self._outstanding = 0  # messages requested by the open pull request and not yet received
        self._expected_dseq = 1
        self._last_heard = 0.0
        self._broken = False  # a gap or a lost request: reset before the next pull
        self._closed = False

    def __repr__(self) -> str:
        return f"<Tail {self.stream} {self.subjects} last_seq={self.last_seq} resets={self.resets}>"

    @property
    def closed(self) -> bool:
        return self._closed

    # -- opening and closing ------------------------------------------------------------------

    async def open(self) -> Tail:
        """Read where the stream stands and create the consumer; messages stored from now on are seen."""
        try:
            try:
                info = await self.bus.js.stream_info(self.stream)
                self.first_seq, self.stream_last_seq = info.state.first_seq, info.state.last_seq
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                raise BusError(f"cannot tail stream {self.stream}: {str(exc) or type(exc).__name__}") from None
            await self._create_consumer()
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        """Stop reading and delete the consumer; idempotent. A caller that is being cancelled must shield
        this call, or the consumer is left for the server to drop after ``inactive_seconds``."""
        if self._closed:
            return
        self._closed = True
        self._arrived.set()
        self.bus._forget_tail(self)
        sub, self._sub = self._sub, None
        name, self.consumer_name = self.consumer_name, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error, OSError):
                await sub.unsubscribe()
        if name is not None:
            await self._delete_consumer(name)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _create_consumer(self) -> None:
        after = self.last_seq
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.NEW if after is None else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=None if after is None else after + 1,
            filter_subject=self.subjects[0] if len(self.subjects) == 1 else None,
            filter_subjects=self.subjects if len(self.subjects) > 1 else None,
            inactive_threshold=self.inactive_seconds,
            mem_storage=True,
            num_replicas=1,
            max_waiting=1,
        )
        # Each consumer gets an inbox of its own: late messages for a replaced one find no listener.
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error, OSError):
                await self._sub.unsubscribe()
            self._sub = None
        try:
            self._generation += 1
            generation = self._generation

            async def on_message(msg: Msg) -> None:
                self._on_message(generation, msg)

            self._inbox = self.bus.nc.new_inbox()
            self._sub = await self.bus.nc.subscribe(self._inbox, cb=on_message)
            info = await self.bus.js.add_consumer(self.stream, config)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise BusError(f"cannot tail stream {self.stream}: {str(exc) or type(exc).__name__}") from None
        self.consumer_name = info.name
        if after is None:
            # Pin the start: a reset later must resume after what was handed out, and "new" is relative.
            self.last_seq = info.delivered.stream_seq if info.delivered else self.stream_last_seq
        self._outstanding = 0
        self._expected_dseq = 1
        self._broken = False
        prefix = getattr(self.bus.js, "_prefix", "$JS.API")
        self._next_subject = f"{prefix}.CONSUMER.MSG.NEXT.{self.stream}.{self.consumer_name}"

    async def _delete_consumer(self, name: str) -> None:
        with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError):
            await self.bus.js.delete_consumer(self.stream, name)

    async def _reset(self) -> None:
        """Replace the consumer with one that starts right after the last sequence handed out."""
        if self._fruitless:  # the last replacement heard nothing back either: do not hammer the server
            await asyncio.sleep(min(0.05 * 2**self._fruitless, 2.0))
        self._fruitless += 1
        self.resets += 1
        old = self.consumer_name
        log.info("tail on %s: resuming after seq %s with a new consumer", self.stream, self.last_seq)
        await self._create_consumer()
        if old is not None:
            await self._delete_consumer(old)

    # -- reading --------------------------------------------------------------------------------

    async def next(self, timeout: float | None = None) -> StreamEvent | None:
        """The next event, or ``None`` when ``timeout`` seconds pass without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._closed:
                raise TailClosed()
            if self._buffer:
                return self._buffer.popleft()
            if self._broken:
                await self._reset()
            if self._outstanding == 0:
                await self._pull()
            silence = 2 * self.heartbeat_seconds + 1
            wait = silence if deadline is None else min(silence, max(0.0, deadline - time.monotonic()))
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), wait)
            if not self._buffer and self._outstanding and time.monotonic() - self._last_heard > silence:
                self._broken = True  # neither messages nor heartbeats: the request (or consumer) is gone
            if not self._buffer and deadline is not None and time.monotonic() >= deadline:
                return None

    async def _pull(self) -> None:
        expires = max(self.heartbeat_seconds * 10, 30.0)
        request = {"batch": self.batch, "expires": int(expires * 1e9), "idle_heartbeat": int(self.heartbeat_seconds * 1e9)}
        try:
            await self.bus.nc.publish(self._next_subject, json.dumps(request).encode(), reply=self._inbox)
        except (nats.errors.Error, OSError) as exc:
            log.debug("tail on %s: pull request failed (%s)", self.stream, exc)
            self._broken = True
            return
        self._outstanding = self.batch
        self._last_heard = time.monotonic()

    def _on_message(self, generation: int, msg: Msg) -> None:
        if self._closed or generation != self._generation:
            return  # for a consumer this tail has replaced
        self._last_heard = time.monotonic()
        status = msg.headers.get("Status") if msg.headers and not msg.data else None
        if status in (None, "100"):
            self._fruitless = 0
        if status is not None:
            if status != "100":  # 408 expired, 409 consumer deleted or limits: this request is over
                self._outstanding = 0
                if status not in ("404", "408"):
                    self._broken = True
                self._arrived.set()
            return
        self._outstanding = max(0, self._outstanding - 1)
        meta = msg.metadata
        seq, dseq = meta.sequence.stream, meta.sequence.consumer
        if dseq != self._expected_dseq:
            self._broken = True  # a message went missing on the way: start again after the last one
            self._arrived.set()
            return
        self._expected_dseq = dseq + 1
        if self.last_seq is not None and seq <= self.last_seq:
            return
        self.last_seq = seq
        try:
            event = decode(msg.data, subject=msg.subject)
        except InvalidEvent as exc:
            log.warning("tail on %s: skipping seq %d: %s", self.stream, seq, exc)
        else:
            self._buffer.append(StreamEvent(seq, msg.subject, event))
        if self._outstanding == 0 or len(self._buffer) == 1:
            self._arrived.set()

    def __aiter__(self) -> Tail:
        return self

    async def __anext__(self) -> StreamEvent:
        try:
            event = await self.next()
        except TailClosed:
            raise StopAsyncIteration from None
        assert event is not None  # no timeout given
        return event

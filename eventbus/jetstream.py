"""The JetStream event bus: connection, streams, publishing, consumers and KV buckets.

This is the only module (with ``consumer.py`` and ``kv.py``) that holds a NATS connection.
Publishing always awaits the stream's PubAck: an event is either stored or the caller gets a
:class:`~eventbus.errors.BusError`, never a silent drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, StorageType, StreamConfig

from eventbus.codec import encode, headers_for
from eventbus.config import BusConfig, ConsumerOptions, StreamLimits
from eventbus.consumer import Consumer, Handler
from eventbus.envelope import CloudEvent
from eventbus.errors import BusError, BusUnavailable, PublishRejected
from eventbus.kv import KeyValue
from eventbus.objects import ObjectStore
from eventbus.subjects import Subjects, encode_token
from eventbus.tail import Tail

__all__ = ["JetStreamBus", "PublishAck"]

log = logging.getLogger("eventbus")


@dataclass(frozen=True, slots=True)
class PublishAck:
    """Where JetStream stored an event; ``duplicate`` means it was already there (same id)."""

    stream: str
    seq: int
    duplicate: bool


def _limits_config(name: str, subjects: list[str], limits: StreamLimits, dup_window: float) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=subjects,
        storage=StorageType.FILE,
        max_age=limits.max_age_seconds,
        max_bytes=limits.max_bytes,
        max_msgs=limits.max_msgs,
        num_replicas=limits.replicas,
        discard=DiscardPolicy.NEW if limits.discard == "new" else DiscardPolicy.OLD,
        duplicate_window=dup_window,
    )


class JetStreamBus:
    """A connected bus. Create with :meth:`connect`; close with :meth:`close`."""

    def __init__(self, config: BusConfig) -> None:
        self.config = config
        self.subjects = Subjects(config.prefix)
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._consumers: list[Consumer] = []
        self._tails: set[Tail] = set()
        self._internal_tails: set[Tail] = set()
        self.published = 0
        self.rejected = 0
        self._closing = False
        self._acks: dict[str, asyncio.Future[Msg]] = {}  # publish token -> its PubAck
        self._ack_seq = itertools.count()
        self._ack_prefix = ""

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<JetStreamBus {state} prefix={self.config.prefix!r} published={self.published} rejected={self.rejected}>"

    # -- connection -------------------------------------------------------------------------

    @classmethod
    async def connect(cls, config: BusConfig, *, ensure_streams: bool = True) -> JetStreamBus:
        """Connect (retrying with backoff up to ``connect_timeout_seconds``) and lay out streams."""
        bus = cls(config)
        await bus._connect()
        if ensure_streams:
            await bus.ensure_streams()
        return bus

    async def _connect(self) -> None:
        deadline = time.monotonic() + self.config.connect_timeout_seconds
        delay = 0.05
        last_error = "no attempt made"
        while True:
            try:
                self._nc = await nats.connect(
                    servers=self.config.url.split(","),
                    user_credentials=self.config.creds_file,
                    connect_timeout=2,
                    allow_reconnect=True,
                    # nats-py retries a failing *first* connect forever when this is -1; we
                    # bound the first connect ourselves and switch to "forever" once connected.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
                self._nc.options["max_reconnect_attempts"] = -1
                break
            except (OSError, nats.errors.Error, TimeoutError) as exc:
                last_error = str(exc) or type(exc).__name__
            if time.monotonic() + delay > deadline:
                raise BusUnavailable(
                    self._safe_url, f"gave up after {self.config.connect_timeout_seconds:.0f}s: {last_error}"
                )
            log.warning("NATS at %s not reachable (%s); retrying in %.2fs", self._safe_url, last_error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        self._js = self._nc.jetstream(timeout=self.config.publish_timeout_seconds)
        # PubAcks come back on one inbox of ours, matched by a counter: cheaper than nats-py's request,
        # which draws a random token and wraps every wait in wait_for.
        self._ack_prefix = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._ack_prefix}.*", cb=self._on_ack)
        log.info("connected to NATS at %s", self._safe_url)

    async def _on_ack(self, msg: Msg) -> None:
        future = self._acks.pop(msg.subject.rpartition(".")[2], None)
        if future is None or future.done():
            return  # answered after its deadline
        if msg.headers and msg.headers.get("Status") == "503" and not msg.data:
            future.set_exception(nats.errors.NoRespondersError())
        else:
            future.set_result(msg)

    def _ack_expired(self, token: str) -> None:
        future = self._acks.pop(token, None)
        if future is not None and not future.done():
            future.set_exception(TimeoutError())

    @property
    def _safe_url(self) -> str:
        # Credentials in a URL must never reach a log line or an error message.
        out = []
        for part in self.config.url.split(","):
            scheme, _, rest = part.partition("://")
            out.append(f"{scheme}://***@{rest.split('@', 1)[1]}" if "@" in rest else part)
        return ",".join(out)

    async def _on_error(self, exc: Exception) -> None:
        if self._nc is None:
            return  # first connect: its retry loop logs one line per attempt instead
        log.warning("NATS client error: %s", exc or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS at %s", self._safe_url)

    @property
    def is_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise BusUnavailable(self._safe_url, "not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BusUnavailable(self._safe_url, "not connected")
        return self._js

    async def close(self, *, grace_seconds: float | None = None) -> None:
        """Stop consumers (finishing in-flight handlers), flush pending acks, then disconnect."""
        self._closing = True
        for tail in list(self._tails):
            await tail.close()
        for consumer in list(self._consumers):
            await consumer.stop(grace_seconds=grace_seconds)
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                await self._nc.drain()
            if not self._nc.is_closed:
                await self._nc.close()

    # -- streams ----------------------------------------------------------------------------

    def stream_configs(self) -> list[StreamConfig]:
        s, c = self.subjects, self.config
        return [
            _limits_config(s.events_stream, [s.all_events], c.events, c.duplicate_window_seconds),
            _limits_config(s.workflows_stream, [s.all_workflows], c.workflows, c.duplicate_window_seconds),
            _limits_config(
                s.undeliverable_stream, [s.all_undeliverable], c.undeliverable, c.duplicate_window_seconds
            ),
        ]

    async def ensure_streams(self) -> None:
        """Create or update every stream; safe to call at every start (idempotent)."""
        jsm = self.js
        for cfg in self.stream_configs():
            try:
                await jsm.stream_info(cfg.name or "")
            except nats.js.errors.NotFoundError:
                await jsm.add_stream(cfg)
                log.info("created stream %s for %s", cfg.name, cfg.subjects)
                continue
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
                raise BusUnavailable(
                    self._safe_url, f"JetStream did not answer ({type(exc).__name__}); is it enabled (-js)?"
                ) from None
            try:
                await jsm.update_stream(cfg)
            except nats.js.errors.APIError as exc:
                raise BusError(f"stream {cfg.name}: cannot apply configuration: {exc.description}") from None

    async def missing_streams(self) -> list[str]:
        """Names of streams that should exist but do not (for readiness checks)."""
        missing = []
        for cfg in self.stream_configs():
            try:
                await self.js.stream_info(cfg.name or "")
            except nats.js.errors.NotFoundError:
                missing.append(cfg.name or "")
        return missing

    # -- publishing -------------------------------------------------------------------------

    def event_subject(self, event: CloudEvent) -> str:
        """The subject an event belongs on, from its namespace/eventsource/eventname extensions."""
        return self.subjects.event(event.namespace, event.eventsource or "", event.eventname or "")

    async def publish(self, event: CloudEvent, *, subject: str | None = None) -> PublishAck:
        """Store one event and wait for JetStream's acknowledgement."""
        subject = subject or self.event_subject(event)
        # A plain publish with our reply subject, its PubAck read here: much cheaper than nats-py's
        # js.publish (API objects per ack) and than nc.request, with the same answer (the stream's ack or
        # its refusal; no stream: the server's no-responders status).
        token = str(next(self._ack_seq))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._acks[token] = future
        timer = loop.call_later(self.config.publish_timeout_seconds, self._ack_expired, token)
        try:
            await self.nc.publish(
                subject, encode(event), reply=f"{self._ack_prefix}.{token}", headers=headers_for(event)
            )
            reply = await future
            ack = json.loads(reply.data)
        except BaseException as exc:
            raise self._publish_error(subject, exc) from None
        finally:
            timer.cancel()
            self._acks.pop(token, None)
        error = ack.get("error") if isinstance(ack, dict) else {"description": "unexpected reply"}
        if error is not None:
            self.rejected += 1
            raise PublishRejected(subject, str(error.get("description") or error), code=error.get("err_code"))
        self.published += 1
        return PublishAck(str(ack["stream"]), int(ack["seq"]), bool(ack.get("duplicate")))

    async def publish_many(
        self, events: Iterable[CloudEvent | tuple[str, CloudEvent]]
    ) -> list[PublishAck | BusError]:
        """Pipeline many publishes and wait for all acks; one result per event, in order.

        Each result is either the PubAck or the error for that event, so a caller can report
        exactly which events were not stored.
        """
        js = self.js
        futures: list[asyncio.Future[Any] | BusError] = []
        subjects: list[str] = []
        try:
            # One deadline for the whole batch: a per-message wait_for would cost a task each,
            # and without any deadline a dead server would stall us on the in-flight cap forever.
            async with asyncio.timeout(self.config.publish_timeout_seconds):
                for item in events:
                    subject, event = item if isinstance(item, tuple) else (self.event_subject(item), item)
                    subjects.append(subject)
                    try:
                        futures.append(
                            await js.publish_async(subject, encode(event), headers=headers_for(event))
                        )
                    except (nats.errors.Error, OSError) as exc:
                        futures.append(self._publish_error(subject, exc))
        except TimeoutError:
            stalled = self._publish_error(subjects[-1] if subjects else "", TimeoutError())
            futures.extend([stalled] * (len(subjects) - len(futures)))
            for item in events:  # the rest of an iterator was never attempted
                subjects.append(item[0] if isinstance(item, tuple) else self.event_subject(item))
                futures.append(stalled)
        pending = [f for f in futures if isinstance(f, asyncio.Future)]
        if pending:
            await asyncio.wait(pending, timeout=self.config.publish_timeout_seconds)
        results: list[PublishAck | BusError] = []
        for subject, fut in zip(subjects, futures, strict=True):
            if isinstance(fut, BusError):
                results.append(fut)
            elif not fut.done():
                fut.cancel()
                results.append(self._publish_error(subject, TimeoutError()))
            elif fut.exception() is not None:
                results.append(self._publish_error(subject, fut.exception()))  # type: ignore[arg-type]
            else:
                ack = fut.result()
                self.published += 1
                results.append(PublishAck(ack.stream, ack.seq, bool(ack.duplicate)))
        return results

    def _publish_error(self, subject: str, exc: BaseException) -> BusError:
        if isinstance(exc, asyncio.CancelledError):
            raise exc
        self.rejected += 1
        if isinstance(exc, (nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError)):
            return PublishRejected(subject, "no stream stores this subject (streams not created?)")
        if isinstance(exc, nats.js.errors.APIError):
            return PublishRejected(subject, exc.description or str(exc), code=exc.err_code)
        if isinstance(exc, (TimeoutError, nats.errors.TimeoutError)):
            return BusUnavailable(
                self._safe_url,
                f"no acknowledgement for {subject!r} within {self.config.publish_timeout_seconds:.1f}s",
            )
        if isinstance(exc, nats.js.errors.TooManyStalledMsgsError):
            return BusUnavailable(self._safe_url, "too many unacknowledged publishes in flight")
        if isinstance(exc, (nats.errors.Error, OSError)):
            return BusUnavailable(self._safe_url, str(exc) or type(exc).__name__)
        raise exc

    # -- consumers and KV -------------------------------------------------------------------

    def consumer(
        self,
        name: str,
        handler: Handler,
        *,
        subjects: Sequence[str] | None = None,
        stream: str | None = None,
        options: ConsumerOptions | None = None,
    ) -> Consumer:
        """A durable pull consumer (not yet started) delivering CloudEvents to ``handler``."""
        consumer = Consumer(
            self,
            name=name,
            stream=stream or self.subjects.events_stream,
            subjects=list(subjects or [self.subjects.all_events]),
            handler=handler,
            options=options or ConsumerOptions(),
        )
        self._consumers.append(consumer)
        return consumer

    async def delete_consumer(self, name: str, *, stream: str | None = None) -> bool:
        """Delete the durable consumer ``name`` (as given to :meth:`consumer`); False if absent."""
        try:
            await self.js.delete_consumer(stream or self.subjects.events_stream, encode_token(name))
        except nats.js.errors.NotFoundError:
            return False
        return True

    def _forget(self, consumer: Consumer) -> None:
        with contextlib.suppress(ValueError):
            self._consumers.remove(consumer)

    async def tail(
        self,
        subjects: Sequence[str],
        *,
        stream: str | None = None,
        after: int | None = None,
        batch: int = 64,
        heartbeat_seconds: float = 2.0,
        internal: bool = False,
    ) -> Tail:
        """Open a :class:`~eventbus.tail.Tail`: the events on ``subjects`` stored after stream sequence
        ``after`` (``None``: from now on), in order, then live. Close it when done. ``internal``: one
        the server keeps for itself, not counted in :attr:`open_tails`."""
        tail = Tail(
            self,
            stream=stream or self.subjects.events_stream,
            subjects=subjects,
            after=after,
            batch=batch,
            heartbeat_seconds=heartbeat_seconds,
        )
        self._tails.add(tail)
        if internal:
            self._internal_tails.add(tail)
        return await tail.open()  # a tail that fails to open closes (and forgets) itself

    @property
    def open_tails(self) -> int:
        """How many tails are open for readers (each holds one ephemeral consumer on the server);
        the server's own (``internal``) are not counted."""
        return len(self._tails - self._internal_tails)

    def _forget_tail(self, tail: Tail) -> None:
        self._tails.discard(tail)
        self._internal_tails.discard(tail)

    async def kv(self, bucket: str, *, history: int = 1, ttl_seconds: float | None = None) -> KeyValue:
        """Open (creating if needed) a KV bucket scoped to this bus prefix."""
        name = f"{self.config.prefix.replace('.', '_')}_{bucket}"
        try:
            store = await self.js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            store = await self.js.create_key_value(
                KeyValueConfig(
                    bucket=name,
                    history=history,
                    ttl=ttl_seconds,
                    replicas=self.config.events.replicas,
                    storage=StorageType.FILE,
                )
            )
        return KeyValue(name, store)

    async def object_store(self, bucket: str) -> ObjectStore:
        """Open (creating if needed) the object store ``bucket``; idempotent.

        Unlike :meth:`kv`, the bucket name is used as is, not scoped to the bus prefix: an
        operator names the bucket in configuration and finds it under that name (``nats object ls``).
        """
        replicas = self.config.events.replicas
        return await ObjectStore.open(self.js, bucket, url=self._safe_url, replicas=replicas)

"""``nats``: events from a subject on an external NATS server (Argo's ``NATSEventsSource``).

Named ``nats_subject`` so the module is never mistaken for the ``nats`` client package; the YAML key
is ``nats``. Two ways to consume:

- core NATS (Argo's only way): ``subject``, optionally as a member of the queue group ``queue`` (each
  message then reaches one member). Core NATS keeps nothing: messages published while the connection
  is down are missed, and one the bus cannot store is logged and counted (``rejected.bus``), so
  delivery is **at most once**.
- ``jetstream: {durable, stream?}`` (eventflow's addition): a durable JetStream pull consumer on
  ``subject`` (created when missing, explicit acks; ``stream`` defaults to the stream that stores the
  subject). Each message is acked only after the bus stored its event; one the bus cannot store is
  nacked with a delay and redelivered, so delivery is **at least once**. The event id is
  ``<stream>:<stream sequence>``, so a redelivery is stored once (within the bus's duplicate window).
  A durable created here starts at the stream's first message (JetStream's default); one deleted while
  the source runs is noticed within ``CONSUMER_CHECK_SECONDS`` and created again. Every eventflow
  instance reading the same durable shares its messages, hence ``queue`` is not accepted with it.

Event data is Argo's ``{subject, body, header, metadata}`` (``header``: name -> list of values). Body:
``jsonBody: true`` embeds the parsed JSON (not JSON -> text marked ``bodyEncoding: "text"``); otherwise
UTF-8 text, or base64 with ``bodyEncoding: "base64"`` (Argo always base64-encodes without jsonBody).

Auth: ``auth.token`` or ``auth.basic`` (secrets); ``nkey``, ``credential`` and ``tls`` are refused with
a message. A lost or refused connection is retried with a capped backoff (0.5 s doubling to 10 s; Argo's
``connectionBackoff`` is accepted and not used), and the subscription is made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any, ClassVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eventbus import BusError
from sources.base import EmitEvent, Emitted, EventRef, SourceContext, register
from sources._upstream import decode_body, describe, reject_filter, reject_tls
from sources.redis import Backoff, Listener
from sources.secrets import SecretRef

__all__ = ["NatsConfig", "NatsSource"]

log = logging.getLogger("sources.nats")

_POLL_SECONDS = 1.0
_FETCH_BATCH = 10
CONSUMER_CHECK_SECONDS = 30.0  # while idle, how often a JetStream durable is checked to still exist
_TOKEN = re.compile(r"^[^\s]+$")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # a JetStream durable or stream name


class _BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    username: SecretRef
    password: SecretRef


class NatsAuth(BaseModel):
    """Argo's ``auth``: one of ``basic`` or ``token`` (``nkey`` and ``credential`` are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    basic: _BasicAuth | None = None
    token: SecretRef | None = None
    nkey: SecretRef | None = None
    credential: SecretRef | None = None

    @model_validator(mode="after")
    def _one(self) -> NatsAuth:
        for name in ("nkey", "credential"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: {name} authentication is not supported; use token or basic")
        if (self.basic is None) == (self.token is None):
            raise ValueError("give one of basic, token")
        return self


class JetStreamOptions(BaseModel):
    """Consume through a durable JetStream consumer (at least once) instead of core NATS."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    durable: str
    stream: str | None = None

    @field_validator("durable", "stream")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"must be letters, digits, '-' or '_', got {value!r}")
        return value


class NatsConfig(BaseModel):
    """One entry of ``spec.nats`` (Argo's NATSEventsSource, plus ``jetstream``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    url: str
    subject: str
    queue: str | None = None
    json_body: bool = Field(default=False, alias="jsonBody")
    metadata: dict[str, str] | None = None
    auth: NatsAuth | None = None
    jetstream: JetStreamOptions | None = None
    connection_backoff: dict[str, Any] | None = Field(
        default=None, alias="connectionBackoff"
    )  # accepted, not used
    tls: dict[str, Any] | None = None
    filter: dict[str, Any] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        for part in value.split(","):
            scheme, sep, rest = part.strip().partition("://")
            if not sep or scheme not in ("nats", "tls", "ws", "wss") or not rest:
                raise ValueError(f"{part!r} is not a NATS URL (nats://host:4222)")
        return value

    @field_validator("subject", "queue")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not _TOKEN.match(value):
            raise ValueError(f"must be non-empty without spaces, got {value!r}")
        return value

    @model_validator(mode="after")
    def _unsupported(self) -> NatsConfig:
        reject_tls(self.tls, "NATS")
        reject_filter(self.filter)
        if self.jetstream is not None and self.queue is not None:
            raise ValueError(
                "queue: not used with jetstream; instances reading the same durable already share its messages"
            )
        return self


@register
class NatsSource:
    key: ClassVar[str] = "nats"
    Config: ClassVar[type[BaseModel]] = NatsConfig

    def __init__(self, ref: EventRef, config: NatsConfig, context: SourceContext) -> None:
        self.ref = ref
        self.config = config
        self.context = context
        self.stats = context.stats
        self.name = f"{ref.namespace}/{ref.source} {ref.event_name}"
        self.listener = Listener(f"nats {self.name}")
        self.subscribed = False
        self._emit: EmitEvent | None = None
        self._user: str | None = None
        self._password: str | None = None
        self._token: str | None = None

    def __repr__(self) -> str:
        how = (
            f"durable={self.config.jetstream.durable}"
            if self.config.jetstream
            else f"queue={self.config.queue}"
        )
        return (f"<NatsSource {self.name} {_safe_url(self.config.url)} {self.config.subject} {how} subscribed={self.subscribed} "
                f"received={self.stats.received} published={self.stats.published}>")  # fmt: skip

    async def start(self, emit: EmitEvent) -> None:
        auth, secrets, ns = self.config.auth, self.context.secrets, self.ref.namespace
        if auth is not None and auth.basic is not None:
            self._user, self._password = (
                secrets.read(auth.basic.username, ns),
                secrets.read(auth.basic.password, ns),
            )
        elif auth is not None and auth.token is not None:
            self._token = secrets.read(auth.token, ns)
        self._emit = emit
        self.listener.start(self._run)
        await self.listener.wait_first_attempt()

    async def stop(self) -> None:
        await self.listener.stop()
        self.subscribed = False
        log.info(
            "%s: stopped (received=%d published=%d)", self.name, self.stats.received, self.stats.published
        )

    # -- connection ---------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff()
        url = _safe_url(self.config.url)
        while not self.listener.stopping:
            nc: NatsClient | None = None
            try:
                nc = await nats.connect(
                    servers=[u.strip() for u in self.config.url.split(",")], name=f"eventflow {self.name}",
                    # No reconnects inside the client: this loop reconnects and subscribes again. (nats-py
                    # still tries each server twice on the first connect; 0 would mean forever.)
                    allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0.1,
                    connect_timeout=2, ping_interval=10, max_outstanding_pings=2,
                    error_cb=self._on_error, user=self._user, password=self._password, token=self._token,
                )  # fmt: skip
                if self.config.jetstream is not None:
                    await self._consume_jetstream(nc, backoff, self.config.jetstream)
                else:
                    await self._consume(nc, backoff)
                delay = 0.0
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                state = "lost the subscription at" if self.subscribed else "cannot subscribe at"
                delay = backoff.lost(log, self.name, state, f"NATS {url}", _reason(exc))
            except Exception:
                delay = backoff.crashed(log, self.name)
            finally:
                self.subscribed = False
                self.listener.first_attempt.set()
                if nc is not None and not nc.is_closed:
                    with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                        await asyncio.wait_for(nc.close(), 1.0)
            if delay and not self.listener.stopping:
                await self.listener.pause(delay)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("%s: NATS client error: %s", self.name, describe(exc))

    def _subscribed(self, backoff: Backoff, how: str) -> None:
        self.subscribed = True
        backoff.reset()
        self.listener.first_attempt.set()
        log.info(
            "%s: subscribed to %s on NATS %s (%s)",
            self.name,
            self.config.subject,
            _safe_url(self.config.url),
            how,
        )

    # -- core NATS: at most once --------------------------------------------------------------

    async def _consume(self, nc: NatsClient, backoff: Backoff) -> None:
        sub = await nc.subscribe(self.config.subject, queue=self.config.queue or "")
        await nc.flush(timeout=2)  # the server has the subscription once this returns
        self._subscribed(
            backoff, f"queue group {self.config.queue}" if self.config.queue else "core, at most once"
        )
        while not self.listener.stopping:
            try:
                msg = await sub.next_msg(timeout=_POLL_SECONDS)
            except nats.errors.TimeoutError:
                continue
            await self._deliver(msg, None)

    # -- JetStream durable: at least once -----------------------------------------------------

    async def _consume_jetstream(self, nc: NatsClient, backoff: Backoff, js_opts: JetStreamOptions) -> None:
        js = nc.jetstream(timeout=5)
        try:
            psub = await js.pull_subscribe(self.config.subject, durable=js_opts.durable, stream=js_opts.stream,
                                           config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT))  # fmt: skip
        except nats.js.errors.NotFoundError as exc:
            raise nats.errors.Error(
                f"no JetStream stream stores {self.config.subject!r} ({exc.description or exc})"
            ) from None
        info = await psub.consumer_info()
        if info.config.filter_subject not in (None, "", self.config.subject):
            log.warning("%s: durable %s already exists with filter subject %s, not %s; it is used as it is",
                        self.name, js_opts.durable, info.config.filter_subject, self.config.subject)  # fmt: skip
        self._subscribed(
            backoff, f"JetStream durable {js_opts.durable} on stream {info.stream_name}, at least once"
        )
        failures = Backoff()
        checked = time.monotonic()
        while not self.listener.stopping:
            try:
                msgs = await psub.fetch(batch=_FETCH_BATCH, timeout=_POLL_SECONDS)
            except nats.errors.TimeoutError:
                if nc.is_closed:
                    raise nats.errors.ConnectionClosedError from None
                if time.monotonic() - checked > CONSUMER_CHECK_SECONDS:
                    # A deleted durable looks like an idle one to a pull subscription: ask now and then.
                    checked = time.monotonic()
                    try:
                        await psub.consumer_info()
                    except nats.js.errors.NotFoundError:
                        raise nats.errors.Error(f"durable {js_opts.durable} was deleted") from None
                continue
            delay = await self._settle(msgs, failures)
            if delay:
                await self.listener.pause(delay)

    async def _settle(self, msgs: list[Msg], failures: Backoff) -> float:
        """Store and ack each message in order; on a bus failure nack the rest with a delay (returned)."""
        pending = list(msgs)
        try:
            while pending and not self.listener.stopping:
                msg = pending[0]
                meta = msg.metadata
                if not await self._deliver(msg, f"{meta.stream}:{meta.sequence.stream}"):
                    delay = failures.next()
                    for later in pending:
                        await later.nak(delay=delay)
                    pending.clear()
                    log.warning("%s: ↻ message redelivered in %.2fs", self.name, delay)
                    return delay
                pending.pop(0)
            failures.reset()
            return 0.0
        finally:
            for unprocessed in pending:  # stopping: hand them back now rather than after ack_wait
                with contextlib.suppress(nats.errors.Error, OSError):
                    await unprocessed.nak()

    # -- one message --------------------------------------------------------------------------

    async def _deliver(self, msg: Msg, event_id: str | None) -> bool:
        emit = self._emit
        if emit is None:
            return False
        self.stats.received += 1
        body, encoding = decode_body(msg.data, self.config.json_body)
        data: dict[str, Any] = {
            "subject": msg.subject, "body": body,
            "header": {name: [value] for name, value in (msg.headers or {}).items()},
            "metadata": dict(self.config.metadata or {}),
        }  # fmt: skip
        if encoding:
            data["bodyEncoding"] = encoding
        started = time.perf_counter()
        self.listener.busy = True
        try:
            try:
                stored_id, _, ack = await emit(Emitted(data=data, id=event_id))
            except BusError as exc:
                self.stats.reject("bus")
                if event_id is None:
                    log.warning(
                        "%s: ! message on %s lost, the bus could not store it: %s",
                        self.name,
                        msg.subject,
                        exc,
                    )
                else:
                    log.warning(
                        "%s: ! message %s not stored, it will be redelivered: %s", self.name, event_id, exc
                    )
                return False
            self.stats.stored(time.perf_counter() - started, duplicate=ack.duplicate)
            if event_id is not None:
                await msg.ack()
            log.debug(
                "%s: message on %s stored as %s%s",
                self.name,
                msg.subject,
                stored_id,
                " (duplicate)" if ack.duplicate else "",
            )
            return True
        finally:
            self.listener.busy = False


def _safe_url(url: str) -> str:
    """The URL without credentials, for log lines."""
    return ",".join(re.sub(r"://[^@/]*@", "://***@", part.strip()) for part in url.split(","))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, nats.errors.NoServersError):
        return "no server answered"
    return describe(exc)

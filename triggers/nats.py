"""``nats``: publish the firing's payload on a NATS subject (Argo's NATSTrigger).

Without ``url`` the message goes out on eventflow's own bus connection; with one, the trigger keeps
its own connection (made at the first firing, closed with the trigger). Every message carries
``Nats-Msg-Id: <firing key>``, so a JetStream stream drops a redelivered firing as a duplicate, and
``Eventflow-Event-Ids``, ``Eventflow-Sensor``, ``Eventflow-Trigger``, plus the trigger's ``headers``
(an eventflow extension).

When a JetStream stream captures the subject, the publish is a request and the stream's PubAck
is checked (a refusal or no answer fails the firing and it is retried); otherwise it is a plain
publish followed by a flush. On eventflow's own connection, subjects of eventflow's own streams and
``$`` system subjects (the JetStream API) are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, ClassVar

import nats
import nats.errors
from nats.aio.client import Client
from pydantic import BaseModel, ConfigDict, Field

from triggers.base import Firing, TriggerContext, TriggerFailed, TriggerRejected, TriggerResult, register
from triggers.http import (
    SecretSelector,
    TLSConfig,
    read_secret,
    shown_url,
    ssl_context,
    tls_problems,
    with_kind_parameters,
)

__all__ = ["NatsConfig", "NatsTrigger"]

log = logging.getLogger("triggers.nats")

PUBLISH_TIMEOUT = 5  # seconds for a PubAck or a flush
CONNECT_TIMEOUT = 2  # seconds per connection attempt
STREAM_CACHE_SECONDS = 30.0  # how long "which stream captures this subject" is remembered
_NATS_SCHEMES = ("nats", "tls", "ws", "wss")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NatsBasicAuth(_Model):
    username: SecretSelector
    password: SecretSelector


class NatsAuth(_Model):
    basic: NatsBasicAuth | None = None
    token: SecretSelector | None = None
    nkey: Any = None  # refused by check()
    credential: Any = None  # refused by check()


class NatsConfig(_Model):
    url: str | None = None  # absent: eventflow's own bus connection
    subject: str = Field(min_length=1)
    tls: TLSConfig | None = None
    auth: NatsAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # eventflow


@register
class NatsTrigger:
    """Publishes on the bus connection, or on one connection of its own per ``url``."""

    key: ClassVar[str] = "nats"
    Config: ClassVar[type[BaseModel]] = NatsConfig

    def __init__(self, context: TriggerContext) -> None:
        self.context = context
        self._connections: dict[str, Client] = {}
        self._connecting = asyncio.Lock()
        self._streams: dict[tuple[str, str], tuple[float, str | None]] = {}
        self.published = 0
        self.failed = 0

    def __repr__(self) -> str:
        return f"<NatsTrigger {self.context.sensor}/{self.context.trigger} published={self.published} failed={self.failed} connections={len(self._connections)}>"

    @staticmethod
    def check(config: NatsConfig, where: str) -> list[str]:
        problems = []
        if (problem := _subject_problem(config.subject, own=config.url is None)) is not None:
            problems.append(f"{where}.subject: {problem}")
        if config.url is not None:
            for server in config.url.split(","):
                scheme = server.strip().partition("://")[0].lower() if "://" in server else "nats"
                if scheme not in _NATS_SCHEMES:
                    problems.append(
                        f"{where}.url: expected nats://, tls://, ws:// or wss:// URLs, got {shown_url(server.strip())!r}"
                    )
        else:
            for field in ("tls", "auth"):
                if getattr(config, field) is not None:
                    problems.append(
                        f"{where}.{field}: applies to a url only (without url the trigger publishes on eventflow's own connection)"
                    )
        auth = config.auth
        if auth is not None:
            for field in ("nkey", "credential"):
                if getattr(auth, field) is not None:
                    problems.append(f"{where}.auth.{field}: not supported yet (use auth.basic or auth.token)")
            if auth.basic is not None and auth.token is not None:
                problems.append(f"{where}.auth: give one of basic or token")
        problems += tls_problems(config.tls, f"{where}.tls")
        return problems

    async def fire(self, config: NatsConfig, firing: Firing) -> TriggerResult:
        try:
            result = await self._publish(with_kind_parameters(config, firing), firing)
        except (TriggerFailed, TriggerRejected):
            self.failed += 1
            raise
        self.published += 1
        return result

    async def _publish(self, config: NatsConfig, firing: Firing) -> TriggerResult:
        subject = config.subject
        if (problem := _subject_problem(subject, own=config.url is None)) is not None:
            raise TriggerRejected(f"subject {subject!r}: {problem}")
        payload = json.dumps(
            firing.payload(), separators=(",", ":"), ensure_ascii=False, default=str
        ).encode()
        headers = {
            **config.headers, "Nats-Msg-Id": firing.key, "Eventflow-Event-Ids": ",".join(firing.event_ids),
            "Eventflow-Sensor": firing.sensor, "Eventflow-Trigger": firing.trigger,
        }  # fmt: skip
        if any(c in text for item in headers.items() for text in item for c in "\r\n"):
            raise TriggerRejected("headers: a header name or value holds a line break")
        nc, where = await self._connection(config, subject, firing.namespace)
        stream = await self._stream(nc, where, subject)
        what = f"publish to {subject!r} on {where}"
        started = time.monotonic()
        try:
            if stream is None:
                await nc.publish(subject, payload, headers=headers)
                await nc.flush(timeout=PUBLISH_TIMEOUT)
                detail: dict[str, Any] = {"subject": subject}
            else:
                reply = await nc.request(subject, payload, timeout=PUBLISH_TIMEOUT, headers=headers)
                detail = _pub_ack(reply.data, subject, stream)
        except nats.errors.MaxPayloadError:
            raise TriggerRejected(
                f"{what}: the payload ({len(payload)} bytes) exceeds the server's limit"
            ) from None
        except nats.errors.NoRespondersError:
            self._streams.pop((where, subject), None)  # looked up again on the retry
            raise TriggerFailed(f"{what}: stream {stream} did not answer") from None
        except (TimeoutError, nats.errors.TimeoutError):
            self._streams.pop((where, subject), None)
            raise TriggerFailed(
                f"{what}: no {'flush' if stream is None else 'PubAck'} within {PUBLISH_TIMEOUT}s"
            ) from None
        except (nats.errors.Error, OSError) as exc:
            raise TriggerFailed(f"{what}: {exc or type(exc).__name__}") from None
        detail["elapsedMs"] = round((time.monotonic() - started) * 1000, 3)
        log.debug("%s: firing %s", what, firing.key)
        return TriggerResult(detail)

    async def close(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for nc in connections:
            with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                await nc.drain()
            if not nc.is_closed:
                await nc.close()

    async def _connection(self, config: NatsConfig, subject: str, namespace: str) -> tuple[Client, str]:
        """The client to publish with and how to name it in messages."""
        if config.url is None:
            bus = self.context.bus
            if bus is None:
                raise TriggerFailed("no eventflow bus in this process (give nats.url)")
            prefix = bus.subjects.prefix
            if subject == prefix or subject.startswith(f"{prefix}."):
                raise TriggerRejected(
                    f"subject {subject!r} is under {prefix!r}, eventflow's own subjects; publish events through an event source instead"
                )
            return bus.nc, "eventflow's bus"
        where = shown_url(config.url)
        key = json.dumps(
            [config.url, config.tls and config.tls.model_dump(), config.auth and config.auth.model_dump()]
        )
        async with self._connecting:
            nc = self._connections.get(key)
            if nc is None or nc.is_closed:
                nc = await self._connect(config, namespace, where)
                self._connections[key] = nc
        return nc, where

    async def _connect(self, config: NatsConfig, namespace: str, where: str) -> Client:
        assert config.url is not None
        errors: list[BaseException] = []
        connected = False

        async def on_error(exc: Exception) -> None:
            if not connected:
                errors.append(exc)  # the first connect reports its own failure
            else:
                log.warning(
                    "trigger %s/%s: NATS at %s: %s",
                    self.context.sensor,
                    self.context.trigger,
                    where,
                    exc or type(exc).__name__,
                )

        async def on_disconnected() -> None:
            log.warning(
                "trigger %s/%s: disconnected from NATS at %s; reconnecting",
                self.context.sensor,
                self.context.trigger,
                where,
            )

        def read(ref: SecretSelector, what: str) -> str:
            return read_secret(self.context, ref, namespace, what)

        options: dict[str, Any] = {}
        if config.tls is not None:
            options["tls"] = ssl_context(config.tls, read)
        auth = config.auth
        if auth is not None and auth.basic is not None:
            options["user"], options["password"] = (
                read(auth.basic.username, "auth.basic.username"),
                read(auth.basic.password, "auth.basic.password"),
            )
        elif auth is not None and auth.token is not None:
            options["token"] = read(auth.token, "auth.token")
        try:
            nc = await nats.connect(
                servers=[s.strip() for s in config.url.split(",")], name=f"eventflow {namespace}/{self.context.sensor}/{self.context.trigger}",
                connect_timeout=CONNECT_TIMEOUT, allow_reconnect=True, max_reconnect_attempts=1, reconnect_time_wait=0.5,
                error_cb=on_error, disconnected_cb=on_disconnected, **options,
            )  # fmt: skip
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            cause = errors[-1] if errors else exc
            raise TriggerFailed(
                f"cannot connect to NATS at {where}: {cause or type(cause).__name__}"
            ) from None
        connected = True
        # nats-py retries a failing first connect forever with -1; once connected, reconnect forever.
        nc.options["max_reconnect_attempts"] = -1
        log.info("trigger %s/%s: connected to NATS at %s", self.context.sensor, self.context.trigger, where)
        return nc

    async def _stream(self, nc: Client, where: str, subject: str) -> str | None:
        """The JetStream stream that captures ``subject`` on that server, or None (remembered a while)."""
        now = time.monotonic()
        cached = self._streams.get((where, subject))
        if cached is not None and cached[0] > now:
            return cached[1]
        request = json.dumps({"subject": subject}).encode()
        try:
            reply = await nc.request("$JS.API.STREAM.NAMES", request, timeout=PUBLISH_TIMEOUT)
            answer = json.loads(reply.data)
        except nats.errors.NoRespondersError:
            answer = {}  # no JetStream on that server
        except (TimeoutError, nats.errors.TimeoutError):
            raise TriggerFailed(
                f"{where}: JetStream did not say within {PUBLISH_TIMEOUT}s whether a stream captures {subject!r}"
            ) from None
        except (nats.errors.Error, OSError, ValueError) as exc:
            raise TriggerFailed(
                f"{where}: cannot look up the stream for {subject!r}: {exc or type(exc).__name__}"
            ) from None
        names = answer.get("streams") if isinstance(answer, dict) else None
        stream = str(names[0]) if isinstance(names, list) and names else None
        if len(self._streams) >= 1024:
            self._streams.clear()
        self._streams[(where, subject)] = (now + STREAM_CACHE_SECONDS, stream)
        return stream


def _subject_problem(subject: str, *, own: bool) -> str | None:
    if any(c.isspace() for c in subject):
        return "a subject may not contain white space"
    tokens = subject.split(".")
    if any(not t for t in tokens):
        return "a subject may not have empty tokens (leading, trailing or double dots)"
    if any(t in ("*", ">") for t in tokens):
        return "a message goes to one subject: wildcards (* and >) are for subscribing"
    if own and subject.startswith("$"):
        return "'$' subjects are NATS system subjects (the JetStream API); they are not published to on eventflow's own connection"
    return None


def _pub_ack(data: bytes, subject: str, stream: str) -> dict[str, Any]:
    try:
        ack = json.loads(data)
    except ValueError:
        raise TriggerFailed(
            f"publish to {subject!r}: stream {stream} answered something other than a PubAck"
        ) from None
    error = ack.get("error") if isinstance(ack, dict) else {"description": "not a PubAck"}
    if error:
        description = error.get("description") if isinstance(error, dict) else error
        raise TriggerFailed(f"stream {stream} refused the message on {subject!r}: {description}")
    return {
        "subject": subject,
        "stream": ack.get("stream", stream),
        "seq": ack.get("seq"),
        "duplicate": bool(ack.get("duplicate")),
    }

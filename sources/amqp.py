"""``amqp``: events from a RabbitMQ queue (aio-pika), acknowledged only after the bus stored them.

The source declares Argo's exchange, queue and binding, then consumes with manual acknowledgement: a
message is acked after ``emit`` returned (JetStream stored the event), nacked with requeue when the bus
could not store it (after a pause, so a bus outage is not a hot loop), and rejected without requeue
(dead-lettered, if the queue has a dead-letter exchange) when it can never become an event (an id or
attribute the CloudEvent model refuses). The event id is the message's ``messageId`` when it has one, so a redelivery is stored
once; otherwise a fresh id, and a redelivery after a lost ack is a second event (at least once).

Deviation from Argo: without ``consume``, Argo consumes with ``autoAck: true`` (at most once: a message
in flight when the pod or the bus fails is lost). Here ``autoAck`` defaults to false; ``autoAck: true``
is honoured with a warning. ``noWait`` flags are accepted and ignored (eventflow always waits for the
broker's confirmation, so refusals surface), as is ``noLocal`` (RabbitMQ does not implement it).

Event data is Argo's ``AMQPEventData`` (absent properties as ``""``/``0``, as Go writes them), with
``timestamp`` in RFC 3339 instead of Go's ``time.String()``, plus eventflow's ``headers`` (the message's
header table, JSON-safe) and ``bodyEncoding`` when the body is not what was asked for (see
:func:`decode_body`).

The connection is kept by :class:`Upstream`, which the other queue sources (``mqtt``, ``kafka``) share
with :class:`Backoff`, :class:`BasicAuth` and :func:`decode_body` (defined here until they move to a
module of their own).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aio_pika
import yaml
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelClosed, ProbableAuthenticationError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from yarl import URL

from eventbus import BusError, InvalidEvent
from sources._upstream import decode_body, describe, reject_filter, reject_tls
from sources.base import EmitEvent, Emitted, EventRef, SourceContext, register
from sources.secrets import SecretRef
from sources.spec import EventSourceError
from sources.calendar import parse_go_duration

__all__ = ["AmqpConfig", "AmqpSource", "Backoff", "BasicAuth", "Refused", "Upstream", "decode_body"]

log = logging.getLogger("sources.amqp")

FIRST_CONNECT_SECONDS = 5.0  # start() waits this long for the first subscription before returning
STOP_GRACE_SECONDS = 0.4  # stop(): an event being stored may finish; then the consumer is cancelled
CLOSE_SECONDS = 0.4  # closing a connection to a broker that does not answer
MAX_DELAY_SECONDS = 60.0
PREFETCH = 32


# -- shared by the queue sources ---------------------------------------------------------------


class Backoff(BaseModel):
    """Argo's ``connectionBackoff``: attempt n+1 waits ``duration × factor^n``, plus up to ``jitter``
    times that. Argo gives up after ``steps`` attempts; a source here never does (a broker restart must
    not end it): after ``steps`` the delay stops growing, and it never exceeds 60 s. ``duration`` is a
    Go duration (``"2s"``) or, as in Argo, an integer number of nanoseconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    duration: float = 1.0  # seconds
    factor: float = Field(default=2.0, ge=1.0)
    jitter: float = Field(default=0.2, ge=0.0)
    steps: int = Field(default=6, ge=1)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a duration like '1s' or nanoseconds")  # noqa: TRY004 - pydantic reports ValueError
        if isinstance(value, int):
            return value / 1e9
        if isinstance(value, str):
            return parse_go_duration(value).total_seconds()
        return value

    @field_validator("factor", "jitter", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return float(value) if isinstance(value, str) and value.strip() else value  # Argo's Amount is a string

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0-based)."""
        base = max(0.05, self.duration) * self.factor ** min(attempt, self.steps - 1)
        return min(MAX_DELAY_SECONDS, base * (1.0 + random.random() * self.jitter))


class BasicAuth(BaseModel):
    """Argo's ``auth``: username and password, each a secret reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    username: SecretRef
    password: SecretRef






def unsupported(tls: dict[str, Any] | None, filter_: dict[str, Any] | None, kind: str) -> None:
    """Argo fields a queue source accepts in the schema but eventflow does not implement yet."""
    reject_tls(tls, f"the {kind} broker")
    reject_filter(filter_)


class Refused(Exception):
    """The broker refused this source's settings (credentials, a declaration, a subscription). On the
    first attempt the apply fails with the reason; later it is logged and retried like a lost link."""


class Upstream:
    """One source's link to its broker: runs ``session(ready)`` (connect, subscribe, call ``ready()``,
    consume until the connection ends) again after every failure, with capped backoff, until stopped.

    ``start()`` returns once the first attempt subscribed, or failed (then retrying in the background;
    a :class:`Refused` first attempt fails the apply instead), or after 5 s. ``stop()`` lets an event
    being stored finish (≤ 0.4 s), then cancels, and returns within about a second even when the
    broker does not answer. ``pause_after_bus_error()`` paces retries while the bus cannot store.
    """

    def __init__(
        self, ref: EventRef, what: str, session: Callable[[Callable[[], None]], Awaitable[None]], backoff: Backoff, logger: logging.Logger
    ) -> None:
        self.ref = ref
        self.log = logger
        self.what = what  # e.g. "RabbitMQ 127.0.0.1:5672"
        self.session = session
        self.backoff = backoff
        self.state = "stopped"  # connecting | connected | retrying | stopped
        self.connects = 0
        self.last_error: str | None = None
        self.stopping = False
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._bus_failures = 0
        self._label = f"{ref.namespace}/{ref.source} {ref.path}"

    def __repr__(self) -> str:
        return f"<Upstream {self._label} {self.what} state={self.state} connects={self.connects}>"

    async def start(self) -> None:
        self.stopping = False
        first: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(first), name=f"source {self._label}")
        try:
            outcome = await asyncio.wait_for(asyncio.shield(first), FIRST_CONNECT_SECONDS)
        except TimeoutError:
            self.log.warning("%s: %s not reached within %.0fs; still trying", self._label, self.what, FIRST_CONNECT_SECONDS)
            return
        if isinstance(outcome, Refused):
            await self.stop()
            where = f"EventSource {self.ref.namespace}/{self.ref.source}"
            raise EventSourceError(where, [f"{self.ref.path}: {self.what} refused: {outcome}"])

    async def stop(self) -> None:
        task, self._task = self._task, None
        self.stopping = True
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), STOP_GRACE_SECONDS)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2 * CLOSE_SECONDS)
        if not done:
            self.log.warning("%s: %s did not close in time; left closing in the background", self._label, self.what)
        self.state = "stopped"
        self.log.info("%s: stopped", self._label)

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Marks an event being stored and acknowledged, which ``stop()`` lets finish."""
        self._idle.clear()
        try:
            yield
        finally:
            self._idle.set()

    def bus_ok(self) -> None:
        self._bus_failures = 0

    async def pause_after_bus_error(self, error: BusError) -> None:
        delay = min(5.0, 0.1 * 2**self._bus_failures)
        self._bus_failures += 1
        self.log.warning("%s: the bus could not store an event (%s); ↻ retrying in %.2fs", self._label, error, delay)
        await asyncio.sleep(delay)

    def _ready(self, first: asyncio.Future[BaseException | None]) -> None:
        self.state = "connected"
        self.connects += 1
        self.last_error = None
        if not first.done():
            first.set_result(None)
        self.log.info("%s: subscribed at %s%s", self._label, self.what, " (reconnected)" if self.connects > 1 else "")

    async def _run(self, first: asyncio.Future[BaseException | None]) -> None:
        attempt = 0
        while not self.stopping:
            self.state = "connecting"
            try:
                await self.session(lambda: self._ready(first))
                error: BaseException = ConnectionError("the connection ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect, never crash the runtime
                error = exc
            if not first.done():
                first.set_result(error)
            if self.stopping:
                return
            if self.state == "connected":
                attempt = 0
            delay = self.backoff.delay(attempt)
            attempt += 1
            self.state, self.last_error = "retrying", describe(error)
            level = logging.ERROR if isinstance(error, Refused) else logging.WARNING
            self.log.log(level, "%s: %s: %s; ↻ reconnecting in %.2fs (attempt %d)", self._label, self.what, self.last_error, delay, attempt)
            await asyncio.sleep(delay)




def rfc3339(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


# -- amqp ---------------------------------------------------------------------------------------


class ExchangeDeclare(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    durable: bool = False
    auto_delete: bool = Field(default=False, alias="autoDelete")
    internal: bool = False
    no_wait: bool = Field(default=False, alias="noWait")


class QueueDeclare(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str = ""  # empty: the server names it
    durable: bool = False
    auto_delete: bool = Field(default=False, alias="autoDelete")
    exclusive: bool = False
    no_wait: bool = Field(default=False, alias="noWait")
    arguments: str | dict[str, Any] | None = None  # Argo: a YAML string, e.g. "x-max-length: 100"

    @field_validator("arguments")
    @classmethod
    def _arguments(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(value, str) and value.strip():
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ValueError(f"not valid YAML: {exc}") from None
            if not isinstance(parsed, dict):
                raise ValueError(f"expected a YAML mapping of x-arguments, got {value!r}")
        return value

    def table(self) -> dict[str, Any] | None:
        if isinstance(self.arguments, str):
            return yaml.safe_load(self.arguments) if self.arguments.strip() else None
        return self.arguments


class QueueBind(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    no_wait: bool = Field(default=False, alias="noWait")


class Consume(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    consumer_tag: str = Field(default="", alias="consumerTag")
    auto_ack: bool = Field(default=False, alias="autoAck")
    exclusive: bool = False
    no_local: bool = Field(default=False, alias="noLocal")
    no_wait: bool = Field(default=False, alias="noWait")


class AmqpConfig(BaseModel):
    """One entry of ``spec.amqp`` (Argo's AMQPEventSource)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    url: str | None = None
    url_secret: SecretRef | None = Field(default=None, alias="urlSecret")
    exchange_name: str = Field(alias="exchangeName", min_length=1)
    exchange_type: str = Field(alias="exchangeType", min_length=1)
    routing_key: str = Field(alias="routingKey", min_length=1)
    exchange_declare: ExchangeDeclare = Field(default_factory=lambda: ExchangeDeclare(durable=True), alias="exchangeDeclare")
    queue_declare: QueueDeclare = Field(default_factory=lambda: QueueDeclare(exclusive=True), alias="queueDeclare")
    queue_bind: QueueBind = Field(default_factory=QueueBind, alias="queueBind")
    consume: Consume = Field(default_factory=Consume)
    auth: BasicAuth | None = None
    json_body: bool = Field(default=False, alias="jsonBody")
    metadata: dict[str, str] | None = None
    connection_backoff: Backoff = Field(default_factory=Backoff, alias="connectionBackoff")
    tls: dict[str, Any] | None = None
    filter: dict[str, Any] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            check_amqp_url(value)
        return value

    @model_validator(mode="after")
    def _rules(self) -> AmqpConfig:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError("give one of url or urlSecret")
        unsupported(self.tls, self.filter, "amqp")
        return self


def check_amqp_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme == "amqps":
        raise ValueError("amqps:// (TLS) is not supported yet by the amqp source; use amqp://")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "amqp" or not parts.hostname or port == -1:
        raise ValueError(f"expected amqp://[user:password@]host[:port][/vhost], got {value!r}")


@register
class AmqpSource:
    key: ClassVar[str] = "amqp"
    Config: ClassVar[type[BaseModel]] = AmqpConfig

    def __init__(self, ref: EventRef, config: AmqpConfig, context: SourceContext) -> None:
        self.ref = ref
        self.config = config
        self.context = context
        self.stats = context.stats
        self._emit: EmitEvent | None = None
        self._url = ""
        self.upstream: Upstream | None = None

    def __repr__(self) -> str:
        return f"<AmqpSource {self.ref.namespace}/{self.ref.source} {self.ref.event_name} exchange={self.config.exchange_name} {self.upstream!r}>"

    async def start(self, emit: EmitEvent) -> None:
        cfg, secrets, ns = self.config, self.context.secrets, self.ref.namespace
        # Secrets are read now, so a missing one fails the apply.
        url = secrets.read(cfg.url_secret, ns) if cfg.url_secret is not None else str(cfg.url)
        if cfg.url_secret is not None:
            try:
                check_amqp_url(url)
            except ValueError as exc:  # the value is a secret: say what is wrong, not what it is
                reason = str(exc).split(", got")[0]
                problem = f"{self.ref.path}.urlSecret: {cfg.url_secret.describe()}: {reason}"
                raise EventSourceError(f"EventSource {ns}/{self.ref.source}", [problem]) from None
        parsed = URL(url)
        if cfg.auth is not None:
            parsed = parsed.with_user(secrets.read(cfg.auth.username, ns)).with_password(secrets.read(cfg.auth.password, ns))
        if "heartbeat" not in parsed.query:
            parsed = parsed.update_query(heartbeat=10)  # as Argo: a dead link is noticed within ~30 s
        self._url = str(parsed)
        if cfg.consume.auto_ack:
            log.warning("%s/%s %s: consume.autoAck is true: messages are acknowledged on delivery, so one in flight "
                        "when the bus or this server fails is lost (at most once)", ns, self.ref.source, self.ref.path)  # fmt: skip
        queue = cfg.queue_declare
        if not queue.name or queue.exclusive or queue.auto_delete:
            log.warning("%s/%s %s: queueDeclare %s: the queue goes away with its connection or consumer, and with it "
                        "any message not yet stored; name a durable queue for at-least-once delivery across reconnects",
                        ns, self.ref.source, self.ref.path, "has no name" if not queue.name else "is exclusive or autoDelete")  # fmt: skip
        self._emit = emit
        where = f"RabbitMQ {parsed.host}:{parsed.port or 5672}"
        self.upstream = Upstream(self.ref, where, self._session, cfg.connection_backoff, log)
        await self.upstream.start()

    async def stop(self) -> None:
        if self.upstream is not None:
            await self.upstream.stop()
        self._emit = None

    async def _session(self, ready: Callable[[], None]) -> None:
        cfg = self.config
        try:
            connection = await aio_pika.connect(self._url, timeout=FIRST_CONNECT_SECONDS)
        except ProbableAuthenticationError as exc:
            raise Refused(f"authentication failed ({exc})") from None
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=PREFETCH)
            try:
                ex = cfg.exchange_declare
                exchange = await channel.declare_exchange(
                    cfg.exchange_name, cfg.exchange_type, durable=ex.durable, auto_delete=ex.auto_delete, internal=ex.internal
                )
                q = cfg.queue_declare
                queue = await channel.declare_queue(
                    q.name or None, durable=q.durable, auto_delete=q.auto_delete, exclusive=q.exclusive, arguments=q.table()
                )
                await queue.bind(exchange, routing_key=cfg.routing_key)
                consume = cfg.consume
                iterator = queue.iterator(no_ack=consume.auto_ack, exclusive=consume.exclusive, consumer_tag=consume.consumer_tag or None)
                await iterator.consume()
            except ChannelClosed as exc:
                raise Refused(describe(exc)) from None
            cancelled: list[asyncio.Future[None]] = []

            def on_cancel(frame: Any) -> None:  # e.g. the queue was deleted: start over, declaring it again
                # Not awaited here: this runs inside the channel's frame reader.
                cancelled.append(asyncio.ensure_future(channel.close()))

            (await channel.get_underlay_channel()).on_consumer_cancel_callbacks.add(on_cancel)
            ready()
            async with iterator:
                async for message in iterator:
                    await self._handle(message)
            if cancelled:
                raise ConnectionError("the broker cancelled the consumer (was the queue deleted?)")
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await connection.close()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        upstream, emit, manual = self.upstream, self._emit, not self.config.consume.auto_ack
        if upstream is None or emit is None or upstream.stopping:
            return  # not acked: the broker redelivers it after this connection closes
        self.stats.received += 1
        body, encoding = decode_body(message.body, self.config.json_body)
        data = _event_data(message, body, encoding, self.config.metadata)
        with upstream.in_flight():
            started = time.perf_counter()
            try:
                _, _, ack = await emit(Emitted(data=data, id=message.message_id or None))
            except InvalidEvent as exc:
                self.stats.reject("cloudevent")
                log.warning("%s/%s %s: message %s rejected: %s", self.ref.namespace, self.ref.source, self.ref.path, message.message_id, exc)
                if manual:
                    await message.reject(requeue=False)
                return
            except BusError as exc:
                self.stats.reject("bus")
                failed: BusError | None = exc
            else:
                failed = None
                self.stats.stored(time.perf_counter() - started, duplicate=ack.duplicate)
                upstream.bus_ok()
                if manual:
                    await message.ack()
        if failed is not None:
            await upstream.pause_after_bus_error(failed)
            if manual:
                await message.nack(requeue=True)


def _event_data(message: AbstractIncomingMessage, body: Any, encoding: str | None, metadata: dict[str, str] | None) -> dict[str, Any]:
    expiration = message.expiration  # aio-pika turns the property's milliseconds into seconds
    if isinstance(expiration, timedelta):
        expiration = expiration.total_seconds()
    data: dict[str, Any] = {
        "contentType": message.content_type or "",
        "contentEncoding": message.content_encoding or "",
        "deliveryMode": int(message.delivery_mode or 0),
        "priority": message.priority or 0,
        "correlationId": message.correlation_id or "",
        "replyTo": message.reply_to or "",
        "expiration": f"{round(expiration * 1000)}" if isinstance(expiration, (int, float)) else "",
        "messageId": message.message_id or "",
        "timestamp": rfc3339(message.timestamp),
        "type": message.type or "",
        "appId": message.app_id or "",
        "exchange": message.exchange or "",
        "routingKey": message.routing_key or "",
        "body": body,
        "headers": {str(k): _json_safe(v) for k, v in (message.headers or {}).items()},
        "metadata": dict(metadata or {}),
    }
    if encoding:
        data["bodyEncoding"] = encoding
    return data


def _json_safe(value: Any) -> Any:
    """AMQP field-table values (bytes, decimals, timestamps, nested tables) as JSON values."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value

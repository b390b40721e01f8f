"""``mqtt``: events from an MQTT topic (aiomqtt), subscribed with QoS 1 and acknowledged after storing.

Argo subscribes with QoS 0 (at most once). Here the subscription is QoS 1 on a persistent session
(``clean_session: false`` under ``clientId``) with paho's manual acknowledgement: the PUBACK for a
message is sent only after ``emit`` returned, so a message whose event was not stored is sent again by
the broker when this client reconnects. When the bus cannot store an event, the source retries it in
place, under the same event id, with a growing pause (MQTT has no nack); messages behind it wait
unacknowledged.

Residual windows (MQTT's, not closable here): a message published with QoS 0 is delivered with QoS 0
(nothing to acknowledge); a message that arrives before this client's session first exists is not
kept; the broker's own limits apply to what it keeps for the session while the source is stopped or
disconnected (mosquitto: ``max_queued_messages``, default 1000, and ``persistent_client_expiration``),
and the session outlives a removed source until the broker expires it. A message stored whose PUBACK
was lost with the connection is delivered again and becomes a second event: its MQTT packet id is not
an identity (ids are reused), so it cannot be de-duplicated. Two sources with the same ``clientId``
take the session from each other.

Event data is Argo's ``MQTTEventData`` ``{topic, messageId, body, metadata}`` (plus ``bodyEncoding``
when the body is not what was asked for, see ``sources.amqp.decode_body``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eventbus import BusError, InvalidEvent, new_event_id
from sources._upstream import decode_body
from sources.amqp import FIRST_CONNECT_SECONDS, Backoff, BasicAuth, Refused, Upstream, unsupported
from sources.base import EmitEvent, Emitted, EventRef, SourceContext, register

__all__ = ["MqttConfig", "MqttSource"]

log = logging.getLogger("sources.mqtt")

_SCHEMES = {"tcp": 1883, "mqtt": 1883}
_TLS_SCHEMES = ("ssl", "tls", "mqtts", "wss", "ws")
# CONNACK codes that say the broker is busy or away; any other refusal is about this source's settings
# (protocol, client id, credentials, authorization), reported at apply. 3.1.1 codes and MQTT 5's.
_UNAVAILABLE = {3, 0x88, 0x89, 0x97}


class MqttConfig(BaseModel):
    """One entry of ``spec.mqtt`` (Argo's MQTTEventSource)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    url: str
    topic: str = Field(min_length=1)
    client_id: str = Field(alias="clientId", min_length=1)
    auth: BasicAuth | None = None
    json_body: bool = Field(default=False, alias="jsonBody")
    metadata: dict[str, str] | None = None
    connection_backoff: Backoff = Field(default_factory=Backoff, alias="connectionBackoff")
    tls: dict[str, Any] | None = None
    filter: dict[str, Any] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        broker_address(value)
        return value

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        levels = value.split("/")
        if any(("#" in level and (level != "#" or i != len(levels) - 1)) or ("+" in level and level != "+") for i, level in enumerate(levels)):
            raise ValueError(f"invalid topic filter {value!r}: '#' must be a whole last level and '+' a whole level")
        return value

    @model_validator(mode="after")
    def _unsupported(self) -> MqttConfig:
        unsupported(self.tls, self.filter, "mqtt")
        return self


def broker_address(url: str) -> tuple[str, int]:
    """``tcp://host:1883`` (Argo's form) or ``mqtt://host`` -> (host, port)."""
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    if parts.scheme in _TLS_SCHEMES:
        raise ValueError(f"{parts.scheme}:// is not supported yet by the mqtt source; use tcp://host:1883")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in _SCHEMES or not parts.hostname or port == -1 or parts.path not in ("", "/"):
        raise ValueError(f"expected tcp://host[:port] or mqtt://host[:port], got {url!r}")
    return parts.hostname, port or _SCHEMES[parts.scheme]


@register
class MqttSource:
    key: ClassVar[str] = "mqtt"
    Config: ClassVar[type[BaseModel]] = MqttConfig

    def __init__(self, ref: EventRef, config: MqttConfig, context: SourceContext) -> None:
        self.ref = ref
        self.config = config
        self.context = context
        self.stats = context.stats
        self._emit: EmitEvent | None = None
        self._credentials: tuple[str, str] | None = None
        self.upstream: Upstream | None = None

    def __repr__(self) -> str:
        return f"<MqttSource {self.ref.namespace}/{self.ref.source} {self.ref.event_name} topic={self.config.topic} {self.upstream!r}>"

    async def start(self, emit: EmitEvent) -> None:
        cfg, secrets, ns = self.config, self.context.secrets, self.ref.namespace
        if cfg.auth is not None:  # read now, so a missing secret fails the apply
            self._credentials = (secrets.read(cfg.auth.username, ns), secrets.read(cfg.auth.password, ns))
        self._emit = emit
        host, port = broker_address(cfg.url)
        self.upstream = Upstream(self.ref, f"MQTT {host}:{port}", self._session, cfg.connection_backoff, log)
        await self.upstream.start()

    async def stop(self) -> None:
        if self.upstream is not None:
            await self.upstream.stop()
        self._emit = None

    async def _session(self, ready: Callable[[], None]) -> None:
        cfg = self.config
        host, port = broker_address(cfg.url)
        username, password = self._credentials or (None, None)
        client = aiomqtt.Client(
            host, port, username=username, password=password, identifier=cfg.client_id, clean_session=False,
            timeout=FIRST_CONNECT_SECONDS, keepalive=30,
        )  # fmt: skip
        # paho acknowledges QoS 1 messages when its callback returns, before our emit; with manual_ack
        # the PUBACK is ours to send. Set before connecting: a resumed session delivers at once.
        # (aiomqtt does not expose the option; its paho client is ``_client``.)
        paho = client._client
        paho.manual_ack_set(True)
        try:
            async with client:
                result = await client.subscribe(cfg.topic, qos=1)
                granted = [code.value if isinstance(code, ReasonCode) else code for code in result]
                if any(code >= 0x80 for code in granted):
                    raise Refused(f"subscription to {cfg.topic!r} refused (SUBACK {granted})")
                ready()
                async for message in client.messages:
                    await self._handle(message, paho)
        except MqttConnectError as exc:
            code = exc.rc.value if isinstance(exc.rc, ReasonCode) else exc.rc
            if code in _UNAVAILABLE:
                raise
            raise Refused(str(exc)) from None

    async def _handle(self, message: aiomqtt.Message, paho: Any) -> None:
        upstream, emit = self.upstream, self._emit
        self.stats.received += 1
        raw = message.payload if isinstance(message.payload, (bytes, bytearray)) else str(message.payload).encode()
        body, encoding = decode_body(bytes(raw), self.config.json_body)
        data: dict[str, Any] = {"topic": message.topic.value, "messageId": message.mid, "body": body, "metadata": dict(self.config.metadata or {})}
        if encoding:
            data["bodyEncoding"] = encoding
        event_id = new_event_id()  # one id for every attempt: a publish that failed late is not stored twice
        while upstream is not None and emit is not None and not upstream.stopping:
            with upstream.in_flight():
                started = time.perf_counter()
                try:
                    _, _, ack = await emit(Emitted(data=data, id=event_id))
                except InvalidEvent as exc:  # cannot become an event, ever: acknowledged and counted
                    self.stats.reject("cloudevent")
                    log.warning("%s/%s %s: message on %s dropped: %s", self.ref.namespace, self.ref.source, self.ref.path, data["topic"], exc)
                    paho.ack(message.mid, message.qos)
                    return
                except BusError as exc:
                    self.stats.reject("bus")
                    failed = exc
                else:
                    self.stats.stored(time.perf_counter() - started, duplicate=ack.duplicate)
                    upstream.bus_ok()
                    paho.ack(message.mid, message.qos)
                    return
            await upstream.pause_after_bus_error(failed)
        # Stopping: not acknowledged, so the broker sends it again to this session.

"""``kafka``: events from a Kafka topic (aiokafka, an optional extra: ``pip install 'eventflow[kafka]'``).

aiokafka is imported when a kafka source starts, not with this module, so eventflow runs without it;
applying a kafka source without it fails with the install hint.

With ``consumerGroup`` the source joins the group (``rebalanceStrategy`` range, sticky or roundrobin;
``oldest`` starts a new group at the earliest offset, else the latest) and commits a record's offset only
after ``emit`` returned: a record whose event was not stored is read again by whichever member owns
the partition next. When the bus cannot store an event, the source seeks back to that record and
retries it after a growing pause. Without a group it reads ``partition`` from the newest offset, as
Argo does (records written while the source is not running are not read), resuming after the last
stored record when the connection comes back; nothing is committed.

The event id is ``<topic>-<partition>-<offset>``, so a record read twice (a commit lost in a rebalance
or a crash between storing and committing) is stored once within the bus's duplicate window.

Event data is Argo's ``KafkaEventData`` ``{topic, key, partition, timestamp, headers, body, metadata}``
with ``timestamp`` in RFC 3339 (not Go's ``time.String()``), plus eventflow's ``offset``, and
``bodyEncoding`` / ``keyEncoding: base64`` / ``headersEncoding: {name: base64}`` for bytes that are not
text. ``version`` is accepted and unused (aiokafka negotiates the protocol version with the broker).
Not supported yet, rejected at validation: ``tls``, ``sasl``, ``awsMskIamAuth``, ``schemaRegistry``,
``config`` (sarama's settings) and ``filter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eventbus import BusError, InvalidEvent
from sources._upstream import decode_body
from sources.amqp import CLOSE_SECONDS, Backoff, Refused, Upstream, rfc3339, unsupported
from sources.base import EmitEvent, Emitted, EventRef, SourceContext, register
from sources.spec import EventSourceError

__all__ = ["KafkaConfig", "KafkaSource"]

log = logging.getLogger("sources.kafka")

INSTALL_HINT = "pip install 'eventflow[kafka]'"
_ASSIGNORS = {
    "range": ("aiokafka.coordinator.assignors.range", "RangePartitionAssignor"),
    "roundrobin": ("aiokafka.coordinator.assignors.roundrobin", "RoundRobinPartitionAssignor"),
    "sticky": ("aiokafka.coordinator.assignors.sticky.sticky_assignor", "StickyPartitionAssignor"),
}


def _aiokafka() -> Any:
    """The aiokafka module, or None when the optional extra is not installed."""
    try:
        return importlib.import_module("aiokafka")
    except ImportError:
        return None


class ConsumerGroup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    group_name: str = Field(alias="groupName", min_length=1)
    oldest: bool = False
    rebalance_strategy: Literal["range", "sticky", "roundrobin"] = Field(default="range", alias="rebalanceStrategy")

    @field_validator("rebalance_strategy", mode="before")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        return (value.strip().lower() or "range") if isinstance(value, str) else value


class KafkaConfig(BaseModel):
    """One entry of ``spec.kafka`` (Argo's KafkaEventSource)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    url: str  # comma-separated host:port brokers
    topic: str = Field(min_length=1)
    partition: int | None = Field(default=None, ge=0)
    consumer_group: ConsumerGroup | None = Field(default=None, alias="consumerGroup")
    limit_events_per_second: int = Field(default=0, ge=0, alias="limitEventsPerSecond")
    version: str | None = None
    json_body: bool = Field(default=False, alias="jsonBody")
    metadata: dict[str, str] | None = None
    connection_backoff: Backoff = Field(default_factory=Backoff, alias="connectionBackoff")
    tls: dict[str, Any] | None = None
    sasl: dict[str, Any] | None = None
    aws_msk_iam_auth: dict[str, Any] | None = Field(default=None, alias="awsMskIamAuth")
    schema_registry: dict[str, Any] | None = Field(default=None, alias="schemaRegistry")
    config: str | None = None
    filter: dict[str, Any] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        brokers(value)
        return value

    @field_validator("partition", mode="before")
    @classmethod
    def _partition(cls, value: Any) -> Any:
        if isinstance(value, str):  # Argo writes the partition as a string
            if not value.strip():
                return None
            if not value.strip().isdigit():
                raise ValueError(f"expected a partition number, got {value!r}")
            return int(value)
        return value

    @model_validator(mode="after")
    def _rules(self) -> KafkaConfig:
        if self.partition is None and self.consumer_group is None:
            raise ValueError("give consumerGroup or partition")
        if self.sasl is not None or self.aws_msk_iam_auth is not None:
            raise ValueError("sasl/awsMskIamAuth: authenticated Kafka connections are not supported yet by the kafka source")
        if self.schema_registry is not None:
            raise ValueError("schemaRegistry: Avro decoding is not supported; the body is the record's bytes")
        if self.config is not None:
            raise ValueError("config: sarama settings do not apply to eventflow's Kafka client (aiokafka)")
        unsupported(self.tls, self.filter, "kafka")
        return self


def brokers(url: str) -> list[str]:
    found = [part.strip() for part in url.split(",")]
    for broker in found:
        host, sep, port = broker.rpartition(":")
        if not sep or not host or "/" in broker or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected comma-separated host:port brokers, got {url!r}")
    return found


@register
class KafkaSource:
    key: ClassVar[str] = "kafka"
    Config: ClassVar[type[BaseModel]] = KafkaConfig

    def __init__(self, ref: EventRef, config: KafkaConfig, context: SourceContext) -> None:
        self.ref = ref
        self.config = config
        self.context = context
        self.stats = context.stats
        self._emit: EmitEvent | None = None
        self._next_offset: int | None = None  # without a group: where to resume after a reconnect
        self.upstream: Upstream | None = None

    def __repr__(self) -> str:
        return f"<KafkaSource {self.ref.namespace}/{self.ref.source} {self.ref.event_name} topic={self.config.topic} {self.upstream!r}>"

    async def start(self, emit: EmitEvent) -> None:
        cfg = self.config
        if _aiokafka() is None:
            where = f"EventSource {self.ref.namespace}/{self.ref.source}"
            raise EventSourceError(where, [f"{self.ref.path}: the kafka source needs aiokafka, which is not installed: {INSTALL_HINT}"])
        if cfg.consumer_group is not None and cfg.partition is not None:
            log.warning("%s/%s %s: partition is ignored with consumerGroup (as in Argo)", self.ref.namespace, self.ref.source, self.ref.path)
        self._emit = emit
        self.upstream = Upstream(self.ref, f"Kafka {cfg.url}", self._session, cfg.connection_backoff, log)
        await self.upstream.start()

    async def stop(self) -> None:
        if self.upstream is not None:
            await self.upstream.stop()
        self._emit = None

    def _consumer(self, kafka: Any, on_assigned: Callable[[], None]) -> Any:
        cfg, ref = self.config, self.ref
        common: dict[str, Any] = {
            "bootstrap_servers": brokers(cfg.url), "client_id": f"eventflow-{ref.namespace}-{ref.source}-{ref.event_name}",
            "enable_auto_commit": False, "request_timeout_ms": 10_000,
        }  # fmt: skip
        group = cfg.consumer_group
        if group is None:
            return kafka.AIOKafkaConsumer(**common)
        module, name = _ASSIGNORS[group.rebalance_strategy]
        assignor = getattr(importlib.import_module(module), name)
        consumer = kafka.AIOKafkaConsumer(
            group_id=group.group_name, auto_offset_reset="earliest" if group.oldest else "latest",
            partition_assignment_strategy=(assignor,), **common,
        )  # fmt: skip

        class Rebalance(kafka.ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                pass  # offsets are committed record by record, nothing is pending

            async def on_partitions_assigned(self, assigned: Any) -> None:
                on_assigned()

        consumer.subscribe([cfg.topic], listener=Rebalance())
        return consumer

    async def _session(self, ready: Callable[[], None]) -> None:
        kafka, cfg = _aiokafka(), self.config
        assigned: list[bool] = []

        def on_assigned() -> None:  # the group's first assignment means: listening
            if not assigned:
                assigned.append(True)
                ready()

        consumer = self._consumer(kafka, on_assigned)
        try:
            await consumer.start()
            if cfg.consumer_group is None:
                await self._assign(kafka, consumer)
                ready()
            while True:
                record = await consumer.getone()
                await self._handle(kafka, consumer, record)
                if cfg.limit_events_per_second:
                    await asyncio.sleep(1 / cfg.limit_events_per_second)
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await consumer.stop()

    async def _assign(self, kafka: Any, consumer: Any) -> None:
        cfg = self.config
        if cfg.topic not in await consumer.topics():
            raise LookupError(f"topic {cfg.topic!r} does not exist (yet)")
        partitions = consumer.partitions_for_topic(cfg.topic) or set()
        if cfg.partition not in partitions:
            raise Refused(f"topic {cfg.topic!r} has no partition {cfg.partition} (it has {sorted(partitions)})")
        tp = kafka.TopicPartition(cfg.topic, cfg.partition)
        consumer.assign([tp])
        if self._next_offset is None:
            await consumer.seek_to_end(tp)  # Argo's OffsetNewest
        else:
            consumer.seek(tp, self._next_offset)

    async def _handle(self, kafka: Any, consumer: Any, record: Any) -> None:
        upstream, emit = self.upstream, self._emit
        if upstream is None or emit is None or upstream.stopping:
            return  # not committed: read again by the next owner of the partition
        tp = kafka.TopicPartition(record.topic, record.partition)
        self.stats.received += 1
        data = _event_data(record, self.config)
        event_id = f"{record.topic}-{record.partition}-{record.offset}"
        with upstream.in_flight():
            started = time.perf_counter()
            try:
                _, _, ack = await emit(Emitted(data=data, id=event_id))
            except InvalidEvent as exc:  # cannot become an event, ever: skipped (committed) and counted
                self.stats.reject("cloudevent")
                log.warning("%s/%s %s: record %s skipped: %s", self.ref.namespace, self.ref.source, self.ref.path, event_id, exc)
                await self._done(consumer, tp, record.offset)
                return
            except BusError as exc:
                self.stats.reject("bus")
                consumer.seek(tp, record.offset)  # read it again after the pause
                failed: BusError | None = exc
            else:
                failed = None
                self.stats.stored(time.perf_counter() - started, duplicate=ack.duplicate)
                upstream.bus_ok()
                await self._done(consumer, tp, record.offset)
        if failed is not None:
            await upstream.pause_after_bus_error(failed)

    async def _done(self, consumer: Any, tp: Any, offset: int) -> None:
        self._next_offset = offset + 1
        if self.config.consumer_group is None:
            return
        try:
            await consumer.commit({tp: offset + 1})
        except Exception as exc:  # noqa: BLE001 - CommitFailedError after a rebalance: read again, stored once (same id)
            log.warning("%s/%s %s: commit of %s offset %d failed: %s", self.ref.namespace, self.ref.source, self.ref.path, tp, offset, exc)


def _event_data(record: Any, cfg: KafkaConfig) -> dict[str, Any]:
    body, encoding = decode_body(record.value or b"", cfg.json_body)
    key, key_encoding = decode_body(record.key or b"", False)
    headers: dict[str, str] = {}
    header_encodings: dict[str, str] = {}
    for name, value in record.headers or ():
        text, header_encoding = decode_body(bytes(value or b""), False)
        headers[str(name)] = text
        if header_encoding:
            header_encodings[str(name)] = header_encoding
        else:
            header_encodings.pop(str(name), None)
    timestamp = record.timestamp
    data: dict[str, Any] = {
        "topic": record.topic, "key": key, "partition": record.partition, "offset": record.offset,
        "timestamp": rfc3339(datetime.fromtimestamp(timestamp / 1000, UTC)) if timestamp is not None and timestamp >= 0 else "",
        "headers": headers, "body": body, "metadata": dict(cfg.metadata or {}),
    }  # fmt: skip
    if encoding:
        data["bodyEncoding"] = encoding
    if key_encoding:
        data["keyEncoding"] = key_encoding
    if header_encodings:
        data["headersEncoding"] = header_encodings
    return data

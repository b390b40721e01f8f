"""``redisStream``: events from Redis Streams read through a consumer group (Argo's
``RedisStreamEventSource``), at least once.

The group (``consumerGroup``, default ``argo-events-cg``) is created on every stream when missing,
starting at the stream's end (``$``, as Argo) and with ``MKSTREAM``, so a stream that does not exist yet
is created empty instead of making the source wait for it (entries added after the source started are
then never missed). Entries are read with ``XREADGROUP`` as the consumer ``eventflow:<ns>/<source>/<event>``
(``maxMsgCountPerRead`` per stream and read) and each is ``XACK``ed only after the bus stored its event.

If the bus cannot store an entry, it is not acked: the source backs off (0.5 s doubling to 10 s) and
reads this consumer's pending entries again from the start (``XREADGROUP`` id ``0``), keeping each
stream's order, so the entry is retried until stored. The same pending re-read runs after every
(re)connect, so entries read but not acked before a crash or a lost connection are delivered. The
event id is ``<stream>:<entry id>``, so a redelivered entry is stored once (within the bus's duplicate
window). A pending entry deleted from the stream meanwhile is acked and skipped.

Event data is Argo's ``{stream, message_id, values, metadata}``: values are UTF-8 text, or base64 with
the field named in ``valuesEncoding: {field: "base64"}``. ``jsonBody: true`` (eventflow's addition)
parses each value as JSON; a value that is not JSON stays text and is marked ``"text"``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, ClassVar

import redis.asyncio as aioredis
from pydantic import BaseModel, Field, field_validator
from redis.exceptions import RedisError, ResponseError

from eventbus import BusError
from sources.base import EmitEvent, Emitted, EventRef, SourceContext, register
from sources._upstream import decode_body, describe
from sources.redis import Backoff, Listener, RedisConnection, connection_name, redis_client

__all__ = ["RedisStreamConfig", "RedisStreamSource"]

log = logging.getLogger("sources.redis_stream")

BLOCK_MS = 1000  # one XREADGROUP waits this long for new entries


class RedisStreamConfig(RedisConnection):
    """One entry of ``spec.redisStream`` (Argo's RedisStreamEventSource, plus ``jsonBody``)."""

    streams: list[str] = Field(min_length=1)
    consumer_group: str = Field(default="argo-events-cg", alias="consumerGroup", min_length=1)
    max_msg_count_per_read: int = Field(default=10, alias="maxMsgCountPerRead", ge=1)

    @field_validator("streams")
    @classmethod
    def _streams(cls, value: list[str]) -> list[str]:
        if any(not s for s in value):
            raise ValueError("stream names must not be empty")
        if len(set(value)) != len(value):
            raise ValueError("a stream is listed twice")
        return value


class _Undelivered(Exception):
    """The bus did not store an entry: leave it pending and retry from the pending list."""


@register
class RedisStreamSource:
    key: ClassVar[str] = "redisStream"
    Config: ClassVar[type[BaseModel]] = RedisStreamConfig

    def __init__(self, ref: EventRef, config: RedisStreamConfig, context: SourceContext) -> None:
        self.ref = ref
        self.config = config
        self.context = context
        self.stats = context.stats
        self.name = f"{ref.namespace}/{ref.source} {ref.event_name}"
        self.consumer = connection_name(ref)
        self.listener = Listener(f"redisStream {self.name}")
        self.connected = False
        self._emit: EmitEvent | None = None
        self._password: str | None = None

    def __repr__(self) -> str:
        return (f"<RedisStreamSource {self.name} {self.config.host_address}/{self.config.db} streams={self.config.streams} "
                f"group={self.config.consumer_group} connected={self.connected} received={self.stats.received} "
                f"published={self.stats.published}>")  # fmt: skip

    async def start(self, emit: EmitEvent) -> None:
        cfg = self.config
        self._password = self.context.secrets.read(cfg.password, self.ref.namespace) if cfg.password else None
        self._emit = emit
        self.listener.start(self._run)
        await self.listener.wait_first_attempt()

    async def stop(self) -> None:
        await self.listener.stop()
        self.connected = False
        log.info(
            "%s: stopped (received=%d published=%d)", self.name, self.stats.received, self.stats.published
        )

    # -- connection ---------------------------------------------------------------------------

    async def _run(self) -> None:
        cfg, backoff = self.config, Backoff()
        while not self.listener.stopping:
            client = redis_client(cfg.host_address, cfg.db, cfg.username, self._password, self.consumer)
            try:
                await self._create_groups(client, "$")
                self.connected = True
                self.listener.first_attempt.set()
                log.info("%s: reading %s on redis %s as %s in group %s", self.name, ", ".join(cfg.streams),
                         cfg.host_address, self.consumer, cfg.consumer_group)  # fmt: skip
                await self._consume(client, backoff)
                delay = 0.0
            except (RedisError, OSError, TimeoutError) as exc:
                state = "lost the connection to" if self.connected else "cannot read from"
                delay = backoff.lost(log, self.name, state, f"redis {cfg.host_address}", describe(exc))
            except Exception:
                delay = backoff.crashed(log, self.name)
            finally:
                self.connected = False
                self.listener.first_attempt.set()
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await client.aclose()
            if delay and not self.listener.stopping:
                await self.listener.pause(delay)

    async def _create_groups(self, client: aioredis.Redis, start_at: str) -> None:
        for stream in self.config.streams:
            try:
                await client.xgroup_create(stream, self.config.consumer_group, id=start_at, mkstream=True)
                log.info(
                    "%s: created consumer group %s on stream %s at %s",
                    self.name,
                    self.config.consumer_group,
                    stream,
                    start_at,
                )
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise

    # -- reading ------------------------------------------------------------------------------

    async def _consume(self, client: aioredis.Redis, reconnect: Backoff) -> None:
        cfg = self.config
        failures = Backoff()
        # Per stream: where to read this consumer's pending entries from, or ">" once they are done.
        cursors = dict.fromkeys(cfg.streams, "0")
        while not self.listener.stopping:
            history = {s: c for s, c in cursors.items() if c != ">"}
            try:
                reply = await self._read(client, history)
            except ResponseError as exc:
                if not str(exc).startswith("NOGROUP"):
                    raise
                # The stream was deleted (and with it the group): every entry in it now is new.
                log.warning(
                    "%s: consumer group %s is gone (%s); creating it again",
                    self.name,
                    cfg.consumer_group,
                    exc,
                )
                await self._create_groups(client, "0")
                cursors = dict.fromkeys(cfg.streams, "0")
                continue
            reconnect.reset()
            try:
                for stream, entries in reply:
                    if history and not entries:
                        cursors[stream] = ">"  # nothing (more) pending on this stream
                    for entry_id, fields in entries:
                        if self.listener.stopping:
                            return
                        await self._deliver(client, stream, entry_id, fields)
                        if history:
                            cursors[stream] = entry_id
            except _Undelivered:
                delay = failures.next()
                log.warning("%s: ↻ retrying pending entries in %.2fs", self.name, delay)
                await self.listener.pause(delay)
                cursors = dict.fromkeys(cfg.streams, "0")
                continue
            failures.reset()

    async def _read(
        self, client: aioredis.Redis, history: dict[str, str]
    ) -> list[tuple[str, list[tuple[str, dict[bytes, bytes]]]]]:
        """This consumer's pending entries after the ``history`` cursors, else new entries (blocking)."""
        cfg = self.config
        streams: dict[Any, Any] = history or dict.fromkeys(cfg.streams, ">")
        block = None if history else BLOCK_MS
        reply: Any = await client.xreadgroup(
            cfg.consumer_group, self.consumer, streams, count=cfg.max_msg_count_per_read, block=block
        )
        return [
            (_str(stream), [(_str(entry_id), fields or {}) for entry_id, fields in entries])
            for stream, entries in reply or ()
        ]

    async def _deliver(
        self, client: aioredis.Redis, stream: str, entry_id: str, fields: dict[bytes, bytes]
    ) -> None:
        emit = self._emit
        if emit is None:
            raise _Undelivered
        self.listener.busy = True
        try:
            if not fields:  # a pending entry that was deleted (XDEL, trimming): nothing to deliver
                log.info(
                    "%s: pending entry %s of %s no longer exists; acking it", self.name, entry_id, stream
                )
                await client.xack(stream, self.config.consumer_group, entry_id)
                return
            self.stats.received += 1
            started = time.perf_counter()
            try:
                event_id, _, ack = await emit(
                    Emitted(data=self._data(stream, entry_id, fields), id=f"{stream}:{entry_id}")
                )
            except BusError as exc:
                self.stats.reject("bus")
                log.warning(
                    "%s: ! entry %s of %s not stored, it stays pending: %s", self.name, entry_id, stream, exc
                )
                raise _Undelivered from None
            self.stats.stored(time.perf_counter() - started, duplicate=ack.duplicate)
            await client.xack(stream, self.config.consumer_group, entry_id)
            log.debug(
                "%s: entry %s of %s stored as %s%s",
                self.name,
                entry_id,
                stream,
                event_id,
                " (duplicate)" if ack.duplicate else "",
            )
        finally:
            self.listener.busy = False

    def _data(self, stream: str, entry_id: str, fields: dict[bytes, bytes]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        encodings: dict[str, str] = {}
        for raw_key, raw_value in fields.items():
            key = raw_key.decode(errors="backslashreplace")
            values[key], encoding = decode_body(raw_value, self.config.json_body)
            if encoding:
                encodings[key] = encoding
        data: dict[str, Any] = {
            "stream": stream,
            "message_id": entry_id,
            "values": values,
            "metadata": dict(self.config.metadata or {}),
        }
        if encodings:
            data["valuesEncoding"] = encodings
        return data


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""``redis``: events from Redis Pub/Sub channels (Argo's ``RedisEventSource``).

One connection per event SUBSCRIBEs to ``channels``; every message becomes one event with Argo's data
``{channel, pattern, body, metadata}`` (``pattern`` is ``""``: channels are subscribed by name, as
Argo does). Pub/Sub keeps nothing for absent subscribers, so delivery is at most once upstream: a
message published while the connection is down is gone, and a message the bus cannot store is logged
with the reason and counted (``rejected.bus``); there is nothing to nack.

Body: ``jsonBody: true`` embeds the parsed JSON; a body that is not JSON is kept as text (or base64)
and marked ``bodyEncoding: "text"`` (``"base64"``) so a sensor can tell. Without ``jsonBody`` the body
is the UTF-8 text, or base64 with ``bodyEncoding: "base64"`` when it is not UTF-8; never silently.

The connection is made when the source starts (``start`` waits for the subscription, so a message
published after the apply is received). If Redis does not answer, the apply still succeeds and the
source keeps reconnecting with a capped backoff (0.5 s doubling to 10 s), as after a lost connection.
``stop`` lets a message being stored finish (0.5 s at most) and returns within about a second.

This module also holds what the other upstream kinds share (:func:`decode_body`, :class:`Backoff`,
:class:`Listener`), see ``sources/redis_stream.py`` and ``sources/nats_subject.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from eventbus import BusError
from sources._upstream import decode_body, describe, reject_filter, reject_tls
from sources.base import EmitEvent, Emitted, EventRef, SourceContext, register
from sources.secrets import SecretRef

__all__ = [
    "Backoff", "Listener", "RedisConfig", "RedisSource", "connection_name", "decode_body", "describe", "redis_client",
    "reject_filter", "reject_tls", "split_host",
]  # fmt: skip

log = logging.getLogger("sources.redis")

STOP_GRACE_SECONDS = 0.5  # how long stop() lets a message being stored finish before cancelling
FIRST_ATTEMPT_SECONDS = 5.0  # how long start() waits for the first connection before returning
_POLL_SECONDS = 1.0


# -- shared by the upstream kinds ----------------------------------------------------------------






class Backoff:
    """Capped exponential delays: 0.5 s, 1 s, 2 s ... 10 s; ``reset`` after a success."""

    def __init__(self, first: float = 0.5, cap: float = 10.0) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first

    def lost(self, logger: logging.Logger, name: str, state: str, upstream: str, reason: str) -> float:
        """The upstream failed: log it as a warning and return the delay before reconnecting."""
        delay = self.next()
        logger.warning("%s: %s %s (%s); ↻ reconnecting in %.2fs", name, state, upstream, reason, delay)
        return delay

    def crashed(self, logger: logging.Logger, name: str) -> float:
        """Anything else is a bug rather than the upstream: keep the source alive, and say so loudly."""
        delay = self.next()
        logger.exception("%s: unexpected error; ↻ restarting in %.2fs", name, delay)
        return delay


class Listener:
    """The task that runs a kind's connect-and-consume loop, and its prompt stop.

    ``busy`` is set by the loop while a message is being stored and settled; ``stop`` lets that finish
    (``STOP_GRACE_SECONDS`` at most), otherwise cancels the loop at once. ``first_attempt`` is set by
    the loop once its first connection either worked or failed, so ``start`` can wait for it.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.stopping = False
        self.busy = False
        self.first_attempt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: Callable[[], Awaitable[None]]) -> None:
        self.stopping = False
        self.first_attempt.clear()
        self._task = asyncio.create_task(self._guarded(loop), name=self.name)

    async def wait_first_attempt(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.first_attempt.wait(), FIRST_ATTEMPT_SECONDS)

    async def stop(self) -> None:
        self.stopping = True
        task, self._task = self._task, None
        if task is None:
            return
        cancelled = not self.busy
        if cancelled:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
        if not done and not cancelled:  # the message in flight did not finish in time
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
        if not done:  # closing the connection hangs: leave it behind rather than hang the runtime
            log.warning(
                "%s: still closing its connection after stop; left to finish in the background", self.name
            )

    async def pause(self, seconds: float) -> None:
        """Sleep before a retry; the sleep is cancelled by ``stop``."""
        await asyncio.sleep(seconds)

    async def _guarded(self, loop: Callable[[], Awaitable[None]]) -> None:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop's own guard failed: say so, never take the runtime down
            log.exception("%s: the listener stopped on an unexpected error", self.name)
        finally:
            self.first_attempt.set()




def split_host(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {address!r}")
    return host.strip("[]"), int(port)


def redis_client(
    address: str, db: int, username: str | None, password: str | None, client_name: str
) -> aioredis.Redis:
    """A client that reports a lost connection at once (no silent retries: the caller reconnects)."""
    host, port = split_host(address)
    return aioredis.Redis(
        host=host, port=port, db=db, username=username, password=password, client_name=client_name,
        socket_connect_timeout=2, socket_timeout=10, socket_keepalive=True, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def connection_name(ref: EventRef) -> str:
    """The connection's name in ``CLIENT LIST`` (no spaces allowed): ``eventflow:<ns>/<source>/<event>``."""
    return re.sub(r"\s", "_", f"eventflow:{ref.namespace}/{ref.source}/{ref.event_name}")






# -- the redis kind ------------------------------------------------------------------------------


class RedisConnection(BaseModel):
    """The fields every Redis kind has: where the server is, who we are, and what we refuse."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    host_address: str = Field(alias="hostAddress")
    db: int = Field(default=0, ge=0)
    password: SecretRef | None = None
    username: str | None = None
    json_body: bool = Field(default=False, alias="jsonBody")
    metadata: dict[str, str] | None = None
    tls: dict[str, Any] | None = None
    filter: dict[str, Any] | None = None

    @field_validator("host_address")
    @classmethod
    def _address(cls, value: str) -> str:
        split_host(value)
        return value

    @model_validator(mode="after")
    def _unsupported(self) -> RedisConnection:
        reject_tls(self.tls, "Redis")
        reject_filter(self.filter)
        return self


class RedisConfig(RedisConnection):
    """One entry of ``spec.redis`` (Argo's RedisEventSource)."""

    channels: list[str] = Field(min_length=1)
    namespace: str | None = None  # where the password secret lives (default: the EventSource's)

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        if any(not c for c in value):
            raise ValueError("channel names must not be empty")
        return value


@register
class RedisSource:
    key: ClassVar[str] = "redis"
    Config: ClassVar[type[BaseModel]] = RedisConfig

    def __init__(self, ref: EventRef, config: RedisConfig, context: SourceContext) -> None:
        self.ref = ref
        self.config = config
        self.context = context
        self.stats = context.stats
        self.name = f"{ref.namespace}/{ref.source} {ref.event_name}"
        self.listener = Listener(f"redis {self.name}")
        self.subscribed = False
        self._emit: EmitEvent | None = None
        self._password: str | None = None

    def __repr__(self) -> str:
        return (f"<RedisSource {self.name} {self.config.host_address}/{self.config.db} channels={self.config.channels} "
                f"subscribed={self.subscribed} received={self.stats.received} published={self.stats.published}>")  # fmt: skip

    async def start(self, emit: EmitEvent) -> None:
        cfg = self.config
        # Read now, so a missing secret fails the apply rather than every reconnect.
        self._password = (
            self.context.secrets.read(cfg.password, cfg.namespace or self.ref.namespace)
            if cfg.password
            else None
        )
        self._emit = emit
        self.listener.start(self._run)
        await self.listener.wait_first_attempt()

    async def stop(self) -> None:
        await self.listener.stop()
        self.subscribed = False
        log.info(
            "%s: stopped (received=%d published=%d)", self.name, self.stats.received, self.stats.published
        )

    async def _run(self) -> None:
        cfg, backoff = self.config, Backoff()
        while not self.listener.stopping:
            client = redis_client(
                cfg.host_address, cfg.db, cfg.username, self._password, connection_name(self.ref)
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(*cfg.channels)
                await self._listen(pubsub, backoff)
            except (RedisError, OSError, TimeoutError) as exc:
                state = "lost the connection to" if self.subscribed else "cannot subscribe at"
                delay = backoff.lost(log, self.name, state, f"redis {cfg.host_address}", describe(exc))
            except Exception:
                delay = backoff.crashed(log, self.name)
            else:
                delay = 0.0
            finally:
                self.subscribed = False
                self.listener.first_attempt.set()
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await client.aclose()
            if delay and not self.listener.stopping:
                await self.listener.pause(delay)

    async def _listen(self, pubsub: Any, backoff: Backoff) -> None:
        confirmed: set[str] = set()
        while not self.listener.stopping:
            message = await pubsub.get_message(timeout=_POLL_SECONDS)
            if message is None:
                continue
            kind = message["type"]
            if kind == "subscribe":
                confirmed.add(_text(message["channel"]))
                if not self.subscribed and confirmed >= set(self.config.channels):
                    self.subscribed = True
                    backoff.reset()
                    self.listener.first_attempt.set()
                    log.info(
                        "%s: subscribed to %s on redis %s",
                        self.name,
                        ", ".join(self.config.channels),
                        self.config.host_address,
                    )
            elif kind in ("message", "pmessage"):
                await self._deliver(message)

    async def _deliver(self, message: dict[str, Any]) -> None:
        emit = self._emit
        if emit is None:
            return
        self.stats.received += 1
        body, encoding = decode_body(message["data"], self.config.json_body)
        data: dict[str, Any] = {
            "channel": _text(message["channel"]), "pattern": _text(message.get("pattern") or b""),
            "body": body, "metadata": dict(self.config.metadata or {}),
        }  # fmt: skip
        if encoding:
            data["bodyEncoding"] = encoding
        started = time.perf_counter()
        self.listener.busy = True
        try:
            event_id, _, ack = await emit(Emitted(data=data))
        except BusError as exc:
            self.stats.reject("bus")
            log.warning(
                "%s: ! message on %s lost, the bus could not store it: %s", self.name, data["channel"], exc
            )
            return
        finally:
            self.listener.busy = False
        self.stats.stored(time.perf_counter() - started, duplicate=ack.duplicate)
        log.debug("%s: message on %s stored as %s", self.name, data["channel"], event_id)


def _text(value: bytes | str) -> str:
    return value.decode(errors="backslashreplace") if isinstance(value, bytes) else value

"""The redisStream source against the real Redis (EVENTFLOW_TEST_REDIS_URL) onto the real bus: at least
once, acked only after the bus stored the event, stored once however often Redis delivers it."""

from __future__ import annotations

import base64
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from eventbus import BusConfig, CloudEvent, JetStreamBus
from sources.http import WebhookServer
from sources.runtime import SourceRuntime
from sources.secrets import Secrets
from sources.spec import EventSourceError
from tests.sources.conftest import Sources, free_port
from tests.support.poll import eventually

pytestmark = pytest.mark.nats

REDIS_URL = os.environ.get("EVENTFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379")
_parsed = urlparse(REDIS_URL)
HOST = f"{_parsed.hostname or '127.0.0.1'}:{_parsed.port or 6379}"
DB = int((_parsed.path or "/0").strip("/") or 0)
GROUP = "argo-events-cg"


@pytest.fixture
async def upstream() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        pytest.skip(f"no Redis: {REDIS_URL} does not answer ({exc}); set EVENTFLOW_TEST_REDIS_URL")
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def name(upstream: aioredis.Redis) -> AsyncIterator[str]:
    """A unique EventSource and stream-name prefix (CI shares the Redis server); its streams are deleted after."""
    prefix = f"evt-{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        keys = [key async for key in upstream.scan_iter(match=f"{prefix}*")]
        if keys:
            await upstream.delete(*keys)


def _config(streams: list[str], **extra: Any) -> dict[str, Any]:
    return {"hostAddress": HOST, "db": DB, "streams": streams, **extra}


def _consumer(source: str, event: str) -> str:
    return f"eventflow:default/{source}/{event}"


async def _events(sources: Sources, source: str) -> list[CloudEvent]:
    return [e for e in await sources.stored() if e.source == source]


async def _count(sources: Sources, source: str, n: int) -> bool:
    return len(await _events(sources, source)) >= n


async def _pending(upstream: aioredis.Redis, stream: str) -> int:
    return int((await upstream.xpending(stream, GROUP))["pending"])


def _manifest(name: str, events: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": name},
        "spec": {"redisStream": events},
    }


async def test_stream_entries_become_events_with_argo_data_and_are_acked(
    sources: Sources, upstream: aioredis.Redis, name: str
) -> None:
    s1, s2 = f"{name}-orders", f"{name}-refunds"
    before = await _add(upstream, s1, {"old": "1"})  # the group starts at the stream's end, as Argo's
    await sources.apply(name, {"orders": _config([s1, s2], metadata={"team": "ci"})}, kind="redisStream")
    first = await _add(upstream, s1, {"order": "42", "amount": "9.5"})
    second = await _add(upstream, s2, {"order": "43"})  # s2 did not exist: MKSTREAM made it
    await eventually(lambda: _count(sources, name, 2), what="two events")
    events = {e.data["stream"]: e for e in await _events(sources, name)}
    assert set(events) == {s1, s2}
    assert events[s1].id == f"{s1}:{first}" and events[s2].id == f"{s2}:{second}"
    assert (events[s1].type, events[s1].subject) == ("redisStream", "orders")
    assert events[s1].data == {
        "stream": s1,
        "message_id": first,
        "values": {"order": "42", "amount": "9.5"},
        "metadata": {"team": "ci"},
    }
    assert events[s2].data["values"] == {"order": "43"}
    assert before not in {e.data["message_id"] for e in events.values()}
    await eventually(lambda: _all_acked(upstream, [s1, s2]), what="both entries acked")


@pytest.mark.parametrize(
    ("json_body", "fields", "values", "encodings"),
    [
        (
            False,
            {"a": "text", "b": b"\xff"},
            {"a": "text", "b": base64.b64encode(b"\xff").decode()},
            {"b": "base64"},
        ),
        (
            True,
            {"a": '{"n": 1}', "b": "plain", "c": "7"},
            {"a": {"n": 1}, "b": "plain", "c": 7},
            {"b": "text"},
        ),
    ],
)
async def test_stream_values_are_decoded_and_marked_when_not_as_asked(
    sources: Sources, upstream: aioredis.Redis, name: str, json_body: bool, fields: dict[str, Any], values: dict[str, Any],
    encodings: dict[str, str],
) -> None:  # fmt: skip
    await sources.apply(name, {"in": _config([name], jsonBody=json_body)}, kind="redisStream")
    await _add(upstream, name, fields)
    await eventually(lambda: _count(sources, name, 1), what="the event")
    [event] = await _events(sources, name)
    assert event.data["values"] == values
    assert event.data["valuesEncoding"] == encodings


async def test_stream_entry_not_stored_stays_pending_until_a_new_runtime_delivers_it(
    sources: Sources,
    upstream: aioredis.Redis,
    bus_config: BusConfig,
    tmp_path: Path,
    name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = await JetStreamBus.connect(bus_config)
    first_runtime = SourceRuntime(failing, WebhookServer("127.0.0.1"), Secrets(tmp_path))
    manifest = _manifest(name, {"in": _config([name])})
    try:
        await first_runtime.apply(manifest, "default")
        stored_id = await _add(upstream, name, {"n": "1"})
        await eventually(lambda: _count(sources, name, 1), what="the first event")
        await eventually(lambda: _all_acked(upstream, [name]), what="the first entry acked")
        await failing.close()  # from now on the bus cannot store anything
        with caplog.at_level(logging.WARNING, logger="sources.redis_stream"):
            pending_id = await _add(upstream, name, {"n": "2"})
            await eventually(lambda: first_runtime.stats("default", name)["in"]["rejected"].get("bus", 0) >= 2,
                             what="the entry retried and refused again")  # fmt: skip
        assert f"! entry {pending_id} of {name} not stored, it stays pending" in caplog.text
        assert (
            "↻ retrying pending entries in 0.50s" in caplog.text
            and "↻ retrying pending entries in 1.00s" in caplog.text
        )
        [entry] = await upstream.xpending_range(name, GROUP, min="-", max="+", count=10)
        assert (_str(entry["message_id"]), _str(entry["consumer"])) == (pending_id, _consumer(name, "in"))
    finally:
        await first_runtime.close()
    assert await _pending(upstream, name) == 1  # a stopped source leaves it pending, not acked

    second_runtime = SourceRuntime(sources.bus, WebhookServer("127.0.0.1"), Secrets(tmp_path))
    try:
        await second_runtime.apply(manifest, "default")
        await eventually(lambda: _count(sources, name, 2), what="the pending entry stored")
        await eventually(lambda: _all_acked(upstream, [name]), what="the pending entry acked")
        stats = second_runtime.stats("default", name)["in"]
        assert (stats["received"], stats["published"], stats["duplicates"]) == (
            1,
            1,
            0,
        )  # the acked entry was not read again
    finally:
        await second_runtime.close()
    assert [e.id for e in await _events(sources, name)] == [f"{name}:{stored_id}", f"{name}:{pending_id}"]


async def test_stream_pending_entries_of_this_consumer_are_delivered_first(
    sources: Sources, upstream: aioredis.Redis, name: str
) -> None:
    await upstream.xgroup_create(name, GROUP, id="$", mkstream=True)
    read_before_crash = await _add(upstream, name, {"n": "1"})
    deleted_meanwhile = await _add(upstream, name, {"n": "2"})
    await upstream.xreadgroup(GROUP, _consumer(name, "in"), {name: ">"}, count=10)  # delivered, never acked
    await upstream.xdel(name, deleted_meanwhile)
    await sources.apply(name, {"in": _config([name])}, kind="redisStream")
    await eventually(lambda: _count(sources, name, 1), what="the pending entry stored")
    await eventually(lambda: _all_acked(upstream, [name]), what="both pending entries acked")
    assert [e.data["message_id"] for e in await _events(sources, name)] == [read_before_crash]


async def test_stream_entry_delivered_again_is_stored_once(
    sources: Sources, upstream: aioredis.Redis, name: str
) -> None:
    await sources.apply(name, {"in": _config([name])}, kind="redisStream")
    await upstream.xadd(name, {"n": "1"})
    await eventually(lambda: _count(sources, name, 1), what="the event")
    await upstream.xgroup_setid(name, GROUP, id="0")  # Redis hands the group the same entry again
    await eventually(
        lambda: sources.runtime.stats("default", name)["in"]["duplicates"] == 1, what="the redelivery"
    )
    await eventually(lambda: _all_acked(upstream, [name]), what="the redelivery acked")
    assert len(await _events(sources, name)) == 1


async def test_stream_reconnects_after_its_connection_is_killed(
    sources: Sources, upstream: aioredis.Redis, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    await sources.apply(name, {"in": _config([name])}, kind="redisStream")
    consumer = _consumer(name, "in")
    [before] = [c for c in await upstream.client_list() if c.get("name") == consumer]
    with caplog.at_level(logging.WARNING, logger="sources.redis_stream"):
        await upstream.client_kill_filter(_id=before["id"])
        await upstream.xadd(name, {"n": "after"})
        await eventually(lambda: _count(sources, name, 1), what="the entry added while reconnecting")
    assert "lost the connection to redis" in caplog.text and "↻ reconnecting in 0.50s" in caplog.text
    await eventually(lambda: _all_acked(upstream, [name]), what="the entry acked")


async def test_stream_deleted_with_its_group_is_read_again_from_its_start(
    sources: Sources, upstream: aioredis.Redis, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    await sources.apply(name, {"in": _config([name])}, kind="redisStream")
    with caplog.at_level(logging.WARNING, logger="sources.redis_stream"):
        await upstream.delete(name)
        await upstream.xadd(name, {"n": "first of the new stream"})
        await eventually(lambda: _count(sources, name, 1), what="the new stream's entry")
    assert f"consumer group {GROUP} is gone" in caplog.text


async def test_stream_stop_is_prompt_and_closes_the_connection(
    sources: Sources, upstream: aioredis.Redis, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    await sources.apply(name, {"in": _config([name])}, kind="redisStream")
    started = time.monotonic()
    await sources.runtime.remove("default", name)  # while blocked in XREADGROUP
    assert time.monotonic() - started < 1.0

    async def closed() -> bool:
        return not [c for c in await upstream.client_list() if c.get("name") == _consumer(name, "in")]

    await eventually(closed, what="the connection to close")
    with caplog.at_level(logging.WARNING, logger="sources.redis_stream"):
        await sources.apply(
            name, {"down": {"hostAddress": f"127.0.0.1:{free_port()}", "streams": [name]}}, kind="redisStream"
        )
    assert "cannot read from redis" in caplog.text
    started = time.monotonic()
    await sources.runtime.remove("default", name)  # while backing off
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"filter": {"expression": "true"}},
            r"spec\.redisStream\.in: filter: source-side filters are not supported",
        ),
        (
            {"tls": {"insecureSkipVerify": True}},
            r"spec\.redisStream\.in: tls: TLS connections to Redis are not supported",
        ),
        ({"streams": ["a", "a"]}, r"spec\.redisStream\.in\.streams: .*a stream is listed twice"),
        ({"maxMsgCountPerRead": 0}, r"spec\.redisStream\.in\.maxMsgCountPerRead"),
    ],
)
async def test_stream_invalid_config_is_rejected_with_its_path(
    sources: Sources, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(EventSourceError, match=message):
        await sources.apply("bad", {"in": {**_config(["s"]), **extra}}, kind="redisStream")


async def _all_acked(upstream: aioredis.Redis, streams: list[str]) -> bool:
    return all([await _pending(upstream, s) == 0 for s in streams])


async def _add(upstream: aioredis.Redis, stream: str, fields: dict[Any, Any]) -> str:
    """XADD; the new entry's id."""
    return _str(await upstream.xadd(stream, fields))


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

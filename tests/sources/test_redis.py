"""The redis (Pub/Sub) source against the real Redis (EVENTFLOW_TEST_REDIS_URL) onto the real bus."""

from __future__ import annotations

import base64
import json
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
def name() -> str:
    """A unique EventSource (and channel prefix) name: CI shares the Redis server."""
    return f"evt-{uuid.uuid4().hex[:10]}"


def _config(channels: list[str], **extra: Any) -> dict[str, Any]:
    return {"hostAddress": HOST, "db": DB, "channels": channels, **extra}


async def _events(sources: Sources, source: str) -> list[CloudEvent]:
    return [e for e in await sources.stored() if e.source == source]


async def _connections(upstream: aioredis.Redis, source: str, event: str) -> list[dict[str, Any]]:
    wanted = f"eventflow:default/{source}/{event}"
    return [c for c in await upstream.client_list() if c.get("name") == wanted]


async def test_redis_messages_become_events_with_argo_data(
    sources: Sources, upstream: aioredis.Redis, name: str
) -> None:
    a, b = f"{name}-a", f"{name}-b"
    await sources.apply(name, {"chat": _config([a, b], metadata={"team": "ci"})}, kind="redis")
    assert await upstream.publish(a, "hello") == 1  # subscribed by the time apply returned
    assert await upstream.publish(b, json.dumps({"n": 1})) == 1
    await eventually(lambda: _count(sources, name, 2), what="two events")
    first, second = await _events(sources, name)
    assert (first.type, first.source, first.subject, first.eventname) == ("redis", name, "chat", "chat")
    assert first.data == {"channel": a, "pattern": "", "body": "hello", "metadata": {"team": "ci"}}
    assert second.data == {"channel": b, "pattern": "", "body": '{"n": 1}', "metadata": {"team": "ci"}}
    assert sources.runtime.stats("default", name)["chat"]["published"] == 2


@pytest.mark.parametrize(
    ("json_body", "raw", "body", "encoding"),
    [
        (True, b'{"n": [1, 2]}', {"n": [1, 2]}, None),
        (True, b"not json", "not json", "text"),
        (True, b"\xff\x00", base64.b64encode(b"\xff\x00").decode(), "base64"),
        (False, "héllo".encode(), "héllo", None),
        (False, b"\xff\x00", base64.b64encode(b"\xff\x00").decode(), "base64"),
    ],
)
async def test_redis_bodies_are_decoded_and_marked_when_not_as_asked(
    sources: Sources,
    upstream: aioredis.Redis,
    name: str,
    json_body: bool,
    raw: bytes,
    body: object,
    encoding: str | None,
) -> None:
    await sources.apply(name, {"in": _config([name], jsonBody=json_body)}, kind="redis")
    await upstream.publish(name, raw)
    await eventually(lambda: _count(sources, name, 1), what="the event")
    [event] = await _events(sources, name)
    assert event.data["body"] == body
    assert event.data.get("bodyEncoding") == encoding


async def test_redis_acl_user_and_password_secret_are_used(
    sources: Sources, upstream: aioredis.Redis, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = f"{name}-user"
    await upstream.acl_setuser(
        user,
        enabled=True,
        passwords=["+p4ss-word"],
        channels=[name],
        commands=["+subscribe", "+ping", "+client|setname", "+select"],
    )
    try:
        monkeypatch.setenv("EVENTFLOW_SECRET_REDIS_AUTH_PASSWORD", "p4ss-word")
        secret = {"name": "redis-auth", "key": "password"}
        await sources.apply(name, {"in": _config([name], username=user, password=secret)}, kind="redis")
        assert await upstream.publish(name, "hi") == 1
        await eventually(lambda: _count(sources, name, 1), what="the event")
    finally:
        await sources.runtime.remove("default", name)
        await upstream.acl_deluser(user)


async def test_redis_reconnects_after_its_connection_is_killed(
    sources: Sources, upstream: aioredis.Redis, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    await sources.apply(name, {"in": _config([name])}, kind="redis")
    [before] = await _connections(upstream, name, "in")
    with caplog.at_level(logging.WARNING, logger="sources.redis"):
        await upstream.client_kill_filter(_id=before["id"])

        async def subscribed_again() -> bool:
            return any(
                c["id"] != before["id"] and c.get("sub") == "1"
                for c in await _connections(upstream, name, "in")
            )

        await eventually(subscribed_again, what="a new subscribed connection")
    assert "lost the connection to redis" in caplog.text and "↻ reconnecting in 0.50s" in caplog.text

    # redis-py may reconnect and resubscribe on its own before the source sees the error and makes its
    # own new connection: the subscribed connection seen above can be that short-lived one. Pub/Sub keeps
    # nothing for absent subscribers, so publish until a subscriber receives.
    async def received() -> bool:
        return await upstream.publish(name, "after") == 1

    await eventually(received, what="a subscriber for the publish after the reconnect")
    await eventually(lambda: _count(sources, name, 1), what="the event after the reconnect")


async def test_redis_message_the_bus_cannot_store_is_logged_and_counted(
    sources: Sources,
    upstream: aioredis.Redis,
    bus_config: BusConfig,
    tmp_path: Path,
    name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = await JetStreamBus.connect(bus_config)
    runtime = SourceRuntime(failing, WebhookServer("127.0.0.1"), Secrets(tmp_path))
    try:
        await runtime.apply(_manifest(name, {"in": _config([name])}), "default")
        await failing.close()
        with caplog.at_level(logging.WARNING, logger="sources.redis"):
            await upstream.publish(name, "lost")
            await eventually(
                lambda: runtime.stats("default", name)["in"]["rejected"] == {"bus": 1}, what="the rejection"
            )
        assert "! message on " + name + " lost, the bus could not store it" in caplog.text
        assert await upstream.pubsub_numsub(name) == [(name.encode(), 1)]  # still listening
    finally:
        await runtime.close()
    assert await _events(sources, name) == []


async def test_redis_unreachable_at_start_applies_and_stops_promptly(
    sources: Sources, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sources.redis"):
        started = time.monotonic()
        await sources.apply(
            name, {"in": {"hostAddress": f"127.0.0.1:{free_port()}", "channels": [name]}}, kind="redis"
        )
        assert time.monotonic() - started < 3
    assert "cannot subscribe at redis" in caplog.text
    started = time.monotonic()
    assert await sources.runtime.remove("default", name)
    assert time.monotonic() - started < 1.0


async def test_redis_stop_is_prompt_and_closes_the_connection(
    sources: Sources, upstream: aioredis.Redis, name: str
) -> None:
    await sources.apply(name, {"in": _config([name])}, kind="redis")
    assert len(await _connections(upstream, name, "in")) == 1
    started = time.monotonic()
    await sources.runtime.remove("default", name)
    assert time.monotonic() - started < 1.0
    await eventually(lambda: _no_connections(upstream, name, "in"), what="the connection to close")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"filter": {"expression": "true"}},
            r"spec\.redis\.in: filter: source-side filters are not supported",
        ),
        (
            {"tls": {"caCertSecret": {"name": "ca", "key": "crt"}}},
            r"spec\.redis\.in: tls: TLS connections to Redis are not supported",
        ),
        ({"hostAddress": "redis"}, r"spec\.redis\.in\.hostAddress: expected host:port, got 'redis'"),
        ({"channels": []}, r"spec\.redis\.in\.channels"),
        ({"connectionBackoff": {}}, r"spec\.redis\.in\.connectionBackoff: Extra inputs are not permitted"),
    ],
)
async def test_redis_invalid_config_is_rejected_with_its_path(
    sources: Sources, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(EventSourceError, match=message):
        await sources.apply("bad", {"in": {**_config(["c"]), **extra}}, kind="redis")


def _manifest(name: str, events: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": name},
        "spec": {"redis": events},
    }


async def _count(sources: Sources, source: str, n: int) -> bool:
    return len(await _events(sources, source)) >= n


async def _no_connections(upstream: aioredis.Redis, source: str, event: str) -> bool:
    return not await _connections(upstream, source, event)

"""The amqp source against the real RabbitMQ on this machine (EVENTFLOW_TEST_AMQP_URL), onto the real bus:
a message is acknowledged only after its event is stored, redelivered when the bus could not store it,
and the source rides out a dropped connection."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import aio_pika
import pytest

from eventbus import BusUnavailable, CloudEvent, PublishAck
from sources.spec import EventSourceError
from tests.sources.conftest import Sources
from tests.support.poll import eventually

pytestmark = pytest.mark.nats

AMQP_URL = os.environ.get("EVENTFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpProxy:
    """A TCP relay in front of a broker; ``drop()`` cuts every relayed connection as a network fault
    would, while new connections are still relayed."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.writers: list[asyncio.StreamWriter] = []
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.close()
            return
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()

        for task in (asyncio.create_task(pipe(reader, up_writer)), asyncio.create_task(pipe(up_reader, writer))):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def drop(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
def amqp_url() -> str:
    if not _answers(AMQP_URL, 5672):
        pytest.skip(f"no RabbitMQ: {AMQP_URL} does not answer (set EVENTFLOW_TEST_AMQP_URL)")
    return AMQP_URL


@pytest.fixture
async def broker(amqp_url: str, sources: Sources) -> AsyncIterator[Broker]:
    broker = Broker(amqp_url, uuid.uuid4().hex[:10])
    await broker.open()
    try:
        yield broker
    finally:
        await sources.runtime.close()  # first, so no source declares its queue again after the clean-up
        await broker.close()


class Broker:
    """The test's own connection: unique exchange/queue names, publishing, and clean-up of all it named."""

    def __init__(self, url: str, tag: str) -> None:
        self.url = url
        self.exchange = f"eventflow-test-{tag}"
        self.queue = f"eventflow-test-{tag}"
        self._names: set[tuple[str, str]] = {("exchange", self.exchange), ("queue", self.queue)}
        self.connection: aio_pika.abc.AbstractConnection | None = None

    def name(self, kind: str, suffix: str) -> str:
        name = f"{self.queue}-{suffix}"
        self._names.add((kind, name))
        return name

    async def open(self) -> None:
        self.connection = await aio_pika.connect(self.url, timeout=5)

    async def publish(self, body: bytes, routing_key: str = "orders", exchange: str | None = None, **properties: Any) -> None:
        assert self.connection is not None
        channel = await self.connection.channel()
        try:
            target = await channel.get_exchange(exchange or self.exchange, ensure=False)
            message = aio_pika.Message(body, **properties)
            if "message_id" in properties:
                await target.publish(message, routing_key=routing_key)
            else:  # aiormq gives every message a random id; Go's and Java's clients send none
                with mock.patch("aiormq.channel.UUID", lambda **_: SimpleNamespace(hex="")):
                    await target.publish(message, routing_key=routing_key)
        finally:
            await channel.close()

    async def queue_depth(self, name: str | None = None) -> int:
        assert self.connection is not None
        channel = await self.connection.channel()
        try:
            queue = await channel.declare_queue(name or self.queue, passive=True)
            return int(queue.declaration_result.message_count or 0)
        finally:
            await channel.close()

    async def close(self) -> None:
        assert self.connection is not None
        for kind, name in sorted(self._names, reverse=True):  # queues before exchanges
            channel = await self.connection.channel()
            try:
                if kind == "queue":
                    await channel.queue_delete(name)
                else:
                    await channel.exchange_delete(name)
            except aio_pika.exceptions.AMQPError:
                pass
            finally:
                if not channel.is_closed:
                    await channel.close()
        await self.connection.close()


def event_spec(broker: Broker, url: str | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "url": url or broker.url, "exchangeName": broker.exchange, "exchangeType": "direct", "routingKey": "orders",
        "exchangeDeclare": {"durable": False, "autoDelete": False},
        "queueDeclare": {"name": broker.queue, "durable": True},
    }  # fmt: skip
    spec.update(extra)
    return spec


async def test_amqp_messages_arrive_with_argos_data_shape(sources: Sources, broker: Broker) -> None:
    await sources.apply("rabbit", {"orders": event_spec(broker, metadata={"team": "billing"})}, kind="amqp")
    sent_at = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
    await broker.publish(
        b'{"order": 7}', content_type="application/json", content_encoding="utf-8", message_id="order-7",
        correlation_id="corr-1", reply_to="replies", expiration=60, timestamp=sent_at, type="order.created",
        app_id="shop", priority=5, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, headers={"tenant": "acme", "n": 3},
    )  # fmt: skip
    await broker.publish("héllo".encode())
    await broker.publish(b"\x00\xff")
    await eventually(lambda: _count_is(sources, 3), what="three stored events")
    first, text, binary = await sources.stored()
    assert (first.id, first.type, first.source, first.subject) == ("order-7", "amqp", "rabbit", "orders")
    assert first.data == {
        "contentType": "application/json", "contentEncoding": "utf-8", "deliveryMode": 2, "priority": 5,
        "correlationId": "corr-1", "replyTo": "replies", "expiration": "60000", "messageId": "order-7",
        "timestamp": "2026-11-30T10:00:00Z", "type": "order.created", "appId": "shop", "exchange": broker.exchange,
        "routingKey": "orders", "body": '{"order": 7}', "headers": {"tenant": "acme", "n": 3},
        "metadata": {"team": "billing"},
    }  # fmt: skip
    assert text.data["body"] == "héllo" and "bodyEncoding" not in text.data
    assert (text.data["messageId"], text.data["timestamp"], text.data["headers"]) == ("", "", {})
    assert text.id != binary.id  # no messageId: a fresh id each
    assert binary.data["body"] == base64.b64encode(b"\x00\xff").decode() and binary.data["bodyEncoding"] == "base64"
    await eventually(lambda: _depth_is(broker, 0), what="every message acknowledged")


async def test_amqp_json_body_is_parsed_and_non_json_is_marked(sources: Sources, broker: Broker) -> None:
    await sources.apply("rabbit", {"orders": event_spec(broker, jsonBody=True)}, kind="amqp")
    await broker.publish(b'{"order": 7}')
    await broker.publish(b"not json")
    await eventually(lambda: _count_is(sources, 2), what="two stored events")
    parsed, text = await sources.stored()
    assert parsed.data["body"] == {"order": 7} and "bodyEncoding" not in parsed.data
    assert (text.data["body"], text.data["bodyEncoding"]) == ("not json", "text")


async def test_amqp_message_the_bus_could_not_store_is_redelivered_and_stored_once(
    sources: Sources, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sources.apply("rabbit", {"orders": event_spec(broker)}, kind="amqp")
    await broker.publish(b"one", message_id="m-1")
    await eventually(lambda: _count_is(sources, 1), what="the first event")
    real_publish = sources.bus.publish
    failures: list[str] = []

    async def fail_once(event: CloudEvent, *, subject: str | None = None) -> PublishAck:
        if not failures:
            failures.append(event.id)
            raise BusUnavailable("nats://test", "injected outage")
        return await real_publish(event, subject=subject)

    monkeypatch.setattr(sources.bus, "publish", fail_once)
    await broker.publish(b"two")  # no messageId: only the broker's redelivery can bring it back
    await eventually(lambda: _count_is(sources, 2), what="the redelivered event")
    events = await sources.stored()
    assert [e.data["body"] for e in events] == ["one", "two"]
    assert len(failures) == 1 and failures[0] != events[1].id  # stored once, by the redelivery
    stats = sources.runtime.stats("default", "rabbit")["orders"]
    assert (stats["received"], stats["published"], stats["rejected"]) == (3, 2, {"bus": 1})
    await sources.runtime.remove("default", "rabbit")  # closing the channel would return anything unacked
    assert await broker.queue_depth() == 0
    assert await sources.count() == 2


async def test_amqp_source_reconnects_after_the_connection_is_dropped(sources: Sources, broker: Broker) -> None:
    parts = urlsplit(broker.url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    port = await proxy.start()
    try:
        via_proxy = broker.url.replace(f"{parts.hostname}:{parts.port or 5672}", f"127.0.0.1:{port}")
        backoff = {"duration": "50ms", "factor": 2, "jitter": 0}
        await sources.apply("rabbit", {"orders": event_spec(broker, url=via_proxy, connectionBackoff=backoff)}, kind="amqp")
        await broker.publish(b"before", message_id="before")
        await eventually(lambda: _count_is(sources, 1), what="the event before the drop")
        proxy.drop()
        await broker.publish(b"during", message_id="during")  # the durable queue keeps it meanwhile
        await eventually(lambda: _count_is(sources, 2), what="the event after reconnecting")
        await broker.publish(b"after", message_id="after")
        await eventually(lambda: _count_is(sources, 3), what="the event on the new connection")
        assert [e.id for e in await sources.stored()] == ["before", "during", "after"]
        assert proxy.accepted >= 2
    finally:
        await sources.runtime.remove("default", "rabbit")
        await proxy.close()


@pytest.mark.timing
async def test_amqp_stop_is_prompt_when_connected_and_when_the_broker_is_gone(sources: Sources, broker: Broker) -> None:
    await sources.apply("rabbit", {"orders": event_spec(broker)}, kind="amqp")
    started = time.monotonic()
    await sources.runtime.remove("default", "rabbit")
    assert time.monotonic() - started < 1.0
    # A broker that refuses connections: the apply succeeds, the source keeps retrying, stop is prompt.
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    await sources.apply("gone", {"orders": event_spec(broker, url=nowhere)}, kind="amqp")
    started = time.monotonic()
    await sources.runtime.remove("default", "gone")
    assert time.monotonic() - started < 1.0


@pytest.mark.timing
async def test_amqp_stop_is_prompt_while_the_bus_is_down(sources: Sources, broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    await sources.apply("rabbit", {"orders": event_spec(broker)}, kind="amqp")

    async def down(event: CloudEvent, *, subject: str | None = None) -> PublishAck:
        raise BusUnavailable("nats://test", "injected outage")

    monkeypatch.setattr(sources.bus, "publish", down)
    await broker.publish(b"stuck", message_id="stuck")
    await eventually(lambda: sources.runtime.stats("default", "rabbit")["orders"]["rejected"].get("bus", 0) >= 2, what="retries")
    started = time.monotonic()
    await sources.runtime.remove("default", "rabbit")
    assert time.monotonic() - started < 1.0
    assert await broker.queue_depth() == 1  # never acked: still there for the next consumer


async def test_amqp_credentials_from_secrets(sources: Sources, broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = urlsplit(broker.url)
    monkeypatch.setenv("AMQP_TEST_USER", parts.username or "guest")
    monkeypatch.setenv("AMQP_TEST_PASSWORD", parts.password or "guest")
    bare = broker.url.replace(f"{parts.username}:{parts.password}@", "") if parts.username else broker.url
    auth = {"username": {"env": "AMQP_TEST_USER"}, "password": {"env": "AMQP_TEST_PASSWORD"}}
    await sources.apply("rabbit", {"orders": event_spec(broker, url=bare, auth=auth)}, kind="amqp")
    await broker.publish(b"x", message_id="authed")
    await eventually(lambda: _count_is(sources, 1), what="the event")
    monkeypatch.setenv("AMQP_TEST_PASSWORD", "wrong")
    with pytest.raises(EventSourceError, match=r"spec\.amqp\.other: RabbitMQ .* refused: authentication failed"):
        await sources.apply("bad", {"other": event_spec(broker, url=bare, auth=auth)}, kind="amqp")


async def test_amqp_declaration_the_broker_refuses_fails_the_apply(sources: Sources, broker: Broker) -> None:
    await sources.apply("rabbit", {"orders": event_spec(broker)}, kind="amqp")  # the queue is durable
    clash = event_spec(broker, queueDeclare={"name": broker.queue, "durable": False})
    with pytest.raises(EventSourceError, match=r"spec\.amqp\.clash: RabbitMQ .* refused: .*PRECONDITION_FAILED"):
        await sources.apply("other", {"clash": clash}, kind="amqp")


async def test_amqp_auto_ack_warns_of_at_most_once(sources: Sources, broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sources.amqp"):
        await sources.apply("rabbit", {"orders": event_spec(broker, consume={"autoAck": True})}, kind="amqp")
    assert "consume.autoAck is true" in caplog.text and "at most once" in caplog.text
    await broker.publish(b"x", message_id="auto")
    await eventually(lambda: _count_is(sources, 1), what="the event")


async def test_amqp_same_message_id_in_two_sources_is_stored_for_each(sources: Sources, broker: Broker) -> None:
    fanout = broker.name("exchange", "fanout")
    first, second = broker.name("queue", "a"), broker.name("queue", "b")
    common = {"exchangeName": fanout, "exchangeType": "fanout"}
    await sources.apply("a", {"orders": event_spec(broker, queueDeclare={"name": first}, **common)}, kind="amqp")
    await sources.apply("b", {"orders": event_spec(broker, queueDeclare={"name": second}, **common)}, kind="amqp")
    await broker.publish(b"x", exchange=fanout, message_id="shared-id")
    await eventually(lambda: _depth_is(broker, 0, first), what="a consumed")
    await eventually(lambda: _depth_is(broker, 0, second), what="b consumed")
    assert {e.eventsource for e in await sources.stored()} == {"a", "b"}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"url": "http://rabbit:5672"}, r"spec\.amqp\.x\.url: expected amqp://"),
        ({"url": "amqps://rabbit:5671"}, r"spec\.amqp\.x\.url: amqps:// \(TLS\) is not supported yet"),
        ({"url": None}, r"spec\.amqp\.x: give one of url or urlSecret"),
        ({"routingKey": None}, r"spec\.amqp\.x\.routingKey: Field required"),
        ({"tls": {"caCertSecret": {"name": "ca", "key": "crt"}}}, r"spec\.amqp\.x: tls: TLS connections to the amqp broker are not supported"),
        ({"filter": {"expression": "true"}}, r"spec\.amqp\.x: filter: source-side filters are not supported"),
        ({"queueDeclare": {"arguments": "- a list"}}, r"spec\.amqp\.x\.queueDeclare\.arguments: expected a YAML mapping"),
        ({"connectionBackoff": {"duration": "soon"}}, r"spec\.amqp\.x\.connectionBackoff\.duration: invalid duration"),
        ({"consume": {"autoack": True}}, r"spec\.amqp\.x\.consume\.autoack: Extra inputs are not permitted"),
    ],
)
async def test_amqp_invalid_settings_name_their_yaml_path(sources: Sources, spec: dict[str, Any], problem: str) -> None:
    base = {"url": "amqp://rabbit:5672/", "exchangeName": "e", "exchangeType": "direct", "routingKey": "k"}
    entry = {k: v for k, v in {**base, **spec}.items() if v is not None}
    with pytest.raises(EventSourceError, match=problem):
        await sources.apply("bad", {"x": entry}, kind="amqp")


async def test_amqp_url_secret_that_is_not_a_url_fails_without_revealing_it(sources: Sources, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_TEST_URL", "http://user:hunter2@rabbit/")
    entry = {"urlSecret": {"env": "AMQP_TEST_URL"}, "exchangeName": "e", "exchangeType": "direct", "routingKey": "k"}
    with pytest.raises(EventSourceError, match=r"spec\.amqp\.x\.urlSecret: environment variable AMQP_TEST_URL: expected amqp://") as raised:
        await sources.apply("bad", {"x": entry}, kind="amqp")
    assert "hunter2" not in str(raised.value)


async def _count_is(sources: Sources, n: int) -> bool:
    return await sources.count() == n


async def _depth_is(broker: Broker, n: int, queue: str | None = None) -> bool:
    return await broker.queue_depth(queue) == n


async def test_amqp_source_declares_again_when_its_queue_is_deleted(sources: Sources, broker: Broker) -> None:
    backoff = {"duration": "50ms", "jitter": 0}
    await sources.apply("rabbit", {"orders": event_spec(broker, connectionBackoff=backoff)}, kind="amqp")
    assert broker.connection is not None
    channel = await broker.connection.channel()
    await channel.queue_delete(broker.queue)
    await channel.close()

    async def redeclared() -> bool:
        try:
            return await broker.queue_depth() == 0
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False

    await eventually(redeclared, what="the queue declared again")
    await broker.publish(b"x", message_id="after-delete")
    await eventually(lambda: _count_is(sources, 1), what="the event")

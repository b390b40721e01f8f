"""The kafka source: validation and the optional-dependency error run everywhere; the broker tests run
against the Kafka named by EVENTFLOW_TEST_KAFKA (host:port) with aiokafka installed, and skip otherwise."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from eventbus import BusUnavailable, CloudEvent, PublishAck
from sources.kafka import KafkaConfig, _event_data
from sources.spec import EventSourceError
from tests.sources.conftest import Sources
from tests.sources.test_amqp import free_port
from tests.support.poll import eventually

pytestmark = pytest.mark.nats

ROOT = Path(__file__).resolve().parents[2]


def test_kafka_module_imports_without_aiokafka() -> None:
    code = "import sys; sys.modules['aiokafka'] = None; import sources.kafka; print(sources.kafka.KafkaSource.key)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "kafka"


async def test_kafka_without_aiokafka_fails_the_apply_with_the_install_hint(sources: Sources, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiokafka", None)  # import aiokafka -> ImportError
    entry = {"url": "127.0.0.1:9092", "topic": "t", "consumerGroup": {"groupName": "g"}}
    with pytest.raises(EventSourceError, match=r"spec\.kafka\.orders: the kafka source needs aiokafka, which is not installed: pip install 'eventflow\[kafka\]'"):
        await sources.apply("stream", {"orders": entry}, kind="kafka")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"url": "kafka://broker:9092"}, r"spec\.kafka\.x\.url: expected comma-separated host:port brokers"),
        ({"url": "a:9092,b"}, r"spec\.kafka\.x\.url: expected comma-separated host:port brokers"),
        ({"topic": None}, r"spec\.kafka\.x\.topic: Field required"),
        ({"consumerGroup": None}, r"spec\.kafka\.x: give consumerGroup or partition"),
        ({"consumerGroup": None, "partition": "first"}, r"spec\.kafka\.x\.partition: expected a partition number"),
        ({"consumerGroup": {"groupName": "g", "rebalanceStrategy": "greedy"}}, r"spec\.kafka\.x\.consumerGroup\.rebalanceStrategy"),
        ({"tls": {"caCertSecret": {"name": "ca", "key": "crt"}}}, r"spec\.kafka\.x: tls: TLS connections to the kafka broker are not supported"),
        ({"sasl": {"mechanism": "PLAIN"}}, r"spec\.kafka\.x: sasl/awsMskIamAuth: authenticated Kafka connections are not supported yet"),
        ({"config": "consumer:\n  fetch:\n    min: 1"}, r"spec\.kafka\.x: config: sarama settings do not apply"),
        ({"filter": {"expression": "true"}}, r"spec\.kafka\.x: filter: source-side filters are not supported"),
    ],
)
async def test_kafka_invalid_settings_name_their_yaml_path(sources: Sources, spec: dict[str, Any], problem: str) -> None:
    base = {"url": "broker-1:9092,broker-2:9092", "topic": "t", "consumerGroup": {"groupName": "g"}}
    entry = {k: v for k, v in {**base, **spec}.items() if v is not None}
    with pytest.raises(EventSourceError, match=problem):
        await sources.apply("bad", {"x": entry}, kind="kafka")


def test_kafka_argo_spellings_are_accepted() -> None:
    config = KafkaConfig.model_validate(
        {"url": "kafka.argo-events:9092", "topic": "topic-2", "partition": "1", "version": "2.5.0", "jsonBody": True,
         "connectionBackoff": {"duration": 10_000_000_000, "steps": 5, "factor": "2", "jitter": 0.2}}
    )  # fmt: skip
    assert (config.partition, config.connection_backoff.duration, config.connection_backoff.factor) == (1, 10.0, 2.0)
    group = KafkaConfig.model_validate({"url": "k:9092", "topic": "t", "consumerGroup": {"groupName": "g", "rebalanceStrategy": "Sticky"}})
    assert group.consumer_group is not None and group.consumer_group.rebalance_strategy == "sticky"


def test_kafka_record_becomes_argos_event_data() -> None:
    config = KafkaConfig.model_validate({"url": "k:9092", "topic": "t", "partition": 0, "jsonBody": True, "metadata": {"a": "b"}})
    record = SimpleNamespace(  # the fields of aiokafka's ConsumerRecord that the source reads
        topic="orders", partition=2, offset=41, timestamp=1_796_032_800_123, key=b"customer-9",
        value=b'{"total": 12}', headers=[("trace", b"abc"), ("raw", b"\xff\x00")],
    )  # fmt: skip
    assert _event_data(record, config) == {
        "topic": "orders", "key": "customer-9", "partition": 2, "offset": 41, "timestamp": "2026-11-30T10:00:00.123000Z",
        "headers": {"trace": "abc", "raw": base64.b64encode(b"\xff\x00").decode()}, "body": {"total": 12},
        "metadata": {"a": "b"}, "headersEncoding": {"raw": "base64"},
    }  # fmt: skip
    bare = SimpleNamespace(topic="t", partition=0, offset=0, timestamp=-1, key=None, value=b"\x89PNG", headers=())
    plain = KafkaConfig.model_validate({"url": "k:9092", "topic": "t", "partition": 0})
    data = _event_data(bare, plain)
    assert (data["key"], data["timestamp"], data["headers"], data["bodyEncoding"]) == ("", "", {}, "base64")


@pytest.mark.timing
async def test_kafka_unreachable_broker_keeps_retrying_and_stops_promptly(sources: Sources) -> None:
    pytest.importorskip("aiokafka", reason="aiokafka not installed (pip install 'eventflow[kafka]')")
    entry = {"url": f"127.0.0.1:{free_port()}", "topic": "t", "consumerGroup": {"groupName": "g"}}
    await sources.apply("stream", {"orders": entry}, kind="kafka")
    started = time.monotonic()
    await sources.runtime.remove("default", "stream")
    assert time.monotonic() - started < 1.0


# -- against a real broker ------------------------------------------------------------------------


class Kafka:
    def __init__(self, bootstrap: str, aiokafka: Any) -> None:
        self.bootstrap = bootstrap
        self.aiokafka = aiokafka
        tag = uuid.uuid4().hex[:10]
        self.topic = f"eventflow-test-{tag}"
        self.group = f"eventflow-test-{tag}"
        self.admin: Any = None

    async def open(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self.admin.start()
        await self.admin.create_topics([NewTopic(self.topic, num_partitions=1, replication_factor=1)])

    async def produce(self, value: bytes, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
        producer = self.aiokafka.AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(self.topic, value, key=key, headers=headers, partition=0)
        finally:
            await producer.stop()

    def spec(self, **extra: Any) -> dict[str, Any]:
        return {"url": self.bootstrap, "topic": self.topic, "consumerGroup": {"groupName": self.group, "oldest": True}, **extra}

    async def close(self) -> None:
        try:
            await self.admin.delete_topics([self.topic])
            if hasattr(self.admin, "delete_consumer_groups"):
                await self.admin.delete_consumer_groups([self.group])
        finally:
            await self.admin.close()


@pytest.fixture
async def kafka(sources: Sources) -> AsyncIterator[Kafka]:
    bootstrap = os.environ.get("EVENTFLOW_TEST_KAFKA")
    if not bootstrap:
        pytest.skip("no Kafka broker: set EVENTFLOW_TEST_KAFKA=host:port to run the kafka broker tests")
    aiokafka = pytest.importorskip("aiokafka", reason="aiokafka not installed (pip install 'eventflow[kafka]')")
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        pytest.skip(f"no Kafka broker: EVENTFLOW_TEST_KAFKA={bootstrap} does not answer")
    broker = Kafka(bootstrap, aiokafka)
    await broker.open()
    try:
        yield broker
    finally:
        await sources.runtime.close()
        await broker.close()


async def _count_is(sources: Sources, n: int) -> bool:
    return await sources.count() == n


async def test_kafka_group_records_arrive_with_argos_data_shape(sources: Sources, kafka: Kafka) -> None:
    await sources.apply("stream", {"orders": kafka.spec(metadata={"team": "billing"})}, kind="kafka")
    await kafka.produce(b'{"total": 12}', key=b"customer-9", headers=[("trace", b"abc")])
    await eventually(lambda: _count_is(sources, 1), timeout=30, what="the stored event")
    [event] = await sources.stored()
    assert (event.id, event.type, event.source, event.subject) == (f"{kafka.topic}-0-0", "kafka", "stream", "orders")
    data = dict(event.data)
    assert data.pop("timestamp").endswith("Z")
    assert data == {
        "topic": kafka.topic, "key": "customer-9", "partition": 0, "offset": 0, "headers": {"trace": "abc"},
        "body": '{"total": 12}', "metadata": {"team": "billing"},
    }  # fmt: skip


async def test_kafka_record_the_bus_could_not_store_is_read_again_and_committed_after(
    sources: Sources, kafka: Kafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sources.apply("stream", {"orders": kafka.spec()}, kind="kafka")
    real_publish = sources.bus.publish
    failed: list[str] = []

    async def fail_once(event: CloudEvent, *, subject: str | None = None) -> PublishAck:
        if not failed:
            failed.append(event.id)
            raise BusUnavailable("nats://test", "injected outage")
        return await real_publish(event, subject=subject)

    monkeypatch.setattr(sources.bus, "publish", fail_once)
    await kafka.produce(b"one")
    await kafka.produce(b"two")
    await eventually(lambda: _count_is(sources, 2), timeout=30, what="both events")
    assert [e.data["body"] for e in await sources.stored()] == ["one", "two"]
    assert failed == [f"{kafka.topic}-0-0"]
    await sources.runtime.remove("default", "stream")
    await sources.apply("stream", {"orders": kafka.spec()}, kind="kafka")  # the same group: resumes after "two"
    await kafka.produce(b"marker")
    await eventually(lambda: _count_is(sources, 3), timeout=30, what="the marker")
    assert sources.runtime.stats("default", "stream")["orders"]["received"] == 1  # nothing committed was read again


@pytest.mark.timing
async def test_kafka_partition_without_group_reads_new_records(sources: Sources, kafka: Kafka) -> None:
    await kafka.produce(b"old")  # before the source: not read (Argo's newest offset)
    await sources.apply("stream", {"orders": {"url": kafka.bootstrap, "topic": kafka.topic, "partition": "0"}}, kind="kafka")
    await kafka.produce(b"new")
    await eventually(lambda: _count_is(sources, 1), timeout=30, what="the new record")
    [event] = await sources.stored()
    assert (event.data["body"], event.id) == ("new", f"{kafka.topic}-0-1")
    started = time.monotonic()
    await sources.runtime.remove("default", "stream")
    assert time.monotonic() - started < 1.0

"""The nats source against an external NATS server (EVENTFLOW_TEST_NATS_URL, or servers started here)
as the upstream, onto the test bus: core subscriptions, queue groups, JetStream durables, reconnects."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient

from eventbus import BusConfig, CloudEvent, JetStreamBus, find_nats_server
from sources.http import WebhookServer
from sources.runtime import SourceRuntime
from sources.secrets import Secrets
from sources.spec import EventSourceError
from tests.sources.conftest import Sources, free_port
from tests.support.nats_process import NatsProcess
from tests.support.poll import eventually, eventually_sync

pytestmark = pytest.mark.nats

UPSTREAM_URL = os.environ.get("EVENTFLOW_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture
async def upstream() -> AsyncIterator[NatsClient]:
    try:
        nc = await nats.connect(
            UPSTREAM_URL,
            connect_timeout=2,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=_quiet,
        )
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        pytest.skip(f"no upstream NATS: {UPSTREAM_URL} does not answer ({exc}); set EVENTFLOW_TEST_NATS_URL")
    try:
        yield nc
    finally:
        await nc.close()


@pytest.fixture
def name() -> str:
    """A unique EventSource name, also the upstream subject prefix and stream name (CI shares the server)."""
    return f"evt-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def stream(upstream: NatsClient, name: str) -> AsyncIterator[str]:
    """An upstream JetStream stream on ``<name>.>``, deleted after the test."""
    jsm = upstream.jetstream()
    try:
        await jsm.add_stream(name=name, subjects=[f"{name}.>"])
    except (nats.errors.Error, nats.js.errors.Error) as exc:
        pytest.skip(f"upstream NATS at {UPSTREAM_URL} has no JetStream ({exc})")
    try:
        yield name
    finally:
        await jsm.delete_stream(name)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsProcess]:
    """A NATS server this test can kill and restart (on the same port)."""
    server = NatsProcess(tmp_path / "upstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _manifest(name: str, events: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": name},
        "spec": {"nats": events},
    }


async def _events(sources: Sources, source: str) -> list[CloudEvent]:
    return [e for e in await sources.stored() if e.source == source]


async def _count(sources: Sources, source: str, n: int) -> bool:
    return len(await _events(sources, source)) >= n


async def test_nats_messages_become_events_with_argo_data(
    sources: Sources, upstream: NatsClient, name: str
) -> None:
    await sources.apply(
        name,
        {"orders": {"url": UPSTREAM_URL, "subject": f"{name}.>", "metadata": {"team": "ci"}}},
        kind="nats",
    )
    await upstream.publish(
        f"{name}.created", b"plain text", headers={"X-Trace": "abc"}
    )  # subscribed once apply returned
    await upstream.publish(f"{name}.deleted", json.dumps({"id": 7}).encode())
    await eventually(lambda: _count(sources, name, 2), what="two events")
    first, second = await _events(sources, name)
    assert (first.type, first.source, first.subject) == ("nats", name, "orders")
    assert first.data == {
        "subject": f"{name}.created",
        "body": "plain text",
        "header": {"X-Trace": ["abc"]},
        "metadata": {"team": "ci"},
    }
    assert second.data == {
        "subject": f"{name}.deleted",
        "body": '{"id": 7}',
        "header": {},
        "metadata": {"team": "ci"},
    }


@pytest.mark.parametrize(
    ("json_body", "raw", "body", "encoding"),
    [
        (True, b'{"n": 1}', {"n": 1}, None),
        (True, b"{oops", "{oops", "text"),
        (False, b"\x00\xff", base64.b64encode(b"\x00\xff").decode(), "base64"),
    ],
)
async def test_nats_bodies_are_decoded_and_marked_when_not_as_asked(
    sources: Sources,
    upstream: NatsClient,
    name: str,
    json_body: bool,
    raw: bytes,
    body: object,
    encoding: str | None,
) -> None:
    await sources.apply(
        name, {"in": {"url": UPSTREAM_URL, "subject": name, "jsonBody": json_body}}, kind="nats"
    )
    await upstream.publish(name, raw)
    await eventually(lambda: _count(sources, name, 1), what="the event")
    [event] = await _events(sources, name)
    assert event.data["body"] == body
    assert event.data.get("bodyEncoding") == encoding


async def test_nats_queue_group_members_share_the_messages(
    sources: Sources, upstream: NatsClient, name: str
) -> None:
    member = {"url": UPSTREAM_URL, "subject": name, "queue": "workers"}
    await sources.apply(name, {"one": member, "two": member}, kind="nats")
    for n in range(20):
        await upstream.publish(name, str(n).encode())
    await eventually(lambda: _count(sources, name, 20), what="20 events")
    events = await _events(sources, name)
    assert sorted(int(e.data["body"]) for e in events) == list(
        range(20)
    )  # each message once, not once per member
    stats = sources.runtime.stats("default", name)
    assert stats["one"]["published"] + stats["two"]["published"] == 20


async def test_nats_jetstream_durable_acks_each_message_after_it_is_stored(
    sources: Sources, upstream: NatsClient, stream: str
) -> None:
    js = upstream.jetstream()
    seqs = [(await js.publish(f"{stream}.job", f"job {n}".encode())).seq for n in range(3)]
    durable = {"url": UPSTREAM_URL, "subject": f"{stream}.job", "jetstream": {"durable": "eventflow"}}
    await sources.apply(stream, {"jobs": durable}, kind="nats")
    await eventually(lambda: _count(sources, stream, 3), what="three events")
    events = await _events(sources, stream)
    assert [e.id for e in events] == [f"{stream}:{seq}" for seq in seqs]
    assert [e.data["body"] for e in events] == ["job 0", "job 1", "job 2"]
    assert events[0].data["subject"] == f"{stream}.job"
    await eventually(lambda: _settled(upstream, stream, "eventflow"), what="every message acked")


async def test_nats_jetstream_message_not_stored_is_redelivered_to_the_next_runtime(
    sources: Sources,
    upstream: NatsClient,
    stream: str,
    bus_config: BusConfig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    js = upstream.jetstream()
    manifest = _manifest(
        stream,
        {"jobs": {"url": UPSTREAM_URL, "subject": f"{stream}.job", "jetstream": {"durable": "eventflow"}}},
    )
    failing = await JetStreamBus.connect(bus_config)
    first_runtime = SourceRuntime(failing, WebhookServer("127.0.0.1"), Secrets(tmp_path))
    try:
        await first_runtime.apply(manifest, "default")
        await failing.close()
        with caplog.at_level(logging.WARNING, logger="sources.nats"):
            seq = (await js.publish(f"{stream}.job", b"must not be lost")).seq
            await eventually(lambda: first_runtime.stats("default", stream)["jobs"]["rejected"].get("bus", 0) >= 2,
                             what="the message refused, nacked and refused again")  # fmt: skip
        assert f"! message {stream}:{seq} not stored, it will be redelivered" in caplog.text
        assert "↻ message redelivered in 0.50s" in caplog.text
        info = await js.consumer_info(stream, "eventflow")
        assert info.ack_floor.stream_seq == 0  # never acked
    finally:
        await first_runtime.close()

    second_runtime = SourceRuntime(sources.bus, WebhookServer("127.0.0.1"), Secrets(tmp_path))
    try:
        await second_runtime.apply(manifest, "default")
        await eventually(lambda: _count(sources, stream, 1), what="the redelivered message stored")
        await eventually(lambda: _settled(upstream, stream, "eventflow"), what="the message acked")
    finally:
        await second_runtime.close()
    [event] = await _events(sources, stream)
    assert (event.id, event.data["body"]) == (f"{stream}:{seq}", "must not be lost")


async def test_nats_jetstream_redelivery_is_stored_once(
    sources: Sources, upstream: NatsClient, stream: str
) -> None:
    js = upstream.jetstream()
    for n in range(3):
        await js.publish(f"{stream}.job", str(n).encode())
    events: dict[str, Any] = {
        "jobs": {
            "url": UPSTREAM_URL,
            "subject": f"{stream}.job",
            "jetstream": {"durable": "first", "stream": stream},
        }
    }
    await sources.apply(stream, events, kind="nats")
    await eventually(lambda: _count(sources, stream, 3), what="three events")
    # A new durable reads the stream from its start again: every message is delivered a second time.
    events["jobs"]["jetstream"]["durable"] = "second"
    await sources.apply(stream, events, kind="nats")
    await eventually(
        lambda: sources.runtime.stats("default", stream)["jobs"]["duplicates"] == 3, what="three redeliveries"
    )
    await eventually(lambda: _settled(upstream, stream, "second"), what="the redeliveries acked")
    assert len(await _events(sources, stream)) == 3


async def test_nats_jetstream_without_a_stream_for_the_subject_keeps_retrying(
    sources: Sources, upstream: NatsClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sources.nats"):
        await sources.apply(
            name,
            {"in": {"url": UPSTREAM_URL, "subject": f"{name}.x", "jetstream": {"durable": "d"}}},
            kind="nats",
        )
    assert f"no JetStream stream stores '{name}.x'" in caplog.text
    jsm = upstream.jetstream()
    await jsm.add_stream(name=name, subjects=[f"{name}.>"])
    try:
        await jsm.publish(f"{name}.x", b"late")
        await eventually(
            lambda: _count(sources, name, 1), timeout=15, what="the event once the stream exists"
        )
    finally:
        await sources.runtime.remove("default", name)
        await jsm.delete_stream(name)


@pytest.mark.parametrize("jetstream", [False, True], ids=["core", "jetstream"])
async def test_nats_reconnects_after_the_server_restarts(
    sources: Sources, own_server: NatsProcess, name: str, jetstream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    config: dict[str, Any] = {"url": own_server.url, "subject": f"{name}.x"}
    if jetstream:
        config["jetstream"] = {"durable": "d"}
        admin = await nats.connect(own_server.url)
        await admin.jetstream().add_stream(name=name, subjects=[f"{name}.>"])
        await admin.close()
    await sources.apply(name, {"in": config}, kind="nats")
    with caplog.at_level(logging.WARNING, logger="sources.nats"):
        own_server.stop(signal.SIGKILL)
        await eventually(lambda: "lost the subscription at NATS" in caplog.text, what="the loss noticed")
        own_server.start()  # same port, same store: the stream and the durable are still there
        publisher = await nats.connect(own_server.url)
        try:

            async def probe_arrived() -> bool:  # core NATS keeps nothing: publish until subscribed again
                await publisher.publish(f"{name}.x", b"probe")
                await publisher.flush()
                return await _count(sources, name, 1)

            await eventually(probe_arrived, timeout=15, what="the subscription made again")
        finally:
            await publisher.close()
    assert "↻ reconnecting in" in caplog.text


async def test_nats_deleted_durable_is_created_again(
    sources: Sources,
    upstream: NatsClient,
    stream: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("sources.nats_subject.CONSUMER_CHECK_SECONDS", 0.0)
    js = upstream.jetstream()
    await sources.apply(
        stream,
        {"in": {"url": UPSTREAM_URL, "subject": f"{stream}.x", "jetstream": {"durable": "d"}}},
        kind="nats",
    )
    with caplog.at_level(logging.WARNING, logger="sources.nats"):
        await js.delete_consumer(stream, "d")
        await eventually(lambda: "durable d was deleted" in caplog.text, what="the deletion noticed")
    await js.publish(f"{stream}.x", b"after")
    await eventually(lambda: _count(sources, stream, 1), what="the event through the new durable")


_BASIC = {"username": {"name": "nats", "key": "user"}, "password": {"name": "nats", "key": "password"}}


@pytest.mark.parametrize(
    ("auth", "flags", "client"),
    [
        ({"token": {"name": "nats", "key": "token"}}, ["--auth", "t0ken"], {"token": "t0ken"}),
        ({"basic": _BASIC}, ["--user", "alice", "--pass", "pa55"], {"user": "alice", "password": "pa55"}),
    ],
    ids=["token", "basic"],
)
async def test_nats_auth_comes_from_secrets(
    sources: Sources,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    auth: dict[str, Any],
    flags: list[str],
    client: dict[str, str],
) -> None:
    monkeypatch.setenv("EVENTFLOW_SECRET_NATS_TOKEN", "t0ken")
    monkeypatch.setenv("EVENTFLOW_SECRET_NATS_USER", "alice")
    monkeypatch.setenv("EVENTFLOW_SECRET_NATS_PASSWORD", "pa55")
    with _server(flags) as url:
        await sources.apply(name, {"in": {"url": url, "subject": name, "auth": auth}}, kind="nats")
        publisher = await nats.connect(url, **client)
        try:
            await publisher.publish(name, b"authenticated")
            await eventually(lambda: _count(sources, name, 1), what="the event")
        finally:
            await publisher.close()
            await sources.runtime.remove("default", name)


@pytest.mark.timing
async def test_nats_stop_is_prompt_when_idle_and_when_the_server_is_down(
    sources: Sources, upstream: NatsClient, name: str, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="sources.nats"):
        await sources.apply(name, {"core": {"url": UPSTREAM_URL, "subject": name},
                                   "durable": {"url": UPSTREAM_URL, "subject": f"{stream}.x", "jetstream": {"durable": "d"}},
                                   "down": {"url": f"nats://127.0.0.1:{free_port()}", "subject": name}}, kind="nats")  # fmt: skip
    assert time.monotonic() - started < 3  # a server that is down does not hold up the apply
    assert "down: cannot subscribe at NATS" in caplog.text
    started = time.monotonic()
    await sources.runtime.remove("default", name)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"filter": {"expression": "true"}},
            r"spec\.nats\.in: filter: source-side filters are not supported",
        ),
        (
            {"tls": {"insecureSkipVerify": True}},
            r"spec\.nats\.in: tls: TLS connections to NATS are not supported",
        ),
        (
            {"auth": {"nkey": {"name": "n", "key": "seed"}}},
            r"spec\.nats\.in\.auth: nkey: nkey authentication is not supported",
        ),
        (
            {"auth": {"credential": {"name": "n", "key": "creds"}}},
            r"spec\.nats\.in\.auth: credential: credential authentication",
        ),
        ({"queue": "q", "jetstream": {"durable": "d"}}, r"spec\.nats\.in: queue: not used with jetstream"),
        ({"jetstream": {"durable": "a.b"}}, r"spec\.nats\.in\.jetstream\.durable: must be letters, digits"),
        ({"url": "http://x:4222"}, r"spec\.nats\.in\.url: 'http://x:4222' is not a NATS URL"),
    ],
)
async def test_nats_invalid_config_is_rejected_with_its_path(
    sources: Sources, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(EventSourceError, match=message):
        await sources.apply(
            "bad", {"in": {"url": "nats://127.0.0.1:4222", "subject": "s", **extra}}, kind="nats"
        )


async def test_nats_argo_connection_backoff_is_accepted(
    sources: Sources, upstream: NatsClient, name: str
) -> None:
    backoff = {"duration": "1s", "factor": 2, "steps": 5}
    await sources.apply(
        name, {"in": {"url": UPSTREAM_URL, "subject": name, "connectionBackoff": backoff}}, kind="nats"
    )

    # Core NATS is at most once: under load the first connection attempt can time out and the
    # source subscribe on its retry, so publish until the source has one (not once, then hope).
    async def delivered() -> bool:
        await upstream.publish(name, b"x")
        return await _count(sources, name, 1)

    await eventually(delivered, timeout=30, what="the event")


async def _settled(upstream: NatsClient, stream: str, durable: str) -> bool:
    info = await upstream.jetstream().consumer_info(stream, durable)
    return bool(
        info.num_ack_pending == 0
        and info.num_pending == 0
        and info.ack_floor.stream_seq == info.delivered.stream_seq
    )


class _server:
    """``nats-server`` with auth flags on a free port, for the length of a ``with``."""

    def __init__(self, flags: list[str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(find_nats_server()), "-a", "127.0.0.1", "-p", str(self.port), *flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def __enter__(self) -> str:
        eventually_sync(self._answers, what="nats-server to listen")
        return f"nats://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True


async def _quiet(exc: Exception) -> None:
    """nats-py logs every failed connect attempt with a traceback unless given an error callback."""

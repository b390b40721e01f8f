"""The webhook source over real HTTP onto the real bus: an event is answered 200 only once stored."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from pathlib import Path

import aiohttp
import httpx
import pytest

from tests.conftest import SHARED
from tests.sources.conftest import Sources

pytestmark = pytest.mark.nats

GITHUB = SHARED / "github-webhooks"


async def test_json_body_is_stored_before_the_answer(sources: Sources) -> None:
    await sources.apply("hooks", {"example": {"endpoint": "/example", "port": sources.port, "metadata": {"team": "ci"}}})
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{sources.url}/example", json={"n": 1}, headers={"Authorization": "Bearer x"})
    assert response.status_code == 200
    answer = response.json()
    [event] = await sources.stored()
    assert event.id == answer["id"]
    assert answer["subject"] == sources.bus.subjects.event("default", "hooks", "example")
    assert (event.source, event.type, event.subject, event.eventname) == ("hooks", "webhook", "example", "example")
    assert event.data["body"] == {"n": 1}
    assert event.data["metadata"] == {"team": "ci"}
    assert event.data["header"]["Authorization"] == ["*** Masked Auth Secret ***"]
    assert event.data["header"]["Content-Type"] == ["application/json"]


@pytest.mark.parametrize(
    ("content_type", "raw", "body", "encoding"),
    [
        ("application/x-www-form-urlencoded", b"a=1&b=two&b=three", {"a": "1", "b": ["two", "three"]}, None),
        ("text/plain; charset=utf-8", "héllo".encode(), "héllo", None),
        ("application/octet-stream", b"\x00\x01\xff", base64.b64encode(b"\x00\x01\xff").decode(), "base64"),
        ("image/png", b"\x89PNG", base64.b64encode(b"\x89PNG").decode(), "base64"),
    ],
)
async def test_bodies_are_decoded_by_content_type(
    sources: Sources, content_type: str, raw: bytes, body: object, encoding: str | None
) -> None:
    await sources.apply("hooks", {"any": {"endpoint": "/any", "port": sources.port}})
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{sources.url}/any", content=raw, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    [event] = await sources.stored()
    assert event.data["body"] == body
    assert event.data.get("bodyEncoding") == encoding


async def test_get_query_parameters_are_the_body(sources: Sources) -> None:
    await sources.apply("hooks", {"q": {"endpoint": "/q", "port": sources.port, "method": "GET"}})
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{sources.url}/q?x=1&y=2")).status_code == 200
    [event] = await sources.stored()
    assert event.data["body"] == {"x": "1", "y": "2"}


async def test_rejections_store_nothing(sources: Sources) -> None:
    await sources.apply("hooks", {"small": {"endpoint": "/small", "port": sources.port, "maxPayloadSize": 100}})
    async with httpx.AsyncClient() as client:
        bad_json = await client.post(f"{sources.url}/small", content=b'{"a": 1,', headers={"Content-Type": "application/json"})
        wrong_method = await client.put(f"{sources.url}/small", json={})
        unknown = await client.post(f"{sources.url}/nope", json={})
        too_big = await client.post(f"{sources.url}/small", content=b"x" * 101, headers={"Content-Type": "text/plain"})

        async def chunks():  # no Content-Length: the limit holds while reading
            for _ in range(50):
                yield b"y" * 10

        too_big_chunked = await client.post(f"{sources.url}/small", content=chunks(), headers={"Content-Type": "text/plain"})
    assert bad_json.status_code == 400
    assert "line 1, column 9 (char 8)" in bad_json.json()["message"]
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert unknown.status_code == 404
    assert too_big.status_code == 413 and "limit of 100 bytes" in too_big.json()["message"]
    assert too_big_chunked.status_code == 413
    assert await sources.count() == 0
    stats = sources.runtime.stats("default", "hooks")["small"]
    assert stats["rejected"] == {"json": 1, "method": 1, "too-large": 2} and stats["published"] == 0


async def test_bearer_token(sources: Sources) -> None:
    secret = {"name": "hooks", "key": "token"}  # from $EVENTFLOW_SECRET_HOOKS_TOKEN
    await sources.apply("hooks", {"auth": {"endpoint": "/auth", "port": sources.port, "authSecret": secret}})
    async with httpx.AsyncClient() as client:
        none = await client.post(f"{sources.url}/auth", json={})
        wrong = await client.post(f"{sources.url}/auth", json={}, headers={"Authorization": "Bearer nope"})
        right = await client.post(f"{sources.url}/auth", json={}, headers={"Authorization": "Bearer s3cret-token"})
    assert (none.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    [event] = await sources.stored()
    assert "s3cret-token" not in json.dumps(event.data)


async def test_a_missing_secret_fails_the_apply(sources: Sources) -> None:
    with pytest.raises(ValueError, match="secret nobody/token not found"):
        await sources.apply("hooks", {"auth": {"endpoint": "/auth", "port": sources.port, "authSecret": {"name": "nobody", "key": "token"}}})


def _github_samples() -> list[Path]:
    if not GITHUB.is_dir():
        pytest.skip(f"shared/ absent: {GITHUB} not found")
    return sorted(GITHUB.glob("*.json"))


async def test_github_payloads_with_real_signatures(sources: Sources) -> None:
    signature = {"github": {"secret": {"name": "github", "key": "secret"}}}
    await sources.apply("github", {"push": {"endpoint": "/github", "port": sources.port, "signature": signature}})
    samples = _github_samples()
    assert samples
    async with httpx.AsyncClient() as client:
        for sample in samples:
            raw = sample.read_bytes()
            delivery = str(uuid.uuid4())
            sig = "sha256=" + hmac.new(b"gh-webhook-secret", raw, hashlib.sha256).hexdigest()
            headers = {
                "Content-Type": "application/json", "X-GitHub-Event": sample.stem.split(".")[0],
                "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig,
            }  # fmt: skip
            response = await client.post(f"{sources.url}/github", content=raw, headers=headers)
            assert response.status_code == 200, (sample.name, response.text)
            assert response.json()["id"] == delivery  # GitHub's delivery id is the event id
            tampered = await client.post(f"{sources.url}/github", content=raw + b" ", headers={**headers, "X-GitHub-Delivery": "x"})
            assert tampered.status_code == 401
            unsigned = await client.post(f"{sources.url}/github", content=raw, headers={"Content-Type": "application/json"})
            assert unsigned.status_code == 401
    stored = await sources.stored()
    assert len(stored) == len(samples)  # nothing from the bad signatures
    assert [e.data["body"] for e in stored] == [json.loads(s.read_bytes()) for s in samples]


async def test_gitlab_token_and_generic_hmac(sources: Sources, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GL_TOKEN", "gl-token")
    hmac_cfg = {"hmac": {"header": "X-Signature", "algorithm": "sha512", "secret": {"env": "GL_TOKEN"}, "prefix": "sha512="}}
    await sources.apply("hooks", {
        "gl": {"endpoint": "/gl", "port": sources.port, "signature": {"gitlab": {"secret": {"env": "GL_TOKEN"}}}},
        "hm": {"endpoint": "/hm", "port": sources.port, "signature": hmac_cfg},
    })  # fmt: skip
    raw = b'{"object_kind": "push"}'
    good = "sha512=" + hmac.new(b"gl-token", raw, hashlib.sha512).hexdigest()
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{sources.url}/gl", content=raw, headers={"X-Gitlab-Token": "gl-token"})).status_code == 200
        assert (await client.post(f"{sources.url}/gl", content=raw, headers={"X-Gitlab-Token": "nope"})).status_code == 401
        assert (await client.post(f"{sources.url}/hm", content=raw, headers={"X-Signature": good})).status_code == 200
        assert (await client.post(f"{sources.url}/hm", content=raw, headers={"X-Signature": good[:-1] + "0"})).status_code == 401
    assert await sources.count() == 2


async def test_cloudevents_keep_their_attributes(sources: Sources) -> None:
    await sources.apply("hooks", {"ce": {"endpoint": "/ce", "port": sources.port}})
    binary = {
        "ce-specversion": "1.0", "ce-id": "evt-1", "ce-source": "/orders", "ce-type": "order.created",
        "ce-time": "2026-11-30T10:00:00Z", "ce-tenant": "acme", "Content-Type": "application/json",
    }  # fmt: skip
    structured = {"specversion": "1.0", "id": "evt-2", "source": "/billing", "type": "invoice.paid", "data": {"amount": 3}}
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{sources.url}/ce", json={"order": 7}, headers=binary)).json()["id"] == "evt-1"
        response = await client.post(f"{sources.url}/ce", content=json.dumps(structured), headers={"Content-Type": "application/cloudevents+json"})
        assert response.json()["id"] == "evt-2"
        bad_time = await client.post(f"{sources.url}/ce", json={}, headers={**binary, "ce-id": "evt-3", "ce-time": "yesterday"})
        assert bad_time.status_code == 400 and "time" in bad_time.json()["message"]
    first, second = await sources.stored()
    assert (first.source, first.type, first.model_extra["tenant"], first.data["body"]) == ("/orders", "order.created", "acme", {"order": 7})
    assert first.time.isoformat() == "2026-11-30T10:00:00+00:00"
    assert (second.source, second.type, second.data["body"]) == ("/billing", "invoice.paid", {"amount": 3})
    assert first.eventsource == second.eventsource == "hooks"  # still routed as this source's events


async def test_bus_down_answers_503_with_retry_after(sources: Sources) -> None:
    await sources.apply("hooks", {"x": {"endpoint": "/x", "port": sources.port}})
    await sources.bus.close(grace_seconds=0)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{sources.url}/x", json={})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


async def test_two_thousand_concurrent_webhooks_are_all_stored_once(sources: Sources) -> None:
    await sources.apply("hooks", {"load": {"endpoint": "/load", "port": sources.port}})
    ids = [f"delivery-{i}" for i in range(2000)]
    # aiohttp, 50 connections: httpx's pool scans every connection per request, so with it the
    # client, not the webhook server, took most of this test's time.
    connector = aiohttp.TCPConnector(limit=50)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:

        async def post(delivery: str) -> str:
            async with client.post(f"{sources.url}/load", json={"d": delivery}, headers={"Idempotency-Key": delivery}) as response:
                assert response.status == 200, await response.text()
                return str((await response.json())["id"])

        assert await asyncio.gather(*(post(d) for d in ids)) == ids
        stored = await sources.stored()
        assert sorted(e.id for e in stored) == sorted(ids)
        assert all(e.data["body"] == {"d": e.id} for e in stored)
        # The same deliveries again: answered 200 with the same ids, stored once.
        assert await asyncio.gather(*(post(d) for d in ids[:100])) == ids[:100]
    assert await sources.count() == 2000
    stats = sources.runtime.stats("default", "hooks")["load"]
    assert (stats["published"], stats["duplicates"]) == (2100, 100)


async def test_apply_is_hot_and_all_or_nothing(sources: Sources) -> None:
    await sources.apply("hooks", {"a": {"endpoint": "/a", "port": sources.port}})
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{sources.url}/a", json={})).status_code == 200
        await sources.apply("hooks", {"b": {"endpoint": "/b", "port": sources.port}})  # a renamed to b
        assert (await client.post(f"{sources.url}/a", json={})).status_code == 404
        assert (await client.post(f"{sources.url}/b", json={})).status_code == 200
        # Another resource may not take the same endpoint; the first keeps serving.
        with pytest.raises(ValueError, match="already served"):
            await sources.apply("other", {"b": {"endpoint": "/b", "port": sources.port}})
        # A change that cannot start leaves the old configuration running.
        with pytest.raises(ValueError, match="secret"):
            await sources.apply("hooks", {"b": {"endpoint": "/b", "port": sources.port, "authSecret": {"name": "gone", "key": "k"}}})
        assert (await client.post(f"{sources.url}/b", json={})).status_code == 200
        assert await sources.runtime.remove("default", "hooks")
        with pytest.raises(httpx.ConnectError):  # the port's last endpoint went: its listener too
            await client.post(f"{sources.url}/b", json={})

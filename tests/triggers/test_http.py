"""The http trigger against a real HTTP server (Starlette on uvicorn, in-process, on a free port)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sensors.compile import SensorError
from tests.sensors.conftest import SensorHarness, dep, sensor_manifest, webhook_event
from tests.support.poll import eventually

pytestmark = pytest.mark.nats

TOKEN = "s3cr3t-token-value"
PASSWORD = "hunter2-but-longer"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Target:
    """Records every request; answers by path: ``ok``, ``flaky`` (503 twice, then 200), ``missing``
    (404), ``slow`` (waits until the test ends), ``echo-error`` (500 with the request headers)."""

    port: int = 0
    scheme: str = "http"
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def handle(self, request: Request) -> Response:
        path = request.path_params["path"]
        self.requests.append(Received(request.method, path, dict(request.headers), await request.body()))
        match path:
            case "flaky" if len(self.to(path)) <= 2:
                return JSONResponse({"error": "busy"}, status_code=503)
            case "missing":
                return JSONResponse({"error": "no such thing"}, status_code=404)
            case "slow":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.release.wait(), timeout=10)
            case "echo-error":
                return JSONResponse({"received": dict(request.headers)}, status_code=500)
        return JSONResponse({"ok": True})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # pytest owns the signal handlers


@contextlib.asynccontextmanager
async def serving(**ssl: Any) -> AsyncIterator[Target]:
    """A :class:`Target` on a free port; ``ssl`` takes uvicorn's ``ssl_*`` options."""
    target = Target()
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    app = Starlette(routes=[Route("/{path:path}", target.handle, methods=methods)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    target.port = sock.getsockname()[1]
    target.scheme = "https" if ssl else "http"
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", ws="none", timeout_graceful_shutdown=2, **ssl
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started or task.done(), what="the HTTP server to start")
    if task.done():
        task.result()
    try:
        yield target
    finally:
        target.release.set()
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    async with serving() as target:
        yield target


def _http_trigger(name: str, url: str, **http: Any) -> dict[str, Any]:
    more: dict[str, Any] = {k: http.pop(k) for k in ("retryStrategy", "policy") if k in http}
    return {"template": {"name": name, "http": {"url": url, **http}}, **more}


PAYLOAD = [
    {"src": {"dependencyName": "hook", "dataKey": "body.message"}, "dest": "message"},
    {"src": {"dependencyName": "hook", "dataKey": "body.n"}, "dest": "a.b"},
]


async def test_http_trigger_sends_one_request_per_event_with_payload_headers_and_secrets(
    sensors: SensorHarness, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secrets" / "default" / "svc").mkdir(parents=True)
    (tmp_path / "secrets" / "default" / "svc" / "token").write_text(TOKEN + "\n")
    (tmp_path / "secrets" / "default" / "svc" / "username").write_text("robot")
    monkeypatch.setenv("EVENTFLOW_SECRET_SVC_PASSWORD", PASSWORD)
    trigger = _http_trigger(
        "call", target.url("ok"), payload=PAYLOAD, headers={"X-Static": "yes"},
        secureHeaders=[{"name": "X-Token", "valueFrom": {"secretKeyRef": {"name": "svc", "key": "token"}}}],
        basicAuth={"username": {"name": "svc", "key": "username"}, "password": {"name": "svc", "key": "password"}},
        parameters=[{"src": {"dependencyName": "hook", "dataKey": "body.tenant"}, "dest": "headers.X-Tenant"}],
    )  # fmt: skip
    await sensors.apply(sensor_manifest("http-main", [dep("hook")], [trigger]))
    events = [webhook_event({"message": f"hello {i}", "n": i, "tenant": f"t{i}"}) for i in range(3)]
    await sensors.publish(*events)
    firings = await sensors.wait_firings("http-main", 3)
    await sensors.settled("http-main")
    assert [f.outcome for f in firings] == ["Succeeded"] * 3
    assert len(target.to("ok")) == 3
    by_key = {r.headers["idempotency-key"]: r for r in target.requests}
    assert set(by_key) == {f.key for f in firings}
    basic = "Basic " + base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
    for firing in firings:
        request, [event_id] = by_key[firing.key], firing.event_ids
        n = next(i for i, e in enumerate(events) if e.id == event_id)
        assert request.method == "POST"
        assert request.json() == {"message": f"hello {n}", "a": {"b": str(n)}}
        headers = request.headers
        assert headers["content-type"] == "application/json"
        assert (
            headers["x-eventflow-event-ids"],
            headers["x-eventflow-sensor"],
            headers["x-eventflow-trigger"],
        ) == (event_id, "http-main", "call")
        assert (headers["x-static"], headers["x-tenant"], headers["x-token"], headers["authorization"]) == (
            "yes",
            f"t{n}",
            TOKEN,
            basic,
        )
        result = firing.detail["result"]
        assert (result["status"], result["method"], result["url"]) == (200, "POST", target.url("ok"))
        assert result["elapsedMs"] >= 0


async def test_http_url_from_a_trigger_parameter_replaces_the_placeholder(
    sensors: SensorHarness, target: Target
) -> None:
    url = {
        "src": {"dependencyName": "hook", "dataTemplate": target.url("") + "{{ .Input.body.path }}"},
        "dest": "http.url",
    }
    trigger = {**_http_trigger("call", "placeholder", method="put"), "parameters": [url]}
    await sensors.apply(sensor_manifest("http-url", [dep("hook")], [trigger]))
    await sensors.publish(webhook_event({"path": "ok"}))
    [firing] = await sensors.wait_firings("http-url", 1)
    assert firing.outcome == "Succeeded", firing.detail
    [request] = target.to("ok")
    assert request.method == "PUT" and request.json() == {}


async def test_http_get_without_payload_sends_no_body(sensors: SensorHarness, target: Target) -> None:
    await sensors.apply(
        sensor_manifest("http-get", [dep("hook")], [_http_trigger("get", target.url("ok"), method="GET")])
    )
    await sensors.publish(webhook_event({}))
    [firing] = await sensors.wait_firings("http-get", 1)
    [request] = target.to("ok")
    assert firing.outcome == "Succeeded"
    assert (request.method, request.body, "content-type" in request.headers) == ("GET", b"", False)
    assert request.headers["idempotency-key"] == firing.key


async def test_http_503_twice_then_200_succeeds_on_the_third_attempt(
    sensors: SensorHarness, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sensors")
    trigger = _http_trigger(
        "call", target.url("flaky"), payload=PAYLOAD, retryStrategy={"steps": 3, "duration": "10ms"}
    )
    await sensors.apply(sensor_manifest("http-retry", [dep("hook")], [trigger]))
    await sensors.publish(webhook_event({"message": "m", "n": 1}))
    [firing] = await sensors.wait_firings("http-retry", 1)
    assert firing.outcome == "Succeeded"
    assert firing.detail["attempts"] == 3
    assert firing.detail["result"]["status"] == 200
    assert [r.headers["idempotency-key"] for r in target.to("flaky")] == [firing.key] * 3
    assert "↻ sensor default/http-retry trigger call try=1 failed" in caplog.text
    assert "HTTP 503 Service Unavailable" in caplog.text


async def test_http_404_is_rejected_without_retries(sensors: SensorHarness, target: Target) -> None:
    trigger = _http_trigger("call", target.url("missing"), retryStrategy={"steps": 3, "duration": "10ms"})
    await sensors.apply(sensor_manifest("http-404", [dep("hook")], [trigger]))
    await sensors.publish(webhook_event({}))
    [firing] = await sensors.wait_firings("http-404", 1)
    assert firing.outcome == "Failed"
    assert firing.detail["attempts"] == 1
    assert (
        firing.detail["error"]
        == f'POST {target.url("missing")}: HTTP 404 Not Found: {{"error":"no such thing"}}'
    )
    assert len(target.to("missing")) == 1


async def test_http_404_listed_in_policy_status_allow_succeeds(
    sensors: SensorHarness, target: Target
) -> None:
    trigger = _http_trigger("call", target.url("missing"), policy={"status": {"allow": [404]}})
    await sensors.apply(sensor_manifest("http-allow", [dep("hook")], [trigger]))
    await sensors.publish(webhook_event({}))
    [firing] = await sensors.wait_firings("http-allow", 1)
    assert firing.outcome == "Succeeded", firing.detail
    assert firing.detail["result"]["status"] == 404


async def test_http_policy_status_allow_is_the_whole_list_of_successes(sensors: SensorHarness, target: Target) -> None:
    trigger = _http_trigger("call", target.url("fine"), policy={"status": {"allow": [201]}})
    await sensors.apply(sensor_manifest("http-allow-only", [dep("hook")], [trigger]))
    await sensors.publish(webhook_event({}))
    [firing] = await sensors.wait_firings("http-allow-only", 1)
    assert firing.outcome == "Failed" and "HTTP 200" in firing.detail["error"]  # as in Argo: 200 is not listed


async def test_a_failing_trigger_does_not_keep_the_others_from_firing(sensors: SensorHarness, target: Target) -> None:
    failing = _http_trigger("first", target.url("missing"))
    fine = _http_trigger("second", target.url("fine"))
    await sensors.apply(sensor_manifest("http-both", [dep("hook")], [failing, fine]))
    await sensors.publish(webhook_event({}))
    firings = await sensors.wait_firings("http-both", 2)
    assert {f.trigger: f.outcome for f in firings} == {"first": "Failed", "second": "Succeeded"}


async def test_http_slow_server_past_the_timeout_fails_with_a_timeout_message(
    sensors: SensorHarness, target: Target
) -> None:
    await sensors.apply(
        sensor_manifest("http-slow", [dep("hook")], [_http_trigger("call", target.url("slow"), timeout=0.2)])
    )
    await sensors.publish(webhook_event({}))
    [firing] = await sensors.wait_firings("http-slow", 1)
    assert firing.outcome == "Failed"
    assert firing.detail["error"] == f"POST {target.url('slow')}: timed out after 0.2s"
    assert firing.detail["durationMs"] < 5000


async def test_http_unreachable_server_fails_and_credentials_in_the_url_are_not_shown(
    sensors: SensorHarness,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    await sensors.apply(
        sensor_manifest(
            "http-down", [dep("hook")], [_http_trigger("call", f"http://user:{PASSWORD}@127.0.0.1:{port}/x")]
        )
    )
    await sensors.publish(webhook_event({}))
    [firing] = await sensors.wait_firings("http-down", 1)
    assert firing.outcome == "Failed"
    assert firing.detail["error"].startswith(f"POST http://127.0.0.1:{port}/x: ConnectError")
    assert PASSWORD not in json.dumps(firing.detail)


async def test_http_secret_values_never_reach_the_history_or_the_log(
    sensors: SensorHarness,
    target: Target,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "secrets" / "default" / "svc").mkdir(parents=True)
    (tmp_path / "secrets" / "default" / "svc" / "token").write_text(TOKEN)
    monkeypatch.setenv("EVENTFLOW_SECRET_SVC_PASSWORD", PASSWORD)
    secure = {
        "secureHeaders": [
            {"name": "X-Token", "valueFrom": {"secretKeyRef": {"name": "svc", "key": "token"}}}
        ],
        "basicAuth": {"password": {"name": "svc", "key": "password"}},
    }
    triggers = [  # "fine" first: a trigger that fails for good stops the ones after it for that event
        _http_trigger("fine", target.url("ok"), **secure),
        _http_trigger(
            "echo", target.url("echo-error"), retryStrategy={"steps": 2, "duration": "10ms"}, **secure
        ),
    ]
    await sensors.apply(sensor_manifest("http-secret", [dep("hook")], triggers))
    await sensors.publish(webhook_event({}))
    firings = {f.trigger: f for f in await sensors.wait_firings("http-secret", 2)}
    assert firings["fine"].outcome == "Succeeded"
    assert firings["echo"].outcome == "Failed"
    assert target.to("echo-error")[0].headers["x-token"] == TOKEN  # the server did receive it...
    assert '"x-token":"***"' in firings["echo"].detail["error"]  # ...and echoed it, redacted here
    basic = base64.b64encode(f":{PASSWORD}".encode()).decode()
    history = json.dumps([f.detail for f in firings.values()])
    for secret in (TOKEN, PASSWORD, basic):
        assert secret not in history
        assert secret not in caplog.text


async def test_http_check_refuses_what_cannot_work_and_accepts_a_placeholder_url(
    sensors: SensorHarness,
) -> None:
    bad = [
        _http_trigger("ftp", "ftp://example.com/x"),
        _http_trigger(
            "dyn",
            "http://example.com",
            dynamicHeaders=[{"src": {"dependencyName": "hook", "dataKey": "body.x"}, "dest": "X-A"}],
        ),
        _http_trigger(
            "cm",
            "http://example.com",
            secureHeaders=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
        ),
        _http_trigger("verb", "http://example.com", method="TRACE"),
        _http_trigger("placeholder", "placeholder"),
    ]
    with pytest.raises(SensorError) as caught:
        sensors.runtime.compile(sensor_manifest("bad", [dep("hook")], bad), "default", "bad.yaml")
    problems = caught.value.problems
    assert (
        "spec.triggers[0].template.http.url: expected an absolute http or https URL, got 'ftp://example.com/x'"
        in problems
    )
    assert any(
        p.startswith("spec.triggers[1].template.http.dynamicHeaders: not supported yet") for p in problems
    )
    assert any(
        p.startswith(
            "spec.triggers[2].template.http.secureHeaders[0].valueFrom.configMapKeyRef: values from ConfigMaps are not supported yet"
        )
        for p in problems
    )
    assert any(p.startswith("spec.triggers[3].template.http.method:") for p in problems)
    assert not any("triggers[4]" in p for p in problems), problems


def _certificate(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
    )  # fmt: skip
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(item: x509.Certificate | ec.EllipticCurvePrivateKey) -> str:
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM).decode()
    return item.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    ("tls", "outcome"),
    [
        (None, "Failed"),
        ({"insecureSkipVerify": True}, "Succeeded"),
        ({"caCertSecret": {"name": "tls", "key": "ca"}}, "Succeeded"),
    ],
    ids=["system-cas", "insecure-skip-verify", "ca-secret"],
)
async def test_https_server_with_a_private_ca_needs_the_ca_or_skip_verify(
    sensors: SensorHarness, tmp_path: Path, tls: dict[str, Any] | None, outcome: str
) -> None:
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("eventflow test CA", ca_key)
    files = {
        "server.pem": _pem(_certificate("127.0.0.1", server_key, (ca.subject, ca_key))),
        "server.key": _pem(server_key),
        "ca.pem": _pem(ca),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    secrets = tmp_path / "secrets" / "default" / "tls"
    secrets.mkdir(parents=True)
    (secrets / "ca").write_text(_pem(ca))
    # The server requires a client certificate signed by the same CA: the trigger always sends one.
    (secrets / "cert").write_text(_pem(_certificate("client", client_key, (ca.subject, ca_key))))
    (secrets / "key").write_text(_pem(client_key))
    client_pair = {
        "clientCertSecret": {"name": "tls", "key": "cert"},
        "clientKeySecret": {"name": "tls", "key": "key"},
    }
    ssl_options = {
        "ssl_certfile": str(tmp_path / "server.pem"), "ssl_keyfile": str(tmp_path / "server.key"),
        "ssl_ca_certs": str(tmp_path / "ca.pem"), "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }  # fmt: skip
    async with serving(**ssl_options) as https:
        trigger = _http_trigger("call", https.url("ok"), tls={**(tls or {}), **client_pair})
        await sensors.apply(sensor_manifest("https", [dep("hook")], [trigger]))
        await sensors.publish(webhook_event({}))
        [firing] = await sensors.wait_firings("https", 1)
    assert firing.outcome == outcome, firing.detail
    if outcome == "Failed":
        assert "CERTIFICATE_VERIFY_FAILED" in firing.detail["error"]
    else:
        assert len(https.to("ok")) == 1

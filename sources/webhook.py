"""``webhook``: events from HTTP requests, stored on the bus before the caller gets its answer.

Per request, concurrently: find the endpoint (404), check the method (405), the size (413, from the
Content-Length or while reading, never buffering more than the limit), the credentials (401: a
bearer token, GitHub's ``X-Hub-Signature-256``, GitLab's ``X-Gitlab-Token`` or a generic HMAC header,
all compared in constant time), decode the body (JSON -> object, 400 with the position when it does
not parse; form -> object; text -> string; anything else -> base64 with ``bodyEncoding: base64``),
then store it and answer 200 ``{"id", "subject"}`` only after JetStream's ack (503 with
``Retry-After`` when the bus cannot take it). The event id is the caller's ``X-GitHub-Delivery``,
``ce-id`` or ``Idempotency-Key`` when given, so a redelivery is stored once. CloudEvents sent over
HTTP (binary or structured mode) keep their attributes. Event data is Argo's
``{header, body, metadata}``; the Authorization header is masked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any, ClassVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eventbus import BusError, InvalidEvent
from sources.base import EmitEvent, Emitted, EventRef, SourceContext, register
from sources.http import Incoming, Send, respond
from sources.secrets import SecretRef

__all__ = ["WebhookConfig", "WebhookSource"]

log = logging.getLogger("sources.webhook")

MASKED = "*** Masked Auth Secret ***"
_ALGORITHMS = ("sha1", "sha256", "sha512")
_CE_ATTRIBUTES = ("id", "source", "type", "subject", "time", "dataschema", "specversion")


class _Secret(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: SecretRef


class HmacConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    header: str
    algorithm: str = "sha256"
    secret: SecretRef
    prefix: str = ""  # e.g. "sha256=" when the header carries one

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        if value not in _ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(_ALGORITHMS)}")
        return value


class Signature(BaseModel):
    """How requests prove where they come from (eventflow's addition to Argo's webhook)."""

    model_config = ConfigDict(extra="forbid")
    github: _Secret | None = None
    gitlab: _Secret | None = None
    hmac: HmacConfig | None = None

    @model_validator(mode="after")
    def _one(self) -> Signature:
        if sum(x is not None for x in (self.github, self.gitlab, self.hmac)) != 1:
            raise ValueError("give one of github, gitlab, hmac")
        return self


class WebhookConfig(BaseModel):
    """One entry of ``spec.webhook`` (Argo's WebhookContext, plus ``signature``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    endpoint: str
    method: str = "POST"
    port: int | None = Field(default=None, ge=1, le=65535)
    url: str | None = None
    auth_secret: SecretRef | None = Field(default=None, alias="authSecret")
    max_payload_size: int = Field(default=1 << 20, alias="maxPayloadSize", ge=1)
    metadata: dict[str, str] | None = None
    signature: Signature | None = None
    filter: dict[str, Any] | None = None
    server_cert_secret: dict[str, Any] | None = Field(default=None, alias="serverCertSecret")
    server_key_secret: dict[str, Any] | None = Field(default=None, alias="serverKeySecret")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not value.startswith("/") or "?" in value or "#" in value:
            raise ValueError("must be a URL path starting with '/'")
        return value

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        if isinstance(value, str):  # Argo writes ports as strings
            if not value.strip().isdigit():
                raise ValueError(f"must be a port number, got {value!r}")
            return int(value)
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.upper()
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ValueError(f"unsupported method {value!r}")
        return method

    @model_validator(mode="after")
    def _unsupported(self) -> WebhookConfig:
        if self.filter is not None:
            raise ValueError("filter: source-side filters are not supported; filter in the sensor (CEL)")
        if self.server_cert_secret is not None or self.server_key_secret is not None:
            raise ValueError("serverCertSecret/serverKeySecret: TLS termination is not supported; put a proxy in front")
        return self


class _Reject(Exception):
    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.reason, self.message, self.headers = status, reason, message, headers or {}
        super().__init__(message)


@register
class WebhookSource:
    key: ClassVar[str] = "webhook"
    Config: ClassVar[type[BaseModel]] = WebhookConfig

    def __init__(self, ref: EventRef, config: WebhookConfig, context: SourceContext) -> None:
        self.ref = ref
        self.config = config
        self.context = context
        self.stats = context.stats
        self._emit: EmitEvent | None = None
        self._token: bytes | None = None
        self._signing: bytes | None = None

    def __repr__(self) -> str:
        return f"<WebhookSource {self.ref.namespace}/{self.ref.source} {self.ref.event_name} {self.config.method} {self.config.endpoint}>"

    async def start(self, emit: EmitEvent) -> None:
        cfg, secrets, ns = self.config, self.context.secrets, self.ref.namespace
        # Secrets are read now, so a missing one fails the apply, not the first request.
        self._token = secrets.read(cfg.auth_secret, ns).encode() if cfg.auth_secret else None
        sig = cfg.signature
        chosen = (sig.github or sig.gitlab) if sig else None
        if sig is not None:
            ref = chosen.secret if chosen is not None else sig.hmac.secret  # type: ignore[union-attr]
            self._signing = secrets.read(ref, ns).encode()
        self._emit = emit
        await self.context.http.add(cfg.port, cfg.endpoint, self.handle)

    async def stop(self) -> None:
        await self.context.http.remove(self.config.port, self.config.endpoint)
        self._emit = None

    # -- one request --------------------------------------------------------------------------

    async def handle(self, request: Incoming, send: Send) -> None:
        self.stats.received += 1
        try:
            if request.method != self.config.method:
                raise _Reject(405, "method", f"{request.method} not allowed; use {self.config.method}", {"Allow": self.config.method})
            raw = await self._read(request)
            self._authenticate(request, raw)
            emitted = self._event(request, raw)
            emit = self._emit
            if emit is None:
                raise _Reject(503, "stopping", "this event source is being stopped; retry", {"Retry-After": "1"})
            started = time.perf_counter()
            try:
                event_id, subject, ack = await emit(emitted)
            except InvalidEvent as exc:
                raise _Reject(400, "cloudevent", exc.reason) from None
            except BusError as exc:
                raise _Reject(503, "bus", f"the event could not be stored: {exc}", {"Retry-After": "1"}) from None
            self.stats.stored(time.perf_counter() - started, duplicate=ack.duplicate)
            await respond(send, 200, {"id": event_id, "subject": subject})
        except _Reject as rejected:
            self.stats.reject(rejected.reason)
            log.info("%s/%s %s: %s %s rejected (%d): %s", self.ref.namespace, self.ref.source, self.ref.event_name,
                     request.method, request.path, rejected.status, rejected.message)  # fmt: skip
            await respond(send, rejected.status, {"code": rejected.status, "message": rejected.message}, rejected.headers)

    async def _read(self, request: Incoming) -> bytes:
        limit = self.config.max_payload_size
        declared = request.header("content-length")
        if declared.isdigit() and int(declared) > limit:
            raise _Reject(413, "too-large", f"body of {declared} bytes is over the limit of {limit} bytes (maxPayloadSize)")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise _Reject(400, "disconnected", "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Reject(413, "too-large", f"body is over the limit of {limit} bytes (maxPayloadSize)")
            chunks.append(chunk)
            if not message.get("more_body"):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _authenticate(self, request: Incoming, raw: bytes) -> None:
        if self._token is not None:
            given = request.header("authorization")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
                raise _Reject(401, "auth", "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        sig = self.config.signature
        if sig is None or self._signing is None:
            return
        if sig.github is not None:
            expected = "sha256=" + hmac.new(self._signing, raw, hashlib.sha256).hexdigest()
            given = request.header("x-hub-signature-256")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise _Reject(401, "signature", "missing or wrong X-Hub-Signature-256")
        elif sig.gitlab is not None:
            if not hmac.compare_digest(request.header("x-gitlab-token").encode(), self._signing):
                raise _Reject(401, "signature", "missing or wrong X-Gitlab-Token")
        elif sig.hmac is not None:
            digest = hmac.new(self._signing, raw, getattr(hashlib, sig.hmac.algorithm)).hexdigest()
            given = request.header(sig.hmac.header.lower())
            if not hmac.compare_digest(given.encode(), (sig.hmac.prefix + digest).encode()):
                raise _Reject(401, "signature", f"missing or wrong {sig.hmac.header}")

    def _event(self, request: Incoming, raw: bytes) -> Emitted:
        headers = {_canonical(name): ([MASKED] * len(values) if name == "authorization" else values) for name, values in request.headers.items()}
        content_type = request.header("content-type").split(";")[0].strip().lower()
        attributes: dict[str, Any] = {}
        encoding: str | None = None
        if content_type == "application/cloudevents+json":  # CloudEvents, structured mode
            envelope = _json(raw)
            if not isinstance(envelope, dict):
                raise _Reject(400, "cloudevent", "a structured CloudEvent must be a JSON object")
            attributes = {k: v for k, v in envelope.items() if k not in ("data", "data_base64", "datacontenttype")}
            if "data_base64" in envelope:
                body, encoding = envelope["data_base64"], "base64"
            else:
                body = envelope.get("data")
        else:
            if request.method == "GET" and not raw:
                body: Any = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(request.query).items()}
            else:
                body, encoding = _decode(content_type, raw)
            # CloudEvents, binary mode: ce-* headers are the attributes.
            attributes = {name[3:]: values[0] for name, values in request.headers.items() if name.startswith("ce-")}
        data: dict[str, Any] = {"header": headers, "body": body, "metadata": dict(self.config.metadata or {})}
        if encoding:
            data["bodyEncoding"] = encoding
        delivery = request.header("x-github-delivery") or attributes.get("id") or request.header("idempotency-key")
        kept = {k: v for k, v in attributes.items() if k not in ("id", "specversion")}
        return Emitted(data=data, id=str(delivery) if delivery else None, attributes=kept)


_CANONICAL: dict[str, str] = {}


def _canonical(name: str) -> str:
    """Go's canonical header name (``content-type`` -> ``Content-Type``), as Argo's events show them."""
    found = _CANONICAL.get(name)
    if found is None:
        found = "-".join(part.capitalize() for part in name.split("-"))
        if len(_CANONICAL) < 4096:
            _CANONICAL[name] = found
    return found


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _Reject(400, "json", f"body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (char {exc.pos})") from None
    except UnicodeDecodeError as exc:
        raise _Reject(400, "json", f"body is not valid UTF-8 JSON: {exc.reason} at byte {exc.start}") from None


def _decode(content_type: str, raw: bytes) -> tuple[Any, str | None]:
    if not raw:
        return None, None
    if content_type == "application/json" or content_type.endswith("+json"):
        return _json(raw), None
    if content_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(raw.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode(), "base64"
        return {k: v if len(v) > 1 else v[0] for k, v in fields.items()}, None
    if content_type.startswith("text/") or content_type in ("", "application/xml", "application/yaml"):
        try:
            return raw.decode(), None
        except UnicodeDecodeError:
            pass
    return base64.b64encode(raw).decode(), "base64"

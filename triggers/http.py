"""``http``: send the firing as one HTTP request (Argo's HTTPTrigger).

The body is the JSON object built from ``payload``; GET, HEAD and DELETE send none when it is empty.
Every request carries ``Idempotency-Key: <firing key>`` (a redelivered firing repeats it, so the
receiver can drop the repeat), ``X-Eventflow-Event-Ids``, ``X-Eventflow-Sensor`` and
``X-Eventflow-Trigger``.

The response decides the outcome: a status listed in the trigger's ``policy.status.allow``
succeeds, and only those when the list is given (Argo's rule); without it, a 2xx (Argo counts any
answer as success there). Otherwise 5xx, 408, 429, timeouts and connection errors fail and are
retried by ``retryStrategy``; any other status is rejected and not retried.

Secrets (``secureHeaders``, ``basicAuth``, the TLS keys) are read through ``context.secrets``, the
headers per firing so a rotated secret applies at once. Their values are never logged and never
reach the history: an error body that echoes them is redacted.

``SecretSelector``, ``TLSConfig``, ``read_secret``, ``ssl_context`` and ``with_kind_parameters`` are
shared with ``triggers/nats.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from triggers.base import Firing, TriggerContext, TriggerFailed, TriggerRejected, TriggerResult, register

__all__ = ["HttpConfig", "HttpTrigger", "SecretSelector", "TLSConfig"]  # and the helpers nats.py shares

log = logging.getLogger("triggers.http")

DEFAULT_TIMEOUT = 60.0  # seconds, as in Argo
BODYLESS = frozenset({"GET", "HEAD", "DELETE"})
RETRYABLE = frozenset({408, 429})  # and every 5xx
_SNIPPET_CHARS = 300  # of an error body, in the message
_READ_BYTES = 8192
_USERINFO = re.compile(r"//[^/@?#]*@")

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretSelector(_Model):
    """Argo's SecretKeySelector ``{name, key}``, or eventflow's ``{file}`` / ``{env}``; read with
    ``sources.secrets.Secrets.read``."""

    name: str | None = None
    key: str | None = None
    file: str | None = None
    env: str | None = None
    optional: bool | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretSelector:
        if sum([bool(self.name and self.key), bool(self.file), bool(self.env)]) != 1:
            raise ValueError("give one of {name, key}, {file} or {env}")
        return self

    def describe(self) -> str:
        if self.file:
            return f"file {self.file}"
        if self.env:
            return f"environment variable {self.env}"
        return f"secret {self.name}/{self.key}"


class ValueFrom(_Model):
    secretKeyRef: SecretSelector | None = None
    configMapKeyRef: dict[str, Any] | None = None  # refused by check()


class SecureHeader(_Model):
    name: str = Field(min_length=1)
    valueFrom: ValueFrom


class BasicAuth(_Model):
    username: SecretSelector | None = None
    password: SecretSelector | None = None


class TLSConfig(_Model):
    caCertSecret: SecretSelector | None = None
    clientCertSecret: SecretSelector | None = None
    clientKeySecret: SecretSelector | None = None
    insecureSkipVerify: bool = False


class HttpConfig(_Model):
    url: str
    method: Method = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    secureHeaders: list[SecureHeader] = Field(default_factory=list)
    basicAuth: BasicAuth | None = None
    timeout: float = Field(default=DEFAULT_TIMEOUT, ge=0, le=600)  # seconds; 0 means the default, as in Argo
    tls: TLSConfig | None = None
    host: str | None = None
    dynamicHeaders: list[Any] | None = None  # refused by check()

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


@register
class HttpTrigger:
    """One ``httpx.AsyncClient`` per trigger (per TLS setting), closed with the trigger."""

    key: ClassVar[str] = "http"
    Config: ClassVar[type[BaseModel]] = HttpConfig

    def __init__(self, context: TriggerContext) -> None:
        self.context = context
        self._clients: dict[str, httpx.AsyncClient] = {}
        self.sent = 0
        self.failed = 0

    def __repr__(self) -> str:
        return f"<HttpTrigger {self.context.sensor}/{self.context.trigger} sent={self.sent} failed={self.failed}>"

    @staticmethod
    def check(config: HttpConfig, where: str) -> list[str]:
        # The url may be a placeholder that parameters replace (``dest: http.url``), which this
        # check cannot see: only what no placeholder would be is refused here, the rest per firing.
        problems = []
        if (problem := _url_problem(config.url, placeholder_ok=True)) is not None:
            problems.append(f"{where}.url: {problem}")
        if config.dynamicHeaders:
            problems.append(
                f"{where}.dynamicHeaders: not supported yet (set a header from the event with http.parameters, dest: headers.<Name>)"
            )
        for i, header in enumerate(config.secureHeaders):
            if header.valueFrom.configMapKeyRef is not None:
                problems.append(
                    f"{where}.secureHeaders[{i}].valueFrom.configMapKeyRef: values from ConfigMaps are not supported yet (use secretKeyRef)"
                )
            elif header.valueFrom.secretKeyRef is None:
                problems.append(f"{where}.secureHeaders[{i}].valueFrom: give secretKeyRef")
        problems += tls_problems(config.tls, f"{where}.tls")
        return problems

    async def fire(self, config: HttpConfig, firing: Firing) -> TriggerResult:
        try:
            result = await self._request(with_kind_parameters(config, firing), firing)
        except (TriggerFailed, TriggerRejected):
            self.failed += 1
            raise
        self.sent += 1
        return result

    async def _request(self, config: HttpConfig, firing: Firing) -> TriggerResult:
        url, url_auth = _split_url(config.url)
        payload = firing.payload()
        body = None if config.method in BODYLESS and not payload else _json(payload)
        secrets: list[str] = []  # values to redact from messages

        def read(ref: SecretSelector, what: str) -> str:
            secrets.append(read_secret(self.context, ref, firing.namespace, what))
            return secrets[-1]

        headers = _headers(config, firing, body is not None, read)
        auth = _basic_auth(config.basicAuth, read) or url_auth
        if auth is not None:
            secrets.append(base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
        client = self._client(config.tls, firing.namespace)
        timeout = config.timeout or DEFAULT_TIMEOUT
        what = f"{config.method} {url}"
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                request = client.build_request(
                    config.method, url, content=body, headers=headers, timeout=timeout
                )
                response = await client.send(
                    request, auth=httpx.BasicAuth(*auth) if auth else None, stream=True
                )
                try:
                    verdict = _verdict(response.status_code, allowed_statuses(firing.policy))
                    snippet = await _snippet(response) if verdict is not None else ""
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise TriggerFailed(f"{what}: timed out after {timeout:g}s") from None
        except (httpx.TooManyRedirects, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise TriggerRejected(_redact(f"{what}: {exc}", secrets)) from None
        except httpx.HTTPError as exc:
            raise TriggerFailed(_redact(f"{what}: {type(exc).__name__}: {exc}", secrets)) from None
        elapsed = round((time.monotonic() - started) * 1000, 3)
        log.debug("%s -> %d (firing %s)", what, response.status_code, firing.key)
        if verdict is not None:
            snippet = _redact(snippet, secrets)  # before the cut: a cut secret would show its start
            snippet = snippet[:_SNIPPET_CHARS] + "…" if len(snippet) > _SNIPPET_CHARS else snippet
            raise verdict(
                f"{what}: HTTP {response.status_code} {response.reason_phrase}"
                + (f": {snippet}" if snippet else "")
            )
        return TriggerResult(
            {"status": response.status_code, "method": config.method, "url": url, "elapsedMs": elapsed}
        )

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    def _client(self, tls: TLSConfig | None, namespace: str) -> httpx.AsyncClient:
        key = tls.model_dump_json() if tls is not None else ""
        client = self._clients.get(key)
        if client is None:
            verify: ssl.SSLContext | bool = True
            if tls is not None:
                verify = ssl_context(tls, lambda ref, what: read_secret(self.context, ref, namespace, what))
            client = httpx.AsyncClient(verify=verify, follow_redirects=True)
            self._clients[key] = client
        return client


# -- shared with triggers/nats.py --------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)


def with_kind_parameters(config: _M, firing: Firing) -> _M:
    """The config with the kind's own ``parameters`` applied (Argo applies them to the trigger's
    JSON: ``dest: url``, ``dest: headers.X-Name``)."""
    document = config.model_dump(mode="json", exclude_none=True)
    applied = firing.apply_parameters(document)
    if applied is document:
        return config
    try:
        return type(config).model_validate(applied)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TriggerRejected(f"after parameters: {where}: {first['msg']}") from None


def read_secret(context: TriggerContext, ref: SecretSelector, namespace: str, what: str) -> str:
    """A secret's value; a secret that cannot be read rejects the firing (the message names where
    it was looked for, never a value)."""
    if context.secrets is None:
        raise TriggerRejected(f"{what}: no secret store is configured in this process")
    try:
        return str(context.secrets.read(ref, namespace))
    except ValueError as exc:  # sources.secrets.SecretError
        raise TriggerRejected(f"{what}: {exc}") from None


def tls_problems(tls: TLSConfig | None, where: str) -> list[str]:
    if tls is not None and (tls.clientCertSecret is None) != (tls.clientKeySecret is None):
        return [f"{where}: clientCertSecret and clientKeySecret go together"]
    return []


def ssl_context(tls: TLSConfig, read: Callable[[SecretSelector, str], str]) -> ssl.SSLContext:
    """A client TLS context: the CA from ``caCertSecret`` (else the system's), the client key pair,
    and ``insecureSkipVerify``."""
    try:
        cadata = read(tls.caCertSecret, "tls.caCertSecret") if tls.caCertSecret is not None else None
        context = ssl.create_default_context(cadata=cadata)
        if tls.clientCertSecret is not None and tls.clientKeySecret is not None:
            cert, key = (
                read(tls.clientCertSecret, "tls.clientCertSecret"),
                read(tls.clientKeySecret, "tls.clientKeySecret"),
            )
            with tempfile.TemporaryDirectory() as tmp:  # the ssl module loads key pairs from files only
                (Path(tmp) / "cert.pem").write_text(cert)
                (Path(tmp) / "key.pem").write_text(key)
                context.load_cert_chain(Path(tmp) / "cert.pem", Path(tmp) / "key.pem")
    except (ssl.SSLError, OSError, ValueError) as exc:  # not TriggerRejected: a missing secret says so itself
        raise TriggerRejected(
            f"tls: cannot use the certificates: {getattr(exc, 'reason', None) or exc}"
        ) from None
    if tls.insecureSkipVerify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def allowed_statuses(policy: Mapping[str, Any] | None) -> frozenset[int]:
    """``policy.status.allow`` of the trigger, as status codes."""
    status = (policy or {}).get("status")
    allow = status.get("allow") if isinstance(status, Mapping) else None
    return frozenset(
        int(v) for v in allow or () if isinstance(v, int) or (isinstance(v, str) and v.isdigit())
    )


def shown_url(url: str) -> str:
    """The url as it may appear in a message: credentials masked."""
    return _USERINFO.sub("//***@", url)


# -- helpers ------------------------------------------------------------------------------------


def _url_problem(url: str, *, placeholder_ok: bool) -> str | None:
    """What is wrong with the url; with ``placeholder_ok``, a value without ``://`` passes."""
    if not url.strip():
        return "required (when parameters set it, give a placeholder such as http://placeholder)"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        return f"not a valid URL ({exc}): {shown_url(url)!r}"
    if (not placeholder_ok or "://" in url) and (parts.scheme not in ("http", "https") or not parts.hostname):
        return f"expected an absolute http or https URL, got {shown_url(url)!r}"
    return None


def _split_url(url: str) -> tuple[str, tuple[str, str] | None]:
    """The url without credentials (what requests go to and messages show), and the credentials."""
    if (problem := _url_problem(url, placeholder_ok=False)) is not None:
        raise TriggerRejected(f"url: {problem}")
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    credentials = (unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), credentials


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _headers(
    config: HttpConfig, firing: Firing, has_body: bool, read: Callable[[SecretSelector, str], str]
) -> httpx.Headers:
    headers = httpx.Headers()
    try:
        if has_body:
            headers["Content-Type"] = "application/json"
        for name, value in config.headers.items():
            headers[name] = value
        if config.host:
            headers["Host"] = config.host
        for i, secure in enumerate(config.secureHeaders):
            ref = secure.valueFrom.secretKeyRef
            if ref is None:
                raise TriggerRejected(f"secureHeaders[{i}] ({secure.name}): give valueFrom.secretKeyRef")
            headers[secure.name] = read(ref, f"secureHeaders[{i}] ({secure.name})")
        headers["Idempotency-Key"] = firing.key
        headers["X-Eventflow-Event-Ids"] = ",".join(firing.event_ids)
        headers["X-Eventflow-Sensor"] = firing.sensor
        headers["X-Eventflow-Trigger"] = firing.trigger
    except UnicodeEncodeError:
        raise TriggerRejected("headers: a header name or value is not ASCII") from None
    return headers


def _basic_auth(spec: BasicAuth | None, read: Callable[[SecretSelector, str], str]) -> tuple[str, str] | None:
    if spec is None:
        return None
    username = read(spec.username, "basicAuth.username") if spec.username is not None else ""
    password = read(spec.password, "basicAuth.password") if spec.password is not None else ""
    return username, password


def _verdict(status: int, allow: frozenset[int]) -> type[Exception] | None:
    """None for a success, else the exception that says whether a retry may help."""
    if (status in allow) if allow else (200 <= status < 300):  # Argo: a listed allow is the whole list
        return None
    if status >= 500 or status in RETRYABLE:
        return TriggerFailed
    return TriggerRejected


async def _snippet(response: httpx.Response) -> str:
    """The start of an error body on one line (more than is shown: see the redaction in fire)."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= _READ_BYTES:
            break
    return " ".join(bytes(data[:_READ_BYTES]).decode("utf-8", "replace").split())


def _redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text

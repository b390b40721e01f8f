"""Argo's ``http`` template, run in the server's own loop as Argo's agent runs it: no process, no pod.

The response body becomes ``outputs.result``. Without ``successCondition`` a 2xx status succeeds; with
one, the expression sees ``request.{method,url,body,headers}`` and ``response.{statusCode,body,headers}``
(headers as maps of lists, as Go's ``http.Header``). The request and the response status are written to
the node's log, so ``eventflow logs`` shows what was sent and what came back.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import ssl
import time
from datetime import datetime
from pathlib import Path

import httpx

from workflows.executor.spec import ProcessResult
from workflows.expressions import ExpressionError, build_env, evaluate_bool
from workflows.models.kinds import HTTPTemplate
from workflows.status import now

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "run_http"]

DEFAULT_TIMEOUT_SECONDS = 30  # Argo's documented default
RESULT_LIMIT = 256 * 1024  # the body kept as outputs.result (the log keeps its size)


@functools.cache
def _tls(verify: bool) -> ssl.SSLContext:
    """One TLS context per setting for every HTTP step: httpx would build one per client, loading the
    CA bundle each time (tens of ms of CPU per step)."""
    return httpx.create_ssl_context(verify=verify)


def _headers(http: HTTPTemplate) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for header in http.headers or []:
        if header.value_from is not None:
            raise ValueError(
                f"http.headers.{header.name}: valueFrom is not supported here yet; give the value"
            )
        out.setdefault(header.name, []).append(header.value or "")
    return out


def _body(http: HTTPTemplate) -> bytes:
    if http.body_from is not None and http.body_from.bytes:
        try:
            return base64.b64decode(http.body_from.bytes, validate=True)
        except binascii.Error:
            raise ValueError("http.bodyFrom.bytes: not base64") from None
    return (http.body or "").encode()


def _canonical(key: str) -> str:
    """Go's canonical header key (``content-type`` -> ``Content-Type``), as Argo's expressions see it."""
    return "-".join(part.capitalize() for part in key.split("-"))


def _result(code: int | None, body: str, log: Path, error: str | None, started: datetime) -> ProcessResult:
    return ProcessResult(
        exit_code=code,
        result=body[:RESULT_LIMIT],
        log_path=log,
        outputs={},
        error=error,
        started_at=started,
        finished_at=now(),
    )


async def run_http(
    http: HTTPTemplate, log: Path, *, deadline: float | None = None, message: str = ""
) -> ProcessResult:
    """Send the request; a failed condition, a non-2xx status, a timeout or a refused connection
    ends the node Failed with Argo's message. ``deadline`` (epoch seconds) stops a request that
    outlives the node's or the workflow's deadline, with ``message``."""
    started = now()
    log.parent.mkdir(parents=True, exist_ok=True)
    method = (http.method or "GET").upper()
    try:
        headers, content = _headers(http), _body(http)
    except ValueError as exc:
        log.write_text(f"{exc}\n")
        return _result(None, "", log, str(exc), started)
    timeout = float(http.timeout_seconds or DEFAULT_TIMEOUT_SECONDS)
    cut_by_deadline = deadline is not None and deadline - time.time() < timeout
    if deadline is not None:
        timeout = max(0.0, min(timeout, deadline - time.time()))
    lines = [f"{method} {http.url}"]
    try:
        async with httpx.AsyncClient(verify=_tls(not http.insecure_skip_verify), follow_redirects=True) as client:
            request = client.build_request(
                method,
                http.url,
                headers=[(k, v) for k, vs in headers.items() for v in vs],
                content=content or None,
            )
            response = await asyncio.wait_for(client.send(request), timeout)
    except (TimeoutError, httpx.TimeoutException):
        error = (
            message
            if cut_by_deadline and message
            else f"{method} {http.url}: no response within {timeout:g}s"
        )
        log.write_text("\n".join([*lines, error]) + "\n")
        return _result(None, "", log, error, started)
    except httpx.HTTPError as exc:
        error = f"{method} {http.url}: {type(exc).__name__}: {exc}"
        log.write_text("\n".join([*lines, error]) + "\n")
        return _result(None, "", log, error, started)
    body = response.text
    lines.append(f"{response.status_code} {response.reason_phrase} ({len(response.content)} bytes)")
    error = None
    if not http.success_condition:
        if not 200 <= response.status_code < 300:
            error = f"received non-2xx response code: {response.status_code}"
    else:
        scope = {
            "request": {"method": method, "url": http.url, "body": http.body or "", "headers": headers},
            "response": {
                "statusCode": response.status_code,
                "body": body,
                "headers": {_canonical(k): response.headers.get_list(k) for k in response.headers.keys()},  # noqa: SIM118
            },
        }
        try:
            ok = evaluate_bool(http.success_condition, build_env(scope))
        except ExpressionError as exc:
            ok, error = False, f"successCondition {http.success_condition!r}: {exc}"
        if not ok and error is None:
            error = (
                f"successCondition {http.success_condition!r} evaluated false (status {response.status_code})"
            )
    if error:
        lines.append(error)
    log.write_text("\n".join(lines) + "\n")
    return _result(0 if error is None else 1, body, log, error, started)

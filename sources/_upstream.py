"""What the kinds that read an upstream broker (amqp, mqtt, kafka, redis, redisStream, nats) share:
turning a message body into event data, naming an error for a log line, and the Argo fields they
accept in the schema but refuse to run with. (A leading underscore: not a kind of its own.)"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["decode_body", "describe", "reject_filter", "reject_tls"]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_body(raw: bytes, json_body: bool) -> tuple[Any, str | None]:
    """A message body for event data, and its ``bodyEncoding`` when it is not what was asked for;
    never a silent lossy decode.

    ``json_body``: the parsed JSON (empty -> ``None``); not JSON -> the text marked ``"text"``, or
    base64 marked ``"base64"`` when it is not UTF-8 either. Otherwise: the UTF-8 text, or base64
    marked ``"base64"``.
    """
    if json_body:
        if not raw:
            return None, None
        try:
            return json.loads(raw, parse_constant=_no_constant), None
        except ValueError:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
            pass
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), "base64"
    return text, ("text" if json_body else None)


def describe(exc: BaseException) -> str:
    """``ConnectionError: Connection refused`` for log lines (never a password: clients do not echo it)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def reject_tls(tls: dict[str, Any] | None, what: str) -> None:
    if tls and tls.get("enabled", True) is not False:
        raise ValueError(
            f"tls: TLS connections to {what} are not supported yet; reach it over a private network or a "
            "local TLS-terminating proxy (stunnel, spiped)"
        )


def reject_filter(filter_: dict[str, Any] | None) -> None:
    if filter_ is not None:
        raise ValueError("filter: source-side filters are not supported; filter in the sensor (CEL)")

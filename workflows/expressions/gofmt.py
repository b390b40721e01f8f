"""Render Python values the way Go renders the equivalent ``interface{}`` values.

Argo writes an expression result with ``fmt.Sprintf("%v", v)`` and serialises items, ``toJson``
and sprig output with ``encoding/json``; both differ from Python's ``str``/``json`` (``1e+06``
instead of ``1000000.0``, ``map[a:1]``, sorted keys, HTML-escaped ``<>&``). Matching them keeps
step names, parameters and logs byte-identical to Argo's.

Type mapping: ``None``=nil, ``bool``, ``int``=int64, ``float``=float64, ``str``, ``list``/``tuple``
=slice, ``dict``=map, ``datetime``=time.Time, ``timedelta``=time.Duration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from workflows.expressions.gotime import format_duration, format_time

__all__ = ["go_json", "go_sprint", "go_type", "json_loads"]

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of a positive finite float and the decimal point position."""
    _, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    if not isinstance(exponent, int):
        raise TypeError(f"not a finite float: {value!r}")
    point = len(digit_tuple) + exponent
    return digits, point


def _format_e(digits: str, point: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _format_f(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def format_float(value: float, *, json_style: bool) -> str:
    """Go's ``%v`` (``json_style=False``) or ``encoding/json`` rendering of a float64."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, point = _shortest_digits(abs(value))
    exp = point - 1
    if json_style:
        if abs(value) < 1e-6 or abs(value) >= 1e21:
            text = _format_e(digits, point)
            # encoding/json trims "e-07" to "e-7" (but keeps "e+21")
            return sign + text.replace("e-0", "e-")
        return sign + _format_f(digits, point)
    # %v is strconv 'g' with shortest precision, which switches to %e at exponent 6
    if exp < -4 or exp >= 6:
        return sign + _format_e(digits, point)
    return sign + _format_f(digits, point)


def format_float_fixed(value: float) -> str:
    """Go's ``strconv.FormatFloat(value, 'f', -1, 64)``: shortest digits, never an exponent."""
    if math.isnan(value) or math.isinf(value):
        return format_float(value, json_style=False)
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    return sign + _format_f(*_shortest_digits(abs(value)))


def go_type(value: object) -> str:
    """The Go type name Argo's error messages would show for ``value``."""
    match value:
        case None:
            return "<nil>"
        case bool():
            return "bool"
        case int():
            return "int"
        case float():
            return "float64"
        case str():
            return "string"
        case datetime():
            return "time.Time"
        case timedelta():
            return "time.Duration"
        case Mapping():
            return "map[string]interface {}"
        case list() | tuple():
            return "[]interface {}"
        case _:
            return type(value).__name__


def go_sprint(value: object) -> str:
    """``fmt.Sprintf("%v", value)``."""
    match value:
        case None:
            return "<nil>"
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float():
            return format_float(value, json_style=False)
        case str():
            return value
        case datetime():
            return format_time(value, "2006-01-02 15:04:05.999999999 -0700 MST")
        case timedelta():
            return format_duration(value)
        case Mapping():
            items = sorted((str(k), v) for k, v in value.items())
            return "map[" + " ".join(f"{k}:{go_sprint(v)}" for k, v in items) + "]"
        case list() | tuple():
            return "[" + " ".join(go_sprint(v) for v in value) + "]"
        case _:
            return str(value)


def _json_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for raw, escaped in _HTML_ESCAPES.items():
        encoded = encoded.replace(raw, escaped)
    return encoded


def go_json(value: object, *, indent: str | None = None, _level: int = 0) -> str:
    """``json.Marshal`` (or ``json.MarshalIndent(v, "", indent)``) of ``value``.

    Raises ``ValueError`` for values Go cannot marshal (NaN, infinities, unknown types).
    """
    match value:
        case None:
            return "null"
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float():
            if math.isnan(value) or math.isinf(value):
                raise ValueError(f"json: unsupported value: {format_float(value, json_style=False)}")
            return format_float(value, json_style=True)
        case str():
            return _json_string(value)
        case datetime():
            return _json_string(format_time(value, "2006-01-02T15:04:05.999999999Z07:00"))
        case timedelta():
            return str((value.days * 86400 + value.seconds) * 10**9 + value.microseconds * 1000)
        case Mapping():
            colon = ":" if indent is None else ": "
            pairs = sorted((str(k), v) for k, v in value.items())
            parts = [
                f"{_json_string(k)}{colon}{go_json(v, indent=indent, _level=_level + 1)}" for k, v in pairs
            ]
            return _join("{", parts, "}", indent, _level)
        case list() | tuple():
            parts = [go_json(v, indent=indent, _level=_level + 1) for v in value]
            return _join("[", parts, "]", indent, _level)
        case _:
            raise ValueError(f"json: unsupported type: {go_type(value)}")


def _join(open_: str, parts: list[str], close: str, indent: str | None, level: int) -> str:
    if not parts:
        return open_ + close
    if indent is None:
        return open_ + ",".join(parts) + close
    inner = "\n" + indent * (level + 1)
    return open_ + inner + ("," + inner).join(parts) + "\n" + indent * level + close


def json_loads(text: str) -> object:
    """``json.Unmarshal`` into ``interface{}``: every number becomes a float64, as in Go."""
    return json.loads(text, parse_int=float)

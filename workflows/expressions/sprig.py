"""The ``sprig`` namespace of Argo expressions: sprig's generic function map minus ``env``/``expandenv``.

Numbers follow sprig: integer helpers (``add``, ``max``, ``div``...) convert every argument with
``cast.ToInt64`` (unparseable strings become 0) and return int64; the ``*f`` variants return float64.
Many sprig functions return a zero value instead of failing (``atoi("x")`` is 0, ``get`` of a
missing key is ``""``); that leniency is kept because workflows rely on it.
Not provided: semver, crypto/certificates, network lookups.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from workflows.expressions.expr_ops import equal, is_number
from workflows.expressions.gofmt import go_json, go_type, json_loads
from workflows.expressions.sprig_text import TEXT_FUNCTIONS, strval, text, whole
from workflows.expressions.sprig_time import TIME_FUNCTIONS

__all__ = ["SPRIG", "empty", "to_float64", "to_int64"]


def to_int64(value: object) -> int:
    """``cast.ToInt64``: truncates floats, parses strings ("0x1f", "10.0"), else 0."""
    if isinstance(value, bool):
        return int(value)
    if is_number(value):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        trimmed = re.sub(r"\.0*$", "", value) if re.fullmatch(r"[+-]?\d+\.0*", value) else value
        try:
            return int(trimmed, 0)
        except ValueError:
            return 0
    return 0


def to_float64(value: object) -> float:
    """``cast.ToFloat64``: numbers and numeric strings, else 0."""
    if isinstance(value, bool) or is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def empty(value: object) -> bool:
    """sprig's ``empty``: nil, false, 0, and empty strings, lists and maps."""
    if value is None or value is False:
        return True
    if is_number(value):
        return value == 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value) == 0
    return False


def _ints(args: tuple[object, ...]) -> list[int]:
    return [to_int64(a) for a in args]


def _go_mod(a: int, b: int) -> int:
    return a - b * _go_div(a, b)


def _go_div(a: int, b: int) -> int:
    if b == 0:
        raise ValueError("integer divide by zero")
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def _round(value: object, places: object, round_on: object = 0.5) -> float:
    power = 10 ** to_float64(places)
    digit = power * to_float64(value)
    fraction = digit - math.trunc(digit)
    return (math.ceil(digit) if fraction >= to_float64(round_on) else math.floor(digit)) / power


def _until_step(start: int, stop: int, step: int) -> list[int]:
    if stop < start:
        return list(range(start, stop, step)) if step < 0 else []
    return list(range(start, stop, step)) if step > 0 else []


def _seq(*params: object) -> str:
    p = [whole(x, "seq") for x in params]
    match p:
        case [end]:
            step = -1 if end < 1 else 1
            numbers = _until_step(1, end + step, step)
        case [start, end]:
            step = -1 if end < start else 1
            numbers = _until_step(start, end + step, step)
        case [start, step, end]:
            if end < start and step > 0:
                return ""
            numbers = _until_step(start, end + (-1 if end < start else 1), step)
        case _:
            return ""
    return " ".join(map(str, numbers))


def _list(value: object, name: str) -> list[object]:
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(f"{name}: cannot use type {go_type(value)} as a list")


def _dict(value: object, name: str) -> dict[str, object]:
    if isinstance(value, dict):
        return value
    raise ValueError(f"{name}: expected map, got {go_type(value)}")


def _slice(values: object, *bounds: object) -> list[object]:
    """``slice(list, start?, end?)``: one bound means "from start"."""
    start, end = ([whole(b, "slice") for b in bounds] + [None, None])[:2] if bounds else (None, None)
    return _list(values, "slice")[start:end]


def _make_dict(*pairs: object) -> dict[str, object]:
    padded = [*pairs, ""] if len(pairs) % 2 else list(pairs)
    return {strval(padded[i]): padded[i + 1] for i in range(0, len(padded), 2)}


def _kind(value: object) -> str:
    """``reflect.Kind`` names."""
    match value:
        case None:
            return "invalid"
        case list() | tuple():
            return "slice"
        case Mapping():
            return "map"
        case timedelta():
            return "int64"
        case datetime():
            return "struct"
        case _:
            return go_type(value)


def _set(mapping: object, key: object, value: object) -> dict[str, object]:
    target = _dict(mapping, "set")
    target[text(key, "set")] = value
    return target


def _unset(mapping: object, key: object) -> dict[str, object]:
    target = _dict(mapping, "unset")
    target.pop(text(key, "unset"), None)
    return target


def _from_json(value: object) -> object:
    try:
        return json_loads(text(value, "fromJson"))
    except ValueError:
        return None  # sprig's fromJson swallows the error


def _dig(*args: object) -> object:
    *keys, default, source = args
    current: object = source
    for key in keys:
        if not isinstance(current, Mapping) or strval(key) not in current:
            return default
        current = current[strval(key)]
    return current


SPRIG: dict[str, Callable[..., Any]] = {
    **TEXT_FUNCTIONS,
    **TIME_FUNCTIONS,
    "add": lambda *a: sum(_ints(a)),
    "add1": lambda a: to_int64(a) + 1,
    "sub": lambda a, b: to_int64(a) - to_int64(b),
    "mul": lambda a, *v: math.prod(_ints((a, *v))),
    "div": lambda a, b: _go_div(to_int64(a), to_int64(b)),
    "mod": lambda a, b: _go_mod(to_int64(a), to_int64(b)),
    "max": lambda a, *v: max(_ints((a, *v))),
    "biggest": lambda a, *v: max(_ints((a, *v))),
    "min": lambda a, *v: min(_ints((a, *v))),
    "addf": lambda *a: math.fsum(to_float64(x) for x in a),
    "add1f": lambda a: to_float64(a) + 1,
    "subf": lambda a, *v: to_float64(a) - math.fsum(to_float64(x) for x in v),
    "mulf": lambda a, *v: math.prod(to_float64(x) for x in (a, *v)),
    "divf": lambda a, *v: _divf(to_float64(a), [to_float64(x) for x in v]),
    "maxf": lambda a, *v: max(to_float64(x) for x in (a, *v)),
    "minf": lambda a, *v: min(to_float64(x) for x in (a, *v)),
    "floor": lambda a: math.floor(to_float64(a)) * 1.0,
    "ceil": lambda a: math.ceil(to_float64(a)) * 1.0,
    "round": _round,
    "int": to_int64,
    "int64": to_int64,
    "float64": to_float64,
    "atoi": lambda s: int(s) if isinstance(s, str) and re.fullmatch(r"[+-]?\d+", s) else 0,
    "seq": _seq,
    "until": lambda n: _until_step(0, whole(n, "until"), 1 if whole(n, "until") >= 0 else -1),
    "untilStep": lambda a, b, c: _until_step(whole(a), whole(b), whole(c)),
    "default": lambda d, *given: d if not given or empty(given[0]) else given[0],
    "empty": empty,
    "coalesce": lambda *vs: next((v for v in vs if not empty(v)), None),
    "ternary": lambda yes, no, cond: yes if cond is True else no,
    "toJson": go_json,
    "mustToJson": go_json,
    "toPrettyJson": lambda v: go_json(v, indent="  "),
    "fromJson": _from_json,
    "mustFromJson": lambda s: json_loads(text(s, "mustFromJson")),
    "list": lambda *vs: list(vs),
    "first": lambda xs: (_list(xs, "first") or [None])[0],
    "last": lambda xs: (_list(xs, "last") or [None])[-1],
    "rest": lambda xs: _list(xs, "rest")[1:],
    "initial": lambda xs: _list(xs, "initial")[:-1],
    "append": lambda xs, v: [*_list(xs, "append"), v],
    "push": lambda xs, v: [*_list(xs, "push"), v],
    "prepend": lambda xs, v: [v, *_list(xs, "prepend")],
    "concat": lambda *xss: [x for xs in xss for x in _list(xs, "concat")],
    "reverse": lambda xs: _list(xs, "reverse")[::-1],
    "uniq": lambda xs: [x for i, x in enumerate(_list(xs, "uniq")) if not any(equal(x, y) for y in xs[:i])],
    "without": lambda xs, *omit: [x for x in _list(xs, "without") if not any(equal(x, o) for o in omit)],
    "has": lambda needle, xs: any(equal(needle, x) for x in _list(xs, "has")),
    "compact": lambda xs: [x for x in _list(xs, "compact") if not empty(x)],
    "slice": _slice,
    "sortAlpha": lambda xs: sorted(strval(x) for x in _list(xs, "sortAlpha")),
    "join": lambda sep, xs: text(sep, "join").join(strval(x) for x in (xs if isinstance(xs, list) else [xs])),
    "splitList": lambda sep, s: text(s, "splitList").split(text(sep, "splitList")),
    "split": lambda sep, s: {f"_{i}": p for i, p in enumerate(text(s, "split").split(text(sep, "split")))},
    "dict": _make_dict,
    "get": lambda d, k: _dict(d, "get").get(text(k, "get"), ""),
    "set": _set,
    "unset": _unset,
    "hasKey": lambda d, k: text(k, "hasKey") in _dict(d, "hasKey"),
    "keys": lambda *ds: sorted(k for d in ds for k in _dict(d, "keys")),
    "values": lambda d: [_dict(d, "values")[k] for k in sorted(d)],
    "pluck": lambda k, *ds: [_dict(d, "pluck")[k] for d in ds if k in _dict(d, "pluck")],
    "pick": lambda d, *ks: {k: v for k, v in _dict(d, "pick").items() if k in ks},
    "omit": lambda d, *ks: {k: v for k, v in _dict(d, "omit").items() if k not in ks},
    "dig": _dig,
    "typeOf": go_type,
    "kindOf": _kind,
    "kindIs": lambda kind, v: _kind(v) == kind,
    "typeIs": lambda name, v: go_type(v) == name,
    "deepEqual": equal,
}


def _divf(first: float, rest: list[float]) -> float:
    result = first
    for divisor in rest:
        if divisor == 0:
            raise ValueError("division by zero")
        result /= divisor
    return result

"""expr-lang's builtin functions (``len``, ``filter``, ``toJSON``, ``now``...).

Plain builtins take evaluated arguments. Predicate builtins take the collection and a
``Predicate`` that evaluates the closure body for one element (``#``), its index (``#index``) and,
for ``reduce``, the accumulator (``#acc``). Errors are ``ValueError``/``TypeError``; the caller
attaches the expression and position.
"""

from __future__ import annotations

import base64
import functools
import math
import statistics
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from workflows.expressions.expr_ops import compare, equal, fetch, is_number, to_float, to_int
from workflows.expressions.gofmt import go_json, go_sprint, go_type, json_loads
from workflows.expressions.gotime import parse_duration, parse_time

__all__ = ["BUILTINS", "PREDICATES", "Predicate"]

Predicate = Callable[[object, int, object], object]
_MISSING = object()


def items(value: object, name: str) -> list[object]:
    """The elements of an array argument."""
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(f"{name}: cannot iterate {go_type(value)}")


def _text(value: object, name: str) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"{name}: expected string, got {go_type(value)}")


def _flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{name}: predicate must return bool, got {go_type(value)}")


def _length(value: object) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise ValueError(f"invalid argument for len (type {go_type(value)})")


def _type(value: object) -> str:
    names = {"<nil>": "nil", "float64": "float", "[]interface {}": "array", "map[string]interface {}": "map"}
    kind = go_type(value)
    return "func" if callable(value) else names.get(kind, kind)


def _numbers(name: str, args: tuple[object, ...]) -> list[int | float]:
    values = items(args[0], name) if len(args) == 1 and isinstance(args[0], list | tuple) else list(args)
    if not values or not all(is_number(v) for v in values):
        raise ValueError(f"{name}: expected numbers")
    return values  # type: ignore[return-value]


def _extreme(name: str, pick: Callable[[list[int | float]], int | float]) -> Callable[..., object]:
    return lambda *args: pick(_numbers(name, args))


def _round(value: object, how: Callable[[float], float]) -> float:
    if not is_number(value):
        raise ValueError(f"invalid argument (type {go_type(value)})")
    return float(how(value))


def _go_round(value: float) -> float:
    return math.copysign(math.floor(abs(value) + 0.5), value)  # Go rounds half away from zero


def _split(text: object, sep: object, limit: object = -1, *, after: bool = False) -> list[str]:
    source, separator = _text(text, "split"), _text(sep, "split")
    count = to_int(limit)
    if count == 0:
        return []
    parts = source.split(separator, count - 1) if count > 0 else source.split(separator)
    if after:
        parts = [p + separator for p in parts[:-1]] + parts[-1:]
    return parts


def _get(obj: object, key: object) -> object:
    try:
        return None if obj is None else fetch(obj, key)
    except ValueError:
        return None


def _keys(value: object) -> list[object]:
    if not isinstance(value, Mapping):
        raise TypeError(f"keys: expected map, got {go_type(value)}")
    return sorted(value)


def _date(text: object, layout: object = None, _zone: object = None) -> datetime:
    if isinstance(text, datetime):
        return text
    return parse_time(_text(text, "date"), None if layout is None else _text(layout, "date"))


def _sort(value: object, order: object = "asc") -> list[object]:
    elements = items(value, "sort")
    return _sort_by(elements, [(e, e) for e in elements], order)


def _sort_by(elements: list[object], keyed: list[tuple[object, object]], order: object) -> list[object]:
    if order not in ("asc", "desc"):
        raise ValueError(f"sort: unknown order {order!r}")

    def cmp(a: tuple[object, object], b: tuple[object, object]) -> int:
        return -1 if compare("<", a[0], b[0]) else (1 if compare(">", a[0], b[0]) else 0)

    ranked = sorted(keyed, key=functools.cmp_to_key(cmp), reverse=order == "desc")
    return [value for _, value in ranked]


def _uniq(value: object) -> list[object]:
    unique: list[object] = []
    for element in items(value, "uniq"):
        if not any(equal(element, seen) for seen in unique):
            unique.append(element)
    return unique


def _from_pairs(value: object) -> dict[object, object]:
    pairs = [items(pair, "fromPairs") for pair in items(value, "fromPairs")]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError("fromPairs: expected [key, value] pairs")
    return {key: val for key, val in pairs}


def _flatten(value: object) -> list[object]:
    flat: list[object] = []
    for element in items(value, "flatten"):
        flat.extend(_flatten(element) if isinstance(element, list | tuple) else [element])
    return flat


BUILTINS: dict[str, Callable[..., Any]] = {
    "len": _length,
    "type": _type,
    "abs": lambda v: abs(_numbers("abs", (v,))[0]),
    "ceil": lambda v: _round(v, math.ceil),
    "floor": lambda v: _round(v, math.floor),
    "round": lambda v: _round(v, _go_round),
    "int": to_int,
    "float": to_float,
    "string": go_sprint,
    "trim": lambda s, chars=None: _text(s, "trim").strip(None if chars is None else _text(chars, "trim")),
    "trimPrefix": lambda s, p: _text(s, "trimPrefix").removeprefix(_text(p, "trimPrefix")),
    "trimSuffix": lambda s, p: _text(s, "trimSuffix").removesuffix(_text(p, "trimSuffix")),
    "upper": lambda s: _text(s, "upper").upper(),
    "lower": lambda s: _text(s, "lower").lower(),
    "split": _split,
    "splitAfter": lambda s, sep, n=-1: _split(s, sep, n, after=True),
    "replace": lambda s, old, new: _text(s, "replace").replace(_text(old, "replace"), _text(new, "replace")),
    "repeat": lambda s, n: _text(s, "repeat") * to_int(n),
    "indexOf": lambda s, sub: _text(s, "indexOf").find(_text(sub, "indexOf")),
    "lastIndexOf": lambda s, sub: _text(s, "lastIndexOf").rfind(_text(sub, "lastIndexOf")),
    "hasPrefix": lambda s, p: _text(s, "hasPrefix").startswith(_text(p, "hasPrefix")),
    "hasSuffix": lambda s, p: _text(s, "hasSuffix").endswith(_text(p, "hasSuffix")),
    "max": _extreme("max", max),
    "min": _extreme("min", min),
    "mean": lambda *a: float(statistics.fmean(_numbers("mean", a))),
    "median": lambda *a: float(statistics.median(_numbers("median", a))),
    "toJSON": lambda v: go_json(v, indent="  "),
    "fromJSON": lambda s: json_loads(_text(s, "fromJSON")),
    "toBase64": lambda s: base64.b64encode(_text(s, "toBase64").encode()).decode(),
    "fromBase64": lambda s: base64.b64decode(_text(s, "fromBase64")).decode(),
    "now": lambda: datetime.now(UTC),
    "duration": lambda s: parse_duration(_text(s, "duration")),
    "date": _date,
    "first": lambda v: _get(v, 0),
    "last": lambda v: _get(v, -1),
    "get": _get,
    "take": lambda v, n: items(v, "take")[: max(to_int(n), 0)],
    "keys": _keys,
    "values": lambda v: [v[k] for k in _keys(v)],
    "toPairs": lambda v: [[k, v[k]] for k in _keys(v)],
    "fromPairs": _from_pairs,
    "join": lambda v, sep="": _text(sep, "join").join(_text(e, "join") for e in items(v, "join")),
    "reverse": lambda v: items(v, "reverse")[::-1],
    "uniq": _uniq,
    "concat": lambda *arrays: [e for a in arrays for e in items(a, "concat")],
    "flatten": _flatten,
    "sort": _sort,
}


def _all(xs: object, p: Predicate) -> bool:
    return all(_flag(p(x, i, None), "all") for i, x in enumerate(items(xs, "all")))


def _any(xs: object, p: Predicate) -> bool:
    return any(_flag(p(x, i, None), "any") for i, x in enumerate(items(xs, "any")))


def _matching(xs: object, p: Predicate, name: str) -> list[tuple[int, object]]:
    return [(i, x) for i, x in enumerate(items(xs, name)) if _flag(p(x, i, None), name)]


def _find(xs: object, p: Predicate, *, last: bool, index: bool) -> object:
    found = _matching(xs, p, "find")
    if not found:
        return -1 if index else None
    position, element = found[-1] if last else found[0]
    return position if index else element


def _sum(xs: object, p: Predicate | None = None) -> object:
    total: object = 0
    for i, x in enumerate(items(xs, "sum")):
        value = x if p is None else p(x, i, None)
        if not is_number(value) or not is_number(total):
            raise ValueError(f"sum: expected numbers, got {go_type(value)}")
        total = total + value
    return total


def _group_by(xs: object, p: Predicate) -> dict[object, list[object]]:
    groups: dict[object, list[object]] = {}
    for i, x in enumerate(items(xs, "groupBy")):
        groups.setdefault(p(x, i, None), []).append(x)
    return groups


def _reduce(xs: object, p: Predicate, initial: object = _MISSING) -> object:
    elements = items(xs, "reduce")
    if initial is _MISSING:
        if not elements:
            raise ValueError("reduce of empty array with no initial value")
        initial, elements = elements[0], elements[1:]
    acc = initial
    for i, x in enumerate(elements):
        acc = p(x, i, acc)
    return acc


def _sort_by_key(xs: object, p: Predicate, order: object = "asc") -> list[object]:
    elements = items(xs, "sortBy")
    return _sort_by(elements, [(p(x, i, None), x) for i, x in enumerate(elements)], order)


PREDICATES: dict[str, Callable[..., Any]] = {
    "all": _all,
    "any": _any,
    "none": lambda xs, p: not _matching(xs, p, "none"),
    "one": lambda xs, p: len(_matching(xs, p, "one")) == 1,
    "filter": lambda xs, p: [x for _, x in _matching(xs, p, "filter")],
    "map": lambda xs, p: [p(x, i, None) for i, x in enumerate(items(xs, "map"))],
    "find": lambda xs, p: _find(xs, p, last=False, index=False),
    "findIndex": lambda xs, p: _find(xs, p, last=False, index=True),
    "findLast": lambda xs, p: _find(xs, p, last=True, index=False),
    "findLastIndex": lambda xs, p: _find(xs, p, last=True, index=True),
    "count": lambda xs, p=None: len(items(xs, "count")) if p is None else len(_matching(xs, p, "count")),
    "sum": _sum,
    "groupBy": _group_by,
    "sortBy": _sort_by_key,
    "reduce": _reduce,
}

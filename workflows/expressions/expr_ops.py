"""Operator semantics of expr-lang (its ``vm/runtime`` package), on Python values.

Functions here raise ``ValueError`` with expr-lang's wording; the compiler wraps it in an
``EvaluationError`` that carries the expression and the operator's position. Booleans are never
numbers (Python's ``True == 1`` must not leak into expressions).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeGuard

from workflows.expressions.gofmt import go_type
from workflows.expressions.gotime import DURATION_METHODS, TIME_METHODS

__all__ = [
    "arithmetic",
    "binary_operator",
    "compare",
    "equal",
    "fetch",
    "invoke_method",
    "is_number",
    "membership",
    "regex",
    "slice_of",
    "to_float",
    "to_int",
]

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?i:inf|infinity|nan)")

_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def is_number(value: object) -> TypeGuard[int | float]:
    """True for ints and floats, false for bools."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _mismatch(op: str, left: object, right: object) -> ValueError:
    return ValueError(f"invalid operation: {op} (mismatched types {go_type(left)} and {go_type(right)})")


def equal(left: object, right: object) -> bool:
    """``==``: numbers compare by value across int/float; other values must match in type."""
    if is_number(left) and is_number(right):
        return left == right
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(_deep(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_deep(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def _deep(left: object, right: object) -> bool:
    # reflect.DeepEqual inside containers: 1 and 1.0 differ there
    return type(left) is type(right) and equal(left, right)


def _go_mod(left: int, right: int) -> int:
    remainder = abs(left) % abs(right)
    return -remainder if left < 0 else remainder


def _divide(left: float, right: float) -> float:
    if right == 0:  # float64 division never panics in Go
        return (
            math.nan
            if left == 0 or math.isnan(left)
            else math.copysign(math.inf, left) * math.copysign(1, right)
        )
    return left / right


def arithmetic(op: str, left: object, right: object) -> object:
    """``+ - * / % **`` (and ``^``) with expr-lang's result types: ``/`` and ``**`` always give floats."""
    if is_number(left) and is_number(right):
        both_int = isinstance(left, int) and isinstance(right, int)
        match op:
            case "+":
                return left + right
            case "-":
                return left - right
            case "*":
                return left * right
            case "/":
                return _divide(float(left), float(right))
            case "%":
                if not both_int:
                    raise _mismatch(op, left, right)
                if right == 0:
                    raise ValueError("integer divide by zero")
                return _go_mod(int(left), int(right))
            case "**" | "^":
                try:
                    return math.pow(float(left), float(right))
                except OverflowError:
                    return math.inf
                except ValueError:
                    return math.nan
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if op == "+" and isinstance(left, list) and isinstance(right, list):
        return [*left, *right]
    if op in "+-" and isinstance(left, datetime) and isinstance(right, timedelta):
        return left + right if op == "+" else left - right
    if op == "-" and isinstance(left, datetime) and isinstance(right, datetime):
        return _aware(left) - _aware(right)
    if op in "+-" and isinstance(left, timedelta) and isinstance(right, timedelta):
        return left + right if op == "+" else left - right
    raise _mismatch(op, left, right)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def compare(op: str, left: object, right: object) -> bool:
    """``< > <= >=`` on numbers, strings, times and durations."""
    ordered = (
        (is_number(left) and is_number(right))
        or (isinstance(left, str) and isinstance(right, str))
        or (isinstance(left, timedelta) and isinstance(right, timedelta))
    )
    if isinstance(left, datetime) and isinstance(right, datetime):
        left, right, ordered = _aware(left), _aware(right), True
    if not ordered:
        raise _mismatch(op, left, right)
    if op not in _ORDER:
        raise ValueError(f"unknown comparison {op!r}")
    return bool(_ORDER[op](left, right))


@lru_cache(maxsize=256)
def regex(pattern: str) -> re.Pattern[str]:
    """Compile a Go RE2 pattern with Python's engine (close enough for the patterns workflows use)."""
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error as exc:
        raise ValueError(f"error parsing regexp {pattern!r}: {exc}") from None


def membership(op: str, left: object, right: object) -> bool:
    """``in``, ``matches``, ``contains``, ``startsWith``, ``endsWith``."""
    if op == "in":
        if right is None:
            return False
        if isinstance(right, Mapping):
            return left in right
        if isinstance(right, list | tuple):
            return any(equal(item, left) for item in right)
        raise ValueError(f'operator "in" not defined on {go_type(right)}')
    if not isinstance(left, str) or not isinstance(right, str):
        raise _mismatch(op, left, right)
    match op:
        case "matches":
            return regex(right).search(left) is not None
        case "contains":
            return right in left
        case "startsWith":
            return left.startswith(right)
        case "endsWith":
            return left.endswith(right)
        case _:
            raise ValueError(f"unknown operator {op!r}")


def _index(key: object, length: int) -> int:
    if is_number(key) and float(key).is_integer():
        return int(key) + length if key < 0 else int(key)
    raise ValueError(f"cannot use {go_type(key)} as index")


def fetch(obj: object, key: object) -> object:
    """``obj.key`` / ``obj[key]``: a missing map key is nil, a bad list index is an error."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    if isinstance(obj, list | tuple | str):
        index = _index(key, len(obj))
        if not 0 <= index < len(obj):
            raise ValueError(f"index out of range: {key} (array length is {len(obj)})")
        return obj[index]
    raise ValueError(f"cannot fetch {key} from {go_type(obj)}")


def slice_of(obj: object, low: object, high: object) -> object:
    """``obj[low:high]`` with expr-lang's clamping of negative and out-of-range bounds."""
    if not isinstance(obj, list | tuple | str):
        raise TypeError(f"cannot slice {go_type(obj)}")
    length = len(obj)
    start = 0 if low is None else _index(low, length)
    end = length if high is None else _index(high, length)
    start, end = max(start, 0), min(max(end, 0), length)
    return obj[min(start, end) : end] if not isinstance(obj, tuple) else list(obj[min(start, end) : end])


def to_int(value: object) -> int:
    """expr-lang's ``int()`` (Argo's ``asInt``): truncates floats, parses decimal strings."""
    if is_number(value):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"invalid operation: int({value})")
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    raise ValueError(f"invalid operation: int({value if isinstance(value, str) else go_type(value)})")


def to_float(value: object) -> float:
    """expr-lang's ``float()`` (Argo's ``asFloat``)."""
    if is_number(value):
        return float(value)
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value):
        return float(value)
    raise ValueError(f"invalid operation: float({value if isinstance(value, str) else go_type(value)})")


def binary_operator(op: str) -> Callable[[object, object], object]:
    """The function behind a non-short-circuit binary operator (``not in`` included)."""
    match op:
        case "==":
            return equal
        case "!=":
            return lambda a, b: not equal(a, b)
        case "<" | ">" | "<=" | ">=":
            return lambda a, b: compare(op, a, b)
        case "in" | "matches" | "contains" | "startsWith" | "endsWith":
            return lambda a, b: membership(op, a, b)
        case _ if op.startswith("not "):
            return lambda a, b: not membership(op.removeprefix("not "), a, b)
        case "..":
            return _range
        case _:
            return lambda a, b: arithmetic(op, a, b)


def _range(low: object, high: object) -> list[int]:
    if (
        not isinstance(low, int)
        or not isinstance(high, int)
        or isinstance(low, bool)
        or isinstance(high, bool)
    ):
        raise TypeError(f"invalid operation: .. (mismatched types {go_type(low)} and {go_type(high)})")
    return list(range(low, high + 1))


def invoke_method(receiver: object, method: str, label: str, args: list[object]) -> object:
    """``receiver.method(args)``: a function in a namespace map (``sprig.add``) or a time/duration method."""
    table: Mapping[str, Callable[..., object]]
    if isinstance(receiver, Mapping):
        function = receiver.get(method)
        if not callable(function):
            raise TypeError(f"{label} is not a function")
        return function(*args)
    if isinstance(receiver, datetime):
        table = TIME_METHODS
    elif isinstance(receiver, timedelta):
        table = DURATION_METHODS
    else:
        raise TypeError(f"type {go_type(receiver)} has no method {method}")
    if method not in table:
        raise TypeError(f"type {go_type(receiver)} has no method {method}")
    return table[method](receiver, *args)

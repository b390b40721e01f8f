"""The cel-python (``celpy``) backend of :mod:`sensors.cel`: the pure-Python fallback.

celpy only parses, so this module adds what cel-expr-python checks at compile time (undeclared names
and functions, ``has()`` and macro shapes, literal operand types, ``result="bool"``) by walking celpy's
Lark tree. It replaces celpy's operators and macros where celpy departs from cel-spec (heterogeneous
numeric equality, the no-coercion rule, errors inside ``exists_one``/``filter``, ``has()`` on a
non-map) and adds cel-spec's strings extension, which celpy lacks. Optional syntax, ``cel.bind`` and
the math extension stay unavailable (docs/cel.md).
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import celpy
import re2
from celpy import celtypes as ct
from celpy.celparser import CELParseError
from celpy.evaluation import Activation, CELEvalError, Evaluator

from sensors.cel import CelCompileError, CelEvalError, double_text, duration_text, rfc3339, with_more
from sensors.cel_py_check import MACROS, NUMERIC, Checker, Tree, core, name_of, parse_error, static_type

__all__ = ["make_backend"]

# ---------------------------------------------------------------- values


def to_cel(value: Any) -> Any:
    """Plain JSON-like Python as celpy values; an unsupported value becomes an error when read."""
    kind = type(value)
    if kind is str:
        return ct.StringType(value)
    if kind is dict:
        return ct.MapType({to_cel(k): to_cel(v) for k, v in value.items()})
    if kind is list or kind is tuple:
        return ct.ListType([to_cel(v) for v in value])
    if kind is bool:
        return ct.BoolType(value)
    if kind is int:
        return ct.IntType(value) if -(2**63) <= value < 2**63 else CELEvalError("integer overflow")
    if kind is float:
        return ct.DoubleType(value)
    if value is None:
        return None
    if kind is bytes:
        return ct.BytesType(value)
    return CELEvalError(f"unsupported value type {kind.__name__}")


def to_plain(value: Any) -> Any:
    """A celpy result as plain Python: timestamps as aware UTC datetimes, durations as timedeltas."""
    match value:
        case None | ct.BoolType() | bool():
            return None if value is None else bool(value)
        case CELEvalError():
            raise value  # celpy keeps an error inside a list or map literal as an element
        case int() | float() | str() | bytes():
            return _PLAIN[kind_of(value)](value)
        case datetime():
            return datetime.fromtimestamp(value.timestamp(), UTC).replace(microsecond=value.microsecond)
        case timedelta():
            return timedelta(days=value.days, seconds=value.seconds, microseconds=value.microseconds)
        case dict():
            return {to_plain(k): to_plain(v) for k, v in value.items()}
        case list():
            return [to_plain(v) for v in value]
        case _:
            return kind_of(value, as_type=True)


_KINDS: dict[type, str] = {
    ct.BoolType: "bool", ct.IntType: "int", ct.UintType: "uint", ct.DoubleType: "double", ct.StringType: "string",
    ct.BytesType: "bytes", ct.ListType: "list", ct.MapType: "map", type(None): "null_type",
    ct.TimestampType: "timestamp", ct.DurationType: "duration", bool: "bool", int: "int", float: "double",
    str: "string", bytes: "bytes", list: "list", dict: "map", datetime: "timestamp", timedelta: "duration",
}  # fmt: skip


_PLAIN: dict[str, Callable[[Any], Any]] = {
    "int": int,
    "uint": int,
    "double": float,
    "string": str,
    "bytes": bytes,
}


def kind_of(value: Any, *, as_type: bool = False) -> str:
    """The CEL type name of a celpy value (``as_type``: of a type value such as ``int`` in ``type(x) == int``)."""
    if as_type:
        return _KINDS.get(_TYPE_ALIASES.get(value, value), "type")
    found = _KINDS.get(type(value))
    return (
        found if found is not None else next((n for c, n in _KINDS.items() if isinstance(value, c)), "type")
    )


# ---------------------------------------------------------------- cel-spec operators and conversions


def _values(function: Callable[..., Any]) -> Callable[..., Any]:
    """celpy passes errors as values: an error argument is the result, ``function`` never sees it."""

    @functools.wraps(function)
    def propagating(*args: Any) -> Any:
        error = next((a for a in args if isinstance(a, CELEvalError)), None)
        return error if error is not None else function(*args)

    return propagating


def _no_overload(name: str, *args: Any) -> CELEvalError:
    return CELEvalError(f"no matching overload for {name}({', '.join(kind_of(a) for a in args)})")


def _number(value: Any) -> int | float:
    return float(value) if isinstance(value, float) else int(value)


def equal(a: Any, b: Any) -> bool:
    """cel-spec equality: numbers compare across int/uint/double; other kinds differ from each other."""
    ka, kb = kind_of(a), kind_of(b)
    if ka in NUMERIC and kb in NUMERIC:
        return _number(a) == _number(b)
    if ka != kb:
        return False
    if ka == "list":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "map":
        return len(a) == len(b) and all(k in b and equal(v, b[k]) for k, v in a.items())
    if ka == "type":
        return kind_of(a, as_type=True) == kind_of(b, as_type=True)
    return ka == "null_type" or bool(a == b)


def _ordering(name: str, compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    @_values
    def ordered(a: Any, b: Any) -> Any:
        ka, kb = kind_of(a), kind_of(b)
        if ka in NUMERIC and kb in NUMERIC:
            return ct.BoolType(compare(_number(a), _number(b)))
        if ka != kb or ka not in ("bool", "string", "bytes", "timestamp", "duration"):
            return _no_overload(name, a, b)
        return ct.BoolType(compare(a, b))

    return ordered


def _arithmetic(name: str, apply: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    @_values
    def arithmetic(a: Any, b: Any) -> Any:
        ka, kb = kind_of(a), kind_of(b)
        if (
            "bool" in (ka, kb)
            or ((ka in NUMERIC or kb in NUMERIC) and ka != kb)
            or (name == "_%_" and ka == "double")
        ):
            return _no_overload(name, a, b)  # CEL never coerces: 2.5 * 2 is an error, 2.5 * 2.0 is not
        if name == "_/_" and ka == "double" and float(b) == 0.0:  # IEEE 754, where celpy answers +inf
            x = float(a)
            return ct.DoubleType(
                math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x * math.copysign(1, b))
            )
        try:
            return apply(a, b)
        except ZeroDivisionError:
            return CELEvalError("divide by zero" if name == "_/_" else "modulus by zero")
        except (TypeError, AttributeError):
            return _no_overload(name, a, b)
        except (ValueError, OverflowError):
            return CELEvalError(
                {"int": "integer overflow", "uint": "unsigned integer overflow"}.get(
                    ka, f"{name} out of range"
                )
            )

    return arithmetic


@_values
def _negate(value: Any) -> Any:
    if kind_of(value) not in ("int", "double"):
        return _no_overload("-_", value)
    try:
        return -value
    except ValueError:
        return CELEvalError("integer overflow")


def _logical(name: str, decisive: bool) -> Callable[[Any, Any], Any]:
    """``||`` (decided by a true side) and ``&&`` (by a false side): an error only matters otherwise."""

    def logical(a: Any, b: Any) -> Any:
        if any(kind_of(v) == "bool" and bool(v) is decisive for v in (a, b)):
            return ct.BoolType(decisive)
        for value in (a, b):
            if isinstance(value, CELEvalError) or kind_of(value) != "bool":
                return value if isinstance(value, CELEvalError) else _no_overload(name, a, b)
        return ct.BoolType(not decisive)

    return logical


@_values
def _string(value: Any) -> Any:
    match kind_of(value):
        case "string" | "int" | "uint":
            return ct.StringType(value)
        case "bool":
            return ct.StringType("true" if value else "false")
        case "double":
            return ct.StringType(double_text(value))
        case "bytes":
            try:
                return ct.StringType(bytes(value).decode())
            except UnicodeDecodeError:
                return CELEvalError("invalid UTF-8 in bytes")
        case "timestamp":
            return ct.StringType(rfc3339(value))
        case "duration":
            return ct.StringType(duration_text(value))
        case _:
            return _no_overload("string", value)


def _timestamp(value: Any) -> Any:
    if kind_of(value) == "int":
        return ct.TimestampType(datetime.fromtimestamp(int(value), UTC))
    return ct.TimestampType(value)


# ``string`` is a conversion (replaced above) and a type (``type(x) == string``)
_TYPE_ALIASES: dict[Any, Any] = {_string: ct.StringType, _timestamp: ct.TimestampType}


@_values
def _index(container: Any, key: Any) -> Any:
    kc, kk = kind_of(container), kind_of(key)
    if kc == "map":
        if key in container:
            return container[key]
        found = [v for k, v in container.items() if kk in NUMERIC and equal(k, key)]  # 1.0 finds the key 1
        return (
            found[0] if found else CELEvalError(f"no such key: {json.dumps(key) if kk == 'string' else key}")
        )
    if kc == "list" and kk in ("int", "uint"):
        if 0 <= key < len(container):
            return container[key]
        return CELEvalError(f"index out of range: {int(key)} (size {len(container)})")
    return _no_overload("_[_]", container, key)


@_values
def _in(item: Any, container: Any) -> Any:
    kc = kind_of(container)
    if kc == "list" or (kc == "map" and item not in container and kind_of(item) in NUMERIC):
        return ct.BoolType(any(equal(item, x) for x in container))
    return ct.BoolType(item in container) if kc == "map" else _no_overload("@in", item, container)


@_values
def _matches(text: Any, pattern: Any) -> Any:
    if kind_of(text) != "string" or kind_of(pattern) != "string":
        return _no_overload("matches", text, pattern)
    try:
        return ct.BoolType(re2.search(pattern, text) is not None)
    except re2.error as exc:
        reason = (
            exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        )
        return CELEvalError(f"invalid regular expression: {reason}")


# ---------------------------------------------------------------- cel-spec strings extension


def _strings(name: str, *kinds: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Check a strings-extension function's argument types as cel-spec declares them; wrap results."""

    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        @_values
        def checked(*args: Any) -> Any:
            if len(args) > len(kinds) or any(kind_of(a) != k for a, k in zip(args, kinds, strict=False)):
                return _no_overload(name, *args)
            try:
                result = function(*args)
            except TypeError:  # too few arguments
                return _no_overload(name, *args)
            except (ValueError, IndexError) as exc:
                return CELEvalError(str(exc))
            return ct.StringType(result) if isinstance(result, str) else result

        return checked

    return wrap


def _in_range(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValueError(f"{name} out of range: {value}")
    return int(value)


@_strings("split", "string", "string", "int")
def _split(s: str, sep: str, n: int = -1) -> Any:
    if n == 0:
        return ct.ListType([])
    if sep != "":
        parts = s.split(sep) if n < 0 else s.split(sep, int(n) - 1)
    elif n < 0 or len(s) <= n:
        parts = list(s) or [""]
    else:  # n pieces: n - 1 characters, then the rest
        parts = [*s[: n - 1], s[n - 1 :]]
    return ct.ListType([ct.StringType(p) for p in parts])


def _text(value: Any) -> str:
    """``%s`` of strings.format: doubles as ``%g``, lists and maps unquoted, as cel-cpp prints them."""
    match kind_of(value):
        case "bool" | "null_type":
            return "null" if value is None else ("true" if value else "false")
        case "double":
            return _double(value, None, "g")
        case "bytes":
            return bytes(value).decode("utf-8", "replace")
        case "list":
            return "[" + ", ".join(_text(v) for v in value) + "]"
        case "map":
            return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in value.items()) + "}"
        case "timestamp" | "duration":
            return rfc3339(value) if isinstance(value, datetime) else duration_text(value)
        case "type":
            return kind_of(value, as_type=True)
        case _:
            return str(value)


def _double(value: float, precision: int | None, verb: str) -> str:
    if math.isnan(value) or math.isinf(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return f"{float(value):{'' if precision is None else f'.{precision}'}{verb}}"


def _clause(verb: str, precision: int | None, arg: Any) -> str:
    kind = kind_of(arg)
    if verb == "s":
        return _text(arg)
    if (verb in "fe" and kind in NUMERIC) or (verb == "d" and kind == "double"):  # %d of a double: as cel-cpp
        return _double(float(arg), 6 if precision is None else precision, "f" if verb == "d" else verb)
    if verb in "dxXob" and (kind in ("int", "uint") or (verb == "b" and kind == "bool")):
        return format(int(arg), verb)
    if verb in "xX" and kind in ("string", "bytes"):
        text = (str(arg).encode() if kind == "string" else bytes(arg)).hex()
        return text.upper() if verb == "X" else text
    raise ValueError(f"%{verb} cannot format a {kind}")


@_strings("format", "string", "list")
def _format(template: str, args: list[Any]) -> str:
    out, used = [], 0
    for piece in re.split(r"(%(?:\.\d+)?.?)", str(template)):
        if not piece.startswith("%") or piece == "%%":
            out.append(piece[:1] if piece == "%%" else piece)
            continue
        verb, precision = piece[-1:], int(piece[2:-1]) if piece.startswith("%.") else None
        if piece == "%" or piece.endswith("."):
            raise ValueError("unexpected end of format string")
        if verb not in "sdfeExXob":
            raise ValueError(f'unrecognized formatting clause "{verb}"')
        if used >= len(args):
            raise ValueError(f"index {used} out of range")
        out.append(_clause(verb, precision, args[used]))
        used += 1
    return "".join(out)


_WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = {upper: lower for lower, upper in _LOWER.items()}

FUNCTIONS: dict[str, Any] = {
    "_==_": _values(lambda a, b: ct.BoolType(equal(a, b))), "_!=_": _values(lambda a, b: ct.BoolType(not equal(a, b))),
    "_<_": _ordering("_<_", operator.lt), "_<=_": _ordering("_<=_", operator.le),
    "_>_": _ordering("_>_", operator.gt), "_>=_": _ordering("_>=_", operator.ge),
    "_+_": _arithmetic("_+_", operator.add), "_-_": _arithmetic("_-_", operator.sub),
    "_*_": _arithmetic("_*_", operator.mul), "_/_": _arithmetic("_/_", operator.truediv),
    "_%_": _arithmetic("_%_", operator.mod), "-_": _negate, "_in_": _in, "_[_]": _index,
    "!_": _values(lambda v: ct.BoolType(not v) if kind_of(v) == "bool" else _no_overload("!_", v)),
    "_?_:_": _values(lambda c, t, f: (t if c else f) if kind_of(c) == "bool" else _no_overload("_?_:_", c)),
    "_||_": _logical("_||_", True), "_&&_": _logical("_&&_", False),
    "matches": _matches, "string": _string, "timestamp": _timestamp,
    "split": _split, "format": _format,
    "charAt": _strings("charAt", "string", "int")(lambda s, i: s[_in_range("index", i, 0, len(s)) :][:1]),
    "indexOf": _strings("indexOf", "string", "string", "int")(
        lambda s, sub, at=0: ct.IntType(s.find(sub, _in_range("index", at, 0, len(s))))
    ),
    "lastIndexOf": _strings("lastIndexOf", "string", "string", "int")(  # the match starts at or before ``at``
        lambda s, sub, at=None: ct.IntType(
            s.rfind(sub) if at is None else s.rfind(sub, 0, _in_range("index", at, 0, max(len(s) - 1, 0)) + len(sub))
        )
    ),
    "substring": _strings("substring", "string", "int", "int")(
        lambda s, start, end=None: s[
            _in_range("start", start, 0, len(s)) : _in_range("end", len(s) if end is None else end, start, len(s))
        ]
    ),
    "join": _strings("join", "list", "string")(
        lambda items, sep="": str(sep).join(items)
        if all(kind_of(i) == "string" for i in items)
        else _no_overload("join", items)
    ),
    "replace": _strings("replace", "string", "string", "string", "int")(lambda s, old, new, n=-1: s.replace(old, new, int(n))),
    "lowerAscii": _strings("lowerAscii", "string")(lambda s: s.translate(_LOWER)),
    "upperAscii": _strings("upperAscii", "string")(lambda s: s.translate(_UPPER)),
    "trim": _strings("trim", "string")(lambda s: s.strip(_WHITESPACE)),
    "reverse": _strings("reverse", "string")(lambda s: s[::-1]),
}  # fmt: skip

# ---------------------------------------------------------------- evaluation

_RUNTIME_MESSAGES = (
    (re.compile(r"no such member in mapping: '(.*)'"), r'no such key: "\1"'),
    (re.compile(r".* does not support field selection"), "field selection on a value that is not a map"),
    (re.compile(r"found no matching overload.*"), "no matching overload"),
    (re.compile(r"(undeclared reference to '[^']*').*"), r"\1"),  # celpy appends the whole activation
)


def eval_error(exc: BaseException) -> CelEvalError:
    """A short CelEvalError from celpy's error."""
    message = (
        str(exc.args[0]) if isinstance(exc, CELEvalError) and exc.args else f"{type(exc).__name__}: {exc}"
    )
    if message == "return error for overflow":  # what celpy says for any ValueError of a function
        cause = str(exc.args[2][0]) if len(exc.args) > 2 and exc.args[2] else ""
        message = "integer overflow" if cause == "overflow" else f"conversion failed: {cause}"
    for pattern, replacement in _RUNTIME_MESSAGES:
        if pattern.match(message):
            return CelEvalError(pattern.sub(replacement, message, count=1))
    return CelEvalError(message)


class _Evaluator(Evaluator):
    """celpy's interpreter with cel-spec's ``has()`` and macros (celpy counts an error as true in
    ``exists_one``/``filter``, iterates strings, and loses the error's text in ``all``/``exists``)."""

    def sub_evaluator(self, ast: Tree) -> Evaluator:
        return _Evaluator(ast, activation=self.activation)

    def member_dot_arg(self, tree: Tree) -> Any:
        name = name_of(tree, 1)
        if name not in MACROS:
            return super().member_dot_arg(tree)
        items = self.visit(tree.children[0])
        if isinstance(items, CELEvalError) or kind_of(items) not in ("list", "map"):
            return items if isinstance(items, CELEvalError) else _no_overload(name, items)
        step, error, out = self.build_ss_macro_eval(tree), None, []
        for item in items:
            value = step(item)
            if name == "map" and not isinstance(value, CELEvalError):
                out.append(value)
            elif isinstance(value, CELEvalError) or kind_of(value) != "bool":
                error = error or (value if isinstance(value, CELEvalError) else _no_overload(name, value))
                if name not in ("all", "exists"):  # only those two let a later element decide
                    return error
            elif name in ("all", "exists") and bool(value) == (name == "exists"):
                return ct.BoolType(value)
            elif value:
                out.append(item)
        if error is not None:
            return error
        if name in ("map", "filter"):
            return ct.ListType(out)
        return ct.BoolType(name == "all" or (name == "exists_one" and len(out) == 1))

    def macro_has_eval(self, exprlist: Tree) -> Any:
        select = core(exprlist.children[0])  # a member_dot: the checker made sure
        target = self.visit(select.children[0])
        if isinstance(target, CELEvalError) or kind_of(target) != "map":
            return (
                target
                if isinstance(target, CELEvalError)
                else CELEvalError("field selection on a value that is not a map")
            )
        return ct.BoolType(name_of(select, 1) in target)


class _Program:
    __slots__ = ("_ast", "_base")

    def __init__(self, ast: Tree, base: Activation) -> None:
        self._ast = ast
        self._base = base

    def evaluate(self, native: Any) -> Any:
        try:
            value = _Evaluator(ast=self._ast, activation=self._base).evaluate(native)
            return bool(value) if type(value) is ct.BoolType else to_plain(value)
        except Exception as exc:  # noqa: BLE001 - celpy raises CELEvalError and, on its own bugs, anything
            raise eval_error(exc) from None


class PyBackend:
    """celpy's interpreter behind eventflow's compile-time checks and cel-spec operators."""

    def __init__(self) -> None:
        self._env = celpy.Environment()
        self._lock = threading.Lock()

    def compile(self, source: str, result: Literal["any", "bool"]) -> _Program:
        with self._lock:  # celpy's Lark parser is one shared, stateful object
            try:
                tree = self._env.compile(source)
            except CELParseError as exc:
                raise parse_error(source, exc) from None
            checker = Checker(source)
            checker.visit(tree, frozenset())
            if checker.errors:
                line, column, message = min(checker.errors)
                raise CelCompileError(source, with_more(message, len(checker.errors) - 1), line, column)
            kind = static_type(tree)
            if result == "bool" and kind not in (None, "bool"):
                raise CelCompileError(source, f"expression returns {kind}, expected bool")
            return _Program(tree, celpy.InterpretedRunner(self._env, tree, FUNCTIONS).new_activation())

    def activation(self, context: Mapping[str, Any], time: datetime | None, data: Any) -> Any:
        event = {
            ct.StringType(k): ct.StringType(rfc3339(v)) if isinstance(v, datetime) else to_cel(v)
            for k, v in context.items()
        }
        if time is not None:
            event[ct.StringType("time")] = ct.TimestampType(time)
        converted = to_cel(data)  # once: body and header are parts of it
        body, header = None, ct.MapType()
        if isinstance(converted, ct.MapType):
            body = converted["body"] if "body" in converted else None  # noqa: SIM401 - MapType.get raises
            for key in ("header", "headers"):
                if key in converted and isinstance(converted[key], ct.MapType):
                    header = converted[key]
                    break
        return {
            "event": ct.MapType(event),
            "data": converted,
            "body": body,
            "header": header,
            "headers": header,
        }


def make_backend() -> PyBackend:
    """A fresh backend for one :class:`sensors.cel.CelEnvironment`."""
    return PyBackend()

"""The cel-python (``celpy``) backend of :mod:`sensors.cel`: the pure-Python fallback.

celpy only parses, so this module adds what cel-expr-python does at compile time (undeclared names
and functions, ``has()``/macro shapes, ``result="bool"``) by walking celpy's Lark tree. It overrides
celpy's operators where celpy departs from cel-spec (heterogeneous numeric equality and ordering, the
no-coercion rule for arithmetic, short error messages) and adds cel-spec's strings extension, which
celpy lacks. Optional syntax, ``cel.bind`` and the math extension stay unavailable (docs/cel.md).
"""

from __future__ import annotations

import json
import math
import operator
import re
import threading
from decimal import Decimal
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import celpy
import lark
import re2
from celpy import celtypes as ct
from celpy.evaluation import CELEvalError

from sensors.cel import CelCompileError, CelEvalError, rfc3339

__all__ = ["make_backend"]

DECLARED = frozenset({"event", "data", "body", "header", "headers"})
TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"})
MACROS = {"all": 2, "exists": 2, "exists_one": 2, "map": 2, "filter": 2}
NAMESPACES = frozenset({"math", "strings", "optional", "cel", "base64"})  # cel-expr-python only
_CONVERSIONS = {n: n for n in ("int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration")}
GLOBAL_RESULTS: dict[str, str | None] = {"has": "bool", "size": "int", "matches": "bool", "type": "type", "dyn": None, **_CONVERSIONS}
_STRING_RESULT = ("charAt", "lowerAscii", "upperAscii", "replace", "substring", "trim", "join", "format", "reverse")
METHOD_RESULTS: dict[str, str | None] = {
    **{n: "bool" for n in ("contains", "startsWith", "endsWith", "matches", "all", "exists", "exists_one")},
    **{n: "int" for n in ("size", "indexOf", "lastIndexOf", "getDate", "getDayOfMonth", "getDayOfWeek")},
    **{n: "int" for n in ("getDayOfYear", "getFullYear", "getMonth", "getHours", "getMilliseconds", "getMinutes", "getSeconds")},
    **{n: "string" for n in _STRING_RESULT},
    **{n: "list" for n in ("split", "map", "filter")},
}
_LITERALS = {"INT_LIT": "int", "UINT_LIT": "uint", "FLOAT_LIT": "double", "STRING_LIT": "string", "MLSTRING_LIT": "string"}
_LITERALS |= {"BYTES_LIT": "bytes", "BOOL_LIT": "bool", "NULL_LIT": "null_type"}

# ---------------------------------------------------------------- Python <-> celpy values


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
        case int():
            return int(value)
        case float():
            return float(value)
        case str():
            return str(value)
        case bytes():
            return bytes(value)
        case datetime():
            return datetime.fromtimestamp(value.timestamp(), UTC).replace(microsecond=value.microsecond)
        case timedelta():
            return timedelta(days=value.days, seconds=value.seconds, microseconds=value.microseconds)
        case dict():
            return {to_plain(k): to_plain(v) for k, v in value.items()}
        case list():
            return [to_plain(v) for v in value]
        case _ if isinstance(value, type) or value in _TYPE_ALIASES:
            return _KINDS.get(_TYPE_ALIASES.get(value, value), "type")
        case _:
            return str(value)


# ---------------------------------------------------------------- cel-spec operators

_KINDS: dict[type, str] = {ct.BoolType: "bool", ct.IntType: "int", ct.UintType: "uint", ct.DoubleType: "double"}
_KINDS |= {ct.StringType: "string", ct.BytesType: "bytes", ct.ListType: "list", ct.MapType: "map", type(None): "null_type"}
_KINDS |= {ct.TimestampType: "timestamp", ct.DurationType: "duration", bool: "bool", int: "int", float: "double"}
_KINDS |= {str: "string", bytes: "bytes", list: "list", dict: "map", datetime: "timestamp", timedelta: "duration"}
NUMERIC = frozenset({"int", "uint", "double"})
ORDERED = frozenset({"bool", "string", "bytes", "timestamp", "duration"})


def kind_of(value: Any) -> str:
    """The CEL type name of a celpy value."""
    found = _KINDS.get(type(value))
    if found is None:
        found = next((name for cls, name in _KINDS.items() if isinstance(value, cls)), "type")
    return found


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
        return _TYPE_ALIASES.get(a, a) is _TYPE_ALIASES.get(b, b)
    return ka == "null_type" or bool(a == b)


def _eq(a: Any, b: Any) -> Any:
    return a if isinstance(a, CELEvalError) else b if isinstance(b, CELEvalError) else ct.BoolType(equal(a, b))


def _ne(a: Any, b: Any) -> Any:
    return a if isinstance(a, CELEvalError) else b if isinstance(b, CELEvalError) else ct.BoolType(not equal(a, b))


def _ordering(name: str, compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def ordered(a: Any, b: Any) -> Any:
        if isinstance(a, CELEvalError) or isinstance(b, CELEvalError):
            return a if isinstance(a, CELEvalError) else b
        ka, kb = kind_of(a), kind_of(b)
        if ka in NUMERIC and kb in NUMERIC:
            return ct.BoolType(compare(_number(a), _number(b)))
        if ka != kb or ka not in ORDERED:
            return _no_overload(name, a, b)
        return ct.BoolType(compare(a, b))

    return ordered


def _arithmetic(name: str, apply: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def arithmetic(a: Any, b: Any) -> Any:
        if isinstance(a, CELEvalError) or isinstance(b, CELEvalError):
            return a if isinstance(a, CELEvalError) else b
        ka, kb = kind_of(a), kind_of(b)
        if "bool" in (ka, kb) or ((ka in NUMERIC or kb in NUMERIC) and ka != kb) or (name == "_%_" and ka == "double"):
            return _no_overload(name, a, b)  # CEL never coerces: 2.5 * 2 is an error, 2.5 * 2.0 is not
        if name == "_/_" and ka == "double" and float(b) == 0.0:  # IEEE 754, where celpy answers +inf
            x = float(a)
            return ct.DoubleType(math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x * math.copysign(1, b)))
        try:
            return apply(a, b)
        except ZeroDivisionError:
            return CELEvalError("divide by zero" if name == "_/_" else "modulus by zero")
        except (TypeError, AttributeError):
            return _no_overload(name, a, b)
        except (ValueError, OverflowError):
            return CELEvalError({"int": "integer overflow", "uint": "unsigned integer overflow"}.get(ka, f"{name} out of range"))

    return arithmetic


def _negate(value: Any) -> Any:
    if isinstance(value, CELEvalError) or kind_of(value) not in ("int", "double"):
        return value if isinstance(value, CELEvalError) else _no_overload("-_", value)
    try:
        return -value
    except ValueError:
        return CELEvalError("integer overflow")


def _not(value: Any) -> Any:
    if isinstance(value, CELEvalError) or kind_of(value) != "bool":
        return value if isinstance(value, CELEvalError) else _no_overload("!_", value)
    return ct.BoolType(not value)


def _logical(name: str, decisive: bool) -> Callable[[Any, Any], Any]:
    """``||`` (decided by a true side) and ``&&`` (by a false side): an error only matters otherwise."""

    def logical(a: Any, b: Any) -> Any:
        for value in (a, b):
            if kind_of(value) == "bool" and bool(value) is decisive:
                return ct.BoolType(decisive)
        for value in (a, b):
            if isinstance(value, CELEvalError) or kind_of(value) != "bool":
                return value if isinstance(value, CELEvalError) else _no_overload(name, a, b)
        return ct.BoolType(not decisive)

    return logical


def _conditional(condition: Any, then: Any, otherwise: Any) -> Any:
    if isinstance(condition, CELEvalError) or kind_of(condition) != "bool":
        return condition if isinstance(condition, CELEvalError) else _no_overload("_?_:_", condition)
    return then if condition else otherwise


def double_text(value: float) -> str:
    """cel-cpp's ``string(double)``: shortest round-trip digits, an exponent outside [1e-4, 1e6)."""
    if math.isnan(value) or math.isinf(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    digits = Decimal(repr(float(value))).normalize().as_tuple()
    exponent = len(digits.digits) - 1 + int(digits.exponent)
    if -4 <= exponent < 6:
        return format(value, f".{max(len(digits.digits) - 1 - exponent, 0)}f")
    return format(value, f".{len(digits.digits) - 1}e")


def duration_text(value: timedelta) -> str:
    """``string(duration)``: seconds with 0, 3, 6 fractional digits (``90s``, ``1.500s``)."""
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    seconds, fraction = divmod(abs(micros), 1_000_000)
    text = f"{fraction:06d}".removesuffix("000") if fraction else ""
    return f"{'-' if micros < 0 else ''}{seconds}{'.' + text if text else ''}s"


def _string(value: Any) -> Any:
    kind = kind_of(value)
    match kind:
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
            return value if isinstance(value, CELEvalError) else _no_overload("string", value)


def _timestamp(value: Any) -> Any:
    if kind_of(value) == "int":
        return ct.TimestampType(datetime.fromtimestamp(int(value), UTC))
    return ct.TimestampType(value)


# ``string`` is both a conversion (overridden) and a type name (``type(x) == string``)
_TYPE_ALIASES: dict[Any, Any] = {_string: ct.StringType, _timestamp: ct.TimestampType}


def _quote(key: Any) -> str:
    return json.dumps(str(key)) if isinstance(key, str) else str(key)


def _index(container: Any, key: Any) -> Any:
    if isinstance(container, CELEvalError) or isinstance(key, CELEvalError):
        return container if isinstance(container, CELEvalError) else key
    kc, kk = kind_of(container), kind_of(key)
    if kc == "map":
        if key in container:
            return container[key]
        if kk in NUMERIC:  # 1.0 finds the key 1
            for k, v in container.items():
                if equal(k, key):
                    return v
        return CELEvalError(f"no such key: {_quote(key)}")
    if kc == "list" and kk in ("int", "uint"):
        if 0 <= key < len(container):
            return container[key]
        return CELEvalError(f"index out of range: {int(key)} (size {len(container)})")
    return _no_overload("_[_]", container, key)


def _in(item: Any, container: Any) -> Any:
    if isinstance(item, CELEvalError) or isinstance(container, CELEvalError):
        return item if isinstance(item, CELEvalError) else container
    kc = kind_of(container)
    if kc == "list":
        return ct.BoolType(any(equal(item, x) for x in container))
    if kc == "map":
        return ct.BoolType(item in container or (kind_of(item) in NUMERIC and any(equal(item, k) for k in container)))
    return _no_overload("@in", item, container)


# ---------------------------------------------------------------- cel-spec strings extension

_WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _strings(name: str, *kinds: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Type-check a string-extension function's arguments as cel-spec declares them; wrap results."""

    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        def checked(*args: Any) -> Any:
            for arg in args:
                if isinstance(arg, CELEvalError):
                    return arg
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


@_strings("charAt", "string", "int")
def _char_at(s: str, i: int) -> str:
    return s[_in_range("index", i, 0, len(s)) :][:1]


@_strings("indexOf", "string", "string", "int")
def _index_of(s: str, sub: str, offset: int = 0) -> Any:
    return ct.IntType(s.find(sub, _in_range("index", offset, 0, len(s))))


@_strings("lastIndexOf", "string", "string", "int")
def _last_index_of(s: str, sub: str, offset: int | None = None) -> Any:
    if offset is None:
        return ct.IntType(s.rfind(sub))
    return ct.IntType(s.rfind(sub, 0, _in_range("index", offset, 0, max(len(s) - 1, 0)) + len(sub)))


@_strings("replace", "string", "string", "string", "int")
def _replace(s: str, old: str, new: str, n: int = -1) -> str:
    return s.replace(old, new, int(n))


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


@_strings("substring", "string", "int", "int")
def _substring(s: str, start: int, end: int | None = None) -> str:
    start = _in_range("start", start, 0, len(s))
    return s[start : _in_range("end", len(s) if end is None else end, start, len(s))]


@_strings("join", "list", "string")
def _join(items: list[Any], sep: str = "") -> str:
    if any(kind_of(i) != "string" for i in items):
        raise ValueError("list must hold strings only")
    return str(sep).join(items)


def _text(value: Any) -> str:
    """``%s`` of strings.format."""
    match kind_of(value):
        case "string":
            return str(value)
        case "bool":
            return "true" if value else "false"
        case "null_type":
            return "null"
        case "double":
            return _double(value, None, "g")
        case "type":
            return to_plain(value)
        case "bytes":
            return bytes(value).decode("utf-8", "replace")
        case "list":
            return "[" + ", ".join(_text(v) for v in value) + "]"
        case "map":
            return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in value.items()) + "}"
        case "timestamp":
            return rfc3339(value)
        case _:
            return str(value)


def _double(value: float, precision: int | None, verb: str = "f") -> str:
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
        if not piece.startswith("%"):
            out.append(piece)
        elif piece == "%%":
            out.append("%")
        else:
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


def _matches(text: Any, pattern: Any) -> Any:
    if isinstance(text, CELEvalError) or isinstance(pattern, CELEvalError):
        return text if isinstance(text, CELEvalError) else pattern
    if kind_of(text) != "string" or kind_of(pattern) != "string":
        return _no_overload("matches", text, pattern)
    try:
        return ct.BoolType(re2.search(pattern, text) is not None)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return CELEvalError(f"invalid regular expression: {reason}")


FUNCTIONS: dict[str, Any] = {
    "_==_": _eq, "_!=_": _ne, "_in_": _in, "_[_]": _index,
    "_<_": _ordering("_<_", operator.lt), "_<=_": _ordering("_<=_", operator.le),
    "_>_": _ordering("_>_", operator.gt), "_>=_": _ordering("_>=_", operator.ge),
    "_+_": _arithmetic("_+_", operator.add), "_-_": _arithmetic("_-_", operator.sub),
    "_*_": _arithmetic("_*_", operator.mul), "_/_": _arithmetic("_/_", operator.truediv),
    "_%_": _arithmetic("_%_", operator.mod), "-_": _negate, "!_": _not, "_?_:_": _conditional,
    "_||_": _logical("_||_", True), "_&&_": _logical("_&&_", False),
    "matches": _matches, "string": _string, "timestamp": _timestamp,
    "charAt": _char_at, "indexOf": _index_of, "lastIndexOf": _last_index_of, "replace": _replace,
    "split": _split, "substring": _substring, "join": _join, "format": _format,
    "lowerAscii": _strings("lowerAscii", "string")(lambda s: s.translate(_LOWER)),
    "upperAscii": _strings("upperAscii", "string")(lambda s: s.translate(_UPPER)),
    "trim": _strings("trim", "string")(lambda s: s.strip(_WHITESPACE)),
    "reverse": _strings("reverse", "string")(lambda s: s[::-1]),
}  # fmt: skip


# ---------------------------------------------------------------- compile-time checks on celpy's Lark tree

_PASS_THROUGH = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary"})
_PASS_THROUGH |= {"member", "primary"}


def _core(node: Any) -> Any:
    """The first node below a chain of single-child grammar levels (``expr -> ... -> primary``)."""
    while isinstance(node, lark.Tree) and node.data in _PASS_THROUGH and len(node.children) == 1:
        node = node.children[0]
    return node


def _args(node: lark.Tree, first: int) -> list[Any]:
    """The expressions of a call's optional ``exprlist`` child."""
    return list(node.children[first].children) if len(node.children) > first else []


_OPERATORS = {f"relation_{n}": f"_{s}_" for n, s in (("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="))}
_OPERATORS |= {"addition_add": "_+_", "addition_sub": "_-_", "multiplication_mul": "_*_", "multiplication_div": "_/_"}
_OPERATORS |= {"multiplication_mod": "_%_"}
_MIXED = {("timestamp", "duration"), ("duration", "timestamp")}


def _position(source: str, offset: int) -> tuple[int, int]:
    line_start = source.rfind("\n", 0, offset) + 1
    return source.count("\n", 0, offset) + 1, offset - line_start + 1


def _undeclared(name: str, scope: frozenset[str]) -> bool:
    return name not in scope and name not in DECLARED and name not in TYPE_NAMES


class _Checker:
    """Undeclared names, unknown functions and malformed macros, reported like cel-cpp's checker."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[tuple[int, int, str]] = []

    def error(self, where: Any, message: str, *, paren: bool = False) -> None:
        """``where`` is a token or tree; ``paren``: point at the ``(`` after it, as cel-cpp does for calls."""
        meta = where if isinstance(where, lark.Token) else where.meta
        offset = getattr(meta, "end_pos" if paren else "start_pos", 0)
        if paren:
            offset = max(self.source.find("(", offset), 0)
        self.errors.append((*_position(self.source, offset), message))

    def visit(self, node: Any, scope: frozenset[str]) -> None:
        if not isinstance(node, lark.Tree):
            return
        children = node.children
        match node.data:
            case "ident":
                name = children[0].value
                if _undeclared(name, scope):
                    self.error(children[0], f"undeclared reference to '{name}'")
            case "member_dot":
                path, base = [children[1].value], _core(children[0])
                while isinstance(base, lark.Tree) and base.data == "member_dot":
                    path.insert(0, base.children[1].value)
                    base = _core(base.children[0])
                if isinstance(base, lark.Tree) and base.data == "ident" and _undeclared(base.children[0].value, scope):
                    # like cel-cpp: the dotted name could be a qualified identifier; point at its last dot
                    offset = self.source.rfind(".", 0, children[1].start_pos)
                    name = ".".join([base.children[0].value, *path])
                    self.errors.append((*_position(self.source, offset), f"undeclared reference to '{name}'"))
                else:
                    self.visit(children[0], scope)
            case "ident_arg":
                self.call(children[0], _args(node, 1), scope)
            case "member_dot_arg":
                self.method(children[0], children[1], _args(node, 2), scope)
            case "dot_ident" | "dot_ident_arg":
                self.error(children[0], f"undeclared reference to '.{children[0].value}'")
            case "member_object":
                self.error(node, "message construction is not supported")
            case "relation" | "addition" | "multiplication" if len(children) == 2:
                self.operands(children[0], children[0].children[0], children[1])
                for child in (children[0].children[0], children[1]):
                    self.visit(child, scope)
            case _:
                for child in children:
                    self.visit(child, scope)

    def operands(self, operator: lark.Tree, left: Any, right: Any) -> None:
        """Statically known operand types that differ, as cel-cpp rejects them (``1 == 1.0``, ``1 + 1u``)."""
        symbol = _OPERATORS.get(operator.data)
        types = (static_type(left), static_type(right))
        if symbol is None or None in types or types[0] == types[1] or types in _MIXED:
            return
        offset = self.source.find(symbol.strip("_"), left.meta.end_pos)
        message = f"found no matching overload for '{symbol}' applied to '({types[0]}, {types[1]})'"
        self.errors.append((*_position(self.source, offset), message))

    def call(self, token: lark.Token, args: list[Any], scope: frozenset[str]) -> None:
        if token.value not in GLOBAL_RESULTS:
            self.error(token, f"undeclared reference to '{token.value}'", paren=True)
        elif token.value == "has" and (len(args) != 1 or _core(args[0]).data != "member_dot"):
            self.error(args[0] if args else token, "has() argument must be a field selection", paren=not args)
        for arg in args:
            self.visit(arg, scope)

    def method(self, target: Any, token: lark.Token, args: list[Any], scope: frozenset[str]) -> None:
        name, root = token.value, _core(target)
        namespace = root.children[0].value if isinstance(root, lark.Tree) and root.data == "ident" else None
        if namespace in NAMESPACES and namespace not in scope:
            self.error(root, f"{namespace}.{name}() is not available on the cel-python backend")
            return
        if name in MACROS:
            variable = _core(args[0]) if args else None
            if len(args) != MACROS[name]:
                self.error(token, f"{name}() takes {MACROS[name]} arguments on the cel-python backend", paren=True)
            elif not (isinstance(variable, lark.Tree) and variable.data == "ident"):
                self.error(args[0], f"{name}() variable name must be a simple identifier")
            else:
                self.visit(target, scope)
                for arg in args[1:]:
                    self.visit(arg, scope | {variable.children[0].value})
            return
        if name not in METHOD_RESULTS:
            self.error(token, f"undeclared reference to '{name}'", paren=True)
        self.visit(target, scope)
        for arg in args:
            self.visit(arg, scope)


def static_type(node: Any) -> str | None:
    """The CEL type of an expression when it is known without data (None: dyn)."""
    node = _core(node)
    if not isinstance(node, lark.Tree):
        return None
    children = node.children
    match node.data:
        case "literal":
            return _LITERALS.get(children[0].type)
        case "conditionalor" | "conditionaland" | "relation":
            return "bool"
        case "unary":
            return "bool" if children[0].data == "unary_not" else static_type(children[1])
        case "addition" | "multiplication":
            left, right = static_type(children[0].children[0]), static_type(children[1])
            return left if left == right and left in NUMERIC | {"string", "bytes", "list", "duration"} else None
        case "expr":
            then, otherwise = static_type(children[1]), static_type(children[2])
            return then if then == otherwise else None
        case "paren_expr":
            return static_type(children[0])
        case "list_lit" | "map_lit":
            return "list" if node.data == "list_lit" else "map"
        case "ident_arg":
            return GLOBAL_RESULTS.get(children[0].value)
        case "member_dot_arg":
            return METHOD_RESULTS.get(children[1].value)
        case _:
            return None


_OPTIONAL_SYNTAX = re.compile(r"\.\s*\?|\[\s*\?")


def parse_error(source: str, exc: celpy.CELParseError) -> CelCompileError:
    """celpy's Lark error as cel-cpp words it: ``Syntax error: mismatched input 'x'`` at its position."""
    cause = exc.__context__
    line, column = exc.line, exc.column
    if isinstance(cause, lark.exceptions.UnexpectedToken) and cause.token.type == "$END":
        message = "Syntax error: mismatched input '<EOF>'"
        line, column = _position(source, len(source))
    elif isinstance(cause, lark.exceptions.UnexpectedToken):
        message = f"Syntax error: mismatched input '{cause.token.value}'"
    elif isinstance(cause, lark.exceptions.UnexpectedCharacters):
        message = f"Syntax error: token recognition error at: '{cause.char}'"
    else:
        message = f"Syntax error: {str(exc.args[0]).strip().splitlines()[0] if exc.args else 'invalid expression'}"
    if _OPTIONAL_SYNTAX.search(source):
        message += " (optional syntax .? and [?] is not available on the cel-python backend)"
    return CelCompileError(source, message, line, column)


# ---------------------------------------------------------------- the backend

_RUNTIME_MESSAGES = (
    (re.compile(r"no such member in mapping: '(.*)'"), r'no such key: "\1"'),
    (re.compile(r".* does not support field selection"), "field selection on a value that is not a map"),
    (re.compile(r"found no matching overload.*"), "no matching overload"),
    (re.compile(r"(undeclared reference to '[^']*').*"), r"\1"),
)


def eval_error(exc: BaseException) -> CelEvalError:
    """A short CelEvalError from celpy's error, whose text can hold the whole activation."""
    message = str(exc.args[0]) if isinstance(exc, CELEvalError) and exc.args else f"{type(exc).__name__}: {exc}"
    if message == "return error for overflow":  # what celpy says for any ValueError of a function
        cause = str(exc.args[2][0]) if len(exc.args) > 2 and exc.args[2] else ""
        message = "integer overflow" if cause == "overflow" else f"conversion failed: {cause}"
    for pattern, replacement in _RUNTIME_MESSAGES:
        if pattern.match(message):
            return CelEvalError(pattern.sub(replacement, message, count=1))
    return CelEvalError(message)


class _Evaluator(celpy.Evaluator):
    """celpy's interpreter with cel-spec's ``has()`` and macros (celpy counts an error as true in
    ``exists_one``/``filter``, iterates strings, and loses the error's text in ``all``/``exists``)."""

    def sub_evaluator(self, ast: lark.Tree) -> celpy.Evaluator:
        return _Evaluator(ast, activation=self.activation)

    def member_dot_arg(self, tree: lark.Tree) -> Any:
        name = tree.children[1].value
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

    def macro_has_eval(self, exprlist: lark.Tree) -> Any:
        select = _core(exprlist.children[0])  # a member_dot: the compile-time check made sure
        target = self.visit(select.children[0])
        if isinstance(target, CELEvalError) or kind_of(target) != "map":
            return target if isinstance(target, CELEvalError) else CELEvalError("field selection on a value that is not a map")
        return ct.BoolType(select.children[1].value in target)


class _Program:
    __slots__ = ("_ast", "_base")

    def __init__(self, ast: lark.Tree, base: celpy.Activation) -> None:
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
            except celpy.CELParseError as exc:
                raise parse_error(source, exc) from None
            checker = _Checker(source)
            checker.visit(tree, frozenset())
            if checker.errors:
                line, column, message = min(checker.errors)
                more = len(checker.errors) - 1
                message += f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
                raise CelCompileError(source, message, line, column)
            kind = static_type(tree)
            if result == "bool" and kind not in (None, "bool"):
                raise CelCompileError(source, f"expression returns {kind}, expected bool")
            return _Program(tree, celpy.InterpretedRunner(self._env, tree, FUNCTIONS).new_activation())

    def activation(self, context: Mapping[str, Any], time: datetime | None, data: Any) -> Any:
        event = {ct.StringType(k): ct.StringType(rfc3339(v)) if isinstance(v, datetime) else to_cel(v) for k, v in context.items()}
        if time is not None:
            event[ct.StringType("time")] = ct.TimestampType(time)
        converted = to_cel(data)
        body: Any = None
        header: Any = ct.MapType()
        if isinstance(converted, ct.MapType):
            body = converted["body"] if "body" in converted else None
            for key in ("header", "headers"):
                if key in converted and isinstance(converted[key], ct.MapType):
                    header = converted[key]
                    break
        return {"event": ct.MapType(event), "data": converted, "body": body, "header": header, "headers": header}


def make_backend() -> PyBackend:
    """A fresh backend for one :class:`sensors.cel.CelEnvironment`."""
    return PyBackend()

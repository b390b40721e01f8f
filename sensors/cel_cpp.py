"""The cel-expr-python backend (Google's cel-cpp) of :mod:`sensors.cel`.

An expression is compiled twice. First against the *check* environment, which declares what users
see (``event``, ``data``, ``body``, ``header``, ``headers``): that gives errors with positions in the
user's text and the static result type. Then a rewritten copy is compiled against the *run*
environment, which declares only ``event``, ``data`` and a hidden timestamp:

- ``body``/``header``/``headers`` become ``cel.bind`` bindings to parts of ``data``, so an activation
  converts the event data once no matter which of the names a program reads. (cel-cpp converts a
  variable lazily on first use and caches it in the activation; binding ``body`` as a variable of its
  own would convert the body a second time for any program that also reads ``data``.)
- ``event.time`` / ``event["time"]`` become the hidden variable: cel-cpp converts a ``datetime`` to a
  timestamp only for a variable declared as one, never inside a ``map(string, dyn)``. The ``event``
  map itself carries ``time`` as its RFC 3339 text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from cel_expr_python import cel
from cel_expr_python.ext.ext_bindings import ExtBindings
from cel_expr_python.ext.ext_math import ExtMath
from cel_expr_python.ext.ext_optional import ExtOptional
from cel_expr_python.ext.ext_strings import ExtStrings

from sensors.cel import CEL_MACROS, CelCompileError, CelEvalError, cel_tokens, rfc3339, with_more

__all__ = ["make_backend", "runtime_source"]

_T = cel.Type
_ANY_MAP = _T.Map(_T.STRING, _T.DYN)
TIME_VAR = "__eventflow_time__"
_BODY = '(type(data) == map && "body" in data) ? data.body : null'
_HEADER = (
    '(type(data) == map && "header" in data && type(data.header) == map) ? data.header'
    ' : ((type(data) == map && "headers" in data && type(data.headers) == map) ? data.headers : {})'
)
DERIVED = frozenset({"event", "body", "header", "headers"})  # the names the rewrite touches


def _extensions() -> list[cel.CelExtensionBase]:
    return [ExtStrings(), ExtOptional(), ExtMath(), ExtBindings()]


def runtime_source(source: str) -> str:
    """``source`` with ``event.time`` read from the hidden timestamp and ``body``/``header(s)`` bound to ``data``."""
    toks = cel_tokens(source)

    def text(i: int) -> str:
        return toks[i].text if 0 <= i < len(toks) else ""

    def selected(i: int) -> bool:  # x.name, x.?name; not the leading dot of a root-scoped .name
        dot = i - 1 if text(i - 1) == "." else i - 2 if text(i - 1) == "?" and text(i - 2) == "." else -1
        return dot > 0 and (toks[dot - 1].kind != "op" or text(dot - 1) in (")", "]", "}"))

    free = {t.text for i, t in enumerate(toks) if t.kind == "ident" and not selected(i)}
    # ``event`` as a macro's variable shadows the declared one: leave such an expression alone.
    rebinds_event = any(
        t.text == "event" and text(i - 1) == "(" and text(i - 2) in CEL_MACROS and text(i - 3) == "."
        for i, t in enumerate(toks)
    )
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), in source order
    for i, t in enumerate(toks):
        if t.kind != "ident" or selected(i) or t.text not in DERIVED:
            continue
        start = toks[i - 1].start if text(i - 1) == "." else t.start  # a root-scoped .body is body
        if t.text != "event":
            if start != t.start:
                edits.append((start, t.start, ""))
        elif rebinds_event or (text(i - 1) == "(" and text(i - 2) == "has"):
            continue  # has(event.time) asks the map, which holds the key
        elif text(i + 1) == "." and text(i + 2) == "time" and text(i + 3) != "(":
            edits.append((start, toks[i + 2].end, f"dyn({TIME_VAR})"))
        elif text(i + 1) == "[" and text(i + 2) in ('"time"', "'time'") and text(i + 3) == "]":
            edits.append((start, toks[i + 3].end, f"dyn({TIME_VAR})"))
    for start, end, replacement in reversed(edits):
        source = f"{source[:start]}{replacement}{source[end:]}"
    binds = []
    if "body" in free:
        binds.append(("body", _BODY))
    if "header" in free or "headers" in free:
        binds.append(("header", _HEADER))
    if "headers" in free:
        binds.append(("headers", "header"))
    for name, value in reversed(binds):
        source = f"cel.bind({name}, {value},\n{source}\n)"  # newlines: the source may end in a // comment
    return source


_POSITIONED = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")


def _clean(message: str) -> str:
    message = message.replace(" (in container '')", "")
    message = re.sub(r" expecting \{[^}]*\}", "", message)  # ANTLR's list of every token it would accept
    return re.sub(r"\s*\[[A-Z_]+\]$", "", message).strip()


def compile_error(source: str, exc: Exception) -> CelCompileError:
    """The first of cel-cpp's errors, with its position, without the ``ERROR: <input>:`` prefix and caret dump."""
    found = _POSITIONED.findall(str(exc))
    if not found:
        return CelCompileError(source, _clean(re.sub(r"^[A-Z_]+: ", "", str(exc).splitlines()[0])))
    line, column, message = found[0]
    return CelCompileError(source, with_more(_clean(message), len(found) - 1), int(line), int(column))


def _type_text(kind: cel.Type) -> str:
    return str(kind.name()).lower().replace("<", "(").replace(">", ")")


_RUNTIME_MESSAGES = (
    (re.compile(r"Key not found in map : (.*)"), r"no such key: \1"),
    (re.compile(r"No matching overloads found : (.*)"), r"no matching overload for \1"),
    (re.compile(rf'No value with name "{TIME_VAR}" found in Activation'), 'no such key: "time"'),
    (re.compile(r"Index error: index=(-?\d+) size=(\d+)"), r"index out of range: \1 (size \2)"),
    (
        re.compile(r"Non-CEL value type for '(\w+).*': ([\w.]+)\.$", re.DOTALL),
        r"\1 holds a \2, which CEL cannot represent",
    ),
    (re.compile(r"Applying SELECT to non-message type"), "field selection on a value that is not a map"),
)


def eval_error(value: cel.Value) -> CelEvalError:
    """A cel-cpp error value as a short :class:`CelEvalError`."""
    try:
        message = re.sub(r"^[A-Z_]+: ", "", str(value.value()))
    except TypeError:  # what cel-expr-python 0.1.3 does with an optional result: it cannot convert it
        return CelEvalError("the result is an optional value: end the expression with .orValue(default)")
    for pattern, replacement in _RUNTIME_MESSAGES:
        if pattern.match(message):
            message = pattern.sub(replacement, message).replace("int64", "int").replace("uint64", "uint")
            break
    return CelEvalError(message)


_TYPE_NAMES = {"null": "null_type", "list<dyn>": "list", "map<dyn, dyn>": "map"}


def _plain(value: Any) -> Any:
    """``plain_value()`` gives bytes as ``bytearray`` and types as ``cel.Type``; everything else is plain."""
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, cel.Type):
        name = value.name().lower()
        return _TYPE_NAMES.get(name, name)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


class _Program:
    __slots__ = ("_expr",)

    def __init__(self, expr: cel.Expression) -> None:
        self._expr = expr

    def evaluate(self, native: Any) -> Any:
        try:
            value = self._expr.eval(native)
        except RuntimeError as exc:  # a few errors are raised instead of returned (duplicate map keys)
            raise CelEvalError(re.sub(r"^[A-Z_]+: |\s*\[[A-Z_]+\]$", "", str(exc))) from None
        kind = value.type()
        if kind == _T.BOOL:
            return value.value()
        if kind == _T.ERROR:
            raise eval_error(value)
        return _plain(value.plain_value())


class CppBackend:
    """Compiles with cel-cpp's type checker; activations convert ``event`` and ``data`` lazily, once."""

    def __init__(self) -> None:
        declared = {
            "event": _ANY_MAP,
            "data": _T.DYN,
            "body": _T.DYN,
            "header": _ANY_MAP,
            "headers": _ANY_MAP,
        }
        self._check = cel.NewEnv(variables=declared, extensions=_extensions())
        run = {"event": _ANY_MAP, "data": _T.DYN, TIME_VAR: _T.TIMESTAMP}
        self._run = cel.NewEnv(variables=run, extensions=_extensions())
        self._lock = threading.Lock()

    def compile(self, source: str, result: Literal["any", "bool"]) -> _Program:
        with self._lock:
            try:
                checked = self._check.compile(source)
            except RuntimeError as exc:
                raise compile_error(source, exc) from None
            kind = checked.return_type()
            if result == "bool" and not (kind == _T.BOOL or kind == _T.DYN):
                raise CelCompileError(source, f"expression returns {_type_text(kind)}, expected bool")
            try:
                return _Program(self._run.compile(runtime_source(source)))
            except RuntimeError as exc:  # a rewrite the checker did not foresee: report it without a position
                raise CelCompileError(
                    source, f"internal rewrite failed: {compile_error(source, exc).message}"
                ) from None

    def activation(self, context: Mapping[str, Any], time: datetime | None, data: Any) -> Any:
        event = dict(context)
        for key, value in event.items():
            if isinstance(value, datetime) and key != "time":  # extensions of type Timestamp: as text, like ``time``
                event[key] = rfc3339(value)
        values: dict[str, Any] = {"event": event, "data": data}
        if time is not None:
            event["time"] = rfc3339(time)
            values[TIME_VAR] = time
        return self._run.Activation(values)


def make_backend() -> CppBackend:
    """A fresh backend (two cel-cpp environments) for one :class:`sensors.cel.CelEnvironment`."""
    return CppBackend()

"""The one CEL environment of eventflow's sensors: compile once, convert each event once, evaluate many.

Two backends behave the same wherever the libraries allow (docs/cel.md lists the differences):

- ``cel-expr-python`` (Google's cel-cpp, preferred): type-checked at compile time, ~40x faster;
- ``cel-python`` (``celpy``, pure Python): the fallback when cel-expr-python is not importable.

Every expression sees ``event`` (the CloudEvent context, ``time`` a timestamp), ``data`` (the event
data), ``body`` (``data.body`` of webhook/queue-shaped data, else null) and ``header``/``headers``
(``data.header`` or ``data.headers``, else an empty map)::

    env = CelEnvironment()
    ok = env.compile('body.action == "opened" && header["X-Github-Event"][0] == "pull_request"', result="bool")
    activation = env.activation(context, data)  # once per event
    ok.test(activation)                          # as many programs as you like
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NamedTuple, Protocol

__all__ = [
    "CEL_MACROS",
    "CelToken",
    "cel_tokens",
    "BACKENDS",
    "ENV_VAR",
    "Activation",
    "CelCompileError",
    "CelEnvironment",
    "CelEvalError",
    "CelProgram",
    "available_backends",
]

BACKENDS: tuple[str, ...] = ("cel-expr-python", "cel-python")
ENV_VAR = "EVENTFLOW_CEL_BACKEND"
# backend name -> (the library module that must import, our module implementing the backend)
_MODULES = {
    "cel-expr-python": ("cel_expr_python.cel", "sensors.cel_cpp"),
    "cel-python": ("celpy", "sensors.cel_py"),
}
MAX_EVAL_MESSAGE = 200


class CelCompileError(ValueError):
    """An expression cannot be compiled: bad syntax, a type error or an undeclared name.

    ``line``/``column`` (1-based) point into ``source`` when the backend knows the position.
    """

    def __init__(self, source: str, message: str, line: int | None = None, column: int | None = None) -> None:
        self.source = source
        self.message = message
        self.line = line
        self.column = column
        super().__init__(
            f"{line}:{column}: {message}" if line is not None and column is not None else message
        )


class CelEvalError(Exception):
    """Evaluating a compiled expression against one event failed (missing key, no overload, ...).

    The message is one short line; it never dumps the event.
    """

    def __init__(self, message: str) -> None:
        self.message = short_message(message)
        super().__init__(self.message)


def with_more(message: str, more: int) -> str:
    """The first of several compile errors, saying how many more there are."""
    return f"{message} (and {more} more error{'s' if more > 1 else ''})" if more > 0 else message


def short_message(message: str) -> str:
    """First line of ``message``, at most :data:`MAX_EVAL_MESSAGE` characters."""
    line = (message.strip().splitlines() or [""])[0]
    return line if len(line) <= MAX_EVAL_MESSAGE else line[: MAX_EVAL_MESSAGE - 3] + "..."


class Activation:
    """One event converted for CEL once; every program of the same environment can evaluate it."""

    __slots__ = ("backend", "native")

    def __init__(self, backend: str, native: Any) -> None:
        self.backend = backend
        self.native = native


class NativeProgram(Protocol):
    """What a backend compiles an expression to."""

    def evaluate(self, native: Any) -> Any:
        """The plain Python result for one backend activation; raises :class:`CelEvalError`."""


class Backend(Protocol):
    """The seam between :class:`CelEnvironment` and one CEL library (``sensors/cel_cpp.py``, ``sensors/cel_py.py``)."""

    def compile(self, source: str, result: Literal["any", "bool"]) -> NativeProgram:
        """Parse and check ``source``; raises :class:`CelCompileError`."""

    def activation(self, context: Mapping[str, Any], time: datetime | None, data: Any) -> Any:
        """Convert one event; ``time`` is the parsed ``context["time"]`` (None when absent)."""


class CelProgram:
    """A compiled expression, ready to evaluate against any :class:`Activation` of its environment."""

    __slots__ = ("_backend", "_native", "source")

    def __init__(self, source: str, backend: str, native: NativeProgram) -> None:
        self.source = source
        self._backend = backend
        self._native = native

    def evaluate(self, activation: Activation) -> Any:
        """The result as plain Python (timestamps are aware datetimes, durations timedeltas)."""
        if activation.backend != self._backend:
            raise ValueError(
                f"activation of backend {activation.backend!r} given to a {self._backend!r} program"
            )
        return self._native.evaluate(activation.native)

    def test(self, activation: Activation) -> bool:
        """True iff the expression returns the bool true; a runtime error or a non-bool is a CelEvalError."""
        value = self.evaluate(activation)
        if value is True or value is False:
            return value
        raise CelEvalError(f"expected a bool, got {type_name(value)}")

    def __repr__(self) -> str:
        return f"<CelProgram {self._backend} {self.source!r}>"


class CelEnvironment:
    """The declarations (``event``, ``data``, ``body``, ``header``, ``headers``) and extensions of one backend."""

    def __init__(self, backend: str | None = None) -> None:
        available = available_backends()
        if not available:
            raise ValueError("no CEL library is importable: pip install cel-expr-python (or cel-python)")
        name = backend if backend is not None else os.environ.get(ENV_VAR) or available[0]
        if name not in available:
            where = "" if backend is not None else f" (from {ENV_VAR})"
            raise ValueError(
                f"CEL backend {name!r}{where} is not available; available: {', '.join(available)}"
            )
        self.backend: str = name
        self._impl: Backend = importlib.import_module(_MODULES[name][1]).make_backend()

    def compile(self, source: str, *, result: Literal["any", "bool"] = "any") -> CelProgram:
        """Parse and type-check ``source``; ``result="bool"`` also rejects a statically non-bool expression."""
        if result not in ("any", "bool"):
            raise ValueError(f"result must be 'any' or 'bool', got {result!r}")
        return CelProgram(source, self.backend, self._impl.compile(source, result))

    def activation(self, context: Mapping[str, Any], data: Any) -> Activation:
        """Convert one event (its CloudEvent ``context`` and its ``data``) once, for many programs."""
        return Activation(self.backend, self._impl.activation(context, event_time(context), data))

    def __repr__(self) -> str:
        return f"<CelEnvironment {self.backend}>"


def available_backends() -> list[str]:
    """The backends whose library imports, in order of preference."""
    out = []
    for name in BACKENDS:
        try:
            importlib.import_module(_MODULES[name][0])
        except ImportError:
            continue
        out.append(name)
    return out


def event_time(context: Mapping[str, Any]) -> datetime | None:
    """``context["time"]`` as an aware UTC datetime (given as a datetime or an RFC 3339 string)."""
    value = context.get("time")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"
        except ValueError:
            raise CelEvalError(f"event time is not an RFC 3339 timestamp: {context['time'][:60]!r}") from None
    if not isinstance(value, datetime):
        raise CelEvalError(f"event time must be a datetime or an RFC 3339 string, got {type(value).__name__}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """The canonical text of a timestamp, as CEL's ``string(timestamp)`` prints it (naive means UTC)."""
    value = value.astimezone(UTC) if value.tzinfo is not None else value
    text = value.replace(tzinfo=None, microsecond=0).isoformat()
    if value.microsecond:  # milli- or microseconds, as cel-cpp prints them
        fraction = f"{value.microsecond:06d}"
        text += "." + (fraction[:3] if fraction.endswith("000") else fraction)
    return text + "Z"


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
    """``string(duration)``: seconds with 0, 3 or 6 fractional digits (``90s``, ``1.500s``)."""
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    seconds, fraction = divmod(abs(micros), 1_000_000)
    text = f"{fraction:06d}".removesuffix("000") if fraction else ""
    return f"{'-' if micros < 0 else ''}{seconds}{'.' + text if text else ''}s"


def type_name(value: Any) -> str:
    """The CEL type name of a plain Python result."""
    match value:
        case None:
            return "null"
        case bool():
            return "bool"
        case int():
            return "int"
        case float():
            return "double"
        case str():
            return "string"
        case bytes():
            return "bytes"
        case list():
            return "list"
        case dict():
            return "map"
        case datetime():
            return "timestamp"
        case timedelta():
            return "duration"
        case _:
            return type(value).__name__


# -- tokens, for the checks and rewrites that look at a source without compiling it ---------------

CEL_MACROS = frozenset(("all", "exists", "exists_one", "existsOne", "map", "filter", "bind", "transformList", "transformMap"))


class CelToken(NamedTuple):
    kind: str  # "ident", "string", "op" or "other"
    text: str
    start: int
    end: int


# Comments and white space, strings (raw, bytes, triple-quoted), identifiers, the rest.
_LEXER = re.compile(
    r"""(?P<skip>\s+|//[^\n]*)
    |(?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<other>\d[\w.]*|`[^`]*`)
    |(?P<op>.)""",
    re.VERBOSE | re.DOTALL,
)


def cel_tokens(source: str) -> list[CelToken]:
    """The tokens of ``source``, without white space and comments."""
    return [
        CelToken(m.lastgroup or "op", m.group(), m.start(), m.end())
        for m in _LEXER.finditer(source)
        if m.lastgroup != "skip"
    ]

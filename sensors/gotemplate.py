"""The Go text/template + sprig subset that Argo Events' `dataTemplate`, `contextTemplate` and data
filter `template` use in practice; the data is `.Input`.

Supported: literal text; actions `{{ .Input }}`, `{{ .Input.body.name }}`, `{{ index .Input.body
"x-y" }}`; pipes into `default`, `index`, `lower`, `upper`, `title`, `nospace`, `trim`, `quote`,
`squote`, `substr`, `toJson`, `toString`, `b64enc`, `b64dec`; string ("..." and `...`), integer, float and
`true`/`false` arguments; trim markers `{{-` / `-}}`; comments `{{/* */}}`. Anything else (if,
range, with, define, variables, parentheses, other functions) fails at compile time with a
`TemplateError` that points to a CEL expression (`src.expression`) instead.

Differences from Go, by design:
- A missing key, or a JSON null that reaches the output or a string function, raises
  `TemplateError`, so the caller can fall back to the parameter's `value` (Go prints
  `<no value>`, which Argo also treats as a failure). `default` still sees a missing or null
  value as empty, as in sprig: `{{ .Input.x | default "none" }}`.
- Field access through a missing or null parent is missing, not an error.
- Objects and arrays print as compact JSON in document key order, not Go's `map[k:v]`.
- Integers print as digits (`1234567`); Go decodes every JSON number to float64 and would print
  `1.234567e+06`. Floats print like Go's `%v` (`42.0` -> `42`, `1e6` -> `1e+06`).
- `lower`/`upper`/`title`/`nospace`/`trim`/`b64*` need a string (as in Go), `toString` converts.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sensors.paths import go_float, to_json

__all__ = ["GoTemplate", "TemplateError", "compile_template"]

_CEL_HINT = "write it as a CEL expression (src.expression) instead"
_KEYWORDS: Final = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<field>(?:\.[^\W\d]\w*)+)
    |(?P<dot>\.)
    |(?P<string>"(?:[^"\\\n]|\\.)*")
    |(?P<raw>`[^`]*`)
    |(?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<ident>[^\W\d]\w*)
    |(?P<pipe>\|)
    |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\\"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3})|(.))"
)
_SIMPLE: Final = dict(zip('abfnrtv\\"', '\a\b\f\n\r\t\v\\"', strict=True))  # Go escapes
_TRIM_SPACE = " \t\r\n"  # what Go's trim markers remove
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)
_KINDS: Final = {type(None): "null", bool: "a bool", int: "a number", float: "a number", str: "a string"} | {
    list: "a list",
    dict: "a mapping",
}


class TemplateError(ValueError):
    """A template eventflow cannot compile, or that cannot render one input (missing key, bad type)."""

    def __init__(self, reason: str, *, line: int = 1, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        where = (
            "" if column is None else f"column {column}: " if line == 1 else f"line {line}, column {column}: "
        )
        super().__init__(where + reason)


class _Fail(Exception):
    """Raised while rendering one action; `GoTemplate.render` adds the action's position."""


@dataclass(frozen=True)
class _NoValue:
    what: str  # the expression that found nothing, for the error message


@dataclass(frozen=True)
class _Field:
    names: tuple[str, ...]  # () is the dot itself: {"Input": ...}


@dataclass(frozen=True)
class _Literal:
    value: str | int | float | bool


_Operand = _Field | _Literal


@dataclass(frozen=True)
class _Call:
    name: str
    args: tuple[_Operand, ...]


@dataclass(frozen=True)
class _Action:
    commands: tuple[_Operand | _Call, ...]
    line: int
    column: int


@dataclass(frozen=True)
class GoTemplate:
    """A compiled template; `render` is pure and may be called concurrently."""

    source: str
    _nodes: tuple[str | _Action, ...] = field(repr=False)

    def render(self, input: Any) -> str:
        """The text for `input` (bound to `.Input`). Raises `TemplateError` as the module describes."""
        root = {"Input": input}
        out: list[str] = []
        for node in self._nodes:
            if isinstance(node, str):
                out.append(node)
                continue
            try:
                out.append(_print(_run(node, root)))
            except _Fail as err:
                raise TemplateError(str(err), line=node.line, column=node.column) from None
        return "".join(out)


def compile_template(source: str) -> GoTemplate:
    """Parse `source`; raises `TemplateError` (with the offending action's column) if unsupported."""
    nodes: list[str | _Action] = []
    pos, trim_next = 0, False
    while (start := source.find("{{", pos)) >= 0:
        text = source[pos:start]
        line = source.count("\n", 0, start) + 1
        column = start - source.rfind("\n", 0, start)
        body_start = start + 2
        if source.startswith("-", body_start) and source[body_start + 1 : body_start + 2] in tuple(
            _TRIM_SPACE
        ):
            text = text.rstrip(_TRIM_SPACE)
            body_start += 2
        nodes.append(text.lstrip(_TRIM_SPACE) if trim_next else text)
        end = _action_end(source, body_start, line, column)
        body, pos = source[body_start:end], end + 2
        trim_next = len(body) >= 2 and body[-1] == "-" and body[-2] in _TRIM_SPACE
        if trim_next:
            body = body[:-2]
        if not body.startswith("/*"):
            nodes.append(_parse_action(body, line, column))
        elif not body.endswith("*/"):
            raise TemplateError("a comment must end with '*/' right before '}}'", line=line, column=column)
    tail = source[pos:]
    nodes.append(tail.lstrip(_TRIM_SPACE) if trim_next else tail)
    return GoTemplate(source, tuple(n for n in nodes if n != ""))


def _action_end(source: str, i: int, line: int, column: int) -> int:
    """The index of the `}}` closing the action whose body starts at `i` (quotes respected)."""
    if source.startswith("/*", i):
        close = source.find("*/", i + 2)
        i = close + 2 if close >= 0 else len(source)
    while i < len(source):
        char = source[i]
        if source.startswith("}}", i):
            return i
        literal = _TOKEN.match(source, i) if char in '"`' else None
        i = literal.end() if literal and literal.lastgroup in ("string", "raw") else i + 1
    raise TemplateError("unclosed action: missing '}}'", line=line, column=column)


def _parse_action(body: str, line: int, column: int) -> _Action:
    def fail(reason: str) -> TemplateError:
        return TemplateError(reason, line=line, column=column)

    tokens = _tokens(body, fail)
    commands: list[_Operand | _Call] = []
    stages: list[list[tuple[str, str]]] = [[]]
    for kind, text in tokens:
        if kind == "pipe":
            stages.append([])
        else:
            stages[-1].append((kind, text))
    for index, stage in enumerate(stages):
        if not stage:
            raise fail("empty action" if len(stages) == 1 else "missing command around '|'")
        kind, text = stage[0]
        if kind == "ident" and text not in ("true", "false"):
            if text in _KEYWORDS:
                raise fail(f"'{text}' actions are not supported; {_CEL_HINT}")
            if text not in _FUNCS:
                raise fail(
                    f"function {text!r} is not supported (supported: {', '.join(sorted(_FUNCS))}); {_CEL_HINT}"
                )
            args = tuple(_operand(arg_kind, arg, fail) for arg_kind, arg in stage[1:])
            (low, high), _ = _FUNCS[text]
            count = len(args) + (index > 0)
            if count < low or (high is not None and count > high):
                want = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
                raise fail(f"{text} takes {want} argument(s), got {count}")
            commands.append(_Call(text, args))
        elif index > 0:
            raise fail(f"cannot pipe into {text!r}: only functions take piped values")
        elif len(stage) > 1:
            raise fail(f"{text!r} is not a function and takes no arguments")
        else:
            commands.append(_operand(kind, text, fail))
    return _Action(tuple(commands), line, column)


def _tokens(body: str, fail: Callable[[str], TemplateError]) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        assert match is not None and match.lastgroup is not None
        kind, text, pos = match.lastgroup, match.group(), match.end()
        if kind == "other":
            raise fail(_unexpected(text, tokens))
        if kind != "space":
            if (
                tokens
                and tokens[-1][0] != "pipe"
                and kind != "pipe"
                and not body[match.start() - 1].isspace()
            ):
                raise fail(_unexpected(text, tokens))
            tokens.append((kind, text))
    return tokens


def _unexpected(text: str, before: list[tuple[str, str]]) -> str:
    if text == "$":
        return f"variables ($) are not supported; {_CEL_HINT}"
    if text in "()":
        return f"parenthesized pipelines are not supported; {_CEL_HINT}"
    if text in '"`':
        return "unterminated string literal"
    if text.startswith("-") and before and before[-1][0] == "field":
        *parents, key = before[-1][1].rsplit(".", 1)
        return (
            f"unexpected '-' after {before[-1][1]}: for keys with dashes write index {parents[0]} \"{key}-…\""
        )
    if text.startswith(".") and before and before[-1][0] == "field":
        return f"unexpected {text!r} after {before[-1][1]}: for list elements write index {before[-1][1]} 0"
    after = f" after {before[-1][1]!r}" if before else ""
    return f"unexpected {text!r}{after}"


def _operand(kind: str, text: str, fail: Callable[[str], TemplateError]) -> _Operand:
    match kind:
        case "field":
            names = tuple(text[1:].split("."))
            if names[0] != "Input":
                raise fail(f"unknown field .{names[0]}: the template's data is .Input")
            return _Field(names)
        case "dot":
            return _Field(())
        case "string":
            return _Literal(_unquote(text[1:-1], fail))
        case "raw":
            return _Literal(text[1:-1])
        case "number":
            return _Literal(float(text) if any(c in text for c in ".eE") else int(text))
        case "ident" if text in ("true", "false"):
            return _Literal(text == "true")
        case "ident":
            raise fail(f"{text!r} as an argument is not supported: pipe into the function instead")
        case _:
            raise fail(f"unexpected {text!r}")


def _unquote(text: str, fail: Callable[[str], TemplateError]) -> str:
    def one(m: re.Match[str]) -> str:
        simple, hex2, hex4, hex8, octal, bad = m.groups()
        if bad is not None:
            raise fail(f"invalid escape '\\{bad}' in string literal")
        if simple is not None:
            return _SIMPLE[simple]
        return chr(int(hex2 or hex4 or hex8, 16) if octal is None else int(octal, 8))

    return _ESCAPE.sub(one, text)


def _run(action: _Action, root: dict[str, Any]) -> Any:
    value: Any = None
    for index, command in enumerate(action.commands):
        if isinstance(command, _Call):
            args = [_eval(a, root) for a in command.args] + ([value] if index > 0 else [])
            value = _FUNCS[command.name][1](args)
        else:
            value = _eval(command, root)
    return value


def _eval(operand: _Operand, root: dict[str, Any]) -> Any:
    if isinstance(operand, _Literal):
        return operand.value
    value: Any = root
    for depth, name in enumerate(operand.names, 1):
        what = "." + ".".join(operand.names[:depth])
        if value is None or isinstance(value, _NoValue):
            value = _NoValue(what)
        elif isinstance(value, dict):
            value = value[name] if name in value else _NoValue(what)
        else:
            raise _Fail(f"can't evaluate field {name} in {_kind(value)} ({what})")
    return value


def _kind(value: Any) -> str:
    return "a missing value" if isinstance(value, _NoValue) else _KINDS.get(type(value), type(value).__name__)


def _print(value: Any) -> str:
    match value:
        case _NoValue():
            raise _Fail(f'no value for {value.what} (pipe into default "…" to allow it)')
        case None:
            raise _Fail('the value is null (pipe into default "…" to allow it)')
        case str():
            return value
        case float():
            return go_float(value, "g")
        case bool() | int() | dict() | list():
            return to_json(value)
        case _:
            return str(value)


def _present(name: str, value: Any) -> Any:
    if isinstance(value, _NoValue):
        raise _Fail(f"{name}: no value for {value.what}")
    return value


def _text(name: str, value: Any) -> str:
    if isinstance(_present(name, value), str):
        return str(value)
    raise _Fail(f"{name} expects a string, got {_kind(value)} (pipe through toString first)")


def _empty(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, _NoValue)
        or (not value and isinstance(value, str | int | float | list | dict))
    )


def _title(s: str) -> str:
    """Go's strings.Title: upper-case each letter that follows a separator."""
    out, previous = [], " "
    for char in s:
        separator = not (previous.isalnum() or previous == "_") if previous.isascii() else previous.isspace()
        upper = char.title() if separator else char
        out.append(upper if len(upper) == 1 else char)
        previous = char
    return "".join(out)


def _per_rune(s: str, convert: Callable[[str], str]) -> str:
    return "".join(c2 if len(c2 := convert(c)) == 1 else c for c in s)  # Go maps rune by rune


def _go_quote(s: str) -> str:
    """Go's strconv.Quote (what sprig's quote uses)."""
    escapes = {char: "\\" + name for name, char in _SIMPLE.items()}
    out = []
    for char in s:
        code = ord(char)
        if char in escapes or char.isprintable():
            out.append(escapes.get(char, char))
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _to_string(value: Any) -> str:
    return "<nil>" if value is None else value if isinstance(value, str) else _print(value)


def _b64dec(args: list[Any]) -> str:
    try:
        return base64.b64decode(_text("b64dec", args[0]), validate=True).decode("utf-8", "replace")
    except binascii.Error as err:
        raise _Fail(f"b64dec: invalid base64 ({err})") from None


def _index(args: list[Any]) -> Any:
    item = args[0]
    for key in args[1:]:
        if item is None or isinstance(item, _NoValue):
            item = _NoValue(f"index … {to_json(key)}")
        elif isinstance(item, dict) and isinstance(key, str):
            item = item[key] if key in item else _NoValue(f"index … {to_json(key)}")
        elif isinstance(item, list) and isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(item):
                raise _Fail(f"index: {key} is out of range (length {len(item)})")
            item = item[key]
        else:
            raise _Fail(f"index: cannot index {_kind(item)} with {_kind(key)}")
    return item


def _substr(args: list[Any]) -> str:
    """sprig's substr: `s[start:end]`, to the end when `end` is negative or too big (runes, not bytes)."""
    start, end, text = args[0], args[1], _text("substr", args[2])
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (start, end)):
        raise _Fail(f"substr expects integer bounds, got {_kind(start)} and {_kind(end)}")
    if start < 0:
        return text[: max(end, 0)]
    return text[start:] if end < 0 or end > len(text) else text[start:end]


_ONE = (1, 1)  # (fewest, most) arguments, the piped value included
_FUNCS: Final[dict[str, tuple[tuple[int, int | None], Callable[[list[Any]], Any]]]] = {
    "default": ((1, 2), lambda a: a[0] if len(a) == 1 or _empty(a[1]) else a[1]),
    "index": ((1, None), _index),
    "lower": (_ONE, lambda a: _per_rune(_text("lower", a[0]), str.lower)),
    "upper": (_ONE, lambda a: _per_rune(_text("upper", a[0]), str.upper)),
    "title": (_ONE, lambda a: _title(_text("title", a[0]))),
    "nospace": (_ONE, lambda a: "".join(c for c in _text("nospace", a[0]) if c not in _GO_SPACE)),
    "substr": ((3, 3), _substr),
    "trim": (_ONE, lambda a: _text("trim", a[0]).strip(_GO_SPACE)),
    "quote": (
        (0, None),
        lambda a: " ".join(_go_quote(_to_string(_present("quote", v))) for v in a if v is not None),
    ),
    "squote": (
        (0, None),
        lambda a: " ".join(f"'{_to_string(_present('squote', v))}'" for v in a if v is not None),
    ),
    "toJson": (_ONE, lambda a: to_json(_present("toJson", a[0]))),
    "toString": (_ONE, lambda a: _to_string(_present("toString", a[0]))),
    "b64enc": (_ONE, lambda a: base64.b64encode(_text("b64enc", a[0]).encode()).decode()),
    "b64dec": (_ONE, _b64dec),
}

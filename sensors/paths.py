"""Read and write decoded JSON documents by path: gjson-style reads, strict sjson-style writes.

Read paths (`get_path`, Argo's `dataKey` and `filters.data[].path`):
- dot-separated keys: `body.pull_request.base.ref`;
- a segment of ASCII digits indexes a list (`body.commits.0.id`); on a mapping it is a plain key;
- a backslash escapes the next character: `metadata.labels.app\\.kubernetes\\.io/name`;
- `""` is the whole document. `.`, `a..b` and a trailing dot are syntax errors (empty key);
- gjson's wildcards (`*`, `?`), queries (`#`), pipes (`|`) and modifiers (`@x`) are not supported
  and raise `PathError`; escape them (`\\*`) to mean the literal character.
Absence is never an error: `get_path` returns `MISSING`.

Write paths (`set_path`, `check_dest`: a trigger parameter's `dest`) add list selection:
`spec.arguments.parameters.[name=message].value`, glued `parameters[name=message].value`, and a
quoted value `[name="a.b"]`. `[<field>=<value>]` picks the one list element whose field, rendered
with `to_text`, equals the value. Unlike sjson, nothing is created on the way: every intermediate
segment must exist, only the last may be a new key of an existing mapping, and a list index must
be below the length, except that a last segment of `-1` (sjson's form) or exactly the length
appends (Argo's hdfs example writes `args.1` into a one-element list); beyond that is an error,
not sjson's null padding. `key.-1` with `key` absent from an existing mapping creates `key:
[value]` (Argo's email-trigger example writes `email.to.-1` this way).

`append`/`prepend` follow Argo (pkg/sensors/triggers/params.go): when the destination exists the
old and new values are joined as strings (`to_text`), except that two lists are concatenated.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal, assert_never

from workflows.expressions.gofmt import format_float, format_float_fixed

__all__ = [
    "MISSING",
    "PathError",
    "build_path",
    "check_dest",
    "get_path",
    "go_float",
    "set_path",
    "split_path",
    "to_json",
    "to_text",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""Returned by `get_path` when nothing is at the path (a JSON null is `None`, not `MISSING`)."""

_APPEND: Final = _Missing()  # the slot a final `-1` (or the length) names: one past the end of a list
_UNSUPPORTED = "*?#|"
Operation = Literal["overwrite", "append", "prepend"]


class PathError(ValueError):
    """A path that cannot be parsed, or a `dest` that does not lead into the document."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class _Select:
    field: str
    value: str

    def __str__(self) -> str:
        return f"[{self.field}={self.value}]"


_Segment = str | _Select


def split_path(path: str) -> tuple[str, ...]:
    """The keys of a read path (escapes removed); `()` for `""`. Raises `PathError` on bad syntax."""
    return tuple(str(s) for s in _parse(path, selectors=False))


def get_path(doc: Any, path: str) -> Any:
    """The value at `path` in `doc`, or `MISSING`. Raises `PathError` only for bad syntax."""
    current = doc
    for key in _parse(path, selectors=False):
        assert isinstance(key, str)
        if isinstance(current, dict):
            current = current.get(key, MISSING)
        elif isinstance(current, list) and key.isascii() and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return MISSING
    return current


def set_path(doc: Any, dest: str, value: Any, operation: Operation = "overwrite") -> None:
    """Write `value` at `dest` in `doc` (in place). Raises `PathError` as described in the module."""
    container, slot = _locate(doc, dest, create=True)
    current = _read_slot(container, slot)
    match operation:
        case "overwrite":
            new = value
        case "append" | "prepend" if current is MISSING:
            new = value
        case "append" | "prepend" if isinstance(current, list) and isinstance(value, list):
            new = current + value if operation == "append" else value + current
        case "append":
            new = to_text(current) + to_text(value)
        case "prepend":
            new = to_text(value) + to_text(current)
        case _:
            assert_never(operation)
    if slot is _APPEND:
        container.append(new)
    else:
        container[slot] = new


def build_path(doc: dict[str, Any], dest: str, value: Any, operation: Operation = "overwrite") -> None:
    """Like `set_path`, but missing mappings on the way are created: how a trigger's ``payload`` is
    built from nothing (Argo's ``sjson.Set`` on an empty object)."""
    segments = _parse(dest, selectors=True)
    current: Any = doc
    for segment in segments[:-1]:
        if not isinstance(current, dict) or isinstance(segment, _Select):
            break  # lists and selections are never created: set_path names the problem
        current = current.setdefault(segment, {})
    set_path(doc, dest, value, operation)


def check_dest(doc: Any, dest: str) -> str | None:
    """None if `set_path(doc, dest, ...)` would succeed, else the reason it would not."""
    try:
        _locate(doc, dest, create=False)
    except PathError as err:
        return err.reason
    return None


def to_text(value: Any) -> str:
    """A JSON value as text, like gjson's `Result.String()`.

    Strings as they are, `true`/`false`, integers as digits, floats in Go's `%f`-shortest form
    (`42.0` -> `42`, `1.5` -> `1.5`), null as `""`, objects and arrays as compact JSON.
    """
    match value:
        case str():
            return value
        case None:
            return ""
        case bool() | int():
            return to_json(value)
        case float():
            return go_float(value, "f")
        case dict() | list() | tuple():
            return to_json(value)
        case _:
            return str(value)


def to_json(value: Any) -> str:
    """Compact JSON the way Go's encoding/json writes numbers (`42.0` -> `42`); key order is kept."""
    match value:
        case None:
            return "null"
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float():
            return go_float(value, "json")
        case str():
            return json.dumps(value, ensure_ascii=False)
        case dict():
            return "{" + ",".join(f"{to_json(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
        case list() | tuple():
            return "[" + ",".join(to_json(v) for v in value) + "]"
        case _:
            return json.dumps(str(value), ensure_ascii=False)


def go_float(x: float, style: Literal["f", "g", "json"]) -> str:
    """Go's strconv.FormatFloat(x, 'f'|'g', -1, 64) ('g' is fmt's `%v`); "json" is encoding/json's form."""
    if style == "f":
        return format_float_fixed(x)
    return format_float(x, json_style=style == "json")


@lru_cache(maxsize=1024)
def _parse(path: str, *, selectors: bool) -> tuple[_Segment, ...]:
    if path == "":
        return ()
    segments: list[_Segment] = []
    i, n = 0, len(path)
    while True:
        if selectors and path[i] == "[":
            selector, i = _parse_selector(path, i)
            segments.append(selector)
        else:
            key, i = _parse_key(path, i, selectors)
            segments.append(key)
        while selectors and i < n and path[i] == "[":
            selector, i = _parse_selector(path, i)
            segments.append(selector)
        if i == n:
            return tuple(segments)
        if path[i] != ".":
            raise PathError(path, f"expected '.' at column {i + 1}, got {path[i]!r}")
        i += 1
        if i == n:
            raise PathError(path, "the path ends with '.'")


def _parse_key(path: str, i: int, selectors: bool) -> tuple[str, int]:
    start, chars = i, []
    while i < len(path) and path[i] != "." and not (selectors and path[i] in "[]"):
        char = path[i]
        if char == "\\":
            if i + 1 == len(path):
                raise PathError(path, "the path ends with a lone '\\'")
            i += 1
            char = path[i]
        elif char in _UNSUPPORTED or (char == "@" and i == start):
            raise PathError(
                path,
                f"{char!r} at column {i + 1}: gjson wildcards, queries and modifiers are not "
                f"supported (write '\\{char}' for a literal {char!r})",
            )
        chars.append(char)
        i += 1
    if i < len(path) and path[i] == "]":
        raise PathError(path, f"unexpected ']' at column {i + 1}")
    if i == start:
        raise PathError(path, f"empty key at column {i + 1}")
    return "".join(chars), i


def _parse_selector(path: str, i: int) -> tuple[_Select, int]:
    close = path.find("]", i)
    quote = path.find('"', i, close if close >= 0 else len(path))
    if quote >= 0:  # a quoted value may hold '.' and ']'
        end = path.find('"]', quote + 1)
        close = end + 1 if end >= 0 else -1
    if close < 0:
        raise PathError(path, f"unclosed '[' at column {i + 1}")
    body = path[i + 1 : close]
    field, eq, value = body.partition("=")
    field, value = field.strip(), value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not eq or not field or not value or '"' in value:
        raise PathError(path, f"bad selector '[{body}]' at column {i + 1}: expected [field=value]")
    return _Select(field, value), close + 1


def _shown(segments: tuple[_Segment, ...]) -> str:
    text = ".".join(str(s).replace(".", "\\.") if isinstance(s, str) else str(s) for s in segments)
    return text or "the document"


def _kind(value: Any) -> str:
    match value:
        case dict():
            return "a mapping"
        case list():
            return "a list"
        case str():
            return "a string"
        case bool():
            return "a bool"
        case int() | float():
            return "a number"
        case None:
            return "null"
        case _:
            return type(value).__name__


def _locate(doc: Any, dest: str, *, create: bool) -> tuple[Any, Any]:
    """The container and slot (key, index or `_APPEND`) that `dest` names; raises `PathError`.

    `create` makes the one thing that may be created on the way: the list of a final `key.-1`.
    """
    segments = _parse(dest, selectors=True)
    if not segments:
        raise PathError(dest, "empty dest")
    current = doc
    for depth, segment in enumerate(segments):
        if segments[depth + 1 :] == ("-1",) and isinstance(current, dict) and segment not in current:
            if not create:
                return [], _APPEND
            current[segment] = []
        where = _shown(segments[:depth])
        slot = _slot(current, segment, where, dest, last=depth == len(segments) - 1)
        if depth == len(segments) - 1:
            return current, slot
        current = current[slot]
    raise AssertionError("unreachable")


def _slot(container: Any, segment: _Segment, where: str, dest: str, *, last: bool) -> Any:
    if isinstance(segment, _Select):
        return _select(container, segment, where, dest)
    if isinstance(container, dict):
        if segment in container or last:
            return segment
        raise PathError(dest, f"{segment!r} not found in {where}{_keys_hint(container, segment)}")
    if isinstance(container, list):
        if last and segment == "-1":
            return _APPEND
        if not (segment.isascii() and segment.isdigit()):
            raise PathError(
                dest, f"{where} is a list: {segment!r} is not an index (use a number or [field=value])"
            )
        index, length = int(segment), len(container)
        if index < length:
            return index
        if last and index == length:
            return _APPEND
        hint = f"; -1 or {length} appends" if last else ""
        raise PathError(dest, f"index {index} is out of range for {where} (length {length}{hint})")
    raise PathError(dest, f"cannot look up {segment!r} in {where}: it is {_kind(container)}")


def _keys_hint(mapping: dict[Any, Any], key: str) -> str:
    if not mapping:
        return " (it is empty)"
    keys = [str(k) for k in mapping]
    close = difflib.get_close_matches(key, keys, n=1)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return f" (keys: {', '.join(keys)}){guess}"


def _select(container: Any, sel: _Select, where: str, dest: str) -> int:
    if not isinstance(container, list):
        raise PathError(dest, f"{sel} selects from a list, but {where} is {_kind(container)}")
    hits = [
        i
        for i, item in enumerate(container)
        if isinstance(item, dict) and sel.field in item and to_text(item[sel.field]) == sel.value
    ]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise PathError(dest, f"{len(hits)} elements of {where} match {sel}; use an index")
    names = [to_text(i[sel.field]) for i in container if isinstance(i, dict) and sel.field in i]
    have = f"{sel.field}s: {', '.join(names)}" if names else f"no element has a {sel.field!r} field"
    raise PathError(dest, f"no element of {where} matches {sel} ({have})")


def _read_slot(container: Any, slot: Any) -> Any:
    if slot is _APPEND:
        return MISSING
    if isinstance(container, dict):
        return container.get(slot, MISSING)
    return container[slot]

"""The JSONPath subset behind Argo's ``jsonpath(jsonString, '$.a.b')`` expression function.

Argo uses github.com/evilmonkeyinc/jsonpath: a path that can match one value returns that value,
a path with a wildcard, slice, union, filter or ``..`` returns a list. Supported: ``$``, ``.name``,
``['name']``, ``[n]`` (negative from the end), ``[*]``/``.*``, ``[a:b:c]``, unions ``[0,2]`` /
``['a','b']``, recursive ``..name``, and filters ``[?(@.age > 42 && @.name == "Bo")]`` whose
condition is evaluated as an expr-lang expression with ``@`` (the element) and ``$`` (the root).
Numbers decode as float64, as in Go. Errors are ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from workflows.expressions.errors import ExpressionError
from workflows.expressions.expr import CompiledExpr, compile_expr
from workflows.expressions.gofmt import json_loads

__all__ = ["jsonpath", "query"]

_NAME = re.compile(r"[^.\[\]\s]+")
_SLICE = re.compile(r"\s*(-?\d*)\s*:\s*(-?\d*)\s*(?::\s*(-?\d*)\s*)?")


@dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # "name", "index", "wildcard", "slice", "filter"
    args: tuple[object, ...]
    recursive: bool

    @property
    def definite(self) -> bool:
        return not self.recursive and self.kind in ("name", "index") and len(self.args) == 1


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _closing(path: str, start: int) -> int:
    """Index of the ``]`` closing the bracket opened at ``start``."""
    depth, quote = 0, ""
    for i in range(start, len(path)):
        char = path[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"jsonpath {path!r}: unclosed '['")


def _filter(condition: str) -> CompiledExpr:
    translated, quote = [], ""
    for char in condition:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "@$":
            char = "__at__" if char == "@" else "__root__"
        translated.append(char)
    return compile_expr("".join(translated))


def _bracket(body: str, recursive: bool, path: str) -> _Step:
    body = body.strip()
    if body == "*":
        return _Step("wildcard", (), recursive)
    if body.startswith("?(") and body.endswith(")"):
        try:
            return _Step("filter", (_filter(body[2:-1]),), recursive)
        except ExpressionError as exc:
            raise ValueError(f"jsonpath {path!r}: invalid filter: {exc.reason}") from None
    if match := _SLICE.fullmatch(body):
        bounds = tuple(int(g) if g else None for g in match.groups())
        return _Step("slice", bounds, recursive)
    keys: list[object] = []
    for part in (p.strip() for p in _split_top(body, ",")):
        if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
            keys.append(part[1:-1])
        elif re.fullmatch(r"-?\d+", part):
            keys.append(int(part))
        else:
            raise ValueError(f"jsonpath {path!r}: invalid subscript {part!r}")
    return _Step("name" if isinstance(keys[0], str) else "index", tuple(keys), recursive)


def _parse(path: str) -> list[_Step]:
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"jsonpath {path!r}: must start with '$'")
    steps, pos = [], 1
    while pos < len(text):
        recursive = text.startswith("..", pos)
        pos += 2 if recursive else (1 if text[pos] == "." else 0)
        if pos < len(text) and text[pos] == "[":
            end = _closing(text, pos)
            steps.append(_bracket(text[pos + 1 : end], recursive, path))
            pos = end + 1
        elif pos < len(text) and text[pos] == "*":
            steps.append(_Step("wildcard", (), recursive))
            pos += 1
        elif match := _NAME.match(text, pos):
            steps.append(_Step("name", (match.group(0),), recursive))
            pos = match.end()
        else:
            raise ValueError(f"jsonpath {path!r}: unexpected character at {pos}")
    return steps


def _children(node: object) -> list[object]:
    if isinstance(node, Mapping):
        return [node[k] for k in sorted(node)]
    return list(node) if isinstance(node, list) else []


def _descendants(node: object) -> Iterator[object]:
    yield node
    for child in _children(node):
        yield from _descendants(child)


def _matches(test: CompiledExpr, element: object, root: object) -> bool:
    try:
        result = test.evaluate({"__at__": element, "__root__": root})
    except ExpressionError:
        return False  # a missing field or a type mismatch simply does not match
    return result is not None and result is not False


def _apply(step: _Step, node: object, root: object, strict: bool) -> list[object]:
    match step.kind:
        case "name":
            if not isinstance(node, Mapping):
                return _missing(strict, f"cannot read key {step.args[0]!r} of a non-object")
            found = [node[k] for k in step.args if k in node]
            return found if found or not strict else _missing(strict, f"key {step.args[0]!r} not found")
        case "index":
            if not isinstance(node, list):
                return _missing(strict, "cannot index a non-array")
            picked = [node[i] for i in step.args if isinstance(i, int) and -len(node) <= i < len(node)]
            return picked if picked or not strict else _missing(strict, f"index {step.args[0]} out of range")
        case "wildcard":
            return _children(node)
        case "slice":
            start, stop, stride = (b if isinstance(b, int) else None for b in (*step.args, None, None)[:3])
            return node[slice(start, stop, stride)] if isinstance(node, list) else []
        case "filter":
            test = step.args[0]
            if not isinstance(test, CompiledExpr):  # built by _bracket
                raise TypeError("bad filter step")
            return [child for child in _children(node) if _matches(test, child, root)]
        case _:
            raise ValueError(f"unknown step {step.kind}")


def _missing(strict: bool, reason: str) -> list[object]:
    if strict:
        raise ValueError(reason)
    return []


def query(document: object, path: str) -> object:
    """Apply ``path`` to an already-decoded document."""
    steps = _parse(path)
    definite = all(step.definite for step in steps)
    nodes = [document]
    for step in steps:
        sources = [d for n in nodes for d in _descendants(n)] if step.recursive else nodes
        nodes = [found for n in sources for found in _apply(step, n, document, definite)]
    return nodes[0] if definite else nodes


def jsonpath(json_text: str, path: str) -> object:
    """Argo's ``jsonpath(jsonString, path)``: decode the JSON text, then query it."""
    if not isinstance(json_text, str):
        raise TypeError(f"jsonpath: expected a JSON string, got {type(json_text).__name__}")
    return query(json_loads(json_text), path)

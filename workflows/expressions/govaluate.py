"""Argo's ``when:`` conditions: govaluate (github.com/Knetic/govaluate) applied after ``{{...}}``
substitution, with every bare word turned into a string (so ``heads == heads`` is true).

Supported: numbers (decimal, ``0x`` hex; compared numerically), quoted strings ('…' or "…",
backslash escapes the next character), ``[escaped name]``, ``true``/``false``, bare words,
``== != < > <= >= =~ !~ in``, ``&& || !``, ``+ - * / % **``, ``& | ^ << >> ~``, ``?:``, ``??``,
parentheses and ``(a, b)`` lists for ``in``. Equality is strict in type (``1 == "1"`` is false);
``<``/``>`` need two numbers or two strings; ``+`` with a string concatenates.

Deliberate differences from govaluate: a bare word may contain ``-`` and ``.`` after its first
character (``my-value``, ``1.2.3``, ``v1.2-rc``) and is a string unless it is a plain number
(govaluate rejects these or reads ``a-b`` as a subtraction, and Argo then fails the node).
Quoted strings that look like dates stay strings (govaluate turns them into timestamps).
Regexes use Python's engine (RE2 syntax is mostly a subset).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from workflows.expressions.errors import EvaluationError, ExpressionSyntaxError
from workflows.expressions.expr_ops import regex
from workflows.expressions.gofmt import go_sprint
from workflows.expressions.govaluate_lexer import tokenize

__all__ = ["evaluate_when"]

# binary operators grouped by precedence, loosest first, in the order govaluate's planner uses
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("==", "!=", "<", ">", "<=", ">=", "=~", "!~", "in"),
    ("&", "|", "^"),
    ("<<", ">>"),
    ("+", "-"),
    ("*", "/", "%"),
    ("**",),
)

_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


Thunk = Callable[[], object]


class _Parser:
    """Recursive descent that evaluates as it goes; ``&&``/``||``/``?:`` evaluate lazily via thunks."""

    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.index = text, tokenize(text), 0

    def peek_op(self, *ops: str) -> str | None:
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            if token.kind == "op" and token.value in ops:
                return str(token.value)
        return None

    def fail(self, reason: str | None = None) -> ExpressionSyntaxError:
        if self.index >= len(self.tokens):
            return ExpressionSyntaxError(self.text, reason or "unexpected end", position=len(self.text))
        token = self.tokens[self.index]
        shown = token.value if token.kind == "op" else go_sprint(token.value)
        return ExpressionSyntaxError(self.text, reason or f"unexpected token {shown!r}", position=token.pos)

    def parse(self) -> Thunk:
        if not self.tokens:
            raise self.fail("empty expression")
        node = self.ternary()
        if self.index < len(self.tokens):
            raise self.fail()
        return node

    def ternary(self) -> Thunk:
        node = self.binary(0)
        while op := self.peek_op("?", "??"):
            pos = self.tokens[self.index].pos
            self.index += 1
            if op == "??":
                right = self.binary(0)
                node = _coalesce(node, right)
                continue
            then = self.ternary()
            if not self.peek_op(":"):
                raise self.fail("expected ':'")
            self.index += 1
            node = _conditional(self.text, pos, node, then, self.ternary())
        return node

    def binary(self, level: int) -> Thunk:
        if level == len(_LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while op := self.peek_op(*_LEVELS[level]):
            pos = self.tokens[self.index].pos
            self.index += 1
            node = _apply(self.text, op, pos, node, self.binary(level + 1))
        return node

    def unary(self) -> Thunk:
        if op := self.peek_op("!", "-", "~"):
            pos = self.tokens[self.index].pos
            self.index += 1
            operand = self.unary()
            return lambda: _prefix(self.text, op, pos, operand())
        return self.primary()

    def primary(self) -> Thunk:
        if self.index >= len(self.tokens):
            raise self.fail()
        token = self.tokens[self.index]
        if token.kind == "value":
            self.index += 1
            return lambda: token.value
        if token.value != "(":
            raise self.fail()
        self.index += 1
        items = [self.ternary()]
        while self.peek_op(","):
            self.index += 1
            items.append(self.ternary())
        if not self.peek_op(")"):
            raise self.fail("expected ')'")
        self.index += 1
        if len(items) == 1:
            return items[0]
        return lambda: [item() for item in items]


def _type_error(text: str, pos: int, op: str, value: object, wanted: str) -> EvaluationError:
    return EvaluationError(
        text, f"value {go_sprint(value)!r} cannot be used with {op!r}, it is not {wanted}", position=pos
    )


def _numbers(text: str, pos: int, op: str, *values: object) -> list[float]:
    numbers = [v for v in values if isinstance(v, float)]
    if len(numbers) != len(values):
        raise _type_error(text, pos, op, next(v for v in values if not isinstance(v, float)), "a number")
    return numbers


def _prefix(text: str, op: str, pos: int, value: object) -> object:
    if op == "!":
        if not isinstance(value, bool):
            raise _type_error(text, pos, op, value, "a boolean")
        return not value
    (number,) = _numbers(text, pos, op, value)
    return -number if op == "-" else float(~int(number))


def _apply(text: str, op: str, pos: int, left: Thunk, right: Thunk) -> Thunk:
    if op in ("&&", "||"):

        def logical() -> object:
            first = left()
            if not isinstance(first, bool):
                raise _type_error(text, pos, op, first, "a boolean")
            if first is (op == "||"):
                return first
            second = right()
            if not isinstance(second, bool):
                raise _type_error(text, pos, op, second, "a boolean")
            return second

        return logical
    return lambda: _binary(text, op, pos, left(), right())


def _binary(text: str, op: str, pos: int, a: object, b: object) -> object:
    match op:
        case "==":
            return type(a) is type(b) and a == b
        case "!=":
            return not (type(a) is type(b) and a == b)
        case "<" | ">" | "<=" | ">=":
            if not (isinstance(a, str) and isinstance(b, str)):
                a, b = _numbers(text, pos, op, a, b)
            return bool(_ORDER[op](a, b))
        case "=~" | "!~":
            if not isinstance(a, str) or not isinstance(b, str):
                raise _type_error(text, pos, op, b if isinstance(a, str) else a, "a string")
            try:
                found = regex(b).search(a) is not None
            except ValueError as exc:
                raise EvaluationError(text, str(exc), position=pos) from None
            return found if op == "=~" else not found
        case "in":
            if not isinstance(b, list):
                raise _type_error(text, pos, op, b, "an array")
            return any(type(a) is type(item) and a == item for item in b)
        case "+" if isinstance(a, str) or isinstance(b, str):
            return go_sprint(a) + go_sprint(b)
        case _:
            x, y = _numbers(text, pos, op, a, b)
            return _arithmetic(op, x, y)


def _arithmetic(op: str, x: float, y: float) -> float:
    match op:
        case "+" | "-" | "*":
            return x + y if op == "+" else (x - y if op == "-" else x * y)
        case "/":
            return x / y if y else (math.nan if x == 0 else math.copysign(math.inf, x))
        case "%":
            return math.fmod(x, y) if y else math.nan
        case "**":
            return math.pow(x, y)
        case "&" | "|" | "^":
            i, j = int(x), int(y)
            return float(i & j if op == "&" else (i | j if op == "|" else i ^ j))
        case "<<" | ">>":
            return float(int(x) << int(y) if op == "<<" else int(x) >> int(y))
        case _:
            raise ValueError(f"unknown operator {op!r}")


def _conditional(text: str, pos: int, cond: Thunk, then: Thunk, otherwise: Thunk) -> Thunk:
    def choose() -> object:
        test = cond()
        if not isinstance(test, bool):
            raise _type_error(text, pos, "?", test, "a boolean")
        return then() if test else otherwise()

    return choose


def _coalesce(left: Thunk, right: Thunk) -> Thunk:
    return lambda: value if (value := left()) is not None else right()


def evaluate_when(text: str) -> bool:
    """Evaluate an already-substituted ``when`` condition. An empty condition is true.

    Raises ``ExpressionSyntaxError`` (with position) when malformed and ``EvaluationError`` on a
    type mismatch or a non-boolean result; Argo fails the node in both cases.
    """
    if not text.strip():
        return True
    result = _Parser(text).parse()()
    if not isinstance(result, bool):
        raise EvaluationError(text, f"expected a boolean result, got {go_sprint(result)!r}")
    return result

"""Pratt parser for the expr-lang subset Argo uses, with expr-lang's own precedence table.

Precedence (low to high): ``?:`` and ``|`` (pipe) < ``or ||`` < ``and &&`` < comparisons, ``in``,
``matches``, ``contains``, ``startsWith``, ``endsWith`` < ``..`` < ``+ -`` < ``* / %`` < unary ``not !``
(50) < unary ``- +`` (90) < ``** ^`` (right-associative) < ``??``. As in expr-lang, the second
argument of predicate builtins (``filter(xs, {# > 1})``) is a closure, never a map literal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from workflows.expressions.errors import ExpressionSyntaxError
from workflows.expressions.expr_ast import (
    Array,
    Binary,
    Call,
    Closure,
    Conditional,
    Ident,
    Let,
    Literal,
    Map,
    Member,
    Node,
    Pointer,
    Slice,
    Unary,
)
from workflows.expressions.expr_lexer import Kind, Token, tokenize

__all__ = ["PREDICATE_BUILTINS", "parse"]

_COMPARISON = ("==", "!=", "<", ">", ">=", "<=", "in", "matches", "contains", "startsWith", "endsWith")
_BINARY: dict[str, tuple[int, bool]] = {"or": (10, False), "||": (10, False), "and": (15, False)}
_BINARY.update({"&&": (15, False), "..": (25, False), "+": (30, False), "-": (30, False)})
_BINARY.update({op: (20, False) for op in _COMPARISON})
_BINARY.update({"*": (60, False), "/": (60, False), "%": (60, False), "**": (100, True), "^": (100, True)})
_BINARY["??"] = (500, False)
_NEGATABLE = ("in", "matches", "contains", "startsWith", "endsWith")
_UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
_WORD_OPERATORS = frozenset({"or", "and", "not", *_NEGATABLE})
_CONSTANTS: dict[str, object] = {"true": True, "false": False, "nil": None}

_T = TypeVar("_T")

PREDICATE_BUILTINS = frozenset(
    {"all", "none", "any", "one", "filter", "map", "find", "findIndex", "findLast", "findLastIndex"}
    | {"count", "sum", "groupBy", "sortBy", "reduce"}
)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def fail(self, token: Token, expected: str | None = None) -> ExpressionSyntaxError:
        found = "end" if token.kind is Kind.EOF else f"token {token.text!r}"
        reason = f"unexpected {found}" + (f", expected {expected}" if expected else "")
        return ExpressionSyntaxError(self.source, reason, position=token.pos)

    def is_op(self, text: str, offset: int = 0) -> bool:
        token = self.tokens[min(self.index + offset, len(self.tokens) - 1)]
        return token.kind is Kind.OP and token.text == text

    def expect(self, text: str) -> Token:
        if not self.is_op(text):
            raise self.fail(self.peek, repr(text))
        return self.advance()

    def binary_operator(self) -> tuple[str, int] | None:
        """The operator at the cursor and how many tokens it spans ("not in" spans two)."""
        token = self.peek
        if token.kind is Kind.OP and token.text in _BINARY:
            return token.text, 1
        if token.kind is Kind.IDENT and token.text in _BINARY:
            return token.text, 1
        following = self.tokens[min(self.index + 1, len(self.tokens) - 1)]
        if token.text == "not" and token.kind is Kind.IDENT and following.text in _NEGATABLE:
            return f"not {following.text}", 2
        return None

    def expression(self, precedence: int = 0) -> Node:
        if precedence == 0 and self.peek.kind is Kind.IDENT and self.peek.text == "let":
            return self.let()
        left = self.unary()
        while True:
            if self.is_op("|") and precedence == 0:
                left = self.pipe(left)
                continue
            found = self.binary_operator()
            if found is None:
                break
            op, width = found
            level, right_assoc = _BINARY[op.removeprefix("not ")]
            if level < precedence:
                break
            token = self.advance()
            if width == 2:
                self.advance()
            right = self.expression(level if right_assoc else level + 1)
            left = Binary(op, left, right, token.pos)
        return self.conditional(left) if precedence == 0 else left

    def conditional(self, node: Node) -> Node:
        while self.is_op("?"):
            pos = self.advance().pos
            if self.is_op(":"):
                self.advance()
                node = Conditional(node, node, self.expression(), pos)
                continue
            then = self.expression()
            self.expect(":")
            node = Conditional(node, then, self.expression(), pos)
        return node

    def pipe(self, left: Node) -> Node:
        pos = self.advance().pos
        name = self.peek
        if name.kind is not Kind.IDENT:
            raise self.fail(name, "a function call after '|'")
        self.advance()
        args = self.call_args(name.text, first=1)
        return Call(Ident(name.text, name.pos), (left, *args), pos)

    def let(self) -> Node:
        pos = self.advance().pos
        name = self.advance()
        if name.kind is not Kind.IDENT or name.text in _CONSTANTS:
            raise self.fail(name, "a variable name")
        self.expect("=")
        value = self.expression()
        self.expect(";")
        return Let(name.text, value, self.expression(), pos)

    def unary(self) -> Node:
        token = self.peek
        is_op = token.kind is Kind.OP and token.text in ("-", "+", "!")
        if is_op or (token.kind is Kind.IDENT and token.text == "not"):
            self.advance()
            operand = self.expression(_UNARY[token.text])
            value = operand.value if isinstance(operand, Literal) else None
            if token.text == "-" and isinstance(value, int | float) and not isinstance(value, bool):
                return self.postfix(Literal(-value, token.pos))
            return self.postfix(Unary(token.text, operand, token.pos))
        return self.postfix(self.primary())

    def primary(self) -> Node:
        token = self.advance()
        match token.kind:
            case Kind.NUMBER | Kind.STRING:
                return Literal(token.value, token.pos)
            case Kind.POINTER:
                return Pointer(token.text[1:], token.pos)
            case Kind.IDENT if token.text in _CONSTANTS:
                return Literal(_CONSTANTS[token.text], token.pos)
            case Kind.IDENT if token.text in _WORD_OPERATORS:
                raise self.fail(token)
            case Kind.IDENT if self.is_op("("):
                args = self.call_args(token.text, first=0)
                return Call(Ident(token.text, token.pos), args, token.pos)
            case Kind.IDENT:
                return Ident(token.text, token.pos)
            case Kind.OP if token.text == "(":
                inner = self.expression()
                self.expect(")")
                return inner
            case Kind.OP if token.text == "[":
                return Array(tuple(self.sequence("]", self.expression)), token.pos)
            case Kind.OP if token.text == "{":
                return Map(tuple(self.sequence("}", self.map_entry)), token.pos)
            case Kind.OP if token.text == "." and self.peek.kind is Kind.IDENT:
                name = self.advance()
                return Member(Pointer("", token.pos), Literal(name.text, name.pos), False, token.pos)
            case _:
                raise self.fail(token)

    def sequence(self, close: str, item: Callable[[], _T]) -> list[_T]:
        items: list[_T] = []
        while not self.is_op(close):
            items.append(item())
            if not self.is_op(","):
                break
            self.advance()
        self.expect(close)
        return items

    def map_entry(self) -> tuple[Node, Node]:
        token = self.peek
        if token.kind is Kind.IDENT:
            self.advance()
            key: Node = Literal(token.text, token.pos)
        elif token.kind in (Kind.STRING, Kind.NUMBER):
            self.advance()
            key = Literal(token.value, token.pos)
        elif self.is_op("("):
            self.advance()
            key = self.expression()
            self.expect(")")
        else:
            raise self.fail(token, "a map key")
        self.expect(":")
        return key, self.expression()

    def call_args(self, name: str, *, first: int) -> tuple[Node, ...]:
        self.expect("(")
        position = first

        def argument() -> Node:
            nonlocal position
            position += 1
            return self.closure() if name in PREDICATE_BUILTINS and position == 2 else self.expression()

        return tuple(self.sequence(")", argument))

    def closure(self) -> Node:
        if not self.is_op("{"):
            pos = self.peek.pos
            return Closure(self.expression(), pos)
        pos = self.advance().pos
        body = self.expression()
        self.expect("}")
        return Closure(body, pos)

    def postfix(self, node: Node) -> Node:
        while True:
            token = self.peek
            if self.is_op(".") or (self.is_op("?.") and not self.is_op("[", 1)):
                self.advance()
                name = self.advance()
                if name.kind is not Kind.IDENT:
                    raise self.fail(name, "a field name")
                node = Member(node, Literal(name.text, name.pos), token.text == "?.", token.pos)
                if token.text == "." and self.is_op("("):
                    node = Call(node, self.call_args(name.text, first=0), name.pos)
            elif self.is_op("[") or self.is_op("?."):
                optional = self.advance().text == "?."
                if optional:
                    self.expect("[")
                node = self.subscript(node, optional, token.pos)
            else:
                return node

    def subscript(self, node: Node, optional: bool, pos: int) -> Node:
        low = None if self.is_op(":") else self.expression()
        if self.is_op(":"):
            self.advance()
            high = None if self.is_op("]") else self.expression()
            self.expect("]")
            return Slice(node, low, high, pos)
        self.expect("]")
        if low is None:  # unreachable: "[" ":" always takes the slice branch
            raise self.fail(self.peek)
        return Member(node, low, optional, pos)


def parse(source: str) -> Node:
    """Parse ``source`` into a syntax tree. Raises ``ExpressionSyntaxError`` with a position."""
    parser = _Parser(source)
    if parser.peek.kind is Kind.EOF:
        raise ExpressionSyntaxError(source, "empty expression", position=0)
    node = parser.expression()
    tail = parser.peek
    if tail.kind is not Kind.EOF:
        raise parser.fail(tail)
    return node

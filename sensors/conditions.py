"""A trigger's ``conditions``: a boolean over dependency names, parsed once when the sensor loads.

Grammar, from loosest to tightest binding (so ``!`` > ``&&`` > ``||``, all left-associative)::

    condition := and ("||" and)*
    and       := not ("&&" not)*
    not       := "!" not | "(" condition ")" | NAME
    NAME      := [A-Za-z0-9_.-]+          (must be one of the sensor's dependencies)

Argo rewrites the string into a govaluate expression, so a dash in a name needs escaping there; here
``dep-01 && dep.02`` is read as written. The words ``and``, ``or`` and ``not`` are not operators: unless a
dependency has that name, they are rejected with a hint to write ``&&``, ``||`` or ``!``.

Errors carry a 1-based ``column``: the character offset into the source plus one (a newline in a
multi-line YAML scalar counts as one character). The sensor loader adds the YAML path
(``spec.triggers[0].template.conditions``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import NoReturn, assert_never

__all__ = ["Condition", "ConditionError", "all_of", "parse_condition"]

_KEYWORDS = {"and": "&&", "or": "||", "not": "!"}
_MAX_DEPTH = 64  # nested "(" and "!": far beyond any real condition, well within Python's recursion limit
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z0-9_.-]+)|(?P<op>&&|\|\||!|\(|\))|(?P<bad>\S))")


class ConditionError(ValueError):
    """A ``conditions`` string cannot be parsed, or names something that is not a dependency.

    Raised when the sensor loads, so a typo never reaches the event path. ``column`` is 1-based and
    points at the offending token (one past the end for a condition that stops too early).
    """

    def __init__(self, source: str, column: int, message: str) -> None:
        self.source = source
        self.column = column
        self.message = message
        super().__init__(f"{column}: {message}")


@dataclass(frozen=True, slots=True)
class _Name:
    name: str


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _And:
    operands: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Or:
    operands: tuple[_Node, ...]


_Node = _Name | _Not | _And | _Or


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed ``conditions`` expression: which dependencies it reads and when it is true.

    Build one with :func:`parse_condition` or :func:`all_of`. ``evaluate`` takes the set of dependency
    names that currently have an event (for a stateless condition, just the one that arrived).
    """

    source: str
    names: frozenset[str]
    _tree: _Node = field(repr=False)

    def evaluate(self, present: AbstractSet[str]) -> bool:
        return _evaluate(self._tree, present)

    def stateless(self) -> bool:
        """True for a pure OR of names (``a``, ``a || b``): every event that passes its filters fires
        the trigger at once, so nothing is stored between events.

        The check is structural and conservative: ``a && a`` counts as stateful although it means ``a``.
        Keeping state is always correct, only slower. Argo's test is "no ``&`` in the string", which
        also calls ``!a`` stateless; here ``!`` makes a condition stateful.
        """
        return _stateless(self._tree)

    def satisfied_by(self, present: AbstractSet[str]) -> frozenset[str]:
        """The dependencies whose events go to the trigger when ``present`` makes the condition true.

        That is every present dependency the condition references, not a minimal subset: with
        ``a || b`` and both events held, both are passed on, as Argo passes every held event, so a
        parameter that reads either one resolves. Present dependencies the condition does not mention
        are left out. Raises ``ValueError`` if ``present`` does not make the condition true.
        """
        if not self.evaluate(present):
            raise ValueError(f"condition {self.source!r} is not satisfied by {sorted(present)}")
        return self.names.intersection(present)

    def __str__(self) -> str:
        return self.source


def parse_condition(source: str, dependencies: Sequence[str]) -> Condition:
    """Parse ``source``; every name in it must be one of ``dependencies``."""
    tree = _Parser(source, dependencies).parse()
    return Condition(source=source, names=frozenset(_names(tree)), _tree=tree)


def all_of(dependencies: Sequence[str]) -> Condition:
    """The default when a trigger sets no ``conditions``: every dependency must have an event."""
    unique = list(dict.fromkeys(dependencies))
    if not unique:
        raise ConditionError("", 1, "no dependencies: a trigger needs at least one to wait for")
    names: tuple[_Node, ...] = tuple(_Name(name) for name in unique)
    tree = names[0] if len(names) == 1 else _And(names)
    return Condition(source=" && ".join(unique), names=frozenset(unique), _tree=tree)


def _evaluate(node: _Node, present: AbstractSet[str]) -> bool:
    match node:
        case _Name(name):
            return name in present
        case _Not(operand):
            return not _evaluate(operand, present)
        case _And(operands):
            return all(_evaluate(op, present) for op in operands)
        case _Or(operands):
            return any(_evaluate(op, present) for op in operands)
        case _:
            assert_never(node)


def _stateless(node: _Node) -> bool:
    match node:
        case _Name():
            return True
        case _Or(operands):
            return all(_stateless(op) for op in operands)
        case _Not() | _And():
            return False
        case _:
            assert_never(node)


def _names(node: _Node) -> set[str]:
    match node:
        case _Name(name):
            return {name}
        case _Not(operand):
            return _names(operand)
        case _And(operands) | _Or(operands):
            return set().union(*(_names(op) for op in operands))
        case _:
            assert_never(node)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "name", "op", "bad" or "end"
    text: str
    column: int


def _tokenize(source: str) -> list[_Token]:
    tokens = []
    pos = 0
    while (match := _TOKEN.match(source, pos)) is not None:
        kind = str(match.lastgroup)
        tokens.append(_Token(kind, match[kind], match.start(kind) + 1))
        if kind == "bad":
            break  # the parser reports it when it gets there, after any earlier error
        pos = match.end()
    if not tokens or tokens[-1].kind != "bad":
        tokens.append(_Token("end", "", len(source.rstrip()) + 1))
    return tokens


def _describe(token: _Token) -> str:
    return "end of condition" if token.kind == "end" else repr(token.text)


class _Parser:
    def __init__(self, source: str, dependencies: Sequence[str]) -> None:
        self.source = source
        self.dependencies = list(dict.fromkeys(dependencies))
        self.known = frozenset(self.dependencies)
        self.tokens = _tokenize(source)
        self.pos = 0
        self.depth = 0

    def parse(self) -> _Node:
        if not self.source.strip():
            self.fail(1, "empty condition; omit conditions to wait for all dependencies")
        tree = self.parse_or()
        token = self.peek()
        if token.text == ")":
            self.fail(token.column, "unmatched ')'")
        if token.kind != "end":
            self.fail_operator(token, "expected '&&' or '||'")
        return tree

    def parse_or(self) -> _Node:
        operands = [self.parse_and()]
        while self.peek().text == "||":
            self.pos += 1
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else _Or(tuple(operands))

    def parse_and(self) -> _Node:
        operands = [self.parse_not()]
        while self.peek().text == "&&":
            self.pos += 1
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else _And(tuple(operands))

    def parse_not(self) -> _Node:
        token = self.peek()
        self.pos += 1
        if token.text in ("!", "("):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                self.fail(token.column, f"nested more than {_MAX_DEPTH} levels deep")
            try:
                return self.parse_group(token)
            finally:
                self.depth -= 1
        if token.kind == "name":
            if token.text not in self.known:
                self.fail(token.column, self.unknown(token.text))
            return _Name(token.text)
        self.fail(token.column, f"expected a dependency name, found {_describe(token)}")

    def parse_group(self, opener: _Token) -> _Node:
        """What follows a ``!`` or a ``(``."""
        if opener.text == "!":
            return _Not(self.parse_not())
        inner = self.parse_or()
        close = self.peek()
        if close.text != ")":
            self.fail_operator(
                close, f"expected '&&', '||' or ')' to close the '(' at column {opener.column}"
            )
        self.pos += 1
        return inner

    def peek(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind == "bad":
            pair = {"&": "&&", "|": "||"}.get(token.text)
            message = (
                f"a single {token.text!r}, write {pair!r}" if pair else f"unexpected character {token.text!r}"
            )
            self.fail(token.column, message)
        return token

    def fail_operator(self, token: _Token, expected: str) -> NoReturn:
        """A token where an operator (or the end) belongs: a name, usually a keyword typed for one."""
        if token.kind == "name" and token.text.lower() in _KEYWORDS and token.text not in self.known:
            self.fail(token.column, _keyword_hint(token.text))
        self.fail(token.column, f"{expected}, found {_describe(token)}")

    def unknown(self, name: str) -> str:
        if name.lower() in _KEYWORDS:
            return _keyword_hint(name)
        listed = ", ".join(self.dependencies) if self.dependencies else "none declared"
        return f"unknown dependency {name!r} (dependencies: {listed})"

    def fail(self, column: int, message: str) -> NoReturn:
        raise ConditionError(self.source, column, message)


def _keyword_hint(word: str) -> str:
    return f"{word!r} is not accepted as an operator, write {_KEYWORDS[word.lower()]!r}"

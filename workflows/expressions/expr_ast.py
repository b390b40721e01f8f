"""Immutable syntax tree for expr-lang expressions.

Every node records ``pos``, the offset of the token that introduced it, so evaluation errors
point at the operator or name that failed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Array",
    "Binary",
    "Call",
    "Closure",
    "Conditional",
    "Ident",
    "Let",
    "Literal",
    "Map",
    "Member",
    "Node",
    "Pointer",
    "Slice",
    "Unary",
]


@dataclass(frozen=True, slots=True)
class Literal:
    """A number, string, boolean or ``nil``."""

    value: object
    pos: int


@dataclass(frozen=True, slots=True)
class Ident:
    """A variable (or, as a callee, a function) looked up in the environment."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Pointer:
    """``#`` (current element), ``#index`` or ``#acc`` inside a predicate closure."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Member:
    """``obj.name``, ``obj[expr]``, ``obj?.name``; ``optional`` yields nil instead of failing on nil."""

    obj: Node
    key: Node
    optional: bool
    pos: int


@dataclass(frozen=True, slots=True)
class Slice:
    """``obj[low:high]`` with either bound optional."""

    obj: Node
    low: Node | None
    high: Node | None
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """A call: ``name(args)`` (builtin or environment function) or ``obj.method(args)``."""

    callee: Node
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Closure:
    """A predicate body such as ``{# > 1}``, evaluated once per element."""

    body: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Unary:
    """``-x``, ``+x``, ``!x``, ``not x``."""

    op: str
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic, comparison, logical, membership and string operators (``not in`` is ``op="not in"``)."""

    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Conditional:
    """``cond ? then : otherwise``."""

    cond: Node
    then: Node
    otherwise: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Array:
    """``[a, b, c]``."""

    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Map:
    """``{key: value, "k-2": value}``; keys are expressions (identifier keys become string literals)."""

    entries: tuple[tuple[Node, Node], ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Let:
    """``let name = value; body``."""

    name: str
    value: Node
    body: Node
    pos: int


Node = (
    Literal
    | Ident
    | Pointer
    | Member
    | Slice
    | Call
    | Closure
    | Unary
    | Binary
    | Conditional
    | Array
    | Map
    | Let
)

"""Errors raised while parsing or evaluating template tags, ``when`` conditions, expr-lang
expressions and DAG ``depends`` clauses.

Every error carries the offending source text (``expression``), a human ``reason`` and, when
the problem has a place, the 0-based character ``position`` inside ``expression``. The message
is built once in ``__init__`` so lint output, node messages and logs can quote it verbatim.
"""

from __future__ import annotations

__all__ = [
    "EvaluationError",
    "ExpressionError",
    "ExpressionSyntaxError",
    "UnresolvedVariable",
]


class ExpressionError(Exception):
    """Base class: an expression or template tag cannot be parsed or evaluated."""

    def __init__(self, expression: str, reason: str, *, position: int | None = None) -> None:
        self.expression = expression
        self.reason = reason
        self.position = position
        where = "" if position is None else f" at position {position}"
        super().__init__(f"invalid expression {expression!r}: {reason}{where}")


class ExpressionSyntaxError(ExpressionError):
    """The text is not well formed (raised at compile time, so lint can reject it before a run)."""


class EvaluationError(ExpressionError):
    """A well-formed expression failed while running: a type mismatch, a bad regex, a function
    that rejected its arguments, a non-boolean ``when``..."""


class UnresolvedVariable(EvaluationError):
    """A referenced variable is not in scope (a simple tag, or an unknown name in an expression).

    Raised in strict mode only; non-strict substitution leaves the tag for a later pass.
    """

    def __init__(self, name: str, *, expression: str | None = None, position: int | None = None) -> None:
        self.name = name
        super().__init__(
            name if expression is None else expression,
            f"unresolved variable {name!r}",
            position=position,
        )

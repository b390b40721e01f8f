"""DAG task ``depends`` clauses (Argo >= 2.9), e.g. ``A && (B.Failed || C.AnySucceeded) && !D.Skipped``.

Operands are ``task.Result`` with Result one of ``Succeeded``, ``Failed``, ``Errored``, ``Skipped``,
``Omitted``, ``Daemoned``, ``AnySucceeded``, ``AllFailed``; operators are ``&&``, ``||``, ``!`` and
parentheses. A bare ``task`` means ``(task.Succeeded || task.Skipped || task.Daemoned)``, widened
with ``task.Failed`` / ``task.Errored`` when that task sets ``continueOn.failed`` / ``.error``.
``dependencies: [A, B]`` is the same as ``depends: "A && B"`` (see :func:`from_dependencies`).
``AnySucceeded``/``AllFailed`` look at a fanned-out task's children (``AllFailed`` needs at least one
child); on other tasks both are false.

When to evaluate: Argo decides a task only once *every* task its clause references is fulfilled
(finished, or a daemon that has started), even when the answer is already known from fewer
tasks (``A || B`` still waits for both). :meth:`DependsExpr.is_decidable` says whether that point
is reached; :meth:`DependsExpr.evaluate` then gives True (run the task) or False (mark it
**Omitted**; an omitted task is itself fulfilled, so the omission propagates down the branch).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, assert_never

from workflows.expressions.errors import EvaluationError, ExpressionSyntaxError, UnresolvedVariable

__all__ = ["RESULTS", "DependsExpr", "Phase", "TaskState", "from_dependencies", "parse_depends"]

Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Error", "Skipped", "Omitted"]
RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed")
_FINISHED: frozenset[str] = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted"})
_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<name>[A-Za-z0-9][-A-Za-z0-9_]*)(?:\.(?P<result>\w+))?)"
)


@dataclass(frozen=True, slots=True)
class TaskState:
    """What a ``depends`` clause needs to know about one referenced task.

    ``children`` holds the phases of a fanned-out task's iterations (None if it does not fan
    out). The ``continue_on_*`` flags copy the referenced task's ``continueOn`` settings.
    """

    phase: Phase
    daemoned: bool = False
    children: tuple[Phase, ...] | None = None
    continue_on_failed: bool = False
    continue_on_error: bool = False

    @property
    def fulfilled(self) -> bool:
        """Finished, or a daemon that has started: Argo's ``Fulfilled()`` for dependencies."""
        return self.phase in _FINISHED or (self.daemoned and self.phase != "Pending")

    def result(self, name: str) -> bool:
        """The value of ``task.<name>``."""
        children = self.children or ()
        match name:
            case "Succeeded" | "Failed" | "Skipped" | "Omitted":
                return self.phase == name
            case "Errored":
                return self.phase == "Error"
            case "Daemoned":
                return self.daemoned and self.phase != "Pending"
            case "AnySucceeded":
                return any(phase == "Succeeded" for phase in children)
            case "AllFailed":
                return bool(children) and all(phase == "Failed" for phase in children)
            case _:
                raise ValueError(f"unknown task result {name!r}")

    def bare(self) -> bool:
        """The value of a bare task name."""
        return (
            self.result("Succeeded")
            or self.result("Skipped")
            or self.result("Daemoned")
            or (self.continue_on_failed and self.result("Failed"))
            or (self.continue_on_error and self.result("Errored"))
        )


@dataclass(frozen=True, slots=True)
class _Ref:
    task: str
    result: str | None  # None for a bare name
    pos: int


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Binary:
    op: Literal["&&", "||"]
    left: _Node
    right: _Node


_Node = _Ref | _Not | _Binary


@dataclass(frozen=True)
class DependsExpr:
    """A parsed ``depends`` clause; ``tree`` is None for a task with no dependencies (always runs)."""

    source: str
    tree: _Node | None = field(repr=False)

    def tasks(self) -> tuple[str, ...]:
        """Referenced task names in order of first appearance."""
        return tuple(dict.fromkeys(ref.task for ref in _refs(self.tree)))

    def task_names(self) -> set[str]:
        """Referenced task names."""
        return set(self.tasks())

    def is_decidable(self, states: Mapping[str, TaskState]) -> bool:
        """True once every referenced task has a state and is fulfilled."""
        return all(name in states and states[name].fulfilled for name in self.tasks())

    def evaluate(self, states: Mapping[str, TaskState]) -> bool:
        """Whether the task should run (False means it is Omitted).

        Raises ``UnresolvedVariable`` for a referenced task missing from ``states`` and
        ``EvaluationError`` when a referenced task is not fulfilled yet.
        """
        for ref in _refs(self.tree):
            if ref.task not in states:
                raise UnresolvedVariable(ref.task, expression=self.source, position=ref.pos)
            if not states[ref.task].fulfilled:
                reason = f"task {ref.task!r} has not finished"
                raise EvaluationError(self.source, reason, position=ref.pos)
        return self.tree is None or _evaluate(self.tree, states)


def _refs(node: _Node | None) -> list[_Ref]:
    match node:
        case None:
            return []
        case _Ref():
            return [node]
        case _Not(operand=operand):
            return _refs(operand)
        case _Binary(left=left, right=right):
            return _refs(left) + _refs(right)
        case _:
            assert_never(node)


def _evaluate(node: _Node, states: Mapping[str, TaskState]) -> bool:
    match node:
        case _Ref(task=task, result=None):
            return states[task].bare()
        case _Ref(task=task, result=str() as result):
            return states[task].result(result)
        case _Not(operand=operand):
            return not _evaluate(operand, states)
        case _Binary(op="&&", left=left, right=right):
            return _evaluate(left, states) and _evaluate(right, states)
        case _Binary(left=left, right=right):
            return _evaluate(left, states) or _evaluate(right, states)
        case _:
            raise TypeError(f"unknown depends node {node!r}")


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens: list[tuple[str, str, int]] = []  # (kind, text, position)
        pos = 0
        while pos < len(source.rstrip()):
            match = _TOKEN.match(source, pos)
            if match is None:
                start = len(source) - len(source[pos:].lstrip())
                raise ExpressionSyntaxError(source, f"unexpected character {source[start]!r}", position=start)
            start = match.start("op") if match.group("op") else match.start("name")
            if match.group("op"):
                self.tokens.append(("op", match.group("op"), start))
            else:
                self.tokens.append(("ref", match.group(0).strip(), start))
                self._check_result(match)
            pos = match.end()
        self.index = 0

    def _check_result(self, match: re.Match[str]) -> None:
        result = match.group("result")
        if result is not None and result not in RESULTS:
            reason = f"task result {result!r} for task {match.group('name')!r} is invalid"
            raise ExpressionSyntaxError(self.source, reason, position=match.start("result"))

    def fail(self, expected: str) -> ExpressionSyntaxError:
        if self.index >= len(self.tokens):
            return ExpressionSyntaxError(
                self.source, f"unexpected end, expected {expected}", position=len(self.source)
            )
        _, text, pos = self.tokens[self.index]
        return ExpressionSyntaxError(self.source, f"unexpected {text!r}, expected {expected}", position=pos)

    def at(self, text: str) -> bool:
        return self.index < len(self.tokens) and self.tokens[self.index][:2] == ("op", text)

    def parse(self) -> _Node:
        node = self.disjunction()
        if self.index < len(self.tokens):
            raise self.fail("'&&' or '||'")
        return node

    def disjunction(self) -> _Node:
        node = self.conjunction()
        while self.at("||"):
            self.index += 1
            node = _Binary("||", node, self.conjunction())
        return node

    def conjunction(self) -> _Node:
        node = self.negation()
        while self.at("&&"):
            self.index += 1
            node = _Binary("&&", node, self.negation())
        return node

    def negation(self) -> _Node:
        if self.at("!"):
            self.index += 1
            return _Not(self.negation())
        if self.at("("):
            self.index += 1
            node = self.disjunction()
            if not self.at(")"):
                raise self.fail("')'")
            self.index += 1
            return node
        if self.index >= len(self.tokens) or self.tokens[self.index][0] != "ref":
            raise self.fail("a task name")
        _, text, pos = self.tokens[self.index]
        self.index += 1
        task, _, result = text.partition(".")
        return _Ref(task, result or None, pos)


def parse_depends(text: str) -> DependsExpr:
    """Parse a ``depends`` clause. Raises ``ExpressionSyntaxError`` (with position) if malformed,
    including unknown results such as ``A.Finished``."""
    if not text.strip():
        raise ExpressionSyntaxError(text, "empty depends expression", position=0)
    return DependsExpr(text, _Parser(text).parse())


def from_dependencies(names: Sequence[str]) -> DependsExpr:
    """The clause equivalent to ``dependencies: [A, B]``: every task, as a bare name, joined by ``&&``."""
    if not names:
        return DependsExpr("", None)
    return parse_depends(" && ".join(names))

"""Turn an expr-lang syntax tree into nested Python closures, once, so evaluation is a call.

Runtime failures become ``EvaluationError`` carrying the source and the failing node's position.
Reading a field of nil (``steps.a.outputs`` when ``steps.a`` is absent) raises
``UnresolvedVariable`` naming the missing path, which is what template substitution and ``??``
need to tell "not known yet" from a real error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import assert_never

from workflows.expressions.errors import EvaluationError, ExpressionSyntaxError, UnresolvedVariable
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
from workflows.expressions.expr_builtins import BUILTINS, PREDICATES
from workflows.expressions.expr_ops import binary_operator, fetch, invoke_method, is_number, slice_of
from workflows.expressions.expr_parser import PREDICATE_BUILTINS
from workflows.expressions.gofmt import go_sprint, go_type

__all__ = ["Evaluator", "Frame", "compile_tree", "static_path"]

_RUNTIME_ERRORS = (ValueError, TypeError, ArithmeticError, LookupError, RecursionError)
_NO_ITEM = object()


class Frame:
    """What a closure sees: the environment, ``let`` bindings and the current predicate element."""

    __slots__ = ("acc", "env", "index", "item", "local")

    def __init__(
        self,
        env: Mapping[str, object],
        local: Mapping[str, object] | None = None,
        item: object = _NO_ITEM,
        index: int = 0,
        acc: object = None,
    ) -> None:
        self.env, self.local = env, local or {}
        self.item, self.index, self.acc = item, index, acc

    def element(self, item: object, index: int, acc: object) -> Frame:
        """The frame a predicate body runs in for one element (``#``, ``#index``, ``#acc``)."""
        return Frame(self.env, self.local, item, index, acc)

    def bind(self, name: str, value: object) -> Frame:
        """The frame after ``let name = value;``."""
        return Frame(self.env, {**self.local, name: value}, self.item, self.index, self.acc)


Evaluator = Callable[[Frame], object]


def static_path(node: Node) -> str | None:
    """``a.b['c-d']`` as ``"a.b.c-d"``; None when any step is computed."""
    match node:
        case Ident(name=name):
            return name
        case Member(obj=obj, key=Literal(value=str() as key)):
            base = static_path(obj)
            return None if base is None else f"{base}.{key}"
        case _:
            return None


def _bool(value: object, op: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"invalid operation: {op} (mismatched type {go_type(value)})")
    return value


class _Compiler:
    def __init__(self, source: str) -> None:
        self.source = source

    def guard(self, pos: int, run: Evaluator) -> Evaluator:
        source = self.source

        def guarded(frame: Frame) -> object:
            try:
                return run(frame)
            except _RUNTIME_ERRORS as exc:
                raise EvaluationError(source, str(exc) or type(exc).__name__, position=pos) from exc

        return guarded

    def compile(self, node: Node) -> Evaluator:
        match node:
            case Literal(value=value):
                return lambda _: value
            case Ident():
                return self.ident(node)
            case Pointer():
                return self.pointer(node)
            case Member():
                return self.member(node)
            case Slice(obj=obj, low=low, high=high, pos=pos):
                target, lo, hi = self.compile(obj), self.optional(low), self.optional(high)
                return self.guard(pos, lambda f: slice_of(target(f), lo(f), hi(f)))
            case Call():
                return self.call(node)
            case Unary():
                return self.unary(node)
            case Binary():
                return self.binary(node)
            case Conditional(cond=cond, then=then, otherwise=otherwise, pos=pos):
                test, yes, no = self.compile(cond), self.compile(then), self.compile(otherwise)
                return self.guard(pos, lambda f: yes(f) if _bool(test(f), "?:") else no(f))
            case Array(items=items):
                parts = [self.compile(item) for item in items]
                return lambda f: [part(f) for part in parts]
            case Map(entries=entries):
                pairs = [(self.compile(k), self.compile(v)) for k, v in entries]
                return lambda f: {key(f): value(f) for key, value in pairs}
            case Let(name=name, value=value, body=body):
                bound, rest = self.compile(value), self.compile(body)
                return lambda f: rest(f.bind(name, bound(f)))
            case Closure(pos=pos):
                raise ExpressionSyntaxError(
                    self.source, "a closure is only allowed as a predicate", position=pos
                )
            case _:
                assert_never(node)

    def optional(self, node: Node | None) -> Evaluator:
        return (lambda _: None) if node is None else self.compile(node)

    def ident(self, node: Ident) -> Evaluator:
        name, source, pos = node.name, self.source, node.pos

        def lookup(frame: Frame) -> object:
            if name in frame.local:
                return frame.local[name]
            if name in frame.env:
                return frame.env[name]
            raise UnresolvedVariable(name, expression=source, position=pos)

        return lookup

    def pointer(self, node: Pointer) -> Evaluator:
        source, pos, name = self.source, node.pos, node.name
        if name not in ("", "index", "acc"):
            raise ExpressionSyntaxError(source, f"unknown pointer #{name}", position=pos)

        def read(frame: Frame) -> object:
            if frame.item is _NO_ITEM:
                raise EvaluationError(source, "cannot use pointer accessor outside closure", position=pos)
            return {"": frame.item, "index": frame.index, "acc": frame.acc}[name]

        return read

    def member(self, node: Member) -> Evaluator:
        target, key = self.compile(node.obj), self.compile(node.key)
        missing = static_path(node.obj)
        source, pos, optional = self.source, node.pos, node.optional

        def get(frame: Frame) -> object:
            obj = target(frame)
            if obj is None and not optional:
                if missing is not None:
                    raise UnresolvedVariable(missing, expression=source, position=pos)
                raise ValueError(f"cannot fetch {go_sprint(key(frame))} from <nil>")
            return None if obj is None else fetch(obj, key(frame))

        return self.guard(pos, get)

    def call(self, node: Call) -> Evaluator:
        args = [self.compile(a) for a in node.args if not isinstance(a, Closure)]
        match node.callee:
            case Ident(name=name) if name in PREDICATE_BUILTINS and len(node.args) > 1:
                closure = node.args[1]
                if not isinstance(closure, Closure):  # the parser always builds one here
                    raise ExpressionSyntaxError(self.source, f"{name} needs a predicate", position=node.pos)
                return self.predicate(name, args, self.compile(closure.body), node.pos)
            case Ident(name=name):
                return self.guard(node.pos, self.function(name, args, node.pos))
            case Member(obj=obj, key=Literal(value=str() as method)):
                receiver = self.compile(obj)
                label = static_path(node.callee) or method
                return self.guard(
                    node.pos, lambda f: invoke_method(receiver(f), method, label, [a(f) for a in args])
                )
            case _:
                raise ExpressionSyntaxError(self.source, "expression is not callable", position=node.pos)

    def function(self, name: str, args: list[Evaluator], pos: int) -> Evaluator:
        source = self.source

        def run(frame: Frame) -> object:
            found = frame.local.get(name, frame.env.get(name))
            function = found if callable(found) else BUILTINS.get(name, PREDICATES.get(name))
            if function is None:
                raise UnresolvedVariable(name, expression=source, position=pos)
            return function(*[a(frame) for a in args])

        return run

    def predicate(self, name: str, args: list[Evaluator], body: Evaluator, pos: int) -> Evaluator:
        collection, extra = args[0], args[1:]

        def run(frame: Frame) -> object:
            def test(item: object, index: int, acc: object) -> object:
                return body(frame.element(item, index, acc))

            return PREDICATES[name](collection(frame), test, *[a(frame) for a in extra])

        return self.guard(pos, run)

    def unary(self, node: Unary) -> Evaluator:
        operand, op = self.compile(node.operand), node.op

        def run(frame: Frame) -> object:
            value = operand(frame)
            if op in ("!", "not"):
                return not _bool(value, op)
            if not is_number(value):
                raise TypeError(f"invalid operation: {op} (mismatched type {go_type(value)})")
            return -value if op == "-" else value

        return self.guard(node.pos, run)

    def binary(self, node: Binary) -> Evaluator:
        left, right, op = self.compile(node.left), self.compile(node.right), node.op
        if op == "??":
            return self.coalesce(left, right)
        if op in ("&&", "and", "||", "or"):
            stop = op in ("||", "or")  # the left value that decides the result on its own

            def logical(frame: Frame) -> object:
                if _bool(left(frame), op) is stop:
                    return stop
                return _bool(right(frame), op)

            return self.guard(node.pos, logical)
        combine = binary_operator(op)
        return self.guard(node.pos, lambda f: combine(left(f), right(f)))

    @staticmethod
    def coalesce(left: Evaluator, right: Evaluator) -> Evaluator:
        def run(frame: Frame) -> object:
            try:
                value = left(frame)
            except UnresolvedVariable:
                value = None  # an absent output reads as nil here (Argo's skipped-output fallback)
            return right(frame) if value is None else value

        return run


def compile_tree(tree: Node, source: str) -> Evaluator:
    """Compile a parsed expression; ``source`` is quoted in errors."""
    return _Compiler(source).compile(tree)

"""Evaluator for the expr-lang (github.com/expr-lang/expr) subset Argo Workflows uses.

Used for ``{{= ... }}`` tags, ``outputs.parameters[].valueFrom.expression``,
``retryStrategy.expression``, lifecycle-hook ``expression`` and ``when: "{{= ...}}"``.

Supported: literals (ints in any base, floats, '…'/"…"/`…` strings, ``true``/``false``/``nil``,
arrays, maps), member access (``a.b``, ``a['b-c']``, ``a?.b``), indexing and slices (``a[1:3]``),
``+ - * / % ** ^``, comparisons, ``&& || ! and or not``, ``?:``, ``??``, ``in``/``not in``,
``matches``, ``contains``, ``startsWith``, ``endsWith``, ``..`` ranges, ``|`` pipes,
``let x = …; …``, predicate closures with ``#``/``#index``/``#acc``/``.field``, expr-lang's
builtins (see ``expr_builtins``), and methods on times and durations (``(now() - t).Seconds()``).
Argo's own functions (``asInt``, ``asFloat``, ``toJson``, ``jsonpath``, ``sprig.*``) come from the
environment, see ``env.build_env``.

Compile once with :func:`compile_expr` (syntax errors surface here, for lint), evaluate many times.
Not supported: expr-lang's compile-time type checking (type errors appear at evaluation),
struct/method access on arbitrary Python objects, and ``$env``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from workflows.expressions.errors import EvaluationError
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
from workflows.expressions.expr_compile import Evaluator, Frame, compile_tree, static_path
from workflows.expressions.expr_parser import parse
from workflows.expressions.gofmt import go_type

__all__ = ["CompiledExpr", "compile_expr", "evaluate_bool", "evaluate_expr"]


@dataclass(frozen=True)
class CompiledExpr:
    """A parsed and compiled expression; immutable and safe to share between threads."""

    source: str
    tree: Node
    _run: Evaluator = field(repr=False, compare=False)

    def evaluate(self, env: Mapping[str, object]) -> object:
        """Evaluate against ``env`` (nested dicts, values and callables).

        Raises ``UnresolvedVariable`` for unknown names and fields read from nil, and
        ``EvaluationError`` for every other runtime failure.
        """
        return self._run(Frame(env))

    def evaluate_bool(self, env: Mapping[str, object]) -> bool:
        """Evaluate and require a boolean, as Argo's ``EvalBool`` does for hooks and retries."""
        result = self.evaluate(env)
        if not isinstance(result, bool):
            raise EvaluationError(self.source, f"expected a bool result, got {go_type(result)}")
        return result

    def references(self) -> list[str]:
        """Variable paths the expression reads, in order, without duplicates.

        ``steps['a-b'].outputs.result`` gives ``"steps.a-b.outputs.result"``; a computed index
        stops the path (``a[x].b`` gives ``"a"`` and whatever ``x`` reads). Names bound by ``let``,
        closure pointers and called function names are not references.
        """
        return list(dict.fromkeys(_references(self.tree, frozenset())))


def _references(node: Node, bound: frozenset[str]) -> Iterator[str]:
    path = static_path(node)
    if path is not None:
        if path.split(".", 1)[0] not in bound:
            yield path
        return
    match node:
        case Literal() | Pointer() | Ident():
            return
        case Member(obj=obj, key=key):
            yield from _references(obj, bound)
            yield from _references(key, bound)
        case Slice(obj=obj, low=low, high=high):
            for part in (obj, low, high):
                if part is not None:
                    yield from _references(part, bound)
        case Call(callee=callee, args=args):
            if isinstance(callee, Member):
                yield from _references(callee.obj, bound)
            for arg in args:
                yield from _references(arg, bound)
        case Closure(body=body) | Unary(operand=body):
            yield from _references(body, bound)
        case Binary(left=left, right=right):
            yield from _references(left, bound)
            yield from _references(right, bound)
        case Conditional(cond=cond, then=then, otherwise=otherwise):
            for part in (cond, then, otherwise):
                yield from _references(part, bound)
        case Array(items=items):
            for item in items:
                yield from _references(item, bound)
        case Map(entries=entries):
            for key, value in entries:
                yield from _references(key, bound)
                yield from _references(value, bound)
        case Let(name=name, value=value, body=body):
            yield from _references(value, bound)
            yield from _references(body, bound | {name})
        case _:
            raise TypeError(f"unknown node {node!r}")


@lru_cache(maxsize=1024)
def compile_expr(source: str) -> CompiledExpr:
    """Parse and compile ``source``. Raises ``ExpressionSyntaxError`` (with a position) if malformed."""
    tree = parse(source)
    return CompiledExpr(source, tree, compile_tree(tree, source))


def evaluate_expr(source: str, env: Mapping[str, object]) -> object:
    """Compile (cached) and evaluate ``source`` in one step."""
    return compile_expr(source).evaluate(env)


def evaluate_bool(source: str, env: Mapping[str, object]) -> bool:
    """Compile (cached) and evaluate ``source``, requiring a boolean result."""
    return compile_expr(source).evaluate_bool(env)

"""Argo Workflows expression languages: ``{{...}}`` template tags, govaluate ``when:``
conditions, expr-lang expressions (``{{= }}``, ``valueFrom.expression``...) and DAG ``depends``.

Pure functions and immutable compiled forms; no I/O.
"""

from workflows.expressions.depends import DependsExpr, TaskState, from_dependencies, parse_depends
from workflows.expressions.env import build_env
from workflows.expressions.errors import (
    EvaluationError,
    ExpressionError,
    ExpressionSyntaxError,
    UnresolvedVariable,
)
from workflows.expressions.expr import CompiledExpr, compile_expr, evaluate_bool, evaluate_expr
from workflows.expressions.govaluate import evaluate_when
from workflows.expressions.template import find_references, render, substitute, substitute_obj

__all__ = [
    "CompiledExpr",
    "DependsExpr",
    "EvaluationError",
    "ExpressionError",
    "ExpressionSyntaxError",
    "TaskState",
    "UnresolvedVariable",
    "build_env",
    "compile_expr",
    "evaluate_bool",
    "evaluate_expr",
    "evaluate_when",
    "find_references",
    "from_dependencies",
    "parse_depends",
    "render",
    "substitute",
    "substitute_obj",
]

from __future__ import annotations

import pytest

from workflows.expressions.errors import (
    EvaluationError,
    ExpressionError,
    ExpressionSyntaxError,
    UnresolvedVariable,
)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            ExpressionError("a ==", "unexpected end", position=4),
            "invalid expression 'a ==': unexpected end at position 4",
        ),
        (ExpressionSyntaxError("x +", "unexpected end"), "invalid expression 'x +': unexpected end"),
        (
            UnresolvedVariable("inputs.parameters.x", expression="{{inputs.parameters.x}}"),
            "invalid expression '{{inputs.parameters.x}}': unresolved variable 'inputs.parameters.x'",
        ),
        (
            UnresolvedVariable("x", position=0),
            "invalid expression 'x': unresolved variable 'x' at position 0",
        ),
    ],
)
def test_error_message_built_from_attributes(error: ExpressionError, message: str) -> None:
    assert str(error) == message


def test_unresolved_variable_carries_typed_attributes() -> None:
    error = UnresolvedVariable("steps.a", expression="steps.a.outputs", position=7)
    assert (error.name, error.expression, error.position) == ("steps.a", "steps.a.outputs", 7)
    assert error.reason == "unresolved variable 'steps.a'"


@pytest.mark.parametrize("cls", [ExpressionSyntaxError, EvaluationError, UnresolvedVariable])
def test_error_subclasses_are_expression_errors(cls: type[ExpressionError]) -> None:
    assert issubclass(cls, ExpressionError)


def test_unresolved_variable_is_an_evaluation_error() -> None:
    assert issubclass(UnresolvedVariable, EvaluationError)
    assert not issubclass(ExpressionSyntaxError, EvaluationError)

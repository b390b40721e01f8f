from __future__ import annotations

import pytest

from workflows.expressions.depends import Phase, TaskState, from_dependencies, parse_depends
from workflows.expressions.errors import EvaluationError, ExpressionSyntaxError, UnresolvedVariable

OK = TaskState("Succeeded")
FAILED = TaskState("Failed")
ERRORED = TaskState("Error")
SKIPPED = TaskState("Skipped")
OMITTED = TaskState("Omitted")
DAEMON = TaskState("Running", daemoned=True)


@pytest.mark.parametrize(
    ("result", "state", "expected"),
    [
        ("Succeeded", OK, True),
        ("Succeeded", FAILED, False),
        ("Failed", FAILED, True),
        ("Errored", ERRORED, True),
        ("Errored", FAILED, False),
        ("Skipped", SKIPPED, True),
        ("Omitted", OMITTED, True),
        ("Daemoned", DAEMON, True),
        ("Daemoned", TaskState("Succeeded", daemoned=True), True),
        ("Daemoned", OK, False),
        ("AnySucceeded", TaskState("Failed", children=("Failed", "Succeeded")), True),
        ("AnySucceeded", TaskState("Failed", children=("Failed", "Error")), False),
        ("AnySucceeded", OK, False),
        ("AllFailed", TaskState("Failed", children=("Failed", "Failed")), True),
        ("AllFailed", TaskState("Failed", children=("Failed", "Error")), False),
        ("AllFailed", TaskState("Succeeded", children=()), False),
        ("AllFailed", FAILED, False),
    ],
)
def test_depends_task_result_reads_state(result: str, state: TaskState, expected: bool) -> None:
    assert parse_depends(f"A.{result}").evaluate({"A": state}) is expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (OK, True),
        (SKIPPED, True),
        (DAEMON, True),
        (FAILED, False),
        (ERRORED, False),
        (OMITTED, False),
        (TaskState("Failed", continue_on_failed=True), True),
        (TaskState("Error", continue_on_failed=True), False),
        (TaskState("Error", continue_on_error=True), True),
    ],
)
def test_depends_bare_name_means_succeeded_skipped_or_daemoned(state: TaskState, expected: bool) -> None:
    assert parse_depends("A").evaluate({"A": state}) is expected
    assert from_dependencies(["A"]).evaluate({"A": state}) is expected


@pytest.mark.parametrize(
    ("text", "states", "expected"),
    [
        ("A && B", {"A": OK, "B": OK}, True),
        ("A && B", {"A": OK, "B": FAILED}, False),
        ("A || B", {"A": FAILED, "B": OK}, True),
        ("!A", {"A": FAILED}, True),
        ("!A.Skipped", {"A": SKIPPED}, False),
        ("A || B && C", {"A": OK, "B": FAILED, "C": FAILED}, True),
        ("(A || B) && C", {"A": OK, "B": FAILED, "C": FAILED}, False),
        ("!!A", {"A": OK}, True),
        (
            "A && (B.Failed || C.AnySucceeded) && !D.Skipped",
            {"A": OK, "B": OK, "C": TaskState("Failed", children=("Succeeded",)), "D": OK},
            True,
        ),
        (
            "A && (B.Failed || C.AnySucceeded) && !D.Skipped",
            {"A": OK, "B": OK, "C": TaskState("Failed", children=("Failed",)), "D": OK},
            False,
        ),
        ("my-task-1.Succeeded||other_task", {"my-task-1": FAILED, "other_task": OK}, True),
    ],
)
def test_depends_operators_combine_results(text: str, states: dict[str, TaskState], expected: bool) -> None:
    assert parse_depends(text).evaluate(states) is expected


def test_depends_task_names_lists_every_reference() -> None:
    expression = parse_depends("A && (B.Failed || C.AnySucceeded) && !D.Skipped || A.Failed")
    assert expression.task_names() == {"A", "B", "C", "D"}
    assert expression.tasks() == ("A", "B", "C", "D")


def test_from_dependencies_joins_with_and() -> None:
    expression = from_dependencies(["A", "B-2"])
    assert expression.source == "A && B-2"
    assert expression.evaluate({"A": OK, "B-2": SKIPPED}) is True
    assert expression.evaluate({"A": OK, "B-2": FAILED}) is False


def test_from_dependencies_empty_always_runs() -> None:
    expression = from_dependencies([])
    assert expression.task_names() == set()
    assert expression.is_decidable({}) is True
    assert expression.evaluate({}) is True


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({"A": OK, "B": OK}, True),
        ({"A": OK, "B": TaskState("Omitted")}, True),
        ({"A": OK, "B": TaskState("Running")}, False),
        ({"A": OK, "B": TaskState("Pending", daemoned=True)}, False),
        ({"A": OK, "B": DAEMON}, True),
        ({"A": OK}, False),
    ],
)
def test_depends_is_decidable_only_when_every_reference_is_fulfilled(
    states: dict[str, TaskState], expected: bool
) -> None:
    # A alone already makes "A || B" true, yet Argo still waits for B
    assert parse_depends("A || B").is_decidable(states) is expected


def test_depends_evaluate_before_decidable_fails() -> None:
    with pytest.raises(EvaluationError, match="task 'B' has not finished") as caught:
        parse_depends("A || B").evaluate({"A": OK, "B": TaskState("Running")})
    assert caught.value.position == 5


def test_depends_evaluate_unknown_task_fails() -> None:
    with pytest.raises(UnresolvedVariable) as caught:
        parse_depends("A && B").evaluate({"A": OK})
    assert (caught.value.name, caught.value.position) == ("B", 5)


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        ("", "empty depends expression", 0),
        ("A &&", "unexpected end, expected a task name", 4),
        ("A B", "unexpected 'B', expected '&&' or '||'", 2),
        ("(A || B", "unexpected end, expected ')'", 7),
        ("A & B", "unexpected character '&'", 2),
        ("A.Finished", "task result 'Finished' for task 'A' is invalid", 2),
        ("A.", "unexpected character '.'", 1),
        ("&& A", "unexpected '&&', expected a task name", 0),
        ("A || )", "unexpected ')', expected a task name", 5),
    ],
)
def test_parse_depends_malformed_raises_with_position(text: str, reason: str, position: int) -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        parse_depends(text)
    assert (caught.value.reason, caught.value.position) == (reason, position)


@pytest.mark.parametrize(
    "phase",
    ["Succeeded", "Failed", "Error", "Skipped", "Omitted"],
)
def test_task_state_finished_phase_is_fulfilled(phase: Phase) -> None:
    assert TaskState(phase).fulfilled


@pytest.mark.parametrize("phase", ["Pending", "Running"])
def test_task_state_unfinished_phase_is_not_fulfilled(phase: Phase) -> None:
    assert not TaskState(phase).fulfilled

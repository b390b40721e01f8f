from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from workflows.cron import ConcurrencyPolicy, concurrency_action, cron_variables, history_to_delete
from workflows.expressions import build_env, evaluate_bool, evaluate_when, substitute


@pytest.mark.parametrize(
    ("policy", "active", "action"),
    [
        (ConcurrencyPolicy.ALLOW, 0, "run"),
        (ConcurrencyPolicy.ALLOW, 2, "run"),
        (ConcurrencyPolicy.FORBID, 0, "run"),
        (ConcurrencyPolicy.FORBID, 1, "skip"),
        (ConcurrencyPolicy.REPLACE, 0, "run"),
        (ConcurrencyPolicy.REPLACE, 3, "replace"),
    ],
)
def test_concurrency_action_by_policy_and_active_runs(
    policy: ConcurrencyPolicy, active: int, action: str
) -> None:
    assert concurrency_action(policy, active) == action


def t(minute: int) -> datetime:
    return datetime(2026, 5, 5, 12, minute, tzinfo=UTC)


def test_history_to_delete_with_defaults_keeps_three_succeeded_and_one_failed() -> None:
    finished = [
        ("s1", "Succeeded", t(1)),
        ("f1", "Failed", t(2)),
        ("s5", "Succeeded", t(5)),
        ("e1", "Error", t(3)),
        ("s3", "Succeeded", t(3)),
        ("r1", "Running", t(0)),
        ("s4", "Succeeded", t(4)),
        ("s2", "Succeeded", t(2)),
    ]
    # newest first within each kind; Error counts as failed; Running is never touched
    assert history_to_delete(finished) == ["s2", "s1", "f1"]


def test_history_to_delete_with_zero_limits_deletes_every_finished_run() -> None:
    finished = [("a", "Succeeded", t(1)), ("b", "Failed", t(2)), ("c", "Pending", t(3))]
    assert history_to_delete(finished, successful_limit=0, failed_limit=0) == ["a", "b"]


def test_history_to_delete_under_limits_deletes_nothing() -> None:
    assert history_to_delete([("a", "Succeeded", t(1)), ("b", "Failed", t(2))], 5, 5) == []


def test_history_to_delete_with_equal_finish_times_keeps_input_order() -> None:
    finished = [("first", "Succeeded", t(1)), ("second", "Succeeded", t(1)), ("third", "Succeeded", t(1))]
    assert history_to_delete(finished, successful_limit=1) == ["second", "third"]


def test_history_to_delete_with_negative_limit_fails() -> None:
    with pytest.raises(ValueError, match="history limit must be 0 or more, got -1"):
        history_to_delete([], successful_limit=-1)


def variables(last: datetime | None, *, failed: int = 0, succeeded: int = 0) -> dict[str, object]:
    return cron_variables(
        "nightly",
        "argo",
        {"team": "data", "app.kubernetes.io/name": "report"},
        {"owner": "ops"},
        last,
        failed,
        succeeded,
    )


def test_cron_variables_use_argo_names() -> None:
    last = datetime(2026, 5, 5, 2, 30, tzinfo=UTC)
    scope = variables(last, failed=2, succeeded=7)
    assert scope["cronworkflow.name"] == "nightly"
    assert scope["cronworkflow.namespace"] == "argo"
    assert scope["cronworkflow.labels.team"] == "data"
    assert scope["cronworkflow.annotations.owner"] == "ops"  # Argo v3.6 wrongly serves the labels here
    assert json.loads(str(scope["cronworkflow.labels.json"])) == {
        "team": "data",
        "app.kubernetes.io/name": "report",
    }
    assert scope["cronworkflow.annotations.json"] == '{"owner":"ops"}'
    assert scope["cronworkflow.lastScheduledTime"] == last
    assert (scope["cronworkflow.failed"], scope["cronworkflow.succeeded"]) == (2, 7)


def test_cron_variables_render_in_simple_template_tags() -> None:
    text = substitute(
        "{{cronworkflow.namespace}}/{{cronworkflow.name}} by {{cronworkflow.labels.team}}",
        variables(None),
        strict=True,
    )
    assert text == "argo/nightly by data"


@pytest.mark.parametrize(("hours_ago", "expected"), [(None, True), (2.0, True), (0.5, False)])
def test_cron_variables_drive_argos_documented_when_guard(hours_ago: float | None, expected: bool) -> None:
    # from Argo's cron-workflows.md: skip a run if the previous one was less than an hour ago
    when = "{{= cronworkflow.lastScheduledTime == nil || (now() - cronworkflow.lastScheduledTime).Seconds() > 3600 }}"
    last = None if hours_ago is None else datetime.now(UTC) - timedelta(hours=hours_ago)
    assert evaluate_when(substitute(when, variables(last), strict=True)) is expected


@pytest.mark.parametrize(("succeeded", "stops"), [(0, False), (1, True)])
def test_cron_variables_drive_a_stop_strategy_expression(succeeded: int, stops: bool) -> None:
    env = build_env(variables(None, succeeded=succeeded))
    assert evaluate_bool("cronworkflow.succeeded >= 1", env) is stops


def test_cron_variables_reach_label_keys_with_dots_through_the_map() -> None:
    env = build_env(variables(None))
    assert evaluate_bool("cronworkflow.labels['app.kubernetes.io/name'] == 'report'", env)

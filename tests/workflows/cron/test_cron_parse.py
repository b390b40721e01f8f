from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from workflows.cron import (
    ConcurrencyPolicy,
    CronError,
    CronPolicy,
    next_fire,
    parse_cron,
    parse_policy,
    parse_schedules,
)
from workflows.errors import WorkflowError
from workflows.models.resources import CronWorkflowSpec


def spec(**fields: object) -> CronWorkflowSpec:
    return CronWorkflowSpec.model_validate(
        {**fields, "workflowSpec": {"entrypoint": "main", "templates": []}}
    )


def fires(schedules: list[str], start: datetime, count: int, **fields: object) -> list[datetime]:
    schedule = parse_schedules(spec(schedules=schedules, **fields))
    out = [next_fire(schedule, start)]
    while len(out) < count:
        out.append(next_fire(schedule, out[-1]))
    return out


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"schedules": ["* * * * *", "61 * * * *"]},
            "spec.schedules[1]: invalid cron expression '61 * * * *': minute: 61 is above the maximum 59",
        ),
        (
            {"schedule": "0 24 * * *"},
            "spec.schedule: invalid cron expression '0 24 * * *': hour: 24 is above the maximum 23",
        ),
        (
            {"schedules": ["0 0 0 * *"]},
            "spec.schedules[0]: invalid cron expression '0 0 0 * *': day-of-month: 0 is below the minimum 1",
        ),
        (
            {"schedules": ["0 0 * * 7"]},
            "spec.schedules[0]: invalid cron expression '0 0 * * 7': day-of-week: 7 is above the maximum 6",
        ),
        (
            {"schedules": ["0 0 * * * *"]},
            (
                "spec.schedules[0]: invalid cron expression '0 0 * * * *': "
                "expected 5 fields (minute hour day-of-month month day-of-week), found 6"
            ),
        ),
        (
            {"schedules": ["5-3 * * * *"]},
            "spec.schedules[0]: invalid cron expression '5-3 * * * *': minute: range '5-3' runs backwards",
        ),
        (
            {"schedules": ["*/0 * * * *"]},
            "spec.schedules[0]: invalid cron expression '*/0 * * * *': minute: step must be 1 or more, got 0",
        ),
        (
            {"schedules": ["0 9 * foo *"]},
            "spec.schedules[0]: invalid cron expression '0 9 * foo *': month: 'foo' is not a number or a name",
        ),
        (
            {"schedules": ["0 0 L * *"]},
            (
                "spec.schedules[0]: invalid cron expression '0 0 L * *': "
                "day-of-month: 'L' uses L, W or #, which Argo's cron parser does not support"
            ),
        ),
        (
            {"schedules": ["0 9 * * 5#2"]},
            (
                "spec.schedules[0]: invalid cron expression '0 9 * * 5#2': "
                "day-of-week: '5#2' uses L, W or #, which Argo's cron parser does not support"
            ),
        ),
        (
            {"schedules": ["0 0 31 2 *"]},
            "spec.schedules[0]: invalid cron expression '0 0 31 2 *': day-of-month: '31' never occurs in month '2'",
        ),
        (
            {"schedules": ["@every 1h"]},
            (
                "spec.schedules[0]: invalid cron expression '@every 1h': @every is not supported, "
                "write a 5-field expression"
            ),
        ),
        (
            {"schedules": ["@fortnightly"]},
            (
                "spec.schedules[0]: invalid cron expression '@fortnightly': unknown macro '@fortnightly', "
                "expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
            ),
        ),
        ({"schedules": ["0 * * * *", ""]}, "spec.schedules[1]: invalid cron expression '': empty schedule"),
        (
            {"schedules": ["CRON_TZ=Mars/Base 0 * * * *"]},
            (
                "spec.schedules[0]: invalid cron expression 'CRON_TZ=Mars/Base 0 * * * *': "
                "unknown time zone 'Mars/Base'"
            ),
        ),
        (
            {"schedules": ["CRON_TZ=Europe/Berlin"]},
            (
                "spec.schedules[0]: invalid cron expression 'CRON_TZ=Europe/Berlin': "
                "no cron expression after CRON_TZ=Europe/Berlin"
            ),
        ),
        (
            {"schedules": ["CRON_TZ=Europe/Berlin 0 * * * *"], "timezone": "Asia/Tokyo"},
            (
                "spec.schedules[0]: invalid cron expression 'CRON_TZ=Europe/Berlin 0 * * * *': "
                "a CRON_TZ= prefix cannot be combined with the timezone field"
            ),
        ),
        (
            {"schedules": ["0 * * * *"], "timezone": "Mars/Base"},
            "spec.timezone: unknown time zone 'Mars/Base'",
        ),
        (
            {"schedules": ["0 * * * *"], "timezone": "../etc/passwd"},
            "spec.timezone: unknown time zone '../etc/passwd'",
        ),
        (
            {"schedule": "0 * * * *", "schedules": ["1 * * * *"]},
            "spec.schedules: cannot be combined with spec.schedule",
        ),
        ({}, "spec.schedules: at least one schedule is required"),
        ({"schedules": []}, "spec.schedules: at least one schedule is required"),
        (
            {"schedules": ["0 * * * *"], "concurrencyPolicy": "Sometimes"},
            "spec.concurrencyPolicy: unknown policy 'Sometimes', expected Allow, Forbid or Replace",
        ),
        (
            {"schedules": ["0 * * * *"], "concurrencyPolicy": "forbid"},
            "spec.concurrencyPolicy: unknown policy 'forbid', expected Allow, Forbid or Replace",
        ),
        (
            {"schedules": ["0 * * * *"], "startingDeadlineSeconds": -5},
            "spec.startingDeadlineSeconds: must be 0 or more, got -5",
        ),
        (
            {"schedules": ["0 * * * *"], "successfulJobsHistoryLimit": -1},
            "spec.successfulJobsHistoryLimit: must be 0 or more, got -1",
        ),
        (
            {"schedules": ["0 * * * *"], "failedJobsHistoryLimit": -2},
            "spec.failedJobsHistoryLimit: must be 0 or more, got -2",
        ),
    ],
)
def test_parse_cron_with_bad_field_fails_with_path_and_reason(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(CronError, match=f"^{re.escape(message)}$"):
        parse_cron(spec(**fields))


def test_cron_error_carries_location_value_and_file() -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(spec(schedules=["0 * * * *", "0 0 30 2 *"]), "spec", file="crons/report.yaml")
    error = caught.value
    assert isinstance(error, WorkflowError)
    assert (error.loc, error.value, error.file) == ("spec.schedules[1]", "0 0 30 2 *", "crons/report.yaml")
    assert str(error).startswith("crons/report.yaml: spec.schedules[1]: invalid cron expression '0 0 30 2 *'")


def test_parse_cron_with_custom_path_names_that_path() -> None:
    with pytest.raises(CronError, match=r"^items\[3\]\.spec\.timezone: "):
        parse_cron(spec(schedules=["0 * * * *"], timezone="Nowhere"), "items[3].spec")


def test_parse_policy_without_fields_uses_argo_defaults() -> None:
    assert parse_policy(spec(schedules=["0 * * * *"])) == CronPolicy(
        concurrency=ConcurrencyPolicy.ALLOW,
        starting_deadline_seconds=None,
        successful_history_limit=3,
        failed_history_limit=1,
    )


def test_parse_policy_with_fields_keeps_them_including_zero() -> None:
    policy = parse_policy(
        spec(
            schedules=["0 * * * *"],
            concurrencyPolicy="Replace",
            startingDeadlineSeconds=0,
            successfulJobsHistoryLimit=0,
            failedJobsHistoryLimit=5,
        )
    )
    assert policy == CronPolicy(ConcurrencyPolicy.REPLACE, 0, 0, 5)


def test_parse_policy_with_empty_concurrency_policy_allows() -> None:
    assert (
        parse_policy(spec(schedules=["0 * * * *"], concurrencyPolicy="")).concurrency
        is ConcurrencyPolicy.ALLOW
    )


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@hourly", [utc(2026, 5, 5, 11), utc(2026, 5, 5, 12)]),
        ("@daily", [utc(2026, 5, 6), utc(2026, 5, 7)]),
        ("@midnight", [utc(2026, 5, 6), utc(2026, 5, 7)]),
        ("@weekly", [utc(2026, 5, 10), utc(2026, 5, 17)]),  # Sundays
        ("@monthly", [utc(2026, 6, 1), utc(2026, 7, 1)]),
        ("@yearly", [utc(2027, 1, 1), utc(2028, 1, 1)]),
        ("@annually", [utc(2027, 1, 1), utc(2028, 1, 1)]),
    ],
)
def test_next_fire_with_macro_follows_its_five_field_meaning(macro: str, expected: list[datetime]) -> None:
    assert fires([macro], utc(2026, 5, 5, 10, 30), 2) == expected


def test_next_fire_with_names_and_question_mark_reads_them_like_argo() -> None:
    # Tuesday 2026-05-05; MON-FRI with lower-case month names and "?" for day-of-month
    got = fires(["30 9 ? may-jun mon-fri"], utc(2026, 5, 7, 12), 3)
    assert got == [utc(2026, 5, 8, 9, 30), utc(2026, 5, 11, 9, 30), utc(2026, 5, 12, 9, 30)]


def test_next_fire_with_weekday_step_never_reaches_sunday_as_seven() -> None:
    # robfig reads MON/2 as MON-6/2 (Mon, Wed, Fri); cronsim alone would read MON-7/2 and add Sunday
    got = fires(["0 0 * * MON/2"], utc(2026, 5, 4, 12), 4)  # from Monday noon
    assert [d.strftime("%a") for d in got] == ["Wed", "Fri", "Mon", "Wed"]


def test_next_fire_with_stepped_day_of_month_and_weekday_fires_on_either() -> None:
    # robfig: "*/2" is a value list, so day-of-month OR day-of-week (Vixie/cronsim alone would AND them)
    got = fires(["0 0 */2 * 1"], utc(2026, 5, 1, 12), 4)  # Fri 1 May
    assert got == [utc(2026, 5, 3), utc(2026, 5, 4), utc(2026, 5, 5), utc(2026, 5, 7)]


def test_next_fire_with_star_day_of_month_requires_the_weekday() -> None:
    got = fires(["0 0 * * 1"], utc(2026, 5, 1, 12), 2)
    assert got == [utc(2026, 5, 4), utc(2026, 5, 11)]


def test_next_fire_with_feb_29_waits_for_a_leap_year() -> None:
    assert fires(["0 0 29 2 *"], utc(2026, 1, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]


def test_next_fire_with_cron_tz_prefix_uses_that_zone_per_schedule() -> None:
    got = fires(["CRON_TZ=Asia/Tokyo 0 9 * * *", "TZ=America/New_York 0 9 * * *"], utc(2026, 7, 1, 1), 4)
    # 09:00 JST = 00:00Z; 09:00 EDT = 13:00Z
    assert got == [utc(2026, 7, 1, 13), utc(2026, 7, 2, 0), utc(2026, 7, 2, 13), utc(2026, 7, 3, 0)]


def test_next_fire_with_timezone_field_follows_its_utc_offset_through_the_year() -> None:
    got = fires(["0 9 1 * *"], utc(2026, 2, 15), 2, timezone="America/New_York")
    assert got == [utc(2026, 3, 1, 14), utc(2026, 4, 1, 13)]  # EST then EDT
    assert parse_schedules(spec(schedules=["0 9 * * *"], timezone="America/New_York")).zone == ZoneInfo(
        "America/New_York"
    )


def test_next_fire_without_timezone_uses_utc() -> None:
    assert parse_schedules(spec(schedules=["0 9 * * *"])).zone is UTC
    assert fires(["0 9 * * *"], utc(2026, 7, 1), 1) == [utc(2026, 7, 1, 9)]

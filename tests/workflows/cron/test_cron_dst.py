"""Fire times across the 2026 DST changes: New York 8 Mar / 1 Nov, Berlin 29 Mar / 25 Oct."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflows.cron import next_fire, parse_schedules
from workflows.models.resources import CronWorkflowSpec

NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"


def spec(**fields: object) -> CronWorkflowSpec:
    return CronWorkflowSpec.model_validate(
        {**fields, "workflowSpec": {"entrypoint": "main", "templates": []}}
    )


def local_fires(expr: str, zone: str, start: str, end: str) -> list[str]:
    """Fire times in ``[start, end)`` (local ISO times), written in local time with their UTC offset."""
    tz = ZoneInfo(zone)
    schedule = parse_schedules(spec(schedules=[expr], timezone=zone))
    moment = datetime.fromisoformat(start).replace(tzinfo=tz) - timedelta(microseconds=1)
    stop = datetime.fromisoformat(end).replace(tzinfo=tz)
    out = []
    while (moment := next_fire(schedule, moment)) < stop:
        assert moment.tzinfo is UTC
        out.append(moment.astimezone(tz).isoformat(timespec="minutes"))
    return out


@pytest.mark.parametrize(
    ("expr", "zone", "window", "expected"),
    [
        # spring forward, New York: 02:00 EST -> 03:00 EDT on 8 March
        ("30 1 * * *", NEW_YORK, ("2026-03-07", "2026-03-10"), [
            "2026-03-07T01:30-05:00", "2026-03-08T01:30-05:00", "2026-03-09T01:30-04:00",
        ]),
        ("30 2 * * *", NEW_YORK, ("2026-03-07", "2026-03-10"), [
            "2026-03-07T02:30-05:00", "2026-03-08T03:00-04:00", "2026-03-09T02:30-04:00",
        ]),
        ("0 * * * *", NEW_YORK, ("2026-03-08T00:00", "2026-03-08T05:00"), [
            "2026-03-08T00:00-05:00", "2026-03-08T01:00-05:00", "2026-03-08T03:00-04:00", "2026-03-08T04:00-04:00",
        ]),
        # fall back, New York: 02:00 EDT -> 01:00 EST on 1 November
        ("30 1 * * *", NEW_YORK, ("2026-10-31", "2026-11-03"), [
            "2026-10-31T01:30-04:00", "2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00",
        ]),
        ("30 2 * * *", NEW_YORK, ("2026-10-31", "2026-11-03"), [
            "2026-10-31T02:30-04:00", "2026-11-01T02:30-05:00", "2026-11-02T02:30-05:00",
        ]),
        ("0 * * * *", NEW_YORK, ("2026-11-01T00:00", "2026-11-01T03:00"), [
            "2026-11-01T00:00-04:00", "2026-11-01T01:00-04:00", "2026-11-01T01:00-05:00", "2026-11-01T02:00-05:00",
        ]),
        # spring forward, Berlin: 02:00 CET -> 03:00 CEST on 29 March
        ("30 1 * * *", BERLIN, ("2026-03-28", "2026-03-31"), [
            "2026-03-28T01:30+01:00", "2026-03-29T01:30+01:00", "2026-03-30T01:30+02:00",
        ]),
        ("30 2 * * *", BERLIN, ("2026-03-28", "2026-03-31"), [
            "2026-03-28T02:30+01:00", "2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00",
        ]),
        ("0 * * * *", BERLIN, ("2026-03-29T00:00", "2026-03-29T05:00"), [
            "2026-03-29T00:00+01:00", "2026-03-29T01:00+01:00", "2026-03-29T03:00+02:00", "2026-03-29T04:00+02:00",
        ]),
        # fall back, Berlin: 03:00 CEST -> 02:00 CET on 25 October
        ("30 1 * * *", BERLIN, ("2026-10-24", "2026-10-27"), [
            "2026-10-24T01:30+02:00", "2026-10-25T01:30+02:00", "2026-10-26T01:30+01:00",
        ]),
        ("30 2 * * *", BERLIN, ("2026-10-24", "2026-10-27"), [
            "2026-10-24T02:30+02:00", "2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00",
        ]),
        ("0 * * * *", BERLIN, ("2026-10-25T01:00", "2026-10-25T04:00"), [
            "2026-10-25T01:00+02:00", "2026-10-25T02:00+02:00", "2026-10-25T02:00+01:00", "2026-10-25T03:00+01:00",
        ]),
        # minute or hour starting with "*": the missing hour is dropped, not moved to 03:00
        ("*/20 2 * * *", NEW_YORK, ("2026-03-07T02:00", "2026-03-09T03:00"), [
            "2026-03-07T02:00-05:00", "2026-03-07T02:20-05:00", "2026-03-07T02:40-05:00",
            "2026-03-09T02:00-04:00", "2026-03-09T02:20-04:00", "2026-03-09T02:40-04:00",
        ]),
    ],
)  # fmt: skip
def test_next_fire_across_dst_change_matches_cronsim_semantics(
    expr: str, zone: str, window: tuple[str, str], expected: list[str]
) -> None:
    assert local_fires(expr, zone, *window) == expected


def test_next_fire_with_0130_on_fall_back_day_fires_once_in_the_first_0130() -> None:
    fired = local_fires("30 1 * * *", NEW_YORK, "2026-11-01T00:00", "2026-11-02T00:00")
    assert fired == ["2026-11-01T01:30-04:00"]  # not again at 01:30-05:00, one hour later


def test_next_fire_from_inside_repeated_hour_skips_the_first_occurrence_already_past() -> None:
    schedule = parse_schedules(spec(schedules=["30 1 * * *"], timezone=NEW_YORK))
    inside_second_hour = datetime(2026, 11, 1, 6, 15, tzinfo=UTC)  # 01:15 EST, after 01:30 EDT (05:30Z)
    assert next_fire(schedule, inside_second_hour) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def test_next_fire_with_two_schedules_meeting_in_the_spring_gap_fires_once() -> None:
    # Argo's documented workaround pair: 02:30 is moved to 03:00 on 8 March, where "0 3" also fires
    schedule = parse_schedules(spec(schedules=["30 2 * * *", "0 3 * * *"], timezone=NEW_YORK))
    first = next_fire(schedule, datetime(2026, 3, 8, 5, tzinfo=UTC))
    second = next_fire(schedule, first)
    assert first == datetime(2026, 3, 8, 7, tzinfo=UTC)  # 03:00 EDT
    assert second == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)  # 02:30 EDT next day


def test_croniter_fires_the_repeated_0130_twice_where_we_fire_once() -> None:
    croniter = pytest.importorskip(
        "croniter", reason="croniter is not installed (deliberately not a dependency): comparison skipped"
    )
    tz = ZoneInfo(NEW_YORK)
    iterator = croniter.croniter("30 1 * * *", datetime(2026, 10, 31, 12, tzinfo=tz))
    theirs = [iterator.get_next(datetime).isoformat(timespec="minutes") for _ in range(3)]
    assert theirs == ["2026-11-01T01:30-04:00", "2026-11-01T01:30-05:00", "2026-11-02T01:30-05:00"]
    assert local_fires("30 1 * * *", NEW_YORK, "2026-10-31T12:00", "2026-11-02T12:00") == [
        "2026-11-01T01:30-04:00",
        "2026-11-02T01:30-05:00",
    ]


def test_next_fire_is_strictly_after_and_accepts_any_aware_time() -> None:
    schedule = parse_schedules(spec(schedules=["*/5 * * * *"]))
    on_the_dot = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)
    assert next_fire(schedule, on_the_dot) == datetime(2026, 5, 5, 12, 5, tzinfo=UTC)
    assert next_fire(schedule, on_the_dot - timedelta(microseconds=1)) == on_the_dot
    in_berlin = on_the_dot.astimezone(ZoneInfo(BERLIN)) + timedelta(seconds=1)
    assert next_fire(schedule, in_berlin) == datetime(2026, 5, 5, 12, 5, tzinfo=UTC)


def test_next_fire_with_naive_time_fails() -> None:
    schedule = parse_schedules(spec(schedules=["* * * * *"]))
    with pytest.raises(ValueError, match="after must be timezone-aware"):
        next_fire(schedule, datetime(2026, 5, 5, 12))

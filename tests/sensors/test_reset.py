"""Ticks across the 2026 DST changes: Berlin 29 Mar / 25 Oct, New York 8 Mar / 1 Nov."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from sensors.reset import ResetByTime, last_tick, next_tick

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
LOS_ANGELES = "America/Los_Angeles"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).isoformat(timespec="minutes")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"cron": "61 * * * *"}, r"cron\n.*invalid cron expression '61 \* \* \* \*': minute: 61 is above"),
        ({"cron": "* * * *"}, r"cron\n.*expected 5 fields .* found 4"),
        ({"cron": "0 0 0 * * *"}, r"cron\n.*expected 5 fields .* found 6"),
        ({"cron": ""}, r"cron\n.*empty schedule"),
        ({"cron": "0 0 * * 7"}, r"cron\n.*day-of-week: 7 is above the maximum 6"),
        ({"cron": "0 0 L * *"}, r"cron\n.*uses L, W or #"),
        ({"cron": "0 0 30 2 *"}, r"cron\n.*day-of-month: '30' never occurs in month '2'"),
        ({"cron": "@daily"}, r"cron\n.*macros are not accepted here, only 5 fields, write '0 0 \* \* \*'"),
        ({"cron": "@every 1h"}, r"cron\n.*macros are not accepted here, only 5 fields \["),
        ({"cron": "CRON_TZ=UTC 0 0 * * *"}, r"cron\n.*put the time zone in the timezone field"),
        ({"cron": "0 0 * * *", "timezone": "Mars/Olympus"}, r"timezone\n.*unknown time zone 'Mars/Olympus'"),
        ({"cron": "0 0 * * *", "timezone": "Local"}, r"timezone\n.*unknown time zone 'Local'"),
        ({"timezone": "UTC"}, r"cron\n.*Field required"),
        ({"cron": "0 0 * * *", "tz": "UTC"}, r"tz\n.*Extra inputs are not permitted"),
    ],
)
def test_reset_by_time_with_invalid_spec_fails(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ResetByTime.model_validate(spec)


@pytest.mark.parametrize(
    "spec",
    [
        {"cron": "59 23 * * *", "timezone": LOS_ANGELES},
        {"cron": "*/15 9-17 * * MON-FRI"},
        {"cron": "0 0 1 jan,jul ?"},
        {"cron": "  0 0 * * *  ", "timezone": ""},
    ],
)
def test_reset_by_time_with_valid_spec_loads(spec: dict[str, Any]) -> None:
    assert ResetByTime.model_validate(spec).cron == spec["cron"]


@pytest.mark.parametrize(
    ("cron", "zone", "now", "last", "next_"),
    [
        # at a tick: last_tick is now, next_tick is the one after
        ("0 0 * * *", "UTC", "2026-06-01T00:00:00", "2026-06-01T00:00:00", "2026-06-02T00:00:00"),
        ("0 0 * * *", "UTC", "2026-06-01T00:00:00.5", "2026-06-01T00:00:00", "2026-06-02T00:00:00"),
        ("0 0 * * *", "UTC", "2026-05-31T23:59:59.999999", "2026-05-31T00:00:00", "2026-06-01T00:00:00"),
        ("*/15 * * * *", "UTC", "2026-06-01T10:07:00", "2026-06-01T10:00:00", "2026-06-01T10:15:00"),
        # the Argo docs' example: 23:59 in Los Angeles (PDT, UTC-7, in June)
        ("59 23 * * *", LOS_ANGELES, "2026-06-02T12:00:00", "2026-06-02T06:59:00", "2026-06-03T06:59:00"),
        ("59 23 * * *", LOS_ANGELES, "2026-06-02T06:59:00", "2026-06-02T06:59:00", "2026-06-03T06:59:00"),
        # sparse schedules: cronsim walks backwards, not minute by minute
        ("0 0 29 2 *", "UTC", "2027-01-01T00:00:00", "2024-02-29T00:00:00", "2028-02-29T00:00:00"),
        ("0 12 1 1 *", "UTC", "2026-06-01T00:00:00", "2026-01-01T12:00:00", "2027-01-01T12:00:00"),
        ("30 4 13 * 5", "UTC", "2026-06-01T00:00:00", "2026-05-29T04:30:00", "2026-06-05T04:30:00"),
    ],
)
def test_ticks_around_now_are_found(cron: str, zone: str, now: str, last: str, next_: str) -> None:
    spec = ResetByTime(cron=cron, timezone=zone)
    found_last, found_next = last_tick(spec, utc(now)), next_tick(spec, utc(now))
    assert (found_last, found_next) == (utc(last), utc(next_))
    assert found_last.tzinfo is UTC
    assert found_next.tzinfo is UTC


def test_ticks_with_now_in_another_offset_are_returned_in_utc() -> None:
    spec = ResetByTime(cron="0 9 * * *", timezone=BERLIN)
    now = datetime(2026, 6, 1, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 05:00 Berlin
    assert last_tick(spec, now) == utc("2026-05-31T07:00:00")
    assert next_tick(spec, now) == utc("2026-06-01T07:00:00")


@pytest.mark.parametrize(
    ("cron", "zone", "now", "last", "next_"),
    [
        # spring forward, Berlin 29 Mar: 02:30 does not exist, the tick moves to 03:00 CEST
        ("30 2 * * *", BERLIN, "2026-03-29T00:30:00", "2026-03-28T02:30+01:00", "2026-03-29T03:00+02:00"),
        ("30 2 * * *", BERLIN, "2026-03-29T01:00:00", "2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00"),
        ("30 2 * * *", BERLIN, "2026-03-29T01:30:00", "2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00"),
        # fall back, Berlin 25 Oct: 02:30 happens twice, the tick only at the first (CEST)
        ("30 2 * * *", BERLIN, "2026-10-25T00:15:00", "2026-10-24T02:30+02:00", "2026-10-25T02:30+02:00"),
        ("30 2 * * *", BERLIN, "2026-10-25T00:30:00", "2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"),
        # now = 02:15 CET (second pass): wall-clock 02:30 is ahead, but the tick already happened
        ("30 2 * * *", BERLIN, "2026-10-25T01:15:00", "2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"),
        ("30 2 * * *", BERLIN, "2026-10-25T01:45:00", "2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"),
        # a daily 01:30 is before Berlin's repeated hour: once a day, nothing special
        ("30 1 * * *", BERLIN, "2026-10-25T00:00:00", "2026-10-25T01:30+02:00", "2026-10-26T01:30+01:00"),
        ("30 1 * * *", BERLIN, "2026-03-29T00:45:00", "2026-03-29T01:30+01:00", "2026-03-30T01:30+02:00"),
        # New York repeats 01:00-02:00 on 1 Nov: a daily 01:30 ticks once, at 01:30 EDT
        ("30 1 * * *", NEW_YORK, "2026-11-01T06:45:00", "2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"),
        # hourly runs by the clock: both 02:00s tick in Berlin, the skipped hour ticks nothing
        ("0 * * * *", BERLIN, "2026-10-25T00:30:00", "2026-10-25T02:00+02:00", "2026-10-25T02:00+01:00"),
        ("0 * * * *", BERLIN, "2026-10-25T01:30:00", "2026-10-25T02:00+01:00", "2026-10-25T03:00+01:00"),
        ("0 * * * *", BERLIN, "2026-03-29T00:30:00", "2026-03-29T01:00+01:00", "2026-03-29T03:00+02:00"),
    ],
)
def test_ticks_across_dst_follow_cronsim(cron: str, zone: str, now: str, last: str, next_: str) -> None:
    spec = ResetByTime(cron=cron, timezone=zone)
    assert local(last_tick(spec, utc(now)), zone) == last
    assert local(next_tick(spec, utc(now)), zone) == next_


@pytest.mark.parametrize(
    ("cron", "zone", "day"),
    [
        ("30 2 * * *", BERLIN, "2026-10-25"),
        ("30 2 * * *", BERLIN, "2026-03-29"),
        ("*/20 2 * * *", BERLIN, "2026-10-25"),
        ("0 * * * *", BERLIN, "2026-10-25"),
        ("15 1 * * *", NEW_YORK, "2026-11-01"),
        ("0 2 * * *", NEW_YORK, "2026-03-08"),
        ("45 1,2 * * *", NEW_YORK, "2026-11-01"),
    ],
)
def test_last_tick_across_dst_day_agrees_with_next_tick(cron: str, zone: str, day: str) -> None:
    spec = ResetByTime(cron=cron, timezone=zone)
    now = utc(f"{day}T00:00:00") - timedelta(hours=6)
    while now < utc(f"{day}T00:00:00") + timedelta(hours=36):
        last = last_tick(spec, now)
        assert last <= now < next_tick(spec, last), now
        assert last_tick(spec, next_tick(spec, now)) == next_tick(spec, now), now
        now += timedelta(minutes=7)


@pytest.mark.parametrize("function", [last_tick, next_tick])
def test_ticks_with_naive_now_fail(function: Any) -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        function(ResetByTime(cron="0 0 * * *"), datetime(2026, 1, 1))

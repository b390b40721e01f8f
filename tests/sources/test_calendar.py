"""The calendar source: occurrences (DST, exclusions, intervals) computed without waiting, validation
with YAML paths, and the timer on the real bus, with the wall clock replaced so restarts and catch-up
run in milliseconds."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import sources.calendar as calendar_kind
import sources.runtime as runtime_module
from eventbus import BusUnavailable, PublishAck
from sources.base import Emitted, EventRef, SourceContext
from sources.calendar import CalendarConfig, CalendarSource, Occurrences, cursor_key, event_id
from sources.spec import EventSourceError, validate_event_source
from sources.stats import EventStats
from tests.sources.conftest import Sources
from tests.support.poll import eventually

NY = "America/New_York"
T0 = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
HOURLY_CATCHUP = {"interval": "1h", "persistence": {"catchup": {"enabled": True}}}


def occurrences(**config: Any) -> Occurrences:
    return CalendarConfig.model_validate(config).occurrences()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ref(event: str = "tick", source: str = "cal") -> EventRef:
    return EventRef("default", source, "calendar", event)


# -- occurrences, without waiting ----------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["30 1 * * *", "0 30 1 * * *"])
def test_fixed_time_on_fall_back_day_fires_once_at_its_first_occurrence(schedule: str) -> None:
    occ = occurrences(schedule=schedule, timezone=NY)
    fires = list(occ.between(utc(2026, 10, 31, 12), utc(2026, 11, 2, 12)))
    assert fires == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert [occ.event_time(f) for f in fires] == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_fixed_time_inside_the_repeated_hour_is_not_fired_again() -> None:
    occ = occurrences(schedule="30 1 * * *", timezone=NY)
    # 01:45 EST, the second pass through 01:xx: the 01:30 of that day has fired already (EDT).
    assert occ.next_after(utc(2026, 11, 1, 6, 45)) == utc(2026, 11, 2, 6, 30)


@pytest.mark.parametrize(
    ("schedule", "first"), [("30 2 * * *", utc(2026, 3, 8, 7)), ("15 30 2 * * *", utc(2026, 3, 8, 7, 0, 15))]
)
def test_fixed_time_missing_on_spring_forward_day_fires_once_at_the_next_valid_minute(
    schedule: str, first: datetime
) -> None:
    occ = occurrences(schedule=schedule, timezone=NY)
    fires = list(occ.between(utc(2026, 3, 7, 12), utc(2026, 3, 9, 12)))
    assert fires == [first, first.replace(day=9, hour=6, minute=30)]
    assert occ.event_time(fires[0]).startswith("2026-03-08T03:00:")
    assert occ.event_time(fires[0]).endswith("-04:00")


def test_hourly_schedule_runs_by_elapsed_time_across_dst() -> None:
    occ = occurrences(schedule="0 * * * *", timezone=NY)
    fall = [occ.event_time(f) for f in occ.between(utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 7, 30))]
    assert fall == ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"]
    spring = [occ.event_time(f) for f in occ.between(utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 8, 30))]
    assert spring == ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]


def test_schedule_without_timezone_is_utc_and_event_time_says_z() -> None:
    occ = occurrences(schedule="@daily")
    fire = occ.next_after(utc(2026, 5, 1, 12))
    assert fire == utc(2026, 5, 2)
    assert occ.event_time(fire) == "2026-05-02T00:00:00Z"


def test_cron_tz_prefix_sets_the_zone() -> None:
    occ = occurrences(schedule="CRON_TZ=Europe/Berlin 0 9 * * *")
    assert occ.event_time(occ.next_after(utc(2026, 7, 1)) or T0) == "2026-07-01T09:00:00+02:00"


def test_interval_fires_at_multiples_of_the_interval_since_the_epoch() -> None:
    occ = occurrences(interval="1m30s")
    assert list(occ.between(utc(2026, 1, 1, 0, 0, 1), utc(2026, 1, 1, 0, 5))) == [
        utc(2026, 1, 1, 0, 1, 30), utc(2026, 1, 1, 0, 3), utc(2026, 1, 1, 0, 4, 30)
    ]  # fmt: skip
    fast = occurrences(interval="200ms")
    assert fast.next_after(utc(2026, 1, 1, 0, 0, 0)) == utc(2026, 1, 1) + timedelta(milliseconds=200)


def test_exclusion_dates_skip_whole_days_in_the_schedule_zone() -> None:
    excluded = ["2026-12-25", "EXDATE:20261227T000000Z", "2026-12-29T15:00:00+01:00"]
    occ = occurrences(schedule="30 23 * * *", timezone=NY, exclusionDates=excluded)
    days = [occ.event_time(f)[:10] for f in occ.between(utc(2026, 12, 23, 12), utc(2026, 12, 31, 12))]
    # 23:30 in New York on the 24th is the 25th in UTC: it is the New York date that counts.
    assert days == ["2026-12-23", "2026-12-24", "2026-12-26", "2026-12-28", "2026-12-30"]


def test_exclusion_dates_apply_to_intervals() -> None:
    occ = occurrences(interval="1h", exclusionDates=["2026-01-02"])
    assert (
        occ.count(utc(2026, 1, 1), utc(2026, 1, 3, 0, 30)) == 24
    )  # 01:00..23:00 on the 1st, then 00:00 on the 3rd
    assert occ.next_after(utc(2026, 1, 1, 23)) == utc(2026, 1, 3)


def test_event_id_is_the_same_for_the_same_occurrence_only() -> None:
    assert event_id(ref(), utc(2026, 1, 1)) == "default/cal/tick@1767225600"
    assert event_id(ref(), utc(2026, 1, 1) + timedelta(milliseconds=200)) == "default/cal/tick@1767225600.2"
    assert event_id(ref(), utc(2026, 1, 1)) == event_id(
        ref(), datetime.fromisoformat("2025-12-31T19:00:00-05:00")
    )
    assert (
        len(
            {
                event_id(ref(), utc(2026, 1, 1)),
                event_id(ref("other"), utc(2026, 1, 1)),
                event_id(ref(source="x"), utc(2026, 1, 1)),
            }
        )
        == 3
    )


def test_cursor_key_escapes_names_kv_does_not_allow() -> None:
    assert cursor_key(ref("every day", "my.cal")) == "default.my=2Ecal.every=20day"


# -- validation ----------------------------------------------------------------------------------


def validate(events: dict[str, Any]) -> None:
    manifest = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "cal"},
        "spec": {"calendar": events},
    }
    validate_event_source(manifest, "cal.yaml", "default")


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"schedule": "61 * * * *"}, r"spec\.calendar\.tick\.schedule: invalid cron expression '61 \* \* \* \*': Bad minute"),
        ({"schedule": "* * *"}, r"spec\.calendar\.tick\.schedule: invalid cron expression .*expected 5 fields .* found 3"),
        ({"schedule": "0 0 31 2 *"}, r"spec\.calendar\.tick\.schedule: .*Bad day-of-month"),
        ({"schedule": "@every 10s"}, r"spec\.calendar\.tick\.schedule: .*write interval: 10s instead"),
        ({"schedule": "@fortnightly"}, r"spec\.calendar\.tick\.schedule: .*unknown macro '@fortnightly'"),
        ({"schedule": "CRON_TZ=Mars/Olympus 0 * * * *"}, r"spec\.calendar\.tick\.schedule: .*unknown time zone 'Mars/Olympus'"),
        ({"interval": "10"}, r"spec\.calendar\.tick\.interval: invalid duration '10'"),
        ({"interval": "0s"}, r"spec\.calendar\.tick\.interval: interval must be more than 0"),
        ({}, r"spec\.calendar\.tick: give exactly one of schedule, interval"),
        ({"schedule": "* * * * *", "interval": "1m"}, r"spec\.calendar\.tick: give exactly one of schedule, interval"),
        ({"schedule": "* * * * *", "timezone": "Mars/Olympus"}, r"spec\.calendar\.tick\.timezone: unknown time zone 'Mars/Olympus'"),
        ({"schedule": "CRON_TZ=UTC 0 * * * *", "timezone": NY}, r"spec\.calendar\.tick: schedule: a CRON_TZ= prefix cannot be combined"),
        ({"interval": "1m", "exclusionDates": ["2026-01-01", "tomorrow"]}, r"spec\.calendar\.tick\.exclusionDates: \[1\] 'tomorrow' is not"),
        ({"interval": "1m", "exclusionDates": ["2026-01-01T10:00:00"]}, r"spec\.calendar\.tick\.exclusionDates: .*needs an offset"),
        ({"interval": "1m", "exclusionDates": ["EXDATE:2026-01-01"]}, r"spec\.calendar\.tick\.exclusionDates: \[0\]"),
        ({"interval": "1m", "persistence": {"catchup": {"enabled": True, "maxDuration": "a while"}}},
         r"spec\.calendar\.tick\.persistence\.catchup\.maxDuration: invalid duration 'a while'"),
        ({"interval": "1m", "filter": {"expression": "true"}}, r"spec\.calendar\.tick: filter: source-side filters are not supported"),
        ({"interval": "1m", "userPayload": {}}, r"spec\.calendar\.tick\.userPayload: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_invalid_calendar_fails_with_its_yaml_path(config: dict[str, Any], error: str) -> None:
    with pytest.raises(EventSourceError, match=error):
        validate({"tick": config})


def test_argo_calendar_with_every_field_is_accepted() -> None:
    validate({
        "a": {"schedule": "*/10 * * * *", "timezone": NY, "metadata": {"k": "v"}, "exclusionDates": ["EXDATE:20261225T000000Z,20260101T000000Z"],
              "persistence": {"catchup": {"enabled": True, "maxDuration": "5m"}, "configMap": {"name": "cal", "createIfNotExist": True}}},
        "b": {"interval": "1h30m"},
        "c": {"schedule": "0 30 2 ? * MON-FRI"},
    })  # fmt: skip


# -- the timer on the real bus ---------------------------------------------------------------------


class FakeClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(T0)
    monkeypatch.setattr(calendar_kind, "now", fake.now)
    monkeypatch.setattr(calendar_kind, "MAX_NAP", 0.01)  # read the fake clock often
    return fake


@pytest.fixture
def cal(sources: Sources, monkeypatch: pytest.MonkeyPatch) -> Sources:
    """The source runtime, lending the bus to the source context if SourceContext does not carry it yet."""
    if "bus" not in {f.name for f in dataclasses.fields(SourceContext)}:

        def with_bus(**fields: Any) -> SourceContext:
            context = SourceContext(**fields)
            setattr(context, "bus", sources.bus)  # noqa: B010 - not a field of SourceContext yet
            return context

        monkeypatch.setattr(runtime_module, "SourceContext", with_bus)
    return sources


async def stored_cursor(cal: Sources, event: str = "tick") -> datetime | None:
    entry = await (await cal.bus.kv(calendar_kind.BUCKET)).get(cursor_key(ref(event)))
    return datetime.fromisoformat(json.loads(entry.value)["cursor"]) if entry else None


def stats(cal: Sources) -> dict[str, Any]:
    result: dict[str, Any] = cal.runtime.stats("default", "cal").get("tick", {})
    return result


async def fire_first(cal: Sources, clock: FakeClock, config: dict[str, Any]) -> None:
    """Apply at 00:30 (nothing owed), let 01:00 fire, and stop: a source that ran once and went down."""
    await cal.apply("cal", {"tick": config}, kind="calendar")
    await eventually(lambda: _is(stored_cursor(cal), T0), what="the first cursor")
    clock.at = utc(2026, 1, 1, 1)
    await eventually(lambda: _is(stored_cursor(cal), clock.at), what="01:00 fired")
    assert await cal.count() == 1
    await cal.runtime.remove("default", "cal")


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    return bool(await value == expected)


def event_times(events: list[Any]) -> list[str]:
    return [e.data["eventTime"] for e in events]


@pytest.mark.nats
async def test_interval_emits_events_with_increasing_event_time(cal: Sources) -> None:
    await cal.apply("cal", {"tick": {"interval": "200ms", "metadata": {"team": "ops"}}}, kind="calendar")
    await eventually(lambda: _at_least(cal.count(), 3), what="three ticks")
    await cal.runtime.remove("default", "cal")
    events = await cal.stored()
    times = [datetime.fromisoformat(t) for t in event_times(events)]
    assert times == sorted(set(times))
    assert all(
        (b - a) % timedelta(milliseconds=200) == timedelta(0) and b > a for a, b in itertools.pairwise(times)
    )
    for event, when in zip(events, times, strict=True):
        assert event.id == event_id(ref(), when)
        assert (event.source, event.type, event.subject) == ("cal", "calendar", "tick")
        assert event.data["metadata"] == {"team": "ops"}
        assert event.data["eventTime"].endswith("Z")


async def _at_least(value: Awaitable[int], n: int) -> bool:
    return await value >= n


@pytest.mark.nats
async def test_restart_with_catchup_fires_exactly_the_missed_occurrences_once(
    cal: Sources, clock: FakeClock
) -> None:
    await fire_first(cal, clock, HOURLY_CATCHUP)
    clock.at = utc(2026, 1, 1, 4, 10)  # 02:00, 03:00 and 04:00 were missed while down
    await cal.apply("cal", {"tick": HOURLY_CATCHUP}, kind="calendar")
    await eventually(lambda: _is(stored_cursor(cal), utc(2026, 1, 1, 4)), what="the catch-up")
    events = await cal.stored()
    missed = [utc(2026, 1, 1, h) for h in (1, 2, 3, 4)]
    assert [e.id for e in events] == [event_id(ref(), m) for m in missed]
    assert event_times(events) == [m.isoformat().replace("+00:00", "Z") for m in missed]
    assert stats(cal)["published"] == 3 and stats(cal)["duplicates"] == 0

    await cal.runtime.remove("default", "cal")  # a restart with nothing missed fires nothing again
    await cal.apply("cal", {"tick": HOURLY_CATCHUP}, kind="calendar")
    clock.at = utc(2026, 1, 1, 5)
    await eventually(lambda: _is(stored_cursor(cal), clock.at), what="05:00 fired")
    assert await cal.count() == 5
    assert stats(cal)["published"] == 1 and stats(cal)["duplicates"] == 0


@pytest.mark.nats
async def test_restart_without_catchup_skips_the_missed_occurrences(
    cal: Sources, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sources.calendar")
    await fire_first(cal, clock, {"interval": "1h"})
    clock.at = utc(2026, 1, 1, 4, 10)
    await cal.apply("cal", {"tick": {"interval": "1h"}}, kind="calendar")
    await eventually(lambda: stats(cal).get("rejected") == {"skipped": 3}, what="the skip")
    assert await cal.count() == 1
    assert (
        "calendar default/cal tick: skipped 3 missed occurrences after 2026-01-01T01:00:00+00:00 (catch-up is off)"
        in caplog.text
    )
    clock.at = utc(2026, 1, 1, 5)  # and it carries on with the schedule
    await eventually(lambda: _is(cal.count(), 2), what="05:00 fired")
    assert event_times(await cal.stored())[-1] == "2026-01-01T05:00:00Z"


@pytest.mark.nats
async def test_catchup_is_bounded_by_max_duration(cal: Sources, clock: FakeClock) -> None:
    config = {"interval": "1h", "persistence": {"catchup": {"enabled": True, "maxDuration": "2h"}}}
    await fire_first(cal, clock, config)
    clock.at = utc(2026, 1, 1, 6, 10)  # 02:00..06:00 missed; only the last 2 hours are caught up
    await cal.apply("cal", {"tick": config}, kind="calendar")
    await eventually(lambda: _is(stored_cursor(cal), utc(2026, 1, 1, 6)), what="the catch-up")
    assert event_times(await cal.stored())[1:] == ["2026-01-01T05:00:00Z", "2026-01-01T06:00:00Z"]
    assert stats(cal)["rejected"] == {"skipped": 3}


@pytest.mark.nats
async def test_fire_whose_cursor_was_lost_is_stored_once_by_the_bus(cal: Sources, clock: FakeClock) -> None:
    await fire_first(cal, clock, HOURLY_CATCHUP)
    kv = await cal.bus.kv(calendar_kind.BUCKET)
    entry = await kv.get(cursor_key(ref()))
    assert entry is not None
    # As if the process died between storing the 01:00 event and moving the cursor past it.
    await kv.put(entry.key, json.dumps({**json.loads(entry.value), "cursor": T0.isoformat()}).encode())
    clock.at = utc(2026, 1, 1, 1, 0, 5)
    await cal.apply("cal", {"tick": HOURLY_CATCHUP}, kind="calendar")
    await eventually(lambda: stats(cal).get("duplicates") == 1, what="the re-fire")
    assert await cal.count() == 1


@pytest.mark.nats
async def test_changed_schedule_does_not_catch_up_the_new_schedules_past(
    cal: Sources, clock: FakeClock
) -> None:
    await fire_first(cal, clock, HOURLY_CATCHUP)
    clock.at = utc(2026, 1, 1, 1, 30)
    every_minute = {"interval": "1m", "persistence": {"catchup": {"enabled": True}}}
    await cal.apply("cal", {"tick": every_minute}, kind="calendar")
    await eventually(lambda: _is(stored_cursor(cal), clock.at), what="a new cursor")
    clock.at = utc(2026, 1, 1, 1, 31)
    await eventually(lambda: _is(cal.count(), 2), what="01:31 fired")
    assert event_times(await cal.stored())[-1] == "2026-01-01T01:31:00Z"


# -- stopping --------------------------------------------------------------------------------------


async def test_stop_ends_the_timer_while_the_bus_cannot_store(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sources.calendar")
    attempts: list[Emitted] = []

    async def unavailable(event: Emitted) -> tuple[str, str, PublishAck]:
        attempts.append(event)
        raise BusUnavailable("nats://nowhere", "connection refused")

    config = CalendarConfig.model_validate({"interval": "1h"})
    source = CalendarSource(ref(), config, SourceContext(http=None, secrets=None, stats=EventStats()))
    await source.start(unavailable)
    await eventually(lambda: source.next_at == utc(2026, 1, 1, 1), what="the timer")
    clock.at = utc(2026, 1, 1, 1)
    await eventually(lambda: len(attempts) >= 2, what="a retry")
    await source.stop()
    assert not source.running
    assert {e.id for e in attempts} == {event_id(ref(), clock.at)}
    assert (
        "↻ calendar default/cal tick: 2026-01-01T01:00:00Z not stored (NATS at nats://nowhere is unavailable"
        in caplog.text
    )

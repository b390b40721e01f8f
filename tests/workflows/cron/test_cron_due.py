"""due_runs with an injected clock: plain datetimes, restarts simulated by replaying stored state."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from workflows.cron import CronSchedule, Decision, due_runs, latest_fire, next_fire, parse_schedules
from workflows.models.resources import CronWorkflowSpec

CREATED = datetime(2026, 5, 5, 11, 58, 30, tzinfo=UTC)


def spec(**fields: object) -> CronWorkflowSpec:
    return CronWorkflowSpec.model_validate(
        {**fields, "workflowSpec": {"entrypoint": "main", "templates": []}}
    )


def every_5_minutes() -> CronSchedule:
    return parse_schedules(spec(schedules=["*/5 * * * *"]))


def at(hour: int, minute: int, second: float = 0) -> datetime:
    return datetime(2026, 5, 5, hour, minute, tzinfo=UTC) + timedelta(seconds=second)


def test_due_runs_never_fired_before_first_time_waits_for_it() -> None:
    decision = due_runs(every_5_minutes(), None, at(11, 59), None, created_at=CREATED)
    assert decision == Decision(run=None, skipped=None, last_scheduled=None, wake_at=at(12, 0))


def test_due_runs_never_fired_at_first_time_runs_it() -> None:
    decision = due_runs(every_5_minutes(), None, at(12, 0, 0.2), None, created_at=CREATED)
    assert decision == Decision(run=at(12, 0), skipped=None, last_scheduled=at(12, 0), wake_at=at(12, 5))


def test_due_runs_never_fired_does_not_run_times_before_creation() -> None:
    created = at(12, 0, 30)  # created just after 12:00, scheduler asks at 12:00:40
    decision = due_runs(every_5_minutes(), None, at(12, 0, 40), None, created_at=created)
    assert (decision.run, decision.skipped, decision.wake_at) == (None, None, at(12, 5))


@pytest.mark.parametrize(
    ("deadline", "run", "skipped"),
    [(None, None, at(12, 0)), (600, at(12, 0), None)],
)
def test_due_runs_never_fired_while_scheduler_was_down_uses_deadline(
    deadline: int | None, run: datetime | None, skipped: datetime | None
) -> None:
    decision = due_runs(every_5_minutes(), None, at(12, 3), deadline, created_at=at(9, 0))
    assert (decision.run, decision.skipped, decision.last_scheduled) == (run, skipped, at(12, 0))


def test_due_runs_fired_recently_does_nothing_until_next_time() -> None:
    decision = due_runs(every_5_minutes(), at(12, 0), at(12, 2), 600, created_at=CREATED)
    assert decision == Decision(run=None, skipped=None, last_scheduled=at(12, 0), wake_at=at(12, 5))


def test_due_runs_replayed_after_storing_its_run_does_not_fire_again() -> None:
    first = due_runs(every_5_minutes(), at(11, 55), at(12, 0, 0.05), None, created_at=CREATED)
    again = due_runs(every_5_minutes(), first.last_scheduled, at(12, 0, 0.3), None, created_at=CREATED)
    assert first.run == at(12, 0)
    assert again.run is None
    assert again.skipped is None


def test_due_runs_missed_several_within_deadline_runs_only_the_latest() -> None:
    decision = due_runs(every_5_minutes(), at(12, 0), at(12, 17), 600, created_at=CREATED)
    assert decision == Decision(run=at(12, 15), skipped=None, last_scheduled=at(12, 15), wake_at=at(12, 20))


def test_due_runs_missed_beyond_deadline_skips_and_advances_so_it_is_not_retried() -> None:
    decision = due_runs(every_5_minutes(), at(12, 0), at(12, 17), 60, created_at=CREATED)
    assert decision == Decision(run=None, skipped=at(12, 15), last_scheduled=at(12, 15), wake_at=at(12, 20))
    later = due_runs(every_5_minutes(), decision.last_scheduled, at(12, 18), 3600, created_at=CREATED)
    assert (later.run, later.skipped) == (None, None)


def test_due_runs_clock_jumped_backwards_fires_nothing_already_fired() -> None:
    decision = due_runs(every_5_minutes(), at(12, 15), at(12, 7), 3600, created_at=CREATED)
    # 12:10 and 12:15 are in the past of the stored cursor: waiting until the first time after it
    assert decision == Decision(run=None, skipped=None, last_scheduled=at(12, 15), wake_at=at(12, 20))


@pytest.mark.parametrize(
    ("deadline", "late", "runs"),
    [
        (None, 0, True),
        (None, 10, True),  # within ON_TIME: counts as on time, as Argo's engine would have fired it
        (None, 11, False),  # unset deadline: a missed time never runs (Argo v3.6+)
        (0, 11, False),
        (60, 59, True),
        (60, 60, False),  # Argo: run only if now is before scheduled + deadline
    ],
)
def test_due_runs_lateness_against_deadline(deadline: int | None, late: int, runs: bool) -> None:
    decision = due_runs(every_5_minutes(), at(11, 55), at(12, 0, late), deadline, created_at=CREATED)
    assert decision.run == (at(12, 0) if runs else None)
    assert decision.skipped == (None if runs else at(12, 0))
    assert decision.last_scheduled == at(12, 0)


def test_due_runs_with_custom_on_time_tolerance() -> None:
    decision = due_runs(
        every_5_minutes(), at(11, 55), at(12, 0, 3), None, created_at=CREATED, on_time=timedelta(0)
    )
    assert (decision.run, decision.skipped) == (None, at(12, 0))


def test_due_runs_with_several_schedules_runs_the_latest_across_them() -> None:
    schedule = parse_schedules(spec(schedules=["0 * * * *", "45 * * * *"]))
    decision = due_runs(schedule, at(11, 0), at(12, 50), 3600, created_at=CREATED)
    assert decision == Decision(run=at(12, 45), skipped=None, last_scheduled=at(12, 45), wake_at=at(13, 0))


def test_due_runs_restart_in_repeated_autumn_hour_does_not_fire_0230_again() -> None:
    schedule = parse_schedules(spec(schedules=["30 2 * * *"], timezone="Europe/Berlin"))
    fired = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    restarted = datetime(2026, 10, 25, 1, 31, tzinfo=UTC)  # 02:31 CET, one minute after the second 02:30
    decision = due_runs(schedule, fired, restarted, 3600, created_at=CREATED)
    assert (decision.run, decision.skipped) == (None, None)
    assert decision.wake_at == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # 02:30 CET next day


def test_due_runs_restart_after_spring_gap_runs_the_moved_0230_at_0300() -> None:
    schedule = parse_schedules(spec(schedules=["30 2 * * *"], timezone="America/New_York"))
    fired = datetime(2026, 3, 7, 7, 30, tzinfo=UTC)  # 02:30 EST on 7 March
    restarted = datetime(2026, 3, 8, 7, 2, tzinfo=UTC)  # 03:02 EDT on 8 March
    decision = due_runs(schedule, fired, restarted, 300, created_at=CREATED)
    assert decision.run == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT


def test_latest_fire_with_ancient_cursor_finds_the_recent_time() -> None:
    yearly = parse_schedules(spec(schedules=["@yearly"]))
    minutely = parse_schedules(spec(schedules=["* * * * *"]))
    ancient = datetime(1990, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert latest_fire(yearly, ancient, at(12, 0)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert latest_fire(minutely, ancient, at(12, 0, 59)) == at(12, 0)
    assert latest_fire(yearly, datetime(2026, 1, 1, tzinfo=UTC), at(12, 0)) is None  # cursor excluded
    assert latest_fire(yearly, ancient, datetime(1990, 6, 1, tzinfo=UTC)) is None


def test_due_runs_scheduler_loop_with_crashes_submits_each_time_and_replays_only_unstored_ones() -> None:
    """A loop that wakes late and sometimes crashes before submitting or before storing the cursor."""
    schedule = parse_schedules(spec(schedules=["*/10 * * * *", "5 1-3 * * *"], timezone="Europe/Berlin"))
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # 00:00 CEST, covers the Berlin fall-back night
    end = start + timedelta(hours=8)
    rng = random.Random(7)
    submitted: dict[datetime, int] = {}  # keyed by scheduled time, as Argo names the child workflow
    replays = 0
    stored: datetime | None = None
    now = start
    while now < end:
        decision = due_runs(schedule, stored, now, 30, created_at=start)
        crash = rng.random()
        if crash < 0.1:  # crashed before submitting: restarts a few seconds later
            now += timedelta(seconds=rng.uniform(1, 5))
            continue
        if decision.run is not None:
            submitted[decision.run] = submitted.get(decision.run, 0) + 1
        if crash < 0.2:  # crashed after submitting, before storing the cursor
            replays += decision.run is not None
            now += timedelta(seconds=rng.uniform(1, 5))
            continue
        stored = decision.last_scheduled
        now = decision.wake_at + timedelta(seconds=rng.uniform(0, 3))
    expected = []
    moment = start
    while (moment := next_fire(schedule, moment)) < end:
        expected.append(moment)
    # 47 by the clock ("*/10" in both 02:xx hours; the creation instant itself does not count)
    # plus 01:05 CEST, 02:05 CEST (once, not again at 02:05 CET) and 03:05 CET
    assert len(expected) == 47 + 3
    assert sorted(submitted) == expected
    assert sum(submitted.values()) == len(expected) + replays
    assert replays > 0

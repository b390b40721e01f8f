"""``conditionsReset: [{byTime: {cron, timezone}}]``: when a trigger forgets the events it holds.

At each tick of ``cron`` (read in ``timezone``) the trigger's condition state is cleared; at start, a
held dependency event older than :func:`last_tick` is dropped, since a tick passed while the sensor
was down. With several entries, the latest ``last_tick`` of them all counts.

The cron grammar is Argo's for this field (robfig/cron with minute, hour, day-of-month, month and
day-of-week): exactly 5 fields, no ``@daily`` macros, no seconds, no ``CRON_TZ=`` prefix (use
``timezone``). It is checked by :mod:`workflows.cron.expression`, the same checker CronWorkflows use,
and evaluated by cronsim.

DST follows cronsim (Debian cron), as for CronWorkflows. A schedule with a fixed minute and hour
(``30 2 * * *`` in Europe/Berlin) whose local time is skipped on spring-forward day ticks at the
first minute that exists (03:00 CEST), and one whose local time occurs twice on fall-back day ticks
once, at the first occurrence (02:30 CEST, not again at 02:30 CET). A schedule whose minute or hour
field starts with ``*`` runs by the clock: both 02:00s tick on fall-back day, the skipped hour ticks
nothing. Argo (robfig) differs on the fixed-time case: it skips the missing 02:30 and ticks the
repeated one twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cronsim import CronSim
from pydantic import BaseModel, ConfigDict, field_validator

from workflows.cron.expression import MACROS, InvalidExpression, load_zone, parse_expression
from workflows.cron.schedule import CronSchedule, next_fire

__all__ = ["ResetByTime", "last_tick", "next_tick"]


class ResetByTime(BaseModel):
    """One ``conditionsReset[].byTime`` entry: a 5-field cron and the IANA zone it is read in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        text = value.strip()
        if text.startswith("@"):
            written = MACROS.get(text)
            hint = f", write {written!r}" if written else ""
            raise ValueError(f"{value!r}: macros are not accepted here, only 5 fields{hint}")
        if text.upper().startswith(("CRON_TZ=", "TZ=")):
            raise ValueError(f"{value!r}: put the time zone in the timezone field, not in the expression")
        try:
            parse_expression(text, "cron", None)
        except InvalidExpression as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        try:
            load_zone(value)
        except InvalidExpression as exc:
            raise ValueError(f"{exc}, expected an IANA name such as 'America/Los_Angeles'") from None
        return value


def last_tick(spec: ResetByTime, now: datetime) -> datetime:
    """The most recent tick at or before ``now`` (timezone-aware), in UTC.

    cronsim iterates backwards, so this costs a few steps however sparse the schedule. For a
    fixed-time schedule cronsim walks back through local wall-clock time, which from inside a
    repeated fall-back hour can step over a tick that already happened in real time; the result is
    then moved forward tick by tick while the next one is still at or before ``now``.
    """
    _require_aware(now)
    schedule = _schedule(spec.cron, spec.timezone)
    (expression,) = schedule.expressions
    # Start one second after ``now``: cronsim's first reverse step goes back one second.
    start = (now.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)).astimezone(expression.zone)
    for fire in CronSim(expression.cron, start, reverse=True):
        found = fire.astimezone(UTC)
        if found <= now:
            break
    else:
        raise ValueError(f"{spec.cron!r} has no tick in the 50 years before {now.isoformat()}")
    while (later := next_fire(schedule, found)) <= now:
        found = later
    return found


def next_tick(spec: ResetByTime, now: datetime) -> datetime:
    """The first tick strictly after ``now`` (timezone-aware), in UTC: when to clear the state next."""
    _require_aware(now)
    return next_fire(_schedule(spec.cron, spec.timezone), now)


@lru_cache(maxsize=256)
def _schedule(cron: str, timezone: str) -> CronSchedule:
    zone = load_zone(timezone)
    return CronSchedule(expressions=(parse_expression(cron.strip(), "cron", zone),), zone=zone)


def _require_aware(now: datetime) -> None:
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")

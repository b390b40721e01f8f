"""When a CronWorkflow fires: its schedules and time zone, parsed once, and pure next/previous fire times.

DST follows cronsim, which follows Debian cron. For a schedule with a fixed minute and hour
(``30 2 * * *``), a local time that does not exist on spring-forward day fires at the first minute
that does (03:00 in New York), and a local time that occurs twice on fall-back day fires once, at
its first occurrence (01:30 EDT, not again at 01:30 EST). A schedule whose minute or hour field
starts with ``*`` (``0 * * * *``, ``*/15 2 * * *``) runs by the clock instead: every hour that
exists fires, both 01:00s on fall-back day fire, and the missing hour fires nothing. Argo (robfig)
differs on the fixed-time case: it skips the missing 02:30 and fires the repeated 01:30 twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from cronsim import CronSim

from workflows.cron.errors import CronError
from workflows.cron.expression import CronExpr, InvalidExpression, load_zone, parse_expression
from workflows.models.resources import CronWorkflowSpec

__all__ = ["CronSchedule", "latest_fire", "next_fire", "parse_schedules"]


@dataclass(frozen=True)
class CronSchedule:
    """Every schedule of one CronWorkflow. It fires when any of them does, once per instant."""

    expressions: tuple[CronExpr, ...]
    zone: tzinfo


def parse_schedules(spec: CronWorkflowSpec, path: str = "spec", *, file: str | None = None) -> CronSchedule:
    """Check ``schedule``/``schedules`` and ``timezone`` up front, so a bad spec never reaches the scheduler."""
    zone = None
    if spec.timezone:
        try:
            zone = load_zone(spec.timezone)
        except InvalidExpression as exc:
            raise CronError(f"{path}.timezone", str(exc), value=spec.timezone, file=file) from None
    if spec.schedule and spec.schedules:
        raise CronError(f"{path}.schedules", f"cannot be combined with {path}.schedule", file=file)
    if spec.schedule:
        located = [(f"{path}.schedule", spec.schedule)]
    else:
        located = [(f"{path}.schedules[{i}]", source) for i, source in enumerate(spec.schedules or [])]
    if not located:
        raise CronError(f"{path}.schedules", "at least one schedule is required", file=file)
    expressions = []
    for loc, source in located:
        try:
            expressions.append(parse_expression(source, loc, zone))
        except InvalidExpression as exc:
            reason = f"invalid cron expression {source!r}: {exc}"
            raise CronError(loc, reason, value=source, file=file) from None
    return CronSchedule(expressions=tuple(expressions), zone=zone or UTC)


def next_fire(schedule: CronSchedule, after: datetime) -> datetime:
    """The earliest fire time strictly after ``after``, in UTC: when the scheduler should wake next."""
    _require_aware(after, "after")
    fires = [fire for expr in schedule.expressions if (fire := _next(expr, after)) is not None]
    if not fires:
        raise CronError(schedule.expressions[0].loc, f"never fires after {after.isoformat()}")
    return min(fires)


def latest_fire(schedule: CronSchedule, after: datetime, until: datetime) -> datetime | None:
    """The most recent fire time in ``(after, until]``: the one run to catch up after downtime.

    Scans forward from ever earlier starts (1 hour, 1 day, 24 days, ...) instead of from ``after``,
    so a cursor that is years old costs a few steps, not one per missed run.
    """
    _require_aware(after, "after")
    _require_aware(until, "until")
    span = timedelta(hours=1)
    while after < until:
        start = after if span >= until - after else until - span
        found = None
        fire = next_fire(schedule, start)
        while fire <= until:
            found = fire
            fire = next_fire(schedule, fire)
        if found is not None or start == after:
            return found
        span *= 24
    return None


def _next(expr: CronExpr, after: datetime) -> datetime | None:
    # cronsim walks local wall-clock time for fixed-time schedules, so from inside a repeated
    # fall-back hour it can answer the first occurrence, which is already past: skip it.
    for fire in CronSim(expr.cron, after.astimezone(expr.zone)):
        instant = fire.astimezone(UTC)
        if instant > after:
            return instant
    return None  # cronsim found nothing within 50 years


def _require_aware(moment: datetime, name: str) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")

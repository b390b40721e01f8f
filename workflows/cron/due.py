"""Which scheduled time to run now, from the stored last scheduled time and the clock: restart-safe catch-up.

The caller stores ``Decision.last_scheduled`` after acting on a decision. Everything is measured
from that cursor: only fire times strictly after it count, so replaying a decision after a crash
or a clock that jumped backwards never fires a time twice.

``startingDeadlineSeconds`` follows Argo v3.6+, where a missed time runs only if it is less than
that many seconds old, and an unset deadline means the same as 0. Argo's cron engine also fires
every time that is *not* missed, on the dot; a scheduler that polls cannot tell "on time" from
"missed" except by lateness, so a time at most ``on_time`` late always runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from workflows.cron.schedule import CronSchedule, latest_fire, next_fire

__all__ = ["ON_TIME", "Decision", "due_runs"]

ON_TIME = timedelta(seconds=10)


@dataclass(frozen=True)
class Decision:
    """At most one run, and what to store and when to look again.

    ``run`` is the scheduled time to submit now (Argo's ``workflow.scheduledTime``; Argo names the
    child ``<cron>-<unix seconds of it>``, which makes a repeated submission collide instead of
    running twice). ``skipped`` is the latest missed time that was too late to run. Older missed
    times are dropped silently, as in Argo and Kubernetes. ``last_scheduled`` is the new cursor:
    the run or the skipped time, or the old value unchanged. ``wake_at`` is the next fire time.
    """

    run: datetime | None
    skipped: datetime | None
    last_scheduled: datetime | None
    wake_at: datetime


def due_runs(
    schedule: CronSchedule,
    last_scheduled: datetime | None,
    now: datetime,
    starting_deadline_seconds: int | None,
    *,
    created_at: datetime,
    on_time: timedelta = ON_TIME,
) -> Decision:
    """Decide what a scheduler that woke up at ``now`` owes, so restarts neither repeat nor lose runs.

    ``last_scheduled`` is the stored cursor, ``None`` before the first fire, in which case the
    cron counts from ``created_at``.
    """
    cursor = created_at if last_scheduled is None else last_scheduled
    wake_at = next_fire(schedule, max(now, cursor))
    latest = latest_fire(schedule, cursor, now)
    if latest is None:
        return Decision(run=None, skipped=None, last_scheduled=last_scheduled, wake_at=wake_at)
    late = now - latest
    deadline = timedelta(seconds=starting_deadline_seconds or 0)
    if late <= on_time or late < deadline:
        return Decision(run=latest, skipped=None, last_scheduled=latest, wake_at=wake_at)
    return Decision(run=None, skipped=latest, last_scheduled=latest, wake_at=wake_at)

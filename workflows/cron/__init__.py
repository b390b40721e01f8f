"""When a CronWorkflow fires, and what it does then: pure functions over parsed specs and plain datetimes.

No clock, no I/O: the caller passes ``now`` and stores ``Decision.last_scheduled`` itself, so the
same code serves the scheduler loop, restarts and tests with an injected clock.
"""

from workflows.cron.due import ON_TIME, Decision, due_runs
from workflows.cron.errors import CronError
from workflows.cron.policy import (
    DEFAULT_FAILED_HISTORY,
    DEFAULT_SUCCESSFUL_HISTORY,
    Action,
    ConcurrencyPolicy,
    CronPolicy,
    concurrency_action,
    history_to_delete,
    parse_policy,
)
from workflows.cron.schedule import CronSchedule, latest_fire, next_fire, parse_schedules
from workflows.cron.spec import CronConfig, parse_cron
from workflows.cron.variables import cron_variables

__all__ = [
    "DEFAULT_FAILED_HISTORY",
    "DEFAULT_SUCCESSFUL_HISTORY",
    "ON_TIME",
    "Action",
    "ConcurrencyPolicy",
    "CronConfig",
    "CronError",
    "CronPolicy",
    "CronSchedule",
    "Decision",
    "concurrency_action",
    "cron_variables",
    "due_runs",
    "history_to_delete",
    "latest_fire",
    "next_fire",
    "parse_cron",
    "parse_policy",
    "parse_schedules",
]

"""All of a CronWorkflow's scheduling fields, checked in one call."""

from __future__ import annotations

from dataclasses import dataclass

from workflows.cron.policy import CronPolicy, parse_policy
from workflows.cron.schedule import CronSchedule, parse_schedules
from workflows.models.resources import CronWorkflowSpec

__all__ = ["CronConfig", "parse_cron"]


@dataclass(frozen=True)
class CronConfig:
    """When a CronWorkflow fires and what it does then, both validated."""

    schedule: CronSchedule
    policy: CronPolicy


def parse_cron(spec: CronWorkflowSpec, path: str = "spec", *, file: str | None = None) -> CronConfig:
    """Validate everything the scheduler reads at load time, so it never meets a bad spec at fire time."""
    return CronConfig(
        schedule=parse_schedules(spec, path, file=file),
        policy=parse_policy(spec, path, file=file),
    )

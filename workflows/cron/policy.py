"""What a CronWorkflow does around a fire: overlap with running workflows, and how many finished ones to keep."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal, assert_never

from workflows.cron.errors import CronError
from workflows.models.resources import CronWorkflowSpec

__all__ = [
    "DEFAULT_FAILED_HISTORY",
    "DEFAULT_SUCCESSFUL_HISTORY",
    "Action",
    "ConcurrencyPolicy",
    "CronPolicy",
    "concurrency_action",
    "history_to_delete",
    "parse_policy",
]

DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1
Action = Literal["run", "skip", "replace"]


class ConcurrencyPolicy(StrEnum):
    """``spec.concurrencyPolicy``, as in Kubernetes CronJobs."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


@dataclass(frozen=True)
class CronPolicy:
    """The validated scheduling options of a CronWorkflow, with Argo's defaults filled in."""

    concurrency: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    starting_deadline_seconds: int | None = None
    successful_history_limit: int = DEFAULT_SUCCESSFUL_HISTORY
    failed_history_limit: int = DEFAULT_FAILED_HISTORY


def parse_policy(spec: CronWorkflowSpec, path: str = "spec", *, file: str | None = None) -> CronPolicy:
    """Reject what Argo would reject at submit time (and negative limits, which Argo silently ignores)."""
    policy = spec.concurrency_policy or ConcurrencyPolicy.ALLOW.value
    if policy not in {member.value for member in ConcurrencyPolicy}:
        reason = f"unknown policy {policy!r}, expected Allow, Forbid or Replace"
        raise CronError(f"{path}.concurrencyPolicy", reason, value=policy, file=file)
    counts = {
        "startingDeadlineSeconds": spec.starting_deadline_seconds,
        "successfulJobsHistoryLimit": spec.successful_jobs_history_limit,
        "failedJobsHistoryLimit": spec.failed_jobs_history_limit,
    }
    for field, value in counts.items():
        if value is not None and value < 0:
            raise CronError(f"{path}.{field}", f"must be 0 or more, got {value}", value=value, file=file)
    return CronPolicy(
        concurrency=ConcurrencyPolicy(policy),
        starting_deadline_seconds=spec.starting_deadline_seconds,
        successful_history_limit=_or(spec.successful_jobs_history_limit, DEFAULT_SUCCESSFUL_HISTORY),
        failed_history_limit=_or(spec.failed_jobs_history_limit, DEFAULT_FAILED_HISTORY),
    )


def concurrency_action(policy: ConcurrencyPolicy, active_count: int) -> Action:
    """Whether a due run may start beside the ``active_count`` workflows this cron started earlier.

    ``"replace"`` means: terminate the active ones, then run.
    """
    if active_count == 0:
        return "run"
    match policy:
        case ConcurrencyPolicy.ALLOW:
            return "run"
        case ConcurrencyPolicy.FORBID:
            return "skip"
        case ConcurrencyPolicy.REPLACE:
            return "replace"
        case _:
            assert_never(policy)


def history_to_delete(
    finished: Iterable[tuple[str, str, datetime]],
    successful_limit: int = DEFAULT_SUCCESSFUL_HISTORY,
    failed_limit: int = DEFAULT_FAILED_HISTORY,
) -> list[str]:
    """Names of the workflows past the history limits, so old runs do not pile up.

    ``finished`` holds ``(name, phase, finished_at)``. Succeeded runs and Failed/Error runs are
    counted apart and the newest of each kept; other phases (still running) are never deleted.
    Within each kind the result goes newest first, as Argo deletes them; equal times keep input order.
    """
    succeeded: list[tuple[str, datetime]] = []
    failed: list[tuple[str, datetime]] = []
    for name, phase, finished_at in finished:
        if phase == "Succeeded":
            succeeded.append((name, finished_at))
        elif phase in ("Failed", "Error"):
            failed.append((name, finished_at))
    return _beyond(succeeded, successful_limit) + _beyond(failed, failed_limit)


def _beyond(runs: list[tuple[str, datetime]], keep: int) -> list[str]:
    if keep < 0:
        raise ValueError(f"history limit must be 0 or more, got {keep}")
    newest_first = sorted(runs, key=lambda run: run[1], reverse=True)
    return [name for name, _ in newest_first[keep:]]


def _or(value: int | None, default: int) -> int:
    return default if value is None else value

"""The one error ``workflows.cron`` raises for a user's mistake."""

from __future__ import annotations

from workflows.errors import WorkflowError

__all__ = ["CronError"]


class CronError(WorkflowError):
    """A CronWorkflow's schedule or scheduling policy cannot be used as written.

    Raised while parsing, so a bad spec is rejected when it is loaded instead of when it would
    first fire. ``loc`` is the YAML path (``spec.schedules[1]``), ``value`` the offending value and
    ``file`` the document it came from, when the caller knows it.
    """

    def __init__(self, loc: str, reason: str, *, value: object = None, file: str | None = None) -> None:
        self.loc = loc
        self.reason = reason
        self.value = value
        self.file = file
        message = f"{loc}: {reason}"
        super().__init__(f"{file}: {message}" if file else message)

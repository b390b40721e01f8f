"""Errors raised by the local executor itself.

A node whose command fails, cannot be found or is killed is *not* an error here: that is a normal
:class:`~workflows.executor.spec.ProcessResult`. These exceptions mean the executor could not do its
own job, so the scheduler marks the node ``Error`` (Argo's phase for infrastructure failures).
"""

from __future__ import annotations

from workflows.errors import WorkflowError

__all__ = ["ExecNotFound", "ExecutorError", "InvalidNodeId", "PrivateFsUnavailable", "VolumeMountFailed"]


class ExecutorError(WorkflowError):
    """Base class of the executor's own failures (not the node command's)."""


class InvalidNodeId(ExecutorError):
    """Raised by ``run`` when ``node_id`` cannot safely name a directory under the work dir."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        super().__init__(
            f"node id {node_id!r} is not filesystem-safe: use [A-Za-z0-9_.-], not starting with '.'"
        )


class PrivateFsUnavailable(ExecutorError):
    """Raised when ``private_fs=True`` was asked for but the mount namespace cannot be set up.

    With ``private_fs=None`` the executor falls back to running without isolation instead.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"private filesystem unavailable: {reason}")


class VolumeMountFailed(ExecutorError):
    """A volume or input artifact could not be bound into the node's root (the node never starts);
    the message names the source and the path in the node."""


class ExecNotFound(WorkflowError):
    """The node's command cannot be executed; ``message`` is Go's ``exec.Error`` text, as Argo shows it.

    Raised by the lookup and caught inside ``LocalExecutor.run``, which turns it into a failed
    :class:`~workflows.executor.spec.ProcessResult` (``exit_code=None``): it never reaches the scheduler.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        self.message = f'exec: "{name}": {reason}'
        super().__init__(self.message)

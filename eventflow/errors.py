"""Errors of the composition root; each maps to a CLI exit code."""

from __future__ import annotations

__all__ = ["EventflowError", "StartupError", "UsageError"]


class EventflowError(Exception):
    """A failure the user should see as one line; CLI exit code 1."""

    exit_code = 1


class UsageError(EventflowError):
    """The command line or configuration is wrong; CLI exit code 2."""

    exit_code = 2


class StartupError(EventflowError):
    """The server cannot start (port in use, data dir unwritable, NATS unreachable...)."""

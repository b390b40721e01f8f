"""The Kubernetes client's errors (``workflows.kube``) as trigger outcomes: :class:`KubeUnavailable` is
retried (``TriggerFailed``), :class:`KubeApiError` is final (``TriggerRejected``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from triggers.base import TriggerFailed, TriggerRejected
from workflows.kube import KubeApiError, KubeUnavailable

__all__ = ["as_trigger_outcome"]


@contextlib.contextmanager
def as_trigger_outcome() -> Iterator[None]:
    """Turn the client's errors into the trigger's: retried when trying again can help, else final."""
    try:
        yield
    except KubeUnavailable as exc:
        raise TriggerFailed(str(exc)) from exc
    except KubeApiError as exc:
        raise TriggerRejected(str(exc)) from exc

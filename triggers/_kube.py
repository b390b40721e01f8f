"""The Kubernetes client of the triggers (``workflows.kube``), and its errors as trigger outcomes:
:class:`KubeUnavailable` is retried (``TriggerFailed``), :class:`KubeApiError` is final (``TriggerRejected``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from triggers.base import TriggerFailed, TriggerRejected
from workflows.kube import (
    JSON_PATCH,
    MERGE_PATCH,
    PATCH_TYPES,
    STRATEGIC_MERGE_PATCH,
    ApiResource,
    Cluster,
    KubeAlreadyExists,
    KubeApiError,
    KubeClient,
    KubeConfigError,
    KubeNotFound,
    KubeUnavailable,
    ObjectRef,
)

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "PATCH_TYPES",
    "STRATEGIC_MERGE_PATCH",
    "ApiResource",
    "Cluster",
    "KubeAlreadyExists",
    "KubeApiError",
    "KubeClient",
    "KubeConfigError",
    "KubeNotFound",
    "KubeUnavailable",
    "ObjectRef",
    "as_trigger_outcome",
]


@contextlib.contextmanager
def as_trigger_outcome() -> Iterator[None]:
    """Turn the client's errors into the trigger's: retried when trying again can help, else final."""
    try:
        yield
    except KubeUnavailable as exc:
        raise TriggerFailed(str(exc)) from exc
    except KubeApiError as exc:
        raise TriggerRejected(str(exc)) from exc

"""Where a container or script step runs, as the labels say (pure).

``eventflow.io/executor``: ``local`` (the server's own executor), ``workers`` (``eventflow worker``
processes, on the queue ``eventflow.io/worker-queue`` names, default ``default``) or ``kubernetes`` (a
pod on the server's cluster). A template's ``metadata.labels`` win over the workflow's labels, which win
over the server's default.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["EXECUTORS", "EXECUTOR_LABEL", "WORKER_QUEUE_LABEL", "label_problem"]

EXECUTOR_LABEL = "eventflow.io/executor"
WORKER_QUEUE_LABEL = "eventflow.io/worker-queue"
EXECUTORS = ("local", "workers", "kubernetes")


def label_problem(labels: Mapping[str, str] | None) -> str | None:
    """Why these labels cannot place a step, or None."""
    value = (labels or {}).get(EXECUTOR_LABEL)
    if value is not None and value not in EXECUTORS:
        return f"unknown executor {value!r}: expected {', '.join(EXECUTORS)}"
    if (labels or {}).get(WORKER_QUEUE_LABEL) == "":
        return "an empty worker queue name"
    return None

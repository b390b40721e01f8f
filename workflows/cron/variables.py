"""The ``cronworkflow.*`` variables Argo gives ``spec.when`` and ``stopStrategy.expression``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from workflows.expressions.gofmt import go_json

__all__ = ["cron_variables"]


def cron_variables(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    last_scheduled: datetime | None,
    failed: int,
    succeeded: int,
) -> dict[str, object]:
    """A flat scope (``"cronworkflow.labels.team"``) for ``substitute``/``build_env``, so ``when`` and
    ``stopStrategy`` read the same names as in Argo.

    ``lastScheduledTime`` stays a datetime (``None`` before the first run) so that
    ``now() - cronworkflow.lastScheduledTime`` works; ``labels``/``annotations`` are also given as
    maps, which reaches keys with dots: ``cronworkflow.labels['app.kubernetes.io/name']``.
    Argo v3.6 fills ``cronworkflow.annotations`` with the labels (a bug); this gives the annotations.
    """
    scope: dict[str, object] = {f"cronworkflow.labels.{key}": value for key, value in labels.items()}
    scope.update({f"cronworkflow.annotations.{key}": value for key, value in annotations.items()})
    scope.update(
        {
            "cronworkflow.name": name,
            "cronworkflow.namespace": namespace,
            "cronworkflow.labels": dict(labels),
            "cronworkflow.labels.json": go_json(dict(labels)),
            "cronworkflow.annotations": dict(annotations),
            "cronworkflow.annotations.json": go_json(dict(annotations)),
            "cronworkflow.lastScheduledTime": last_scheduled,
            "cronworkflow.failed": failed,
            "cronworkflow.succeeded": succeeded,
        }
    )
    return scope

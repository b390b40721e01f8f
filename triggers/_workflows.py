"""Creating a workflow in the built-in scheduler for a firing, idempotently (shared by ``k8s`` with
``kind: Workflow`` and ``argoWorkflow``).

The name comes from the firing's idempotency key when the resource uses ``generateName``, so a
redelivered firing finds the workflow it created before instead of creating a second one. A fixed
``metadata.name`` that already exists is accepted only when that workflow carries this firing's
key; otherwise the firing is rejected (Argo would fail with "already exists" too).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from triggers.base import Firing, TriggerContext, TriggerFailed, TriggerRejected, TriggerResult
from workflows.errors import WorkflowError
from workflows.models import Workflow
from workflows.store import AlreadyExists
from workflows.submit import SubmitOptions

__all__ = ["KEY_ANNOTATION", "create_workflow", "firing_annotations", "firing_labels", "is_workflow"]

SENSOR_LABEL = "events.argoproj.io/sensor"
TRIGGER_LABEL = "events.argoproj.io/trigger"
TIMESTAMP_LABEL = "events.argoproj.io/action-timestamp"
KEY_ANNOTATION = "events.argoproj.io/idempotency-key"
EVENTS_ANNOTATION = "events.argoproj.io/event-ids"
SOURCES_ANNOTATION = "events.argoproj.io/event-sources"


def is_workflow(resource: Any) -> bool:
    return isinstance(resource, dict) and resource.get("kind") == "Workflow" and str(resource.get("apiVersion", "")).startswith("argoproj.io/")


def firing_labels(firing: Firing) -> dict[str, str]:
    return {SENSOR_LABEL: firing.sensor, TRIGGER_LABEL: firing.trigger, TIMESTAMP_LABEL: str(int(time.time()))}


def firing_annotations(firing: Firing) -> dict[str, str]:
    """Correlation: the firing's key, its events and where they came from."""
    sources = sorted({f"{e.eventsource}/{e.eventname}" for e in firing.events.values()})
    return {KEY_ANNOTATION: firing.key, EVENTS_ANNOTATION: ",".join(firing.event_ids), SOURCES_ANNOTATION: ",".join(sources)}


async def create_workflow(
    context: TriggerContext, firing: Firing, resource: dict[str, Any], *, options: SubmitOptions | None = None, parameters_applied: bool = False
) -> TriggerResult:
    scheduler = context.scheduler
    if scheduler is None:
        raise TriggerFailed("no workflow scheduler runs in this process")
    manifest = resource if parameters_applied else firing.apply_parameters(resource)
    meta = dict(manifest.get("metadata") or {})
    namespace = str(meta.get("namespace") or firing.namespace)
    name = meta.get("name") or f"{meta.get('generateName') or firing.sensor + '-'}{firing.key[:10]}"
    try:
        workflow = Workflow.model_validate(manifest)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TriggerRejected(f"the Workflow is not valid: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    options = options or SubmitOptions()
    options.namespace, options.name = namespace, str(name)
    options.labels = {**options.labels, **firing_labels(firing)}
    options.annotations = {**options.annotations, **firing_annotations(firing)}
    try:
        record = await scheduler.submit(workflow, options, file=f"sensor {firing.sensor} trigger {firing.trigger}")
    except AlreadyExists:
        existing = await scheduler.store.get_workflow(namespace, str(name))
        if existing is not None and existing.annotations.get(KEY_ANNOTATION) == firing.key:
            return TriggerResult({"workflow": existing.name, "namespace": namespace, "existing": True})
        raise TriggerRejected(f"workflow {namespace}/{name} already exists (created by something else)") from None
    except WorkflowError as exc:
        raise TriggerRejected(str(exc)) from None
    return TriggerResult({"workflow": record.name, "namespace": record.namespace})

"""Creating a workflow in the built-in scheduler for a firing, idempotently (shared by ``k8s`` with
``kind: Workflow`` and ``argoWorkflow``).

The name comes from the firing's idempotency key when the resource uses ``generateName``, so a
redelivered firing finds the workflow it created before instead of creating a second one. A fixed
``metadata.name`` that already exists is accepted only when that workflow carries this firing's
key; otherwise the firing is rejected (Argo would fail with "already exists" too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from triggers.base import Firing, TriggerContext, TriggerFailed, TriggerRejected, TriggerResult
from workflows.durations import parse_duration
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
    result = TriggerResult({"workflow": record.name, "namespace": record.namespace})
    policy = (firing.policy or {}).get("k8s")
    if policy:
        result.detail["policy"] = await _await_labels(scheduler, record.namespace, record.name, policy)
    return result


async def _await_labels(scheduler: Any, namespace: str, name: str, policy: Mapping[str, Any]) -> str:
    """Argo's ``policy.k8s``: poll the created workflow with ``backoff`` until it carries
    ``labels`` (the phase shows as ``workflows.argoproj.io/phase``). On timeout the firing fails
    if ``errorOnBackoffTimeout``, else it succeeds with a note."""
    wanted = {str(k): str(v) for k, v in (policy.get("labels") or {}).items()}
    backoff = policy.get("backoff") or {}
    # The same defaults as the cluster path (triggers/k8s.py K8sPolicy): 5 checks, 1 s apart.
    steps = int(backoff.get("steps") or 5)
    delay = _seconds(backoff.get("duration", "1s"))
    factor = float(backoff.get("factor") or 1)
    for attempt in range(steps):
        record = await scheduler.store.get_workflow(namespace, name)
        labels = {**(record.labels if record else {}), "workflows.argoproj.io/phase": record.phase.value if record else ""}
        if all(labels.get(k) == v for k, v in wanted.items()):
            return "labels matched"
        if attempt < steps - 1:
            await asyncio.sleep(delay)
            delay *= factor
    message = f"policy.k8s: workflow {namespace}/{name} did not get labels {wanted} within {steps} checks"
    if policy.get("errorOnBackoffTimeout"):
        raise TriggerRejected(message)
    return message


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0
    if isinstance(value, int):
        return value / 1e9  # Argo's integer durations are nanoseconds
    return parse_duration(value) if isinstance(value, str) else float(value)

"""``eventflow sensor test``: evaluate a sample event against a sensor offline and say, per dependency
and filter, what passed and why not, and what each trigger would do with it. Nothing is fired."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from eventbus import CloudEvent
from sensors.cel import CelEnvironment
from sensors.compile import CompiledSensor
from sensors.matching import Verdict, match_event
from sensors.parameters import ParameterError, apply_parameters
from sensors.workflow_events import ANY_PHASE, PHASES, WORKFLOWS_SOURCE, is_workflows

__all__ = ["Explanation", "explain", "sample_events"]


@dataclass
class Explanation:
    verdicts: list[Verdict]
    triggers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return any(v.matched for v in self.verdicts)

    def lines(self) -> list[str]:
        out = []
        for v in self.verdicts:
            out.append(f"dependency {v.dependency}: {'MATCH' if v.matched else 'no match'}")
            out += [f"  {r}" for r in v.reasons]
        if not self.verdicts:
            out.append("no dependency listens to this event's source and name")
        for t in self.triggers:
            out.append(f"trigger {t['name']}: {t['verdict']}")
            for p in t.get("parameters", []):
                out.append(f"  {p['dest']} <- {json.dumps(p['value'])}")
            if t.get("error"):
                out.append(f"  error: {t['error']}")
        return out


def sample_events(sensor: CompiledSensor, document: Any, *, webhook: bool = False) -> list[CloudEvent]:
    """A CloudEvent (JSON with ``specversion``) as is; anything else is the data of one event per
    dependency (wrapped as webhook data ``{header, body, metadata}`` when ``webhook``)."""
    if isinstance(document, dict) and "specversion" in document:
        event = CloudEvent.model_validate(document)
        if event.eventsource is None and sensor.dependencies:
            dep = sensor.dependencies[0].spec
            event = event.model_copy(update={"eventsource": dep.eventSourceName, "eventname": dep.eventName})
        return [event]
    data = {"header": {}, "body": document, "metadata": {}} if webhook else document
    seen: set[tuple[str, str]] = set()
    out = []
    for compiled in sensor.dependencies:
        pair = (compiled.spec.eventSourceName, compiled.spec.eventName)
        if pair in seen:
            continue
        seen.add(pair)
        if is_workflows(compiled.spec):
            out.append(_lifecycle_event(sensor.namespace, compiled.spec.eventName, document))
        else:
            out.append(CloudEvent(source=pair[0], subject=pair[1], type="webhook", data=data, namespace=sensor.namespace, eventsource=pair[0], eventname=pair[1]))
    return out


def _lifecycle_event(namespace: str, wanted: str, document: Any) -> CloudEvent:
    """A workflow lifecycle event as the scheduler publishes it, with ``document`` (the workflow's
    data: name, phase, labels, outputs...) as its data, never webhook-wrapped."""
    given = document.get("phase") if isinstance(document, dict) else None
    phase = wanted if wanted != ANY_PHASE else given if given in PHASES else "Succeeded"
    name = document.get("name") if isinstance(document, dict) and isinstance(document.get("name"), str) else None
    return CloudEvent(
        source=f"/eventflow/workflows/{namespace}", type=f"io.eventflow.workflow.{phase.lower()}", subject=name, data=document,
        namespace=namespace, eventsource=WORKFLOWS_SOURCE, eventname=phase,
    )  # fmt: skip


def explain(sensor: CompiledSensor, event: CloudEvent, env: CelEnvironment) -> Explanation:
    verdicts = match_event(sensor, event, env, explain=True)
    result = Explanation(verdicts)
    for trigger in sensor.triggers:
        names = trigger.condition.names
        candidates = {v.dependency: v.event for v in verdicts if v.matched and v.dependency in names}
        matched = {d: e for d, e in candidates.items() if not sensor.own_workflow(trigger, d, e)}
        present = set(matched)
        if candidates and not present:
            result.triggers.append({"name": trigger.name, "verdict": "not fired: the event is about a workflow this trigger created (loop guard)"})
            continue
        if not present:
            result.triggers.append({"name": trigger.name, "verdict": "not concerned (no dependency of its condition matched)"})
            continue
        if not trigger.condition.evaluate(present):
            missing = ", ".join(sorted(names - present))
            result.triggers.append({"name": trigger.name, "verdict": f"waits: condition {trigger.condition.source!r} also needs {missing}"})
            continue
        counted = sorted(d for d in present if sensor.counts.get(d, 1) > 1)
        if counted:
            needs = ", ".join(f"{d}: {sensor.counts[d]}" for d in counted)
            result.triggers.append({"name": trigger.name, "verdict": f"counts toward its condition (matching events needed: {needs})"})
            continue
        events = {d: e for d, e in matched.items() if d in names}
        entry: dict[str, Any] = {"name": trigger.name, "verdict": "would fire"}
        if trigger.spec.within is not None:
            entry["verdict"] = f"would fire if the event is younger than {trigger.spec.within:g}s (within)"
        try:
            doc = json.loads(trigger.spec.template.model_dump_json(exclude_unset=True))
            doc, written = apply_parameters(trigger.template_parameters, doc, events, env)
            resource = ((doc.get(trigger.kind_key) or {}).get("source") or {}).get("resource")
            if resource is not None:
                _, more = apply_parameters(trigger.kind_parameters, resource, events, env)
                written += more
            entry["parameters"] = written
        except ParameterError as exc:
            entry["verdict"] = "would fail"
            entry["error"] = str(exc)
        result.triggers.append(entry)
    return result

"""Does one event satisfy a dependency? Transform, then filters, with Argo's order and operators.

Per dependency: ``transform`` first (its result replaces the data for this dependency only), then the
filter kinds in Argo's order — exprs, data, context, time — plus eventflow's ``cel``. With
``filtersLogicalOperator: and`` every kind given must pass; with ``or`` one passing kind is enough.
A runtime error (a missing field, a wrong type) fails that filter for this event only, with the
reason kept for ``sensor test`` and the debug log; it never stops the sensor.

The event is converted for CEL once and that one activation serves every dependency that has no
transform.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventbus import CloudEvent
from sensors.cel import CelEnvironment, CelEvalError, CelProgram
from sensors.compile import CompiledDependency, CompiledSensor
from sensors.datafilter import FilterMiss
from sensors.eventfilters import context_matches, time_matches
from sensors.workflow_events import is_workflows, phase_matches

__all__ = ["Verdict", "context_of", "match_event"]


@dataclass
class Verdict:
    """The outcome for one dependency: matched or not, the (transformed) event, and why."""

    dependency: str
    matched: bool
    event: CloudEvent
    reasons: list[str] = field(default_factory=list)
    errored: bool = False  # a filter or the transform failed with a runtime error


def context_of(event: CloudEvent) -> dict[str, Any]:
    """The CloudEvent context CEL sees as ``event`` (built by hand: cheaper than ``model_dump``)."""
    context: dict[str, Any] = {
        "specversion": event.specversion, "id": event.id, "source": event.source, "type": event.type,
        "time": event.time, "namespace": event.namespace,
    }  # fmt: skip
    for key in ("subject", "datacontenttype", "dataschema", "eventsource", "eventname"):
        value = getattr(event, key)
        if value is not None:
            context[key] = value
    if event.model_extra:
        context.update(event.model_extra)
    return context


class _Activations:
    """One CEL activation per distinct data: built on first use, shared by the dependencies."""

    def __init__(self, env: CelEnvironment, event: CloudEvent) -> None:
        self.env = env
        self.event = event
        self.context = context_of(event)
        self._shared: Any = None

    def shared(self) -> Any:
        if self._shared is None:
            self._shared = self.env.activation(self.context, self.event.data)
        return self._shared

    def for_data(self, data: Any) -> Any:
        return self.env.activation(self.context, data)


def match_event(sensor: CompiledSensor, event: CloudEvent, env: CelEnvironment, *, explain: bool = False) -> list[Verdict]:
    """Verdicts for every dependency of ``sensor`` that listens to this event's source and name."""
    activations = _Activations(env, event)
    out = []
    for dep in sensor.dependencies:
        if _listens(dep, event):
            out.append(_match(dep, event, activations, explain))
    return out


def _listens(dep: CompiledDependency, event: CloudEvent) -> bool:
    spec = dep.spec
    if spec.eventSourceName != event.eventsource:
        return False
    return phase_matches(spec.eventName, event.eventname) if is_workflows(spec) else spec.eventName == event.eventname


def _match(dep: CompiledDependency, event: CloudEvent, activations: _Activations, explain: bool) -> Verdict:
    reasons: list[str] = []
    activation = activations.shared
    if dep.transform is not None:
        try:
            data = dep.transform.evaluate(activations.shared())
        except CelEvalError as exc:
            return Verdict(dep.name, False, event, [f"transform: error ({exc})"], errored=True)
        event = event.model_copy(update={"data": data})
        transformed = activations.for_data(data)
        activation = lambda: transformed  # noqa: E731 - the transformed data is this dependency's own
        if explain:
            reasons.append("transform: applied")
    filters = dep.spec.filters
    if filters is None:
        return Verdict(dep.name, True, event, reasons or ["no filters"])
    results: list[bool] = []
    if dep.exprs:
        results.append(_group("exprs", dep.exprs, filters.exprLogicalOperator, activation, reasons, explain))
    if dep.cel is not None:
        results.append(_group("cel", (dep.cel,), "and", activation, reasons, explain, indexed=False))
    if dep.data:
        results.append(_data(dep, event.data, filters.dataLogicalOperator, reasons, explain))
    if filters.context is not None:
        ok = context_matches(filters.context, activations.context)
        results.append(ok)
        _note(reasons, explain, ok, "context", "type/subject/source/datacontenttype differ")
    if filters.time is not None:
        ok = time_matches(filters.time, event.time)
        results.append(ok)
        _note(reasons, explain, ok, "time", f"event time {event.time.isoformat()} is outside {filters.time.start}..{filters.time.stop}")
    matched = all(results) if dep.spec.filtersLogicalOperator == "and" else any(results)
    errored = bool(reasons) and any("(error: " in r for r in reasons)
    return Verdict(dep.name, matched if results else True, event, reasons, errored)


def _group(
    name: str, programs: tuple[CelProgram, ...], operator: str, activation: Callable[[], Any], reasons: list[str],
    explain: bool, *, indexed: bool = True,
) -> bool:  # fmt: skip
    want_all = operator == "and"
    for i, program in enumerate(programs):
        try:
            ok = program.test(activation())
            why = "false"
        except CelEvalError as exc:
            ok, why = False, f"error: {exc}"
        if explain or not ok:
            _note(reasons, explain, ok, f"{name}[{i}]" if indexed else name, why)
        if ok != want_all:  # the first failure of an AND, the first pass of an OR decides
            return ok
    return want_all


def _data(dep: CompiledDependency, data: Any, operator: str, reasons: list[str], explain: bool) -> bool:
    want_all = operator == "and"
    for i, compiled in enumerate(dep.data):
        try:
            ok = compiled.matches(data)
            why = "no value matched"
        except FilterMiss as exc:
            ok, why = False, f"error: {exc}"
        _note(reasons, explain, ok, f"data[{i}]", why)
        if ok != want_all:
            return ok
    return want_all


def _note(reasons: list[str], explain: bool, ok: bool, label: str, why: str) -> None:
    if ok:
        if explain:
            reasons.append(f"{label}: pass")
    else:
        reasons.append(f"{label}: fail ({why})")

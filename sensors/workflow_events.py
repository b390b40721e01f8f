"""The built-in event source ``workflows``: a dependency on workflow lifecycle events.

A dependency with ``eventSourceName: workflows`` reads the workflows stream, not the events stream:
``eventName`` is a phase the scheduler publishes (``Running``, ``Succeeded``, ``Failed``, ``Error``)
or ``*`` for every phase, and only workflows of the Sensor's own namespace are seen. The event is
the lifecycle event exactly as published: its data is the workflow (``data.labels``,
``data.outputs.parameters``, ...), with no ``body`` or ``header``.

Pure functions, no I/O: the validation at apply time, the phase match and the loop guard (a trigger
never fires on the lifecycle events of a workflow it created itself).
"""

from __future__ import annotations

import re
from typing import Any

from eventbus import CloudEvent
from sensors.cel import CEL_MACROS, cel_tokens
from sensors.spec import Dependency, ParameterSource
from triggers._workflows import SENSOR_LABEL, TRIGGER_LABEL
from workflows.lifecycle import DELETED
from workflows.status import WorkflowPhase

__all__ = [
    "ANY_PHASE",
    "PHASES",
    "WORKFLOWS_SOURCE",
    "check_dependency",
    "check_parameter_source",
    "created_by",
    "is_workflows",
    "phase_matches",
    "reserved_name_problem",
]

WORKFLOWS_SOURCE = "workflows"
ANY_PHASE = "*"
# The phases the scheduler publishes an event for (a workflow's first event is Running; Pending has none).
PHASES: tuple[str, ...] = tuple(p.value for p in WorkflowPhase if p is not WorkflowPhase.PENDING)
# What a dependency may name: a phase, or a deletion (which "*" leaves out: it is not a phase change).
EVENT_NAMES: tuple[str, ...] = (*PHASES, DELETED)
DOCS = 'docs/sensors.md, "Chaining workflows"'
_NO_BODY = "workflow events have no {name!r}: their data is the workflow itself; "
_NO_BODY_CEL = _NO_BODY + "write data.labels, data.outputs.parameters, ... (" + DOCS + ")"
_NO_BODY_PATH = (
    _NO_BODY
    + "paths start at its fields: name, phase, labels.team, outputs.parameters.0.value, ... ("
    + DOCS
    + ")"
)


def is_workflows(dep: Dependency) -> bool:
    return dep.eventSourceName == WORKFLOWS_SOURCE


def phase_matches(wanted: str, phase: str | None) -> bool:
    return (wanted == ANY_PHASE and phase != DELETED) or wanted == phase


def reserved_name_problem(name: Any) -> str | None:
    """Why an EventSource may not have this name (None if it may): ``workflows`` is built in."""
    if name != WORKFLOWS_SOURCE:
        return None
    return (
        f"metadata.name: {WORKFLOWS_SOURCE!r} is reserved: Sensors read eventSourceName: {WORKFLOWS_SOURCE} "
        f"from the workflow lifecycle events, so this EventSource's events would reach no Sensor; choose another name"
    )


def created_by(event: CloudEvent, sensor: str, triggers: frozenset[str]) -> bool:
    """Whether a lifecycle event is about a workflow that ``sensor``'s trigger (one of ``triggers``:
    the trigger and its dlqTrigger) created, by the labels every created workflow carries."""
    data = event.data if isinstance(event.data, dict) else {}
    labels = data.get("labels")
    if not isinstance(labels, dict) or labels.get(SENSOR_LABEL) != sensor:
        return False
    return labels.get(TRIGGER_LABEL) in triggers


def check_dependency(dep: Dependency, where: str) -> list[str]:
    """Problems of a ``workflows`` dependency: an unknown phase, and reading ``body``/``header``
    (always null/empty here) in CEL or a path before any transform reshapes the data."""
    problems = []
    if dep.eventName != ANY_PHASE and dep.eventName not in EVENT_NAMES:
        known = f"one of: {', '.join(EVENT_NAMES)}, or {ANY_PHASE!r} for every phase"
        if dep.eventName == WorkflowPhase.PENDING.value:
            problems.append(
                f"{where}.eventName: no event is published for 'Pending': a workflow's first event is Running ({known})"
            )
        else:
            hint = next((f"; did you mean {p!r}?" for p in EVENT_NAMES if p.lower() == dep.eventName.lower()), "")
            problems.append(f"{where}.eventName: {dep.eventName!r} is not a workflow phase or Deleted ({known}){hint}")
    if dep.transform is not None and dep.transform.cel:
        problems += _reads_body(dep.transform.cel, f"{where}.transform.cel")
        return problems  # the filters see the transform's result, whatever its shape
    filters = dep.filters
    if filters is None:
        return problems
    if filters.cel:
        problems += _reads_body(filters.cel, f"{where}.filters.cel")
    for i, expr in enumerate(filters.exprs):
        problems += _reads_body(
            expr.expr, f"{where}.filters.exprs[{i}].expr", bound={f.name for f in expr.fields}
        )
        problems += [
            p
            for j, f in enumerate(expr.fields)
            for p in _path_reads_body(f.path, f"{where}.filters.exprs[{i}].fields[{j}].path")
        ]
    for i, data in enumerate(filters.data):
        problems += _path_reads_body(data.path, f"{where}.filters.data[{i}].path")
    return problems


def check_parameter_source(source: ParameterSource, where: str) -> list[str]:
    """The same check for a parameter ``src`` reading a ``workflows`` dependency without a transform."""
    problems = []
    if source.expression:
        problems += _reads_body(source.expression, f"{where}.src.expression")
    if source.dataKey:
        problems += _path_reads_body(source.dataKey, f"{where}.src.dataKey")
    if source.dataTemplate and re.search(r"\.Input\.(body|headers?)\b", source.dataTemplate):
        problems.append(
            f"{where}.src.dataTemplate: "
            + _NO_BODY.format(name="body")
            + "write {{ .Input.name }}, {{ .Input.labels.team }}, ... ("
            + DOCS
            + ")"
        )
    return problems


def _path_reads_body(path: str, where: str) -> list[str]:
    head = path.split(".", 1)[0]
    return [f"{where}: " + _NO_BODY_PATH.format(name=head)] if head in ("body", "header", "headers") else []


def _reads_body(source: str, where: str, *, bound: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """``body``/``header``/``headers`` used as variables (not ``x.body``, not a macro's own variable)."""
    toks = [(t.kind, t.text) for t in cel_tokens(source)]

    def text(i: int) -> str:
        return toks[i][1] if 0 <= i < len(toks) else ""

    def selected(i: int) -> bool:  # x.body, x.?body; not the leading dot of a root-scoped .body
        dot = i - 1 if text(i - 1) == "." else i - 2 if text(i - 1) == "?" and text(i - 2) == "." else -1
        return dot > 0 and (toks[dot - 1][0] != "op" or text(dot - 1) in (")", "]", "}"))

    binders = {
        text(i + 2)
        for i in range(len(toks))
        if text(i) in CEL_MACROS and text(i + 1) == "(" and text(i + 3) == ","
    }
    for i, (kind, name) in enumerate(toks):
        if (
            kind == "ident"
            and name in ("body", "header", "headers")
            and name not in binders | bound
            and not selected(i)
        ):
            return [f"{where}: " + _NO_BODY_CEL.format(name=name)]
    return []

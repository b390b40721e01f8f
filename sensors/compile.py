"""Validate a Sensor and compile everything in it once: CEL programs, regexes, templates, conditions.

``compile_sensor`` either returns a :class:`CompiledSensor` or raises :class:`SensorError` listing every
problem with its YAML path (``spec.dependencies[0].filters.cel: 1:14: undeclared reference to 'bdy'``).
Nothing is evaluated per event that could have been checked here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from eventbus import CloudEvent
from sensors.cel import CelCompileError, CelEnvironment, CelProgram
from sensors.conditions import Condition, ConditionError, all_of, parse_condition
from sensors.datafilter import CompiledDataFilter, DataFilterError, compile_data_filter
from sensors.gotemplate import TemplateError, compile_template
from sensors.parameters import CompiledParameter
from sensors.paths import check_dest
from sensors.reset import ResetByTime
from sensors.spec import Dependency, ExprFilter, Parameter, SensorSpec, Trigger
from sensors.workflow_events import ANY_PHASE, check_dependency, check_parameter_source, created_by, is_workflows
from triggers.base import ARGO_TRIGGER_KINDS, check_config, kinds

__all__ = ["CompiledDependency", "CompiledSensor", "CompiledTrigger", "SensorError", "compile_sensor", "pydantic_problems"]

API_VERSION = "argoproj.io/v1alpha1"
_TRIGGER_FIELDS = frozenset(Trigger.model_fields) - {"template"}
LUA_HINT = "Lua scripts are not supported; write the condition in CEL as filters.cel, e.g. 'body.x > 3 && header[\"X-Kind\"][0] == \"push\"'"
JQ_HINT = "jq transforms are not supported; use transform.cel, which returns the new data, e.g. '{\"body\": {\"ids\": body.items.map(i, i.id)}}'"
LUA_TRANSFORM_HINT = "Lua transforms are not supported; use transform.cel, which returns the new data, e.g. 'data.with_x = 1' becomes '{\"body\": body, \"x\": 1}'"


class SensorError(ValueError):
    """A Sensor that cannot be applied; ``problems`` are ``<yaml path>: <reason>`` lines."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        super().__init__("\n".join(f"{where}: {p}" for p in problems))


@dataclass(frozen=True)
class CompiledDependency:
    spec: Dependency
    where: str
    transform: CelProgram | None = None
    cel: CelProgram | None = None
    exprs: tuple[CelProgram, ...] = ()
    data: tuple[CompiledDataFilter, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class CompiledTrigger:
    spec: Trigger
    where: str
    kind_key: str
    kind: type[Any]
    condition: Condition
    resets: tuple[ResetByTime, ...]
    template_parameters: tuple[CompiledParameter, ...]
    kind_parameters: tuple[CompiledParameter, ...]
    dlq: CompiledTrigger | None = None
    payload: tuple[CompiledParameter, ...] = ()  # ``<kind>.payload``: the body HTTP/NATS triggers send

    @property
    def name(self) -> str:
        return self.spec.template.name

    @property
    def own_names(self) -> frozenset[str]:
        """Its name and those of its dlqTriggers: the ``events.argoproj.io/trigger`` label of what it creates."""
        names, t = {self.name}, self.dlq
        while t is not None:
            names.add(t.name)
            t = t.dlq
        return frozenset(names)

    @property
    def stateless(self) -> bool:
        """Fires per event with no stored state: a pure OR of dependencies that each need one event."""
        return self.condition.stateless()


@dataclass(frozen=True)
class CompiledSensor:
    namespace: str
    name: str
    spec: SensorSpec
    manifest: dict[str, Any]
    dependencies: tuple[CompiledDependency, ...]
    triggers: tuple[CompiledTrigger, ...]
    counts: dict[str, int] = field(default_factory=dict)  # dependency -> events needed
    workflow_dependencies: frozenset[str] = frozenset()  # names of the ``workflows`` dependencies

    def keeps_state(self, trigger: CompiledTrigger) -> bool:
        """Whether the trigger's decisions need the KV state: anything but a pure OR of
        dependencies that each count one event."""
        return not trigger.stateless or any(self.counts.get(d, 1) > 1 for d in trigger.condition.names)

    def own_workflow(self, trigger: CompiledTrigger, dependency: str, event: CloudEvent) -> bool:
        """The loop guard: whether ``event`` is the lifecycle event of a workflow that ``trigger`` (or
        its dlqTrigger) created; the trigger does not fire on it, or an unfiltered ``Succeeded ->
        submit`` would chain forever."""
        return dependency in self.workflow_dependencies and created_by(event, self.name, trigger.own_names)

    def sources(self) -> set[tuple[str, str]]:
        """(eventSourceName, eventName) pairs the sensor reads from the events stream."""
        return {(d.spec.eventSourceName, d.spec.eventName) for d in self.dependencies if not is_workflows(d.spec)}

    def workflow_phases(self) -> set[str]:
        """The phases its ``workflows`` dependencies read from the workflows stream; ``{"*"}`` when one
        wants them all (JetStream refuses overlapping filters)."""
        phases = {d.spec.eventName for d in self.dependencies if is_workflows(d.spec)}
        return {ANY_PHASE} if ANY_PHASE in phases else phases


def pydantic_problems(exc: ValidationError, prefix: str) -> list[str]:
    out = []
    for err in exc.errors():
        path = prefix
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(f"{path}: {message}")
    return out


def compile_sensor(
    manifest: dict[str, Any], where: str, namespace: str | None, env: CelEnvironment, trigger_context: Mapping[str, Any] | None = None
) -> CompiledSensor:
    """Validate and compile; ``trigger_context`` (the server's) adds the checks that depend on it."""
    problems: list[str] = []
    if manifest.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: expected {API_VERSION}, got {manifest.get('apiVersion')!r}")
    if manifest.get("kind") != "Sensor":
        problems.append(f"kind: expected Sensor, got {manifest.get('kind')!r}")
    meta = manifest.get("metadata") if isinstance(manifest.get("metadata"), dict) else {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        problems.append("metadata.name: required")
    ns = namespace or meta.get("namespace") or "default"
    raw_spec = manifest.get("spec")
    if not isinstance(raw_spec, dict):
        raise SensorError(where, [*problems, "spec: expected a mapping"])
    refused = _refused_shapes(raw_spec)
    try:
        spec = SensorSpec.model_validate(raw_spec)
    except ValidationError as exc:
        problems += refused + [p for p in pydantic_problems(exc, "spec") if not _covered(p, refused)]
        raise SensorError(where, problems) from None
    problems += refused
    deps = [_dependency(d, f"spec.dependencies[{i}]", env, problems) for i, d in enumerate(spec.dependencies)]
    names = [d.name for d in spec.dependencies]
    _unique(names, "spec.dependencies", "dependency", problems)
    _unique([t.template.name for t in spec.triggers], "spec.triggers", "trigger", problems)
    triggers = [_trigger(t, f"spec.triggers[{i}]", names, env, problems, trigger_context) for i, t in enumerate(spec.triggers)]
    problems += _workflow_parameters([t for t in triggers if t is not None], spec.dependencies)
    if problems:
        raise SensorError(where, problems)
    return CompiledSensor(
        namespace=ns, name=str(name), spec=spec, manifest=manifest, dependencies=tuple(deps),
        triggers=tuple(t for t in triggers if t is not None), counts={d.name: d.spec.count for d in deps},
        workflow_dependencies=frozenset(d.name for d in spec.dependencies if is_workflows(d)),
    )  # fmt: skip


def _covered(problem: str, refused: list[str]) -> bool:
    return any(problem.split(":")[0] == r.split(":")[0] for r in refused)


def _refused_shapes(spec: dict[str, Any]) -> list[str]:
    """Argo features refused on purpose, with the CEL alternative, found before model validation so
    the message is the hint rather than a type error."""
    out = []
    for i, dep in enumerate(spec.get("dependencies") or []):
        if not isinstance(dep, dict):
            continue
        filters = dep.get("filters") if isinstance(dep.get("filters"), dict) else {}
        if filters.get("script"):
            out.append(f"spec.dependencies[{i}].filters.script: {LUA_HINT}")
        transform = dep.get("transform") if isinstance(dep.get("transform"), dict) else {}
        if transform.get("jq"):
            out.append(f"spec.dependencies[{i}].transform.jq: {JQ_HINT}")
        if transform.get("script"):
            out.append(f"spec.dependencies[{i}].transform.script: {LUA_TRANSFORM_HINT}")
    return out


def _unique(names: list[str], where: str, what: str, problems: list[str]) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            problems.append(f"{where}[{i}].name: {what} name {n!r} is used twice")
        seen.add(n)


def _cel(source: str, where: str, env: CelEnvironment, problems: list[str], *, result: str = "any") -> CelProgram | None:
    try:
        return env.compile(source, result=result)  # type: ignore[arg-type]
    except CelCompileError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _dependency(dep: Dependency, where: str, env: CelEnvironment, problems: list[str]) -> CompiledDependency:
    filters = dep.filters
    transform = None
    if dep.transform is not None and dep.transform.cel:
        transform = _cel(dep.transform.cel, f"{where}.transform.cel", env, problems)
    if is_workflows(dep):
        problems += check_dependency(dep, where)
    elif dep.eventName == ANY_PHASE:
        # Event names are matched exactly; a '*' here would wait for an event literally named '*'.
        problems.append(
            f"{where}.eventName: '*' (every event) is only for eventSourceName: workflows; "
            f"name the event of EventSource {dep.eventSourceName!r} this dependency waits for"
        )
    cel = exprs = None
    data: list[CompiledDataFilter] = []
    if filters is not None:
        if filters.cel:
            cel = _cel(filters.cel, f"{where}.filters.cel", env, problems, result="bool")
        exprs = [_cel(_bind_fields(e), f"{where}.filters.exprs[{i}].expr", env, problems, result="bool") for i, e in enumerate(filters.exprs)]
        for i, spec in enumerate(filters.data):
            try:
                data.append(compile_data_filter(spec))
            except (DataFilterError, TemplateError) as exc:
                problems.append(f"{where}.filters.data[{i}]: {exc}")
    return CompiledDependency(dep, where, transform, cel, tuple(p for p in exprs or () if p is not None), tuple(data))


def _workflow_parameters(triggers: list[CompiledTrigger], deps: list[Dependency]) -> list[str]:
    """Parameters reading a ``workflows`` dependency's untransformed data must not look for a body."""
    raw = {d.name for d in deps if is_workflows(d) and not (d.transform is not None and d.transform.cel)}
    out: list[str] = []
    for trigger in triggers if raw else []:
        t: CompiledTrigger | None = trigger
        while t is not None:  # the trigger, its dlqTrigger, ...
            for param in (*t.template_parameters, *t.kind_parameters, *t.payload):
                if param.spec.src.dependencyName in raw:
                    out += check_parameter_source(param.spec.src, param.where)
            t = t.dlq
    return out


def _trigger(
    trigger: Trigger, where: str, deps: list[str], env: CelEnvironment, problems: list[str], context: Mapping[str, Any] | None
) -> CompiledTrigger | None:
    template = trigger.template
    tw = f"{where}.template"
    condition: Condition = all_of(deps)
    if template.conditions is not None:
        try:
            condition = parse_condition(template.conditions, deps)
        except ConditionError as exc:
            problems.append(f"{tw}.conditions: {exc}")
    resets = tuple(r.byTime for r in template.conditionsReset if r.byTime is not None)
    keys = template.kind_keys()
    for key in [k for k in keys if k in _TRIGGER_FIELDS]:
        # Argo's decoder drops unknown fields, so these do nothing there; say so instead.
        problems.append(f"{tw}.{key}: belongs on the trigger, not its template: move it to {where}.{key} (Argo silently ignores it here)")
        keys.remove(key)
    available = kinds()
    kind_key = ""
    if len(keys) != 1:
        listed = ", ".join(keys) if keys else "none"
        problems.append(f"{tw}: exactly one trigger kind is required (found: {listed}; supported: {', '.join(sorted(available))})")
    else:
        kind_key = keys[0]
        if kind_key not in available:
            if kind_key.lower() in {k.lower() for k in ARGO_TRIGGER_KINDS}:  # Go's JSON keys are case-insensitive
                problems.append(f"{tw}.{kind_key}: trigger kind {kind_key!r} is not supported (supported: {', '.join(sorted(available))})")
            else:
                problems.append(f"{tw}.{kind_key}: unknown field")
            kind_key = ""
    template_json = json.loads(template.model_dump_json(exclude_unset=True))
    template_params = _parameters(trigger.parameters, f"{where}.parameters", deps, env, problems, template_json)
    kind_params: list[CompiledParameter] = []
    payload: list[CompiledParameter] = []
    if kind_key:
        body = dict((template.model_extra or {})[kind_key] or {})
        raw_params = body.pop("parameters", None) or []
        raw_payload = body.pop("payload", None) or []
        try:
            config = available[kind_key].Config.model_validate(body)
        except ValidationError as exc:
            problems += pydantic_problems(exc, f"{tw}.{kind_key}")
        else:
            problems += check_config(available[kind_key], config, f"{tw}.{kind_key}", context)
        try:
            params = [Parameter.model_validate(p) for p in raw_params]
        except ValidationError as exc:
            problems += pydantic_problems(exc, f"{tw}.{kind_key}.parameters")
            params = []
        resource = (body.get("source") or {}).get("resource") if isinstance(body.get("source"), dict) else None
        kind_params = _parameters(params, f"{tw}.{kind_key}.parameters", deps, env, problems, resource)
        try:
            payload_params = [Parameter.model_validate(p) for p in raw_payload]
        except ValidationError as exc:
            problems += pydantic_problems(exc, f"{tw}.{kind_key}.payload")
            payload_params = []
        payload = _parameters(payload_params, f"{tw}.{kind_key}.payload", deps, env, problems, None)
    dlq = None
    if trigger.dlqTrigger is not None:
        if not trigger.atLeastOnce or not trigger.dlqTrigger.atLeastOnce:
            problems.append(f"{where}.dlqTrigger: needs atLeastOnce on the trigger and on the dlqTrigger (a failure is only known when the trigger waits for it)")
        dlq = _trigger(trigger.dlqTrigger, f"{where}.dlqTrigger", deps, env, problems, context)
    if not kind_key:
        return None
    return CompiledTrigger(
        trigger, where, kind_key, available[kind_key], condition, resets, tuple(template_params), tuple(kind_params), dlq, tuple(payload)
    )


def _parameters(
    params: list[Parameter], where: str, deps: list[str], env: CelEnvironment, problems: list[str], document: Any
) -> list[CompiledParameter]:
    out = []
    for i, param in enumerate(params):
        pw = f"{where}[{i}]"
        src = param.src
        if src.dependencyName not in deps:
            problems.append(f"{pw}.src.dependencyName: unknown dependency {src.dependencyName!r} (dependencies: {', '.join(deps)})")
        templates = {}
        for key in ("dataTemplate", "contextTemplate"):
            text = getattr(src, key)
            if text is not None:
                try:
                    templates[key] = compile_template(text)
                except TemplateError as exc:
                    problems.append(f"{pw}.src.{key}: {exc}")
        expression = _cel(src.expression, f"{pw}.src.expression", env, problems) if src.expression else None
        if document is not None:
            reason = check_dest(document, param.dest)
            if reason is not None:
                problems.append(f"{pw}.dest: {reason}")
        out.append(CompiledParameter(param, pw, templates.get("dataTemplate"), templates.get("contextTemplate"), expression))
    return out


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _bind_fields(spec: ExprFilter) -> str:
    """Argo binds ``fields[].name`` to a path in the data; in CEL the name becomes ``data[...]`` with
    that path, so ``c == 10`` with ``{name: c, path: a-longer-name}`` reads ``data["a-longer-name"] == 10``."""
    if not spec.fields:
        return spec.expr
    paths = {f.name: _cel_path(f.path) for f in spec.fields}
    source, out, i = spec.expr, [], 0
    while i < len(source):
        char = source[i]
        if char in "\"'":
            end = _string_end(source, i)
            out.append(source[i:end])
            i = end
            continue
        match = _IDENT.match(source, i)
        if match:
            word = match.group()
            before = source[:i].rstrip()
            out.append(paths[word] if word in paths and not before.endswith(".") else word)
            i = match.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _string_end(source: str, start: int) -> int:
    quote = source[start : start + 3] if source[start : start + 3] in ('"""', "'''") else source[start]
    i = start + len(quote)
    while i < len(source):
        if source[i] == "\\":
            i += 2
            continue
        if source.startswith(quote, i):
            return i + len(quote)
        i += 1
    return len(source)


def _cel_path(path: str) -> str:
    parts = re.split(r"(?<!\\)\.", path)
    out = "data"
    for part in parts:
        part = part.replace("\\.", ".")
        out += f"[{part}]" if part.isdigit() else f"[{json.dumps(part)}]"
    return out

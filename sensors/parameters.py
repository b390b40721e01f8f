"""Trigger parameters: read a value from a dependency's event, write it into a document.

Resolution order for ``src``: ``expression`` (CEL, eventflow), ``dataTemplate``, ``dataKey``,
``contextTemplate``, ``contextKey``; when the one given fails (a missing key, a template error, a
CEL error) or the dependency did not fire (an ``||`` condition), ``value`` is the default. With no
default the parameter is skipped when its dependency did not fire (as in Argo) and is an error
otherwise. With none of the five given, the value is the whole event as JSON (its data as JSON, not
base64 as Argo does).

Values are written as strings unless ``useRawData`` is set (then a number stays a number, an object
an object), because Argo's destinations (workflow parameter values, URLs, names) are strings.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventbus import CloudEvent
from sensors.cel import CelEnvironment, CelEvalError, CelProgram
from sensors.gotemplate import GoTemplate, TemplateError
from sensors.paths import MISSING, PathError, build_path, get_path, set_path
from sensors.spec import Parameter

__all__ = ["CompiledParameter", "ParameterError", "apply_parameters", "build_payload", "event_context"]


class ParameterError(ValueError):
    """A parameter that cannot be resolved or written for this firing (no default to fall back on)."""


@dataclass(frozen=True)
class CompiledParameter:
    spec: Parameter
    where: str  # YAML path, for messages
    data_template: GoTemplate | None = None
    context_template: GoTemplate | None = None
    expression: CelProgram | None = None


def event_context(event: CloudEvent) -> dict[str, Any]:
    """The CloudEvent context (every attribute but the data) as JSON-compatible values."""
    context = event.model_dump(mode="json", exclude={"data", "data_base64"}, exclude_none=True)
    return context


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return json.dumps(value, separators=(",", ":"), default=str)


def _resolve(param: CompiledParameter, event: CloudEvent, env: CelEnvironment) -> Any:
    src = param.spec.src
    if param.expression is not None:
        return param.expression.evaluate(env.activation(event_context(event), event.data))
    if param.data_template is not None:
        return param.data_template.render(event.data)
    if src.dataKey is not None:
        return get_path(event.data, src.dataKey)
    if param.context_template is not None:
        return param.context_template.render(event_context(event))
    if src.contextKey is not None:
        return get_path(event_context(event), src.contextKey)
    return event.model_dump(mode="json", exclude_none=True)


def resolve_value(param: CompiledParameter, events: Mapping[str, CloudEvent], env: CelEnvironment) -> Any:
    """The value to write, or ``MISSING`` when the parameter is to be skipped."""
    src = param.spec.src
    event = events.get(src.dependencyName)
    if event is None:
        if src.value is not None:
            return src.value
        return MISSING  # an || condition fired without this dependency: skipped, as in Argo
    reason = "not found"
    try:
        value = _resolve(param, event, env)
    except (CelEvalError, TemplateError, PathError) as exc:
        value, reason = MISSING, str(exc)
    if value is MISSING:
        if src.value is not None:
            return src.value
        raise ParameterError(f"{param.where}.src: {reason} in the event of {src.dependencyName!r} (id {event.id}), and no default value")
    return value if src.useRawData else _as_text(value)


def build_payload(
    params: Sequence[CompiledParameter], events: Mapping[str, CloudEvent], env: CelEnvironment
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A trigger's ``payload``: a JSON object built from nothing by its parameters."""
    out: dict[str, Any] = {}
    written = _write(params, out, events, env, build_path, "payload.")
    return out, written


def apply_parameters(
    params: Sequence[CompiledParameter], document: Any, events: Mapping[str, CloudEvent], env: CelEnvironment
) -> tuple[Any, list[dict[str, Any]]]:
    """A copy of ``document`` with every parameter applied, and what was written where (for history)."""
    if not params:
        return document, []
    out = copy.deepcopy(document)
    return out, _write(params, out, events, env, set_path, "")


def _write(
    params: Sequence[CompiledParameter], out: Any, events: Mapping[str, CloudEvent], env: CelEnvironment,
    put: Callable[..., None], label: str,
) -> list[dict[str, Any]]:  # fmt: skip
    written: list[dict[str, Any]] = []
    for param in params:
        value = resolve_value(param, events, env)
        if value is MISSING:
            continue
        try:
            put(out, param.spec.dest, value, param.spec.operation)
        except PathError as exc:
            raise ParameterError(f"{param.where}.dest: {exc}") from None
        written.append({"dest": label + param.spec.dest, "value": value, "operation": param.spec.operation})
    return written

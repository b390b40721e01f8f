"""Inputs of a template call, and the scope entries a finished node contributes to its siblings."""

from __future__ import annotations

import json
from typing import Any

from workflows.expressions import EvaluationError, ExpressionError, build_env, evaluate_expr, find_references, render, substitute
from workflows.models import Arguments, Template
from workflows.status import NodeOutputs, NodeStatus, OutputParameter

__all__ = ["InputError", "default_outputs", "inputs_scope", "node_scope", "resolve_inputs", "template_output_parameters"]


class InputError(ValueError):
    """An input parameter was not supplied, or its value is not in its enum."""


def resolve_inputs(
    template: Template,
    arguments: Arguments | None,
    scope: dict[str, Any],
    config_maps: dict[str, dict[str, str]] | None = None,
    *,
    lenient: bool = False,
) -> dict[str, str]:
    """Argo's parameter binding: argument value, else the input's value or ConfigMap key, else its default.

    ``lenient`` (exit hooks): a reference to a missing output stays as written, as Argo resolves
    hook arguments with unresolved references allowed.
    """
    supplied = {p.name: p for p in (arguments.parameters or [])} if arguments else {}
    values: dict[str, str] = {}
    for param in (template.inputs.parameters or []) if template.inputs else []:
        arg = supplied.get(param.name)
        raw: str | None = None
        if arg is not None and arg.value is not None:
            raw = str(arg.value)
        elif param.value is not None:
            raw = str(param.value)
        elif param.value_from is not None and param.value_from.config_map_key_ref is not None:
            ref = param.value_from.config_map_key_ref
            raw = (config_maps or {}).get(ref.name, {}).get(ref.key)
            if raw is None and param.default is None and not ref.optional:
                raise InputError(f'inputs.parameters.{param.name}: ConfigMap "{ref.name}" has no key "{ref.key}"')
            if raw is None and param.default is not None:
                raw = str(param.default)
        elif arg is not None and arg.default is not None:
            raw = str(arg.default)
        elif param.default is not None:
            raw = str(param.default)
        if raw is None:
            raise InputError(f"inputs.parameters.{param.name} was not supplied")
        value = substitute(raw, scope, strict=False)
        if "{{" in value and not lenient and _refers_to_outputs(value):
            # A reference to the output of a skipped/omitted node: Argo falls back to the
            # input's own default, and fails the call when there is none.
            if param.default is None:
                raise InputError(f"inputs.parameters.{param.name}: failed to resolve {value}")
            value = substitute(str(param.default), scope, strict=False)
        if param.enum and value not in [str(e) for e in param.enum]:
            allowed = ", ".join(str(e) for e in param.enum)
            raise InputError(f"inputs.parameters.{param.name} value {value!r} is not one of [{allowed}]")
        values[param.name] = value
    return values


def _refers_to_outputs(text: str) -> bool:
    return any(ref.startswith(("steps.", "tasks.")) for ref in find_references(text))


def default_outputs(template: Template) -> NodeOutputs | None:
    """Outputs a skipped or omitted node still has: each parameter's ``valueFrom.default``."""
    params = [
        OutputParameter(name=p.name, value=str(p.value_from.default))
        for p in ((template.outputs.parameters or []) if template.outputs else [])
        if p.value_from is not None and p.value_from.default is not None
    ]
    return NodeOutputs(parameters=params) if params else None


def inputs_scope(values: dict[str, str]) -> dict[str, Any]:
    scope: dict[str, Any] = {f"inputs.parameters.{k}": v for k, v in values.items()}
    scope["inputs.parameters"] = json.dumps([{"name": k, "value": v} for k, v in values.items()])
    return scope


def _node_values(prefix: str, node: NodeStatus) -> dict[str, Any]:
    out: dict[str, Any] = {
        f"{prefix}.id": node.id,
        f"{prefix}.status": node.phase.value,
        f"{prefix}.startedAt": node.started_at.strftime("%Y-%m-%dT%H:%M:%SZ") if node.started_at else None,
        f"{prefix}.finishedAt": node.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ") if node.finished_at else None,
    }
    outputs = node.outputs
    out[f"{prefix}.outputs.result"] = outputs.result if outputs else None
    out[f"{prefix}.exitCode"] = outputs.exit_code if outputs else None
    for param in outputs.parameters if outputs else []:
        out[f"{prefix}.outputs.parameters.{param.name}"] = param.value
    for art in (outputs.artifacts or []) if outputs else []:
        out[f"{prefix}.outputs.artifacts.{art['name']}"] = art
    if outputs and outputs.parameters:
        out[f"{prefix}.outputs.parameters"] = json.dumps({p.name: p.value for p in outputs.parameters})
    return out


def _decoded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def node_scope(prefix: str, node: NodeStatus, children: list[NodeStatus] | None) -> dict[str, Any]:
    """Scope entries for ``steps.X`` / ``tasks.X``; fanned-out steps aggregate as JSON lists."""
    if children is None:
        return _node_values(prefix, node)
    out: dict[str, Any] = {f"{prefix}.id": node.id, f"{prefix}.status": node.phase.value}
    done = [c for c in children if c.outputs is not None]
    names = {p.name for c in done for p in (c.outputs.parameters if c.outputs else [])}
    for name in names:
        out[f"{prefix}.outputs.parameters.{name}"] = json.dumps(
            [c.outputs.parameter(name) for c in done if c.outputs is not None], separators=(",", ":")
        )
    out[f"{prefix}.outputs.parameters"] = json.dumps(
        [{p.name: p.value for p in c.outputs.parameters} for c in done if c.outputs is not None and c.outputs.parameters],
        separators=(",", ":"),
    )
    if any(c.outputs and c.outputs.result is not None for c in done):
        out[f"{prefix}.outputs.result"] = json.dumps(
            [_decoded(c.outputs.result) for c in done if c.outputs is not None and c.outputs.result is not None],
            separators=(",", ":"),
        )
    return out


def template_output_parameters(template: Template, scope: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """Outputs of a steps/dag template: (name, value, globalName) from ``valueFrom.parameter/expression``."""
    result: list[tuple[str, str, str | None]] = []
    for param in (template.outputs.parameters or []) if template.outputs else []:
        vf = param.value_from
        value: str | None = None
        if vf is not None and vf.parameter is not None:
            value = substitute(vf.parameter, scope, strict=False)
            if "{{" in value:
                value = None
        elif vf is not None and vf.expression is not None:
            try:
                value = render(evaluate_expr(vf.expression, build_env(scope)))
            except (ExpressionError, EvaluationError):
                value = None
        elif param.value is not None:
            value = substitute(str(param.value), scope, strict=False)
        if value is None and vf is not None and vf.default is not None:
            value = str(vf.default)
        if value is None:
            raise InputError(f"outputs.parameters.{param.name}: could not resolve its value")
        result.append((param.name, value, param.global_name))
    return result

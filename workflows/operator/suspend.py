"""Outputs of suspend nodes that a person supplies (``valueFrom.supplied``) while the node waits."""

from __future__ import annotations

from workflows.models import Template
from workflows.status import NodeOutputs, NodeStatus, OutputParameter

__all__ = ["InvalidNodeUpdate", "supplied_outputs"]


class InvalidNodeUpdate(ValueError):
    """A resume or node update that cannot be applied (the workflow is left as it was)."""


def supplied_outputs(
    node: NodeStatus, tmpl: Template | None, parameters: dict[str, str], *, final: bool
) -> NodeOutputs | None:
    """A suspend node's outputs with ``parameters`` supplied (checked against the names the template
    declares as ``valueFrom.supplied`` and against the enum of the input of the same name). ``final``:
    the node is being resumed, so every supplied output needs a value (else the input's)."""
    declared = [p for p in ((tmpl.outputs.parameters or []) if tmpl is not None and tmpl.outputs else [])]
    supplied = {p.name for p in declared if p.value_from is not None and p.value_from.supplied is not None}
    unknown = sorted(set(parameters) - supplied)
    if unknown:
        raise InvalidNodeUpdate(
            f"node {node.display_name}: {', '.join(unknown)} is not a supplied output parameter"
            f" (supplied: {', '.join(sorted(supplied)) or 'none'})"
        )
    inputs = {p["name"]: p.get("value") for p in (node.inputs or {}).get("parameters", [])}
    enums = {p.name: [str(e) for e in p.enum] for p in ((tmpl.inputs.parameters or []) if tmpl and tmpl.inputs else []) if p.enum}
    have = {p.name: p.value for p in (node.outputs.parameters if node.outputs else [])}
    values: list[OutputParameter] = []
    for param in declared:
        value = parameters.get(param.name, have.get(param.name))
        if value is not None and param.name in enums and value not in enums[param.name]:
            raise InvalidNodeUpdate(
                f"node {node.display_name}: output parameter {param.name!r} value {value!r} is not one of"
                f" [{', '.join(enums[param.name])}]"
            )
        if value is None and final and param.name in supplied:
            value = inputs.get(param.name)
            if value is None:
                raise InvalidNodeUpdate(
                    f"node {node.display_name}: output parameter {param.name!r} has not been set and does not have a default value"
                )
        values.append(OutputParameter(name=param.name, value=value))
    return NodeOutputs(parameters=values) if values else node.outputs

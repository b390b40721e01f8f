"""The environment Argo gives expr-lang expressions: scope variables as nested objects, plus
Argo's helper functions (util/expr/env in Argo).

Scopes are flat dotted names (``"inputs.parameters.my-param"``, ``"steps.gen.outputs.result"``).
Expressions need nested objects so that ``inputs.parameters['my-param']`` and
``steps['step-1'].outputs.result`` work. When a name is both a value and a parent
(``"item"`` and ``"item.key"``, ``"inputs.parameters"`` and ``"inputs.parameters.x"``), the
children win, as in Argo's ``expand.removeConflicts``; a parent that is itself a mapping is
merged under its children instead of dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workflows.expressions.expr_ops import to_float, to_int
from workflows.expressions.gofmt import go_json, json_loads
from workflows.expressions.jsonpath import jsonpath
from workflows.expressions.sprig import SPRIG

__all__ = ["ARGO_FUNCTIONS", "build_env", "expand"]

ARGO_FUNCTIONS: Mapping[str, Callable[..., Any] | Mapping[str, Callable[..., Any]]] = {
    "asInt": to_int,
    "asFloat": to_float,
    "jsonpath": jsonpath,
    "toJson": go_json,
    "fromJson": json_loads,  # not in Argo (which has expr's fromJSON); accepted for symmetry with toJson
    "sprig": SPRIG,
}


def expand(scope: Mapping[str, object]) -> dict[str, object]:
    """Turn flat dotted names into nested dicts without mutating ``scope`` or its values."""
    root: dict[str, object] = {}
    owned = {id(root)}  # dicts built here; the caller's mappings are copied before we add to them
    # parents first, so a child arriving later can replace a parent leaf with a dict
    for name in sorted(scope, key=lambda n: n.count(".")):
        *parents, leaf = name.split(".")
        node = root
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict) or id(child) not in owned:
                child = dict(child) if isinstance(child, Mapping) else {}
                owned.add(id(child))
                node[part] = child
            node = child
        node[leaf] = scope[name]
    return root


def build_env(scope: Mapping[str, object]) -> dict[str, object]:
    """The expression environment for ``scope``: expanded variables plus Argo's functions."""
    env = expand(scope)
    env.update(ARGO_FUNCTIONS)
    return env

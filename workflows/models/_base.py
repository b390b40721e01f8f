"""Building blocks shared by every Argo model: the base config, scalar types and field markers.

Models mirror ``argoproj.io/v1alpha1`` field by field. Python attributes are snake_case and YAML keys
camelCase (``with_items`` ⇄ ``withItems``); ``model_dump(by_alias=True, exclude_none=True)`` gives the
YAML shape back. Every optional field defaults to ``None`` so that a dump only holds what was written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

__all__ = [
    "ARGO_YAML",
    "K8S_ONLY",
    "AnyString",
    "ArgoModel",
    "IntOrString",
    "KubeDict",
    "KubernetesOnly",
    "kubernetes_only_fields",
]

#: Validation-context key the loader sets: the input is user YAML, so only camelCase keys are accepted.
ARGO_YAML = "argo_yaml"

#: A Kubernetes sub-object passed through untouched (its schema is Kubernetes', not Argo's).
KubeDict = dict[str, Any]

#: ``intstr.IntOrString``: ``limit: 3`` and ``limit: "3"`` (or ``"{{inputs.parameters.n}}"``) are both valid.
IntOrString = int | str


def _any_string(value: object) -> object:
    """Argo's ``AnyString``: YAML numbers and booleans become the string Go would produce."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return value


#: A parameter value: always a ``str`` after validation (``value: 5`` is read as ``"5"``).
AnyString = Annotated[str, BeforeValidator(_any_string)]


@dataclass(frozen=True)
class KubernetesOnly:
    """Field marker: the field only configures Kubernetes (scheduling, pod security...).

    A local engine accepts and ignores such fields; :func:`kubernetes_only_fields` lists the ones set.
    """


K8S_ONLY = KubernetesOnly()


class ArgoModel(BaseModel):
    """Base of every Argo model: camelCase aliases, frozen instances, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_python_names(cls, data: Any, info: ValidationInfo) -> Any:
        """In YAML, ``with_items`` is as unknown to Argo as ``withItemz``; only aliases are accepted."""
        if not (isinstance(data, dict) and info.context and info.context.get(ARGO_YAML)):
            return data
        for key in data:
            field = cls.model_fields.get(key) if isinstance(key, str) else None
            if field is not None and field.alias is not None and field.alias != key:
                raise PydanticCustomError(
                    "unknown_field",
                    "unknown field, did you mean '{alias}'?",
                    {"field": key, "alias": field.alias},
                )
        return data


def kubernetes_only_fields(model: BaseModel, prefix: str = "") -> list[str]:
    """YAML paths (``spec.templates[2].container.resources``) of every Kubernetes-only field that is set."""
    return list(_walk_model(model, prefix))


def _walk_model(model: BaseModel, prefix: str) -> Iterator[str]:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        path = f"{prefix}.{info.alias or name}" if prefix else (info.alias or name)
        if any(isinstance(marker, KubernetesOnly) for marker in info.metadata):
            yield path
        else:
            yield from _walk_value(value, path)


def _walk_value(value: object, path: str) -> Iterator[str]:
    if isinstance(value, BaseModel):
        yield from _walk_model(value, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_value(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, BaseModel):
                yield from _walk_model(item, f"{path}.{key}")

"""Read YAML text into resource models, with errors that name the file and the YAML path.

``load_documents`` splits a multi-document file, picks the model for each document from its
``apiVersion``/``kind`` (:data:`RESOURCE_KINDS`), and turns pydantic's errors into one
:class:`SpecError` worded like ``wf.yaml: spec.templates[1].steps[0][1].name: required field missing``.
Kubernetes-only fields load fine and are reported once per path through ``warn``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from workflows.errors import SpecError, SpecWarning
from workflows.models import (
    ARGO_API_VERSION,
    ARGO_YAML,
    ClusterWorkflowTemplate,
    ConfigMap,
    CronWorkflow,
    ExecutorPlugin,
    KubernetesObject,
    Resource,
    Workflow,
    WorkflowEventBinding,
    WorkflowTemplate,
    kubernetes_only_fields,
)

__all__ = ["RESOURCE_KINDS", "Warn", "load_documents", "load_file", "yaml_path"]

logger = logging.getLogger(__name__)

#: What a Kubernetes-only field does here.
KUBERNETES_ONLY = "Kubernetes-only field: used only when the step runs as a pod (eventflow.io/executor: kubernetes)"

#: Receives each warning; the default logs it at WARNING level.
Warn = Callable[[SpecWarning], None]

#: ``(apiVersion, kind)`` → model. Other ``v1``/``apps/v1``... objects load as :class:`KubernetesObject`.
RESOURCE_KINDS: dict[tuple[str, str], type[Resource]] = {
    (ARGO_API_VERSION, "Workflow"): Workflow,
    (ARGO_API_VERSION, "WorkflowTemplate"): WorkflowTemplate,
    (ARGO_API_VERSION, "ClusterWorkflowTemplate"): ClusterWorkflowTemplate,
    (ARGO_API_VERSION, "CronWorkflow"): CronWorkflow,
    (ARGO_API_VERSION, "WorkflowEventBinding"): WorkflowEventBinding,
    ("v1", "ConfigMap"): ConfigMap,
    (ARGO_API_VERSION, "ExecutorPlugin"): ExecutorPlugin,
}

# argoproj.io kinds that are not workflow specs (Argo Events, controller internals): passed through.
_FOREIGN_ARGO_KINDS = frozenset(
    {"EventSource", "Sensor", "EventBus", "WorkflowTaskSet", "WorkflowTaskResult"}
)

_REASONS = {
    "missing": "required field missing",
    "extra_forbidden": "unknown field",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected a boolean",
    "bool_parsing": "expected a boolean",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
}
_NO_VALUE_TYPES = frozenset({"missing", "extra_forbidden", "unknown_field"})


def load_file(path: Path, *, warn: Warn | None = None) -> list[Resource]:
    """Load every document of the YAML file at ``path``."""
    return load_documents(path.read_text(encoding="utf-8"), str(path), warn=warn)


def load_documents(text: str, file: str, *, warn: Warn | None = None) -> list[Resource]:
    """Load every document of a (multi-document) YAML text; ``file`` names it in errors.

    Empty documents are skipped. Raises :class:`SpecError` for the first document that is not valid.
    """
    report = warn or _log_warning
    documents = [doc for doc in _parse_yaml(text, file, report) if doc is not None]
    resources: list[Resource] = []
    for index, data in enumerate(documents):
        where = file if len(documents) == 1 else f"{file} (document {index + 1})"
        resource = _load_document(data, where)
        for loc in kubernetes_only_fields(resource):
            report(SpecWarning(where, loc, KUBERNETES_ONLY))
        resources.append(resource)
    return resources


def _log_warning(warning: SpecWarning) -> None:
    logger.warning("%s", warning)


class _ArgoYamlLoader(yaml.SafeLoader):
    """SafeLoader that notes duplicate keys and keeps timestamps as strings, as Kubernetes does."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[yaml.Mark, object]] = []


def _construct_mapping(loader: _ArgoYamlLoader, node: yaml.MappingNode) -> dict[Hashable, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            continue
        if key in seen:
            loader.duplicates.append((key_node.start_mark, key))
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_ArgoYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_ArgoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse_yaml(text: str, file: str, report: Warn) -> list[object]:
    """All documents of ``text``. Duplicate keys are warned about: the last value wins, as in kubectl."""
    loader = _ArgoYamlLoader(text)
    try:
        documents: list[object] = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = f"{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise SpecError(file, loc, exc.problem or exc.context or "invalid YAML") from exc
    except yaml.YAMLError as exc:
        raise SpecError(file, "", f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    for mark, key in loader.duplicates:
        report(
            SpecWarning(
                file, f"{mark.line + 1}:{mark.column + 1}", f"duplicate key {key!r}, the last one wins"
            )
        )
    return documents


def _load_document(data: object, where: str) -> Resource:
    if not isinstance(data, dict):
        raise SpecError(
            where, "", f"expected a mapping (a Kubernetes object), got {_short(data)}", value=data
        )
    model = _model_for(data, where)
    try:
        return model.model_validate(data, context={ARGO_YAML: True})
    except ValidationError as exc:
        raise _spec_error(exc, data, where) from None


def _model_for(data: dict[Any, Any], where: str) -> type[Resource]:
    api_version, kind = data.get("apiVersion"), data.get("kind")
    for key, value in (("apiVersion", api_version), ("kind", kind)):
        if not isinstance(value, str) or not value:
            reason = "required field missing" if value is None else f"expected a string, got {_short(value)}"
            raise SpecError(where, key, reason, value=value)
    assert isinstance(api_version, str) and isinstance(kind, str)  # narrowed by the loop above
    model = RESOURCE_KINDS.get((api_version, kind))
    if model is not None:
        return model
    if api_version.startswith("argoproj.io/") and kind not in _FOREIGN_ARGO_KINDS:
        known = ", ".join(k for (version, k) in RESOURCE_KINDS if version == api_version)
        reason = f"unsupported kind {kind!r} for {api_version} (expected one of: {known})"
        raise SpecError(where, "kind", reason, value=kind)
    return KubernetesObject


def _spec_error(exc: ValidationError, data: object, where: str) -> SpecError:
    grouped: dict[str, tuple[object, list[ErrorDetails]]] = {}
    for error in exc.errors(include_url=False):
        path, value = yaml_path(error["loc"], data, missing=error["type"] == "missing")
        if error["type"] == "unknown_field":
            field = str(error.get("ctx", {}).get("field", ""))
            path, value = (f"{path}.{field}" if path else field), None
        grouped.setdefault(path, (value, []))[1].append(error)
    path, (value, errors) = next(iter(grouped.items()))
    reason = _reason(errors, value)
    if len(grouped) > 1:
        more = len(grouped) - 1
        reason += f" (and {more} more problem{'s' if more > 1 else ''})"
    return SpecError(where, path, reason, value=value)


def yaml_path(loc: Sequence[int | str], data: object, *, missing: bool = False) -> tuple[str, object]:
    """Turn a pydantic error location into a YAML path, and find the value it points at.

    Entries that are not keys of the data (union member tags such as ``int`` or ``str``) are dropped,
    except a final missing key: ``('spec', 'templates', 1, 'steps', 0, 1, 'name')`` becomes
    ``spec.templates[1].steps[0][1].name``.
    """
    path, current = "", data
    for position, item in enumerate(loc):
        if isinstance(item, int) and isinstance(current, list) and -len(current) <= item < len(current):
            path, current = f"{path}[{item}]", current[item]
        elif isinstance(current, dict) and item in current:
            path, current = (f"{path}.{item}" if path else str(item)), current[item]
        elif missing and position == len(loc) - 1 and isinstance(current, dict):
            path, current = (f"{path}.{item}" if path else str(item)), None
    return path, current


def _reason(errors: list[ErrorDetails], value: object) -> str:
    reasons: list[str] = []
    for error in errors:
        reason = _REASONS.get(error["type"]) or error["msg"]
        if reason not in reasons:
            reasons.append(reason)
    if len(reasons) > 1 and all(r.startswith("expected ") for r in reasons):
        text = "expected " + " or ".join(r.removeprefix("expected ") for r in reasons)
    else:
        text = "; ".join(reasons)
    if any(error["type"] not in _NO_VALUE_TYPES for error in errors):
        text += f", got {_short(value)}"
    return text


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

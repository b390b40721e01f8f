"""Turning a submitted Workflow into a stored, runnable one.

Everything that needs the store is resolved here, once, at submit time, so the operator's walks
stay pure: ``workflowTemplateRef`` is merged into the spec, every ``templateRef`` is copied into
``storedTemplates`` (as Argo does), argument values from ConfigMaps are read, ``-p`` overrides
and ``--entrypoint`` applied, and the result is linted. A spec that fails any of this is
rejected with the YAML path; nothing half-valid is stored.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from workflows.artifacts.repositories import REPOSITORIES_CONFIGMAP, RepositoryRefError, resolve_ref
from workflows.errors import Finding, LintError
from workflows.expressions import ExpressionError, compile_expr, parse_depends
from workflows.lint import lint
from workflows.models import (
    ClusterWorkflowTemplate,
    ConfigMap,
    Parameter,
    Template,
    Workflow,
    WorkflowStep,
    WorkflowTemplate,
)
from workflows.status import WorkflowPhase
from workflows.store import WorkflowRecord, WorkflowStore

__all__ = ["SubmitOptions", "prepare", "stored_template_key"]

_ALPHABET = string.ascii_lowercase + string.digits


class SubmitOptions:
    """Overrides given at submit time (CLI ``-p``, ``--entrypoint``, ``-n``, extra labels)."""

    def __init__(
        self,
        *,
        namespace: str | None = None,
        parameters: dict[str, str] | None = None,
        entrypoint: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        name: str | None = None,
        generate_name: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.parameters = parameters or {}
        self.entrypoint = entrypoint
        self.labels = labels or {}
        self.annotations = annotations or {}
        self.name = name
        self.generate_name = generate_name


def stored_template_key(namespace: str, ref_name: str, template: str, *, cluster: bool) -> str:
    return f"{'cluster' if cluster else namespace}/{ref_name}/{template}"


def expression_check(text: str, kind: str) -> str | None:
    """The lint hook: syntax of ``depends`` and expr-lang expressions (``when`` is checked after substitution)."""
    try:
        if kind == "depends":
            parse_depends(text)
        elif kind == "expression":
            # {{...}} tags are substituted before evaluation; check the expression around them.
            compile_expr(re.sub(r"\{\{.*?\}\}", "nil", text))
    except ExpressionError as exc:
        return str(exc)
    return None


async def _template_lookup(store: WorkflowStore, namespace: str, name: str, cluster: bool) -> WorkflowTemplate | ClusterWorkflowTemplate | None:
    kind = "ClusterWorkflowTemplate" if cluster else "WorkflowTemplate"
    record = await store.get_resource(kind, "" if cluster else namespace, name)
    if record is None:
        return None
    model = ClusterWorkflowTemplate if cluster else WorkflowTemplate
    return model.model_validate(record.manifest)


def _walk_calls(templates: list[Template]) -> list[WorkflowStep]:
    calls: list[WorkflowStep] = []
    for tmpl in templates:
        for group in tmpl.steps or []:
            calls.extend(group)
        if tmpl.dag is not None:
            calls.extend(tmpl.dag.tasks)
        for step in list(calls):
            if step.inline is not None:
                calls.extend(_walk_calls([step.inline]))
    return calls


async def prepare(workflow: Workflow, store: WorkflowStore, options: SubmitOptions | None = None, *, file: str = "workflow") -> tuple[WorkflowRecord, dict[str, Template]]:
    """Validate and resolve ``workflow``; return the record to store and its stored templates."""
    opts = options or SubmitOptions()
    meta = workflow.metadata
    namespace = opts.namespace or meta.namespace or "default"
    spec = workflow.spec
    findings: list[Finding] = []

    if spec.workflow_template_ref is not None:
        ref = spec.workflow_template_ref
        base = await _template_lookup(store, namespace, ref.name, bool(ref.cluster_scope))
        if base is None:
            kind = "ClusterWorkflowTemplate" if ref.cluster_scope else "WorkflowTemplate"
            raise LintError(file, [Finding("spec.workflowTemplateRef", f'{kind}.argoproj.io "{ref.name}" not found')])
        spec = _merge_specs(base.spec.model_dump(by_alias=True, exclude_none=True), spec.model_dump(by_alias=True, exclude_none=True))
        workflow = workflow.model_copy(update={"spec": spec})

    if opts.entrypoint:
        spec = spec.model_copy(update={"entrypoint": opts.entrypoint})
    if opts.parameters:
        spec = spec.model_copy(update={"arguments": _override_parameters(spec, opts.parameters, findings)})
    spec = spec.model_copy(update={"arguments": await _resolve_configmap_args(spec, store, namespace, findings)})
    workflow = workflow.model_copy(update={"spec": spec})

    # Every templateRef, followed transitively, copied in so walks never need the store.
    stored: dict[str, Template] = {}
    pending = _walk_calls(list(spec.templates or []))
    cache: dict[tuple[str, bool], WorkflowTemplate | ClusterWorkflowTemplate | None] = {}
    while pending:
        step = pending.pop()
        ref = step.template_ref
        if ref is None:
            continue
        cluster = bool(ref.cluster_scope)
        key = stored_template_key(namespace, ref.name, ref.template, cluster=cluster)
        if key in stored:
            continue
        if (ref.name, cluster) not in cache:
            cache[(ref.name, cluster)] = await _template_lookup(store, namespace, ref.name, cluster)
        source = cache[(ref.name, cluster)]
        found = next((t for t in (source.spec.templates or []) if t.name == ref.template), None) if source else None
        if found is None:
            continue  # lint reports it with the path
        stored[key] = found
        pending.extend(_walk_calls([found]))
        # A referenced template calls its siblings by plain name; bring those along too.
        for sibling in _walk_calls([found]):
            if sibling.template and sibling.template_ref is None and source is not None:
                sib = next((t for t in (source.spec.templates or []) if t.name == sibling.template), None)
                if sib is not None:
                    stored.setdefault(stored_template_key(namespace, ref.name, sib.name or "", cluster=cluster), sib)

    def lookup(name: str) -> WorkflowTemplate | ClusterWorkflowTemplate | None:
        return cache.get((name, False)) or cache.get((name, True))

    config_maps = await _template_config_maps([*(spec.templates or []), *stored.values()], store, namespace)
    try:
        repository_ref = await _artifact_repository_ref(spec.artifact_repository_ref, store, namespace)
    except RepositoryRefError as exc:
        findings.append(Finding("spec.artifactRepositoryRef", str(exc).removeprefix("artifactRepositoryRef: ")))
        repository_ref = {"default": True}
    findings.extend(lint(workflow, templates_lookup=lookup if cache else None, expression_check=expression_check))
    if findings:
        raise LintError(file, findings)

    name = opts.name or meta.name
    if not name:
        prefix = opts.generate_name or meta.generate_name or "workflow-"
        name = prefix + "".join(secrets.choice(_ALPHABET) for _ in range(5))
    labels = {**(meta.labels or {}), **opts.labels}
    annotations = {**(meta.annotations or {}), **opts.annotations}
    wf_meta = (spec.workflow_metadata.model_dump(by_alias=True, exclude_none=True) if spec.workflow_metadata else {})
    labels.update(wf_meta.get("labels") or {})
    annotations.update(wf_meta.get("annotations") or {})
    manifest = workflow.model_dump(by_alias=True, exclude_none=True, mode="json")
    manifest["metadata"] = {**manifest.get("metadata", {}), "name": name, "namespace": namespace, "labels": labels, "annotations": annotations}
    manifest.pop("status", None)
    record = WorkflowRecord(
        namespace=namespace,
        name=name,
        phase=WorkflowPhase.PENDING,
        labels=labels,
        annotations=annotations,
        manifest=manifest,
        status={
            "storedTemplates": {k: t.model_dump(by_alias=True, exclude_none=True, mode="json") for k, t in stored.items()},
            **({"configMaps": config_maps} if config_maps else {}),
            **({"suspended": True} if spec.suspend else {}),  # Argo's spec.suspend: starts suspended
            **({"artifactRepositoryRef": repository_ref} if not repository_ref.get("default") else {}),
        },
    )
    return record, stored


async def _template_config_maps(templates: list[Template], store: WorkflowStore, namespace: str) -> dict[str, dict[str, str]]:
    """Snapshot of the ConfigMaps that template inputs read (``valueFrom.configMapKeyRef``)."""
    names = {
        p.value_from.config_map_key_ref.name
        for t in templates
        for p in ((t.inputs.parameters or []) if t.inputs else [])
        if p.value_from is not None and p.value_from.config_map_key_ref is not None
    }
    out: dict[str, dict[str, str]] = {}
    for name in sorted(names):
        record = await store.get_resource("ConfigMap", namespace, name)
        if record is not None:
            out[name] = dict(ConfigMap.model_validate(record.manifest).data or {})
    return out


def _merge_specs(base: dict[str, Any], override: dict[str, Any]) -> Any:
    """Argo's merge: the Workflow's own fields win; arguments.parameters merge by name."""
    from workflows.models import WorkflowSpec

    merged = {**base, **{k: v for k, v in override.items() if k not in ("workflowTemplateRef", "arguments")}}
    base_params = {p["name"]: p for p in (base.get("arguments") or {}).get("parameters", [])}
    for p in (override.get("arguments") or {}).get("parameters", []):
        base_params[p["name"]] = {**base_params.get(p["name"], {}), **p}
    args = {**(base.get("arguments") or {}), **(override.get("arguments") or {})}
    if base_params:
        args["parameters"] = list(base_params.values())
    if args:
        merged["arguments"] = args
    return WorkflowSpec.model_validate(merged)


def _override_parameters(spec: Any, values: dict[str, str], findings: list[Finding]) -> Any:
    from workflows.models import Arguments

    params = list(spec.arguments.parameters or []) if spec.arguments else []
    names = {p.name for p in params}
    for key, value in values.items():
        if key not in names:
            params.append(Parameter(name=key, value=value))
    params = [p.model_copy(update={"value": values[p.name], "value_from": None}) if p.name in values else p for p in params]
    for p in params:
        if p.enum and p.value is not None and str(p.value) not in [str(e) for e in p.enum]:
            findings.append(Finding(f"spec.arguments.parameters.{p.name}", f"value {p.value!r} is not one of {[str(e) for e in p.enum]}"))
    base = spec.arguments or Arguments()
    return base.model_copy(update={"parameters": params})


async def _resolve_configmap_args(spec: Any, store: WorkflowStore, namespace: str, findings: list[Finding]) -> Any:
    if spec.arguments is None or not spec.arguments.parameters:
        return spec.arguments
    params = []
    for p in spec.arguments.parameters:
        ref = p.value_from.config_map_key_ref if p.value_from else None
        if ref is not None and p.value is None:
            record = await store.get_resource("ConfigMap", namespace, ref.name)
            data = ConfigMap.model_validate(record.manifest).data if record else None
            if data is None or ref.key not in data:
                if p.default is None and not ref.optional:
                    findings.append(Finding(f"spec.arguments.parameters.{p.name}", f'ConfigMap "{ref.name}" key "{ref.key}" not found'))
                    params.append(p)
                    continue
                p = p.model_copy(update={"value": p.default})
            else:
                p = p.model_copy(update={"value": data[ref.key]})
        params.append(p)
    return spec.arguments.model_copy(update={"parameters": params})




async def _artifact_repository_ref(ref: Any, store: WorkflowStore, namespace: str) -> dict[str, Any]:
    """The artifact repository the workflow will use (Argo resolves it once, into its status)."""
    name = (ref.config_map if ref is not None else None) or REPOSITORIES_CONFIGMAP
    record = await store.get_resource("ConfigMap", namespace, name)
    found: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    if record is not None:
        cm = ConfigMap.model_validate(record.manifest)
        found[name] = (dict(cm.data or {}), dict((cm.metadata.annotations if cm.metadata else None) or {}))
    return await resolve_ref(ref, found)

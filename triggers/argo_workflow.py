"""``argoWorkflow``: Argo Events' Argo Workflow trigger, performed in-process on the built-in scheduler
(Argo Events shells out to the ``argo`` CLI per event).

Operations, as the ``argo`` CLI's verbs: ``submit`` (the resource is a Workflow), ``submit-from`` (the
resource names a WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow), and ``resubmit``,
``retry``, ``resume``, ``suspend``, ``terminate``, ``stop`` on the workflow the resource names.
``args`` are the CLI flags Argo Events users pass; the ones that mean something here are honoured
(see ``_FLAGS``), any other is refused when the sensor is applied.

Idempotent by the firing's key: a submitted or resubmitted workflow's name derives from it, so a
redelivered firing finds its workflow instead of making a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from triggers._kube import as_trigger_outcome
from triggers._source import ResourceSource
from triggers._workflows import (
    KEY_ANNOTATION,
    create_workflow,
    firing_annotations,
    firing_labels,
    is_workflow,
)
from triggers.base import Firing, TriggerContext, TriggerFailed, TriggerRejected, TriggerResult, register
from triggers.k8s import CLUSTER_HOWTO, create_object
from workflows.kube import MERGE_PATCH, KubeClient
from workflows.scheduler import WorkflowNotActive, WorkflowNotFound
from workflows.store import AlreadyExists
from workflows.submit import SubmitOptions

__all__ = ["ArgoWorkflowConfig", "ArgoWorkflowTrigger"]

OPERATIONS = ("submit", "submit-from", "resubmit", "retry", "resume", "suspend", "terminate", "stop")
_FROM_KINDS = {"workflowtemplate": "WorkflowTemplate", "clusterworkflowtemplate": "ClusterWorkflowTemplate", "cronworkflow": "CronWorkflow"}
# flag -> (operations it applies to, takes a value)
_FLAGS: dict[str, tuple[tuple[str, ...], bool]] = {
    "-p": (("submit", "submit-from"), True),
    "--parameter": (("submit", "submit-from"), True),
    "--entrypoint": (("submit", "submit-from"), True),
    "--generate-name": (("submit", "submit-from"), True),
    "--name": (("submit", "submit-from"), True),
    "-l": (("submit", "submit-from"), True),
    "--labels": (("submit", "submit-from"), True),
    "--memoized": (("resubmit",), False),
    "--node-field-selector": (("resume",), True),
}


# Through the Kubernetes API (``target: cluster``) a workflow can be created and its spec patched;
# resubmit and retry change a workflow's status, which only the Argo Server does.
CLUSTER_OPERATIONS = ("submit", "submit-from", "suspend", "resume", "terminate", "stop")
_WORKFLOW_API = "argoproj.io/v1alpha1"


class ArgoWorkflowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: ResourceSource
    operation: str = "submit"
    args: list[str] = Field(default_factory=list)
    # eventflow: "cluster" acts on Argo Workflows in the cluster given with --kubeconfig (an Argo
    # controller runs them) instead of the built-in scheduler.
    target: Literal["scheduler", "cluster"] = "scheduler"


def _parse_args(args: list[str], operation: str, where: str) -> tuple[dict[str, list[str]], list[str]]:
    """Flags as {flag: values}, and problems naming the YAML path."""
    flags: dict[str, list[str]] = {}
    problems: list[str] = []
    i = 0
    while i < len(args):
        raw = args[i]
        name, eq, inline = raw.partition("=") if raw.startswith("--") else (raw, "", "")
        spec = _FLAGS.get(name)
        if spec is None:
            problems.append(f"{where}.args[{i}]: {raw!r} is not supported (supported: {', '.join(sorted(_FLAGS))})")
            i += 1
            continue
        ops, takes_value = spec
        if operation not in ops:
            problems.append(f"{where}.args[{i}]: {name} is not supported with operation {operation!r} (it applies to: {', '.join(ops)})")
        value = ""
        if takes_value:
            if eq:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                problems.append(f"{where}.args[{i}]: {name} needs a value")
        flags.setdefault(name.replace("--parameter", "-p").replace("--labels", "-l"), []).append(value)
        i += 1
    return flags, problems


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        for item in value.split(",") if what == "label" else [value]:
            key, sep, val = item.partition("=")
            if not sep:
                raise TriggerRejected(f"args: {what} {item!r} is not name=value")
            out[key] = val
    return out


@register
class ArgoWorkflowTrigger:
    key: ClassVar[str] = "argoWorkflow"
    Config: ClassVar[type[BaseModel]] = ArgoWorkflowConfig

    def __init__(self, context: TriggerContext) -> None:
        self.context = context
        self._client: KubeClient | None = None

    @staticmethod
    def check(config: ArgoWorkflowConfig, where: str) -> list[str]:
        if config.operation not in OPERATIONS:
            return [f"{where}.operation: {config.operation!r} is not an operation (one of: {', '.join(OPERATIONS)})"]
        if config.target == "cluster" and config.operation not in CLUSTER_OPERATIONS:
            return [f"{where}.operation: {config.operation} is not supported with target: cluster (it needs the Argo Server; supported: {', '.join(CLUSTER_OPERATIONS)})"]
        problems = config.source.check(f"{where}.source")
        problems += _parse_args(config.args, config.operation, where)[1]
        if config.target == "cluster" and "--node-field-selector" in config.args:
            problems.append(f"{where}.args: --node-field-selector is not supported with target: cluster (resuming one node changes the workflow's status)")
        resource = config.source.resource
        if resource is None:
            return problems
        if config.operation == "submit-from":
            if str(resource.get("kind", "")).lower() not in _FROM_KINDS:
                problems.append(f"{where}.source.resource.kind: submit-from needs a WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow, got {resource.get('kind')!r}")
        elif not is_workflow(resource):
            problems.append(f"{where}.source.resource: expected an argoproj.io/v1alpha1 Workflow")
        elif config.operation != "submit" and not (resource.get("metadata") or {}).get("name"):
            problems.append(f"{where}.source.resource.metadata.name: {config.operation} needs the name of the workflow to act on")
        return problems

    @staticmethod
    def check_context(config: ArgoWorkflowConfig, where: str, context: Mapping[str, Any]) -> list[str]:
        if config.target == "cluster" and context.get("kube") is None:
            return [f"{where}.target: cluster needs a Kubernetes cluster and none is configured: {CLUSTER_HOWTO}"]
        return []

    async def fire(self, config: ArgoWorkflowConfig, firing: Firing) -> TriggerResult:
        flags, problems = _parse_args(config.args, config.operation, "args")
        if problems:
            raise TriggerRejected("; ".join(problems))
        resource = firing.apply_parameters(await config.source.load(self.context, firing.namespace))
        if config.target == "cluster":
            with as_trigger_outcome():
                return await self._in_cluster(config, firing, resource, flags)
        scheduler = self.context.scheduler
        if scheduler is None:
            raise TriggerFailed("no workflow scheduler runs in this process")
        meta = resource.get("metadata") or {}
        namespace = str(meta.get("namespace") or firing.namespace)
        name = str(meta.get("name") or "")
        options = SubmitOptions(
            parameters=_pairs(flags.get("-p", []), "parameter"), entrypoint=(flags.get("--entrypoint") or [None])[-1],
            labels=_pairs(flags.get("-l", []), "label"),
        )  # fmt: skip
        try:
            match config.operation:
                case "submit":
                    if flags.get("--name"):
                        resource.setdefault("metadata", {})["name"] = flags["--name"][-1]
                    if flags.get("--generate-name"):
                        resource.setdefault("metadata", {})["generateName"] = flags["--generate-name"][-1]
                    return await create_workflow(self.context, firing, resource, options=options, parameters_applied=True)
                case "submit-from":
                    return await self._submit_from(firing, resource, namespace, options, flags)
                case "resubmit":
                    return await self._resubmit(firing, namespace, name, memoized="--memoized" in flags)
                case "retry":
                    record = await scheduler.retry(namespace, name)
                case "resume":
                    record = await scheduler.resume(namespace, name, node_filter=_node_filter(flags))
                case "suspend":
                    record = await scheduler.suspend(namespace, name)
                case "terminate" | "stop":
                    record = await scheduler.terminate(namespace, name, "Terminate" if config.operation == "terminate" else "Stop")
                case _:
                    raise TriggerRejected(f"operation {config.operation!r} is not supported")
        except WorkflowNotFound:
            raise TriggerRejected(f"{config.operation}: workflow {namespace}/{name} not found") from None
        except WorkflowNotActive as exc:
            raise TriggerRejected(f"{config.operation}: {exc}") from None
        return TriggerResult({"workflow": record.name, "namespace": record.namespace, "operation": config.operation})

    async def _submit_from(
        self, firing: Firing, resource: dict[str, Any], namespace: str, options: SubmitOptions, flags: dict[str, list[str]]
    ) -> TriggerResult:
        kind = _FROM_KINDS.get(str(resource.get("kind", "")).lower())
        if kind is None:  # a resource from a file, URL or ConfigMap escapes check()
            raise TriggerRejected(f"submit-from needs a WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow, got {resource.get('kind')!r}")
        source = str((resource.get("metadata") or {}).get("name") or "")
        if not source:
            raise TriggerRejected(f"submit-from: the {kind}'s metadata.name is required")
        generate = (flags.get("--generate-name") or [f"{source}-"])[-1]
        metadata: dict[str, Any] = {"generateName": generate}
        if flags.get("--name"):
            metadata["name"] = flags["--name"][-1]
        if kind == "CronWorkflow":
            record = await self.context.scheduler.store.get_resource("CronWorkflow", namespace, source)
            if record is None:
                raise TriggerRejected(f"submit-from: CronWorkflow {namespace}/{source} not found")
            spec = (record.manifest.get("spec") or {}).get("workflowSpec") or {}
            metadata["labels"] = {"workflows.argoproj.io/cron-workflow": source}
        else:
            spec = {"workflowTemplateRef": {"name": source, **({"clusterScope": True} if kind == "ClusterWorkflowTemplate" else {})}}
        workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": metadata, "spec": spec}
        return await create_workflow(self.context, firing, workflow, options=options, parameters_applied=True)

    async def _resubmit(self, firing: Firing, namespace: str, name: str, *, memoized: bool) -> TriggerResult:
        scheduler = self.context.scheduler
        new_name = f"{name}-{firing.key[:10]}"
        options = SubmitOptions(name=new_name, labels=firing_labels(firing), annotations=firing_annotations(firing))
        try:
            record = await scheduler.resubmit(namespace, name, memoized=memoized, options=options)
        except AlreadyExists:
            existing = await scheduler.store.get_workflow(namespace, new_name)
            if existing is not None and existing.annotations.get(KEY_ANNOTATION) == firing.key:
                return TriggerResult({"workflow": new_name, "namespace": namespace, "operation": "resubmit", "existing": True})
            raise TriggerRejected(f"resubmit: workflow {namespace}/{new_name} already exists (created by something else)") from None
        return TriggerResult({"workflow": record.name, "namespace": record.namespace, "operation": "resubmit"})

    async def _in_cluster(self, config: ArgoWorkflowConfig, firing: Firing, resource: dict[str, Any], flags: dict[str, list[str]]) -> TriggerResult:
        """The operation on an Argo Workflow in the cluster, through the Kubernetes API."""
        if self._client is None:
            if self.context.kube is None:
                raise TriggerRejected(f"target: cluster needs a Kubernetes cluster and none is configured: {CLUSTER_HOWTO}")
            self._client = self.context.kube()
        client = self._client
        meta = resource.get("metadata") or {}
        namespace = str(meta.get("namespace") or firing.namespace)
        name = str(meta.get("name") or "")
        detail: dict[str, Any] = {"namespace": namespace, "operation": config.operation, "target": "cluster"}
        if config.operation in ("submit", "submit-from"):
            if config.operation == "submit-from":
                resource = await self._from_template(client, resource, namespace, flags)
            manifest = _with_flags({**resource, "metadata": {**(resource.get("metadata") or {}), "namespace": namespace}}, flags)
            obj, existing = await create_object(client, firing, manifest)
            detail["workflow"] = obj["metadata"]["name"]
            if existing:
                detail["existing"] = True
            return TriggerResult(detail)
        if not name:
            raise TriggerRejected(f"{config.operation}: the workflow's metadata.name is required")
        patch = {
            "suspend": {"spec": {"suspend": True}}, "resume": {"spec": {"suspend": None}},
            "terminate": {"spec": {"shutdown": "Terminate"}}, "stop": {"spec": {"shutdown": "Stop"}},
        }[config.operation]  # fmt: skip
        await client.patch((_WORKFLOW_API, "Workflow", namespace, name), patch, patch_type=MERGE_PATCH)
        detail["workflow"] = name
        return TriggerResult(detail)

    async def _from_template(self, client: KubeClient, resource: dict[str, Any], namespace: str, flags: dict[str, list[str]]) -> dict[str, Any]:
        kind = _FROM_KINDS.get(str(resource.get("kind", "")).lower())
        source = str((resource.get("metadata") or {}).get("name") or "")
        if kind is None or not source:
            raise TriggerRejected("submit-from needs a WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow with metadata.name")
        metadata: dict[str, Any] = {"generateName": (flags.get("--generate-name") or [f"{source}-"])[-1]}
        if kind == "CronWorkflow":
            cron = await client.get((_WORKFLOW_API, "CronWorkflow", namespace, source))
            spec = dict((cron.get("spec") or {}).get("workflowSpec") or {})
            metadata["labels"] = {"workflows.argoproj.io/cron-workflow": source}
        else:
            spec = {"workflowTemplateRef": {"name": source, **({"clusterScope": True} if kind == "ClusterWorkflowTemplate" else {})}}
        return {"apiVersion": _WORKFLOW_API, "kind": "Workflow", "metadata": metadata, "spec": spec}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def _with_flags(manifest: dict[str, Any], flags: dict[str, list[str]]) -> dict[str, Any]:
    """The ``argo submit`` flags applied to a Workflow manifest (what the CLI does before creating it)."""
    meta = dict(manifest.get("metadata") or {})
    spec = dict(manifest.get("spec") or {})
    if flags.get("--name"):
        meta["name"] = flags["--name"][-1]
    if flags.get("--generate-name"):
        meta["generateName"] = flags["--generate-name"][-1]
    if flags.get("-l"):
        meta["labels"] = {**(meta.get("labels") or {}), **_pairs(flags["-l"], "label")}
    if flags.get("--entrypoint"):
        spec["entrypoint"] = flags["--entrypoint"][-1]
    given = _pairs(flags.get("-p", []), "parameter")
    if given:
        arguments = dict(spec.get("arguments") or {})
        params = [dict(p) for p in arguments.get("parameters") or []]
        for p in params:
            if p.get("name") in given:
                p["value"] = given.pop(p["name"])
        params += [{"name": k, "value": v} for k, v in given.items()]
        spec["arguments"] = {**arguments, "parameters": params}
    return {**manifest, "metadata": meta, "spec": spec}


def _node_filter(flags: dict[str, list[str]]) -> Any:
    selectors = flags.get("--node-field-selector")
    if not selectors:
        return None
    wanted = _pairs(selectors[-1].split(","), "node field selector")

    def match(node: Any) -> bool:
        fields = {"displayName": node.display_name, "name": node.name, "templateName": node.template_name, "phase": node.phase.value, "id": node.id}
        return all(str(fields.get(k)) == v for k, v in wanted.items())

    return match



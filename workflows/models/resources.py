"""Top-level documents: the Argo resources, ConfigMaps, and other Kubernetes objects."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict

from workflows.models._base import ArgoModel, KubeDict
from workflows.models.meta import ObjectMeta
from workflows.models.params import Arguments
from workflows.models.spec import WorkflowSpec, WorkflowTemplateRef

__all__ = [
    "ARGO_API_VERSION",
    "ClusterWorkflowTemplate",
    "ConfigMap",
    "CronWorkflow",
    "CronWorkflowSpec",
    "EventSelector",
    "EventSubmit",
    "ExecutorPlugin",
    "KubernetesObject",
    "Resource",
    "StopStrategy",
    "Workflow",
    "WorkflowEventBinding",
    "WorkflowEventBindingSpec",
    "WorkflowTemplate",
]

ARGO_API_VERSION: Final = "argoproj.io/v1alpha1"


class Workflow(ArgoModel):
    """One run of a workflow. ``status`` is kept as written (an exported Workflow may carry one)."""

    api_version: Literal["argoproj.io/v1alpha1"] = ARGO_API_VERSION
    kind: Literal["Workflow"] = "Workflow"
    metadata: ObjectMeta
    spec: WorkflowSpec
    status: KubeDict | None = None


class WorkflowTemplate(ArgoModel):
    """A reusable workflow spec in a namespace, referenced by ``workflowTemplateRef``/``templateRef``."""

    api_version: Literal["argoproj.io/v1alpha1"] = ARGO_API_VERSION
    kind: Literal["WorkflowTemplate"] = "WorkflowTemplate"
    metadata: ObjectMeta
    spec: WorkflowSpec


class ClusterWorkflowTemplate(ArgoModel):
    """A WorkflowTemplate visible from every namespace (``clusterScope: true`` references)."""

    api_version: Literal["argoproj.io/v1alpha1"] = ARGO_API_VERSION
    kind: Literal["ClusterWorkflowTemplate"] = "ClusterWorkflowTemplate"
    metadata: ObjectMeta
    spec: WorkflowSpec


class StopStrategy(ArgoModel):
    """Stop scheduling a CronWorkflow once ``expression`` (over ``cronworkflow.*``) is true."""

    expression: str | None = None
    condition: str | None = None


class CronWorkflowSpec(ArgoModel):
    """When and how a CronWorkflow submits ``workflowSpec``."""

    workflow_spec: WorkflowSpec
    schedule: str | None = None
    schedules: list[str] | None = None
    timezone: str | None = None
    concurrency_policy: str | None = None
    starting_deadline_seconds: int | None = None
    successful_jobs_history_limit: int | None = None
    failed_jobs_history_limit: int | None = None
    suspend: bool | None = None
    when: str | None = None
    stop_strategy: StopStrategy | None = None
    workflow_metadata: ObjectMeta | None = None

    @property
    def all_schedules(self) -> list[str]:
        """``schedules`` plus the pre-3.6 single ``schedule``."""
        return [*([self.schedule] if self.schedule else []), *(self.schedules or [])]


class CronWorkflow(ArgoModel):
    """Submits a Workflow on a cron schedule."""

    api_version: Literal["argoproj.io/v1alpha1"] = ARGO_API_VERSION
    kind: Literal["CronWorkflow"] = "CronWorkflow"
    metadata: ObjectMeta
    spec: CronWorkflowSpec
    status: KubeDict | None = None


class EventSelector(ArgoModel):
    """An expr-lang expression over the incoming event."""

    selector: str


class EventSubmit(ArgoModel):
    """The WorkflowTemplate to submit when the event matches, with its arguments."""

    workflow_template_ref: WorkflowTemplateRef
    metadata: ObjectMeta | None = None
    arguments: Arguments | None = None


class WorkflowEventBindingSpec(ArgoModel):
    """Which events submit which template."""

    event: EventSelector
    submit: EventSubmit | None = None


class WorkflowEventBinding(ArgoModel):
    """Maps an event received by the API to the submission of a WorkflowTemplate."""

    api_version: Literal["argoproj.io/v1alpha1"] = ARGO_API_VERSION
    kind: Literal["WorkflowEventBinding"] = "WorkflowEventBinding"
    metadata: ObjectMeta
    spec: WorkflowEventBindingSpec


class ConfigMap(ArgoModel):
    """A v1 ConfigMap: parameter values, semaphore limits, memoization caches."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["ConfigMap"] = "ConfigMap"
    metadata: ObjectMeta
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None


class ExecutorPluginSidecar(ArgoModel):
    automount_service_account_token: bool | None = None
    container: KubeDict


class ExecutorPluginSpec(ArgoModel):
    sidecar: ExecutorPluginSidecar


class ExecutorPlugin(ArgoModel):
    """Argo's ``plugin.yaml``: an executor plugin's sidecar. Stored as the ConfigMap Argo's
    ``argo executor-plugin build`` makes of it (:meth:`to_configmap`)."""

    api_version: Literal["argoproj.io/v1alpha1"] = ARGO_API_VERSION
    kind: Literal["ExecutorPlugin"] = "ExecutorPlugin"
    metadata: ObjectMeta
    spec: ExecutorPluginSpec

    def to_configmap(self) -> ConfigMap:
        import yaml  # only here: the models otherwise never write YAML

        name = self.metadata.name or "plugin"
        container = {"name": name, **self.spec.sidecar.container}
        data = {"sidecar.container": yaml.safe_dump(container, sort_keys=False)}
        if self.spec.sidecar.automount_service_account_token is not None:
            data["sidecar.automountServiceAccountToken"] = str(
                self.spec.sidecar.automount_service_account_token
            ).lower()
        labels = {**(self.metadata.labels or {}), "workflows.argoproj.io/configmap-type": "ExecutorPlugin"}
        meta = ObjectMeta(
            name=f"{name}-executor-plugin",
            namespace=self.metadata.namespace,
            labels=labels,
            annotations=self.metadata.annotations,
        )
        return ConfigMap(metadata=meta, data=data)


class KubernetesObject(ArgoModel):
    """Any other Kubernetes object (PersistentVolumeClaim, ResourceQuota...), kept as written."""

    model_config = ConfigDict(extra="allow")

    api_version: str
    kind: str
    metadata: ObjectMeta | None = None


#: Every document the loader can return.
Resource = (
    Workflow
    | WorkflowTemplate
    | ClusterWorkflowTemplate
    | CronWorkflow
    | WorkflowEventBinding
    | ConfigMap
    | ExecutorPlugin
    | KubernetesObject
)

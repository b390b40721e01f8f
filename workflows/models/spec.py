"""``WorkflowSpec``: the body shared by Workflow, WorkflowTemplate and CronWorkflow.workflowSpec."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from workflows.models._base import K8S_ONLY, ArgoModel, KubeDict
from workflows.models.meta import Metadata, WorkflowMetadata
from workflows.models.params import Arguments
from workflows.models.policies import Metrics, RetryStrategy, Synchronization
from workflows.models.template import LifecycleHook, Template

__all__ = [
    "ArtifactRepositoryRef",
    "PodGC",
    "TTLStrategy",
    "VolumeClaimGC",
    "WorkflowLevelArtifactGC",
    "WorkflowSpec",
    "WorkflowTemplateRef",
]


class WorkflowTemplateRef(ArgoModel):
    """Run the spec of a (Cluster)WorkflowTemplate instead of inline ``templates``."""

    name: str
    cluster_scope: bool | None = None


class TTLStrategy(ArgoModel):
    """Delete the finished Workflow after so many seconds."""

    seconds_after_completion: int | None = None
    seconds_after_success: int | None = None
    seconds_after_failure: int | None = None


class PodGC(ArgoModel):
    """When completed pods are deleted."""

    strategy: str | None = None
    label_selector: KubeDict | None = None
    delete_delay_duration: str | None = None


class VolumeClaimGC(ArgoModel):
    """When the PVCs of ``volumeClaimTemplates`` are deleted."""

    strategy: str | None = None


class ArtifactRepositoryRef(ArgoModel):
    """A ConfigMap key holding the artifact repository configuration."""

    config_map: str | None = None
    key: str | None = None


class WorkflowLevelArtifactGC(ArgoModel):
    """When output artifacts are deleted, and with which pod settings."""

    strategy: str | None = None
    pod_metadata: Metadata | None = None
    service_account_name: str | None = None
    force_finalizer_removal: bool | None = None
    pod_spec_patch: str | None = None


class WorkflowSpec(ArgoModel):
    """The specification of a workflow: its templates, entrypoint, arguments and run policies."""

    entrypoint: str | None = None
    arguments: Arguments | None = None
    templates: list[Template] | None = None
    template_defaults: Template | None = None
    on_exit: str | None = None
    hooks: dict[str, LifecycleHook] | None = None
    parallelism: int | None = None
    priority: int | None = None
    active_deadline_seconds: int | None = None
    suspend: bool | None = None
    shutdown: str | None = None
    retry_strategy: RetryStrategy | None = None
    synchronization: Synchronization | None = None
    ttl_strategy: TTLStrategy | None = None
    workflow_metadata: WorkflowMetadata | None = None
    workflow_template_ref: WorkflowTemplateRef | None = None
    volumes: list[KubeDict] | None = None
    volume_claim_templates: list[KubeDict] | None = None
    volume_claim_gc: VolumeClaimGC | None = Field(default=None, alias="volumeClaimGC")
    archive_logs: bool | None = None
    artifact_repository_ref: ArtifactRepositoryRef | None = None
    artifact_gc: WorkflowLevelArtifactGC | None = Field(default=None, alias="artifactGC")
    metrics: Metrics | None = None
    executor_plugins: list[KubeDict] | None = None
    pod_gc: PodGC | None = Field(default=None, alias="podGC")  # applied to local steps' files and to pods
    pod_metadata: Annotated[Metadata | None, K8S_ONLY] = None
    service_account_name: Annotated[str | None, K8S_ONLY] = None
    automount_service_account_token: Annotated[bool | None, K8S_ONLY] = None
    executor: Annotated[KubeDict | None, K8S_ONLY] = None
    node_selector: Annotated[dict[str, str] | None, K8S_ONLY] = None
    affinity: Annotated[KubeDict | None, K8S_ONLY] = None
    tolerations: Annotated[list[KubeDict] | None, K8S_ONLY] = None
    image_pull_secrets: Annotated[list[KubeDict] | None, K8S_ONLY] = None
    host_network: Annotated[bool | None, K8S_ONLY] = None
    dns_policy: Annotated[str | None, K8S_ONLY] = None
    dns_config: Annotated[KubeDict | None, K8S_ONLY] = None
    scheduler_name: Annotated[str | None, K8S_ONLY] = None
    pod_priority_class_name: Annotated[str | None, K8S_ONLY] = None
    pod_priority: Annotated[int | None, K8S_ONLY] = None
    host_aliases: Annotated[list[KubeDict] | None, K8S_ONLY] = None
    security_context: Annotated[KubeDict | None, K8S_ONLY] = None
    pod_spec_patch: Annotated[str | None, K8S_ONLY] = None
    pod_disruption_budget: Annotated[KubeDict | None, K8S_ONLY] = None
    pod_resources: Annotated[KubeDict | None, K8S_ONLY] = None
    resource_claims: Annotated[list[KubeDict] | None, K8S_ONLY] = None

    def template(self, name: str) -> Template | None:
        """The template of ``spec.templates`` called ``name``, if any."""
        return next((t for t in self.templates or () if t.name == name), None)

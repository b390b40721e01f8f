"""Templates and the call sites that invoke them (steps, DAG tasks, lifecycle hooks)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from workflows.models._base import K8S_ONLY, ArgoModel, IntOrString, KubeDict
from workflows.models.container import Container, ContainerSetTemplate, ScriptTemplate, UserContainer
from workflows.models.kinds import DataTemplate, HTTPTemplate, ResourceTemplate, SuspendTemplate
from workflows.models.meta import Metadata
from workflows.models.params import Arguments, ArtifactLocation, Inputs, Outputs
from workflows.models.policies import Memoize, Metrics, RetryStrategy, Synchronization, TemplateRef

__all__ = [
    "ContinueOn",
    "DAGTask",
    "DAGTemplate",
    "LifecycleHook",
    "Sequence",
    "Template",
    "TemplateType",
    "WorkflowStep",
]


class TemplateType(StrEnum):
    """The kind of work a template does; the value is the template's YAML key."""

    CONTAINER = "container"
    CONTAINER_SET = "containerSet"
    SCRIPT = "script"
    RESOURCE = "resource"
    STEPS = "steps"
    DAG = "dag"
    SUSPEND = "suspend"
    HTTP = "http"
    PLUGIN = "plugin"
    DATA = "data"


class Sequence(ArgoModel):
    """``withSequence``: numbers from ``start`` to ``end`` or ``count`` of them, printf-``format``ted."""

    count: IntOrString | None = None
    start: IntOrString | None = None
    end: IntOrString | None = None
    format: str | None = None


class ContinueOn(ArgoModel):
    """Let the parent carry on although this step failed or errored."""

    failed: bool | None = None
    error: bool | None = None


class LifecycleHook(ArgoModel):
    """``hooks.<name>``: run a template on exit, or whenever ``expression`` becomes true."""

    template: str | None = None
    template_ref: TemplateRef | None = None
    arguments: Arguments | None = None
    expression: str | None = None


class WorkflowStep(ArgoModel):
    """One step of a step group. It calls ``template``, ``templateRef`` or an ``inline`` template."""

    name: str
    template: str | None = None
    template_ref: TemplateRef | None = None
    inline: Template | None = None
    arguments: Arguments | None = None
    when: str | None = None
    with_items: list[Any] | None = None
    with_param: str | None = None
    with_sequence: Sequence | None = None
    continue_on: ContinueOn | None = None
    on_exit: str | None = None
    hooks: dict[str, LifecycleHook] | None = None


class DAGTask(WorkflowStep):
    """A DAG node: a step that runs once its ``depends`` expression (or ``dependencies``) is met."""

    dependencies: list[str] | None = None
    depends: str | None = None


class DAGTemplate(ArgoModel):
    """``dag``: tasks ordered by their dependencies. ``target`` limits the run to some tasks."""

    tasks: list[DAGTask]
    target: str | None = None
    fail_fast: bool | None = None


# Each template type's field, in the order Argo checks them.
_TYPE_FIELDS = (
    ("container", TemplateType.CONTAINER),
    ("container_set", TemplateType.CONTAINER_SET),
    ("script", TemplateType.SCRIPT),
    ("resource", TemplateType.RESOURCE),
    ("steps", TemplateType.STEPS),
    ("dag", TemplateType.DAG),
    ("suspend", TemplateType.SUSPEND),
    ("http", TemplateType.HTTP),
    ("plugin", TemplateType.PLUGIN),
    ("data", TemplateType.DATA),
)


class Template(ArgoModel):
    """A unit of work. Exactly one type field (``container``, ``steps``, ``dag``...) must be set.

    ``name`` is optional here because inline templates and ``templateDefaults`` have none; lint
    requires it for ``spec.templates``.
    """

    name: str | None = None
    inputs: Inputs | None = None
    outputs: Outputs | None = None
    container: Container | None = None
    script: ScriptTemplate | None = None
    container_set: ContainerSetTemplate | None = None
    steps: list[list[WorkflowStep]] | None = None
    dag: DAGTemplate | None = None
    suspend: SuspendTemplate | None = None
    resource: ResourceTemplate | None = None
    http: HTTPTemplate | None = None
    plugin: KubeDict | None = None
    data: DataTemplate | None = None
    annotations: dict[str, str] | None = None
    retry_strategy: RetryStrategy | None = None
    active_deadline_seconds: IntOrString | None = None
    timeout: str | None = None
    pending_timeout: str | None = None
    parallelism: int | None = None
    fail_fast: bool | None = None
    memoize: Memoize | None = None
    synchronization: Synchronization | None = None
    metrics: Metrics | None = None
    daemon: bool | None = None
    init_containers: list[UserContainer] | None = None
    sidecars: list[UserContainer] | None = None
    volumes: list[KubeDict] | None = None
    archive_location: ArtifactLocation | None = None
    metadata: Metadata | None = None  # labels choose the executor; they and podGC's selector use them
    node_selector: Annotated[dict[str, str] | None, K8S_ONLY] = None
    affinity: Annotated[KubeDict | None, K8S_ONLY] = None
    tolerations: Annotated[list[KubeDict] | None, K8S_ONLY] = None
    scheduler_name: Annotated[str | None, K8S_ONLY] = None
    priority_class_name: Annotated[str | None, K8S_ONLY] = None
    priority: Annotated[int | None, K8S_ONLY] = None
    service_account_name: Annotated[str | None, K8S_ONLY] = None
    automount_service_account_token: Annotated[bool | None, K8S_ONLY] = None
    executor: Annotated[KubeDict | None, K8S_ONLY] = None
    host_aliases: Annotated[list[KubeDict] | None, K8S_ONLY] = None
    security_context: Annotated[KubeDict | None, K8S_ONLY] = None
    pod_spec_patch: Annotated[str | None, K8S_ONLY] = None
    resource_claims: Annotated[list[KubeDict] | None, K8S_ONLY] = None
    pod_resources: Annotated[KubeDict | None, K8S_ONLY] = None

    @property
    def types(self) -> tuple[TemplateType, ...]:
        """Every type field that is set; valid templates have exactly one."""
        values = self.__dict__  # read on every walk of every node: no per-call dict of fields
        return tuple(kind for name, kind in _TYPE_FIELDS if values[name] is not None)

    @property
    def type(self) -> TemplateType | None:
        """The template's type, or ``None`` when zero or several type fields are set."""
        kinds = self.types
        return kinds[0] if len(kinds) == 1 else None

    @property
    def is_leaf(self) -> bool:
        """True for templates that do work themselves (Argo's ``IsLeaf``): not steps, dag or suspend."""
        kind = self.type
        return kind is not None and kind not in (TemplateType.STEPS, TemplateType.DAG, TemplateType.SUSPEND)

    @property
    def main_container(self) -> Container | None:
        """The container of a ``container`` or ``script`` template."""
        return self.container or self.script


WorkflowStep.model_rebuild()
DAGTask.model_rebuild()

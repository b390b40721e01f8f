"""``argoWorkflow``: submit a workflow to the built-in scheduler, in-process (Argo Events shells out
to the ``argo`` CLI per event), idempotently by the firing's key."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from triggers._source import ResourceSource
from triggers._workflows import create_workflow, is_workflow
from triggers.base import Firing, TriggerContext, TriggerResult, register

__all__ = ["ArgoWorkflowConfig", "ArgoWorkflowTrigger"]


class ArgoWorkflowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: ResourceSource
    operation: str = "submit"
    args: list[str] = Field(default_factory=list)


@register
class ArgoWorkflowTrigger:
    key: ClassVar[str] = "argoWorkflow"
    Config: ClassVar[type[BaseModel]] = ArgoWorkflowConfig

    def __init__(self, context: TriggerContext) -> None:
        self.context = context

    @staticmethod
    def check(config: ArgoWorkflowConfig, where: str) -> list[str]:
        if config.operation != "submit":
            return [f"{where}.operation: {config.operation!r} is not supported yet (supported: submit)"]
        problems = config.source.check(f"{where}.source")
        resource = config.source.resource
        if resource is not None and not is_workflow(resource):
            problems.append(f"{where}.source.resource: expected an argoproj.io/v1alpha1 Workflow")
        return problems

    async def fire(self, config: ArgoWorkflowConfig, firing: Firing) -> TriggerResult:
        return await create_workflow(self.context, firing, config.source.load())

    async def close(self) -> None:
        return None

"""``k8s``: create a Kubernetes-style object. A ``kind: Workflow`` resource (Argo Events' most common
webhook -> workflow example) is created in the built-in scheduler, idempotently by the firing's key."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from triggers._source import ResourceSource
from triggers._workflows import create_workflow, is_workflow
from triggers.base import Firing, TriggerContext, TriggerResult, register

__all__ = ["K8sConfig", "K8sTrigger"]


class K8sConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: ResourceSource
    operation: str = "create"
    patchStrategy: str | None = None
    liveObject: bool | None = None


@register
class K8sTrigger:
    key: ClassVar[str] = "k8s"
    Config: ClassVar[type[BaseModel]] = K8sConfig

    def __init__(self, context: TriggerContext) -> None:
        self.context = context

    @staticmethod
    def check(config: K8sConfig, where: str) -> list[str]:
        if config.operation != "create":
            return [f"{where}.operation: {config.operation!r} is not supported yet (supported: create)"]
        problems = config.source.check(f"{where}.source")
        resource = config.source.resource
        if resource is not None and not is_workflow(resource):
            kind = f"{resource.get('apiVersion')} {resource.get('kind')}"
            problems.append(f"{where}.source.resource: creating {kind} objects is not supported yet (no Kubernetes cluster is configured; Workflows are)")
        return problems

    async def fire(self, config: K8sConfig, firing: Firing) -> TriggerResult:
        return await create_workflow(self.context, firing, await config.source.load(self.context, firing.namespace))

    async def close(self) -> None:
        return None



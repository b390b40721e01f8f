"""Object metadata: the Kubernetes ``metadata`` block and Argo's pod/workflow metadata."""

from __future__ import annotations

from datetime import datetime

from workflows.models._base import ArgoModel, KubeDict

__all__ = ["LabelValueFrom", "Metadata", "ObjectMeta", "WorkflowMetadata"]


class ObjectMeta(ArgoModel):
    """``metadata`` of a resource. A Workflow needs ``name`` or ``generateName``."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    creation_timestamp: datetime | None = None
    resource_version: str | None = None
    generation: int | None = None
    finalizers: list[str] | None = None
    owner_references: list[KubeDict] | None = None
    managed_fields: list[KubeDict] | None = None
    deletion_timestamp: datetime | None = None


class Metadata(ArgoModel):
    """Pod-level labels and annotations (``template.metadata``, ``spec.podMetadata``)."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class LabelValueFrom(ArgoModel):
    """``workflowMetadata.labelsFrom.<label>``: an expr-lang expression giving the label value."""

    expression: str


class WorkflowMetadata(ArgoModel):
    """``spec.workflowMetadata``: labels and annotations added to the Workflow itself."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    labels_from: dict[str, LabelValueFrom] | None = None

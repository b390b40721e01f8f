"""Bodies of the template types other than container, script, steps and dag."""

from __future__ import annotations

from workflows.models._base import ArgoModel, IntOrString, KubeDict
from workflows.models.params import Artifact

__all__ = [
    "DataSource",
    "DataTemplate",
    "HTTPBodySource",
    "HTTPHeader",
    "HTTPTemplate",
    "ManifestFrom",
    "ResourceTemplate",
    "SuspendTemplate",
    "Transformation",
]


class SuspendTemplate(ArgoModel):
    """Pause until resumed, or for ``duration`` (seconds, or a duration such as ``"2m"``)."""

    duration: IntOrString | None = None


class ManifestFrom(ArgoModel):
    """Read a resource manifest from an input artifact."""

    artifact: Artifact


class ResourceTemplate(ArgoModel):
    """Act on a Kubernetes resource (get, create, apply, delete, replace, patch)."""

    action: str
    manifest: str | None = None
    manifest_from: ManifestFrom | None = None
    merge_strategy: str | None = None
    set_owner_reference: bool | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    flags: list[str] | None = None


class HTTPHeader(ArgoModel):
    """One request header; ``valueFrom.secretKeyRef`` is passed through."""

    name: str
    value: str | None = None
    value_from: KubeDict | None = None


class HTTPBodySource(ArgoModel):
    """``bodyFrom.bytes``: a base64 request body."""

    bytes: str | None = None


class HTTPTemplate(ArgoModel):
    """Send one HTTP request; the response body becomes ``outputs.result``."""

    url: str
    method: str | None = None
    headers: list[HTTPHeader] | None = None
    timeout_seconds: int | None = None
    success_condition: str | None = None
    body: str | None = None
    body_from: HTTPBodySource | None = None
    insecure_skip_verify: bool | None = None


class DataSource(ArgoModel):
    """Where a data template reads from: a list of artifact paths."""

    artifact_paths: Artifact | None = None


class Transformation(ArgoModel):
    """One expr-lang step of a data template; it sees the previous output as ``data``."""

    expression: str


class DataTemplate(ArgoModel):
    """Read a source and apply transformations; the result becomes ``outputs.result``."""

    source: DataSource
    transformation: list[Transformation]

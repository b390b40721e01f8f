"""Parameters, artifacts, arguments, inputs and outputs."""

from __future__ import annotations

from pydantic import Field

from workflows.models._base import AnyString, ArgoModel, KubeDict

__all__ = [
    "Arguments",
    "Artifact",
    "ArtifactLocation",
    "ConfigMapKeyRef",
    "Inputs",
    "Outputs",
    "Parameter",
    "RawArtifact",
    "SuppliedValueFrom",
    "ValueFrom",
]


class ConfigMapKeyRef(ArgoModel):
    """A key of a ConfigMap (``configMapKeyRef: {name, key}``)."""

    name: str
    key: str
    optional: bool | None = None


class SuppliedValueFrom(ArgoModel):
    """``valueFrom.supplied: {}``: the value is supplied by a human while the node is suspended."""


class ValueFrom(ArgoModel):
    """Where a parameter's value comes from; exactly one source, plus an optional ``default``."""

    path: str | None = None
    json_path: str | None = Field(default=None, alias="jsonPath")
    jq_filter: str | None = None
    event: str | None = None
    parameter: str | None = None
    expression: str | None = None
    supplied: SuppliedValueFrom | None = None
    config_map_key_ref: ConfigMapKeyRef | None = None
    default: AnyString | None = None

    def sources(self) -> list[str]:
        """YAML names of the sources that are set (``default`` is a fallback, not a source)."""
        names = (
            "path",
            "jsonPath",
            "jqFilter",
            "event",
            "parameter",
            "expression",
            "supplied",
            "configMapKeyRef",
        )
        values = (
            self.path,
            self.json_path,
            self.jq_filter,
            self.event,
            self.parameter,
            self.expression,
            self.supplied,
            self.config_map_key_ref,
        )
        return [name for name, value in zip(names, values, strict=True) if value is not None]


class Parameter(ArgoModel):
    """A named string value: a workflow argument, a call-site argument, an input or an output."""

    name: str
    value: AnyString | None = None
    default: AnyString | None = None
    enum: list[AnyString] | None = None
    value_from: ValueFrom | None = None
    global_name: str | None = None
    description: str | None = None


class RawArtifact(ArgoModel):
    """An artifact whose content is written inline in the spec."""

    data: str


class ArtifactLocation(ArgoModel):
    """Where artifacts are archived (``template.archiveLocation``); storage configs are passed through."""

    archive_logs: bool | None = None
    s3: KubeDict | None = None
    gcs: KubeDict | None = None
    azure: KubeDict | None = None
    oss: KubeDict | None = None
    hdfs: KubeDict | None = None
    http: KubeDict | None = None
    git: KubeDict | None = None
    artifactory: KubeDict | None = None
    raw: RawArtifact | None = None


class Artifact(ArtifactLocation):
    """A file or directory passed between steps; where it lives is an :class:`ArtifactLocation`."""

    name: str
    path: str | None = None
    mode: int | None = None
    from_: str | None = Field(default=None, alias="from")
    from_expression: str | None = None
    global_name: str | None = None
    optional: bool | None = None
    sub_path: str | None = None
    recurse_mode: bool | None = None
    archive: KubeDict | None = None
    artifact_gc: KubeDict | None = Field(default=None, alias="artifactGC")
    deleted: bool | None = None
    plugin: KubeDict | None = None

    def has_location(self) -> bool:
        """True when the artifact names a storage location (or only a ``key`` inside one)."""
        locations = (self.raw, self.s3, self.gcs, self.azure, self.oss, self.hdfs, self.http, self.git)
        return any(location is not None for location in (*locations, self.artifactory, self.plugin))


class Arguments(ArgoModel):
    """Values passed to a template (at a call site) or to the workflow (``spec.arguments``)."""

    parameters: list[Parameter] | None = None
    artifacts: list[Artifact] | None = None

    def parameter(self, name: str) -> Parameter | None:
        """The parameter called ``name``, if any."""
        return next((p for p in self.parameters or () if p.name == name), None)


class Inputs(ArgoModel):
    """What a template declares it takes."""

    parameters: list[Parameter] | None = None
    artifacts: list[Artifact] | None = None


class Outputs(ArgoModel):
    """What a template produces. ``result`` and ``exitCode`` are filled in at run time."""

    parameters: list[Parameter] | None = None
    artifacts: list[Artifact] | None = None
    result: str | None = None
    exit_code: str | None = None

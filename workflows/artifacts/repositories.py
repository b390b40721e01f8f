"""Which repository a workflow's artifacts go to, and opening it.

The server has a default (``artifacts.repository`` in its config: a directory under the data dir
unless told otherwise). A workflow may pick another with Argo's ``artifactRepositoryRef``: a key of
a ConfigMap (``artifact-repositories`` unless named; the key defaults to the ConfigMap's
``workflows.argoproj.io/default-artifact-repository`` annotation). Without a ref, a ConfigMap
``artifact-repositories`` in the workflow's namespace that has that annotation is used, as in Argo.
The choice is made once, at submission, and kept in ``status.artifactRepositoryRef``.

A ConfigMap value is Argo's ArtifactRepository YAML (``s3: {...}``, ``archiveLogs``), or one of
eventflow's own: ``local: {}`` (the server's directory) and ``nats: {bucket: ...}`` (the bus's
object store; the default when workers on other machines share the bus).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflows.artifacts.repository import ArtifactRepository, DirectoryRepository, RepositoryError

__all__ = [
    "DEFAULT_KEY_FORMAT",
    "DEFAULT_REPOSITORY_ANNOTATION",
    "REPOSITORIES_CONFIGMAP",
    "RepositoryConfig",
    "RepositoryRefError",
    "Repositories",
    "parse_repository_config",
]

DEFAULT_KEY_FORMAT = "{{workflow.name}}/{{pod.name}}"
REPOSITORIES_CONFIGMAP = "artifact-repositories"
DEFAULT_REPOSITORY_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"
_UNSUPPORTED = ("gcs", "azure", "oss", "hdfs", "artifactory", "http", "git", "plugin")


class RepositoryRefError(ValueError):
    """``artifactRepositoryRef`` names a ConfigMap or key that does not exist or does not parse."""


class _Local(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    key_format: str | None = Field(default=None, alias="keyFormat")


class _Nats(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    bucket: str = "eventflow-artifacts"
    key_format: str | None = Field(default=None, alias="keyFormat")


class RepositoryConfig(BaseModel):
    """One artifact repository: exactly one of ``local``, ``nats``, ``s3``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    archive_logs: bool = Field(default=False, alias="archiveLogs")
    local: _Local | None = None
    nats: _Nats | None = None
    s3: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return "s3" if self.s3 is not None else "nats" if self.nats is not None else "local"

    @property
    def key_format(self) -> str:
        if self.s3 is not None:
            return str(self.s3.get("keyFormat") or DEFAULT_KEY_FORMAT)
        chosen = self.nats or self.local
        return (chosen.key_format if chosen else None) or DEFAULT_KEY_FORMAT


def parse_repository_config(text: str | dict[str, Any], where: str) -> RepositoryConfig:
    """A ConfigMap value (YAML text) or a config mapping, as a :class:`RepositoryConfig`."""
    try:
        data = yaml.safe_load(text) if isinstance(text, str) else text
    except yaml.YAMLError as exc:
        raise RepositoryRefError(f"{where}: not YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RepositoryRefError(f"{where}: expected a mapping such as 's3: {{...}}' or 'local: {{}}'")
    found = [k for k in _UNSUPPORTED if k in data]
    if found:
        raise RepositoryRefError(f"{where}: {found[0]} artifact repositories are not supported (use s3, nats or local)")
    try:
        config = RepositoryConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise RepositoryRefError(f"{where}: {path}: {first['msg']}") from exc
    if sum(x is not None for x in (config.local, config.nats, config.s3)) > 1:
        raise RepositoryRefError(f"{where}: give one of local, nats, s3")
    return config


class Repositories:
    """Opens (once) and hands out the repositories workflows use."""

    def __init__(self, default: RepositoryConfig, *, local_root: Path, bus: Any = None, max_bytes: int | None = None) -> None:
        self.default = default
        self.local_root = local_root
        self.bus = bus
        self.max_bytes = max_bytes
        self._open: dict[str, ArtifactRepository] = {}

    def __repr__(self) -> str:
        return f"<Repositories default={self.default.kind} open={len(self._open)}>"

    def config_of(self, status: dict[str, Any]) -> RepositoryConfig:
        """The repository a workflow's status names (the server's default when it names none)."""
        ref = status.get("artifactRepositoryRef") or {}
        chosen = ref.get("artifactRepository")
        if ref.get("default", True) and not chosen:
            return self.default
        return parse_repository_config(chosen or {}, f"artifact repository {ref.get('configMap')}/{ref.get('key')}")

    async def open(self, config: RepositoryConfig) -> ArtifactRepository:
        key = json.dumps(config.model_dump(mode="json", exclude={"archive_logs"}), sort_keys=True)
        repo = self._open.get(key)
        if repo is None:
            repo = await self._make(config)
            self._open[key] = repo
        return repo

    async def _make(self, config: RepositoryConfig) -> ArtifactRepository:
        if config.s3 is not None:
            try:
                from workflows.artifacts.s3 import S3Config, S3Repository
            except ImportError as exc:  # pragma: no cover - the module ships with eventflow
                raise RepositoryError(f"S3 artifact repository unavailable: {exc}") from exc
            try:
                return S3Repository(S3Config.model_validate(config.s3))
            except ValidationError as exc:
                raise RepositoryError(f"s3 artifact repository: {exc.errors()[0]['msg']}") from exc
        if config.nats is not None:
            if self.bus is None:
                raise RepositoryError("the nats artifact repository needs the event bus, and this scheduler has none")
            from workflows.artifacts.objectstore import ObjectStoreRepository

            return ObjectStoreRepository(await self.bus.object_store(config.nats.bucket))
        return DirectoryRepository(self.local_root)

    async def close(self) -> None:
        for repo in self._open.values():
            await repo.close()
        self._open.clear()


async def resolve_ref(ref: Any, config_maps: dict[str, tuple[dict[str, str], dict[str, str]]]) -> dict[str, Any]:
    """``status.artifactRepositoryRef`` for a workflow: ``ref`` (its ``artifactRepositoryRef`` or
    None) looked up in ``config_maps`` (name -> (data, annotations) of the namespace's ConfigMaps)."""
    name = (ref.config_map if ref is not None else None) or REPOSITORIES_CONFIGMAP
    found = config_maps.get(name)
    if found is None:
        if ref is None:
            return {"default": True}
        raise RepositoryRefError(f'artifactRepositoryRef: ConfigMap "{name}" not found')
    data, annotations = found
    key = (ref.key if ref is not None else None) or annotations.get(DEFAULT_REPOSITORY_ANNOTATION)
    if not key:
        if ref is None:
            return {"default": True}
        raise RepositoryRefError(
            f'artifactRepositoryRef: no key given and ConfigMap "{name}" has no {DEFAULT_REPOSITORY_ANNOTATION} annotation'
        )
    if key not in data:
        raise RepositoryRefError(f'artifactRepositoryRef: ConfigMap "{name}" has no key "{key}"')
    config = parse_repository_config(data[key], f'ConfigMap "{name}" key "{key}"')
    return {"configMap": name, "key": key, "artifactRepository": config.model_dump(mode="json", by_alias=True, exclude_none=True)}

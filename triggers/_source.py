"""Where a trigger's resource comes from (Argo's ``ArtifactLocation``): ``resource`` inline, an
``inline`` YAML string, a ``file`` under the server's trigger-resources directory, a key of an applied
``configmap``, or a ``url``. ``git`` and ``s3`` are refused with a clear message.

The resource is read per firing, as Argo does, so an updated ConfigMap or file takes effect for the
next event. A file outside the resources directory is refused: a Sensor author must not be able to
turn the server's own files into workflow specs.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from triggers.base import TriggerContext, TriggerFailed, TriggerRejected

__all__ = ["ResourceSource"]

_LATER = ("git", "s3")
URL_TIMEOUT_SECONDS = 10.0


class FileSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str = Field(min_length=1)


class ConfigMapSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)
    optional: bool | None = None


class UrlSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    path: str = Field(min_length=1)
    # Argo's examples spell it both ways (Go's JSON decoding ignores case).
    verifyCert: bool = Field(default=True, validation_alias=AliasChoices("verifyCert", "verifycert"))


class ResourceSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    resource: dict[str, Any] | None = None
    inline: str | None = None
    file: FileSource | None = None
    configmap: ConfigMapSource | None = None
    url: UrlSource | None = None
    git: Any = None
    s3: Any = None

    def check(self, where: str) -> list[str]:
        problems = [f"{where}.{key}: resources from {key} are not supported yet (use resource, inline, file, configmap or url)" for key in _LATER if getattr(self, key) is not None]
        given = [k for k in ("resource", "inline", "file", "configmap", "url", *_LATER) if getattr(self, k) is not None]
        if not given:
            problems.append(f"{where}: give the resource (resource, inline, file, configmap or url)")
        elif len(given) > 1:
            problems.append(f"{where}: give one source of the resource, not {', '.join(given)}")
        if self.inline is not None:
            try:
                if not isinstance(yaml.safe_load(self.inline), dict):
                    problems.append(f"{where}.inline: expected a YAML mapping")
            except yaml.YAMLError as exc:
                problems.append(f"{where}.inline: invalid YAML: {exc}")
        if self.url is not None and not self.url.path.startswith(("http://", "https://")):
            problems.append(f"{where}.url.path: expected an http:// or https:// URL, got {self.url.path!r}")
        return problems

    async def load(self, context: TriggerContext, namespace: str) -> dict[str, Any]:
        """The resource as a fresh mapping; ``TriggerRejected`` when it cannot be had,
        ``TriggerFailed`` when it may be had later (a URL that is down)."""
        if self.resource is not None:
            return copy.deepcopy(self.resource)
        if self.inline is not None:
            return _mapping(self.inline, "source.inline")
        if self.file is not None:
            return _mapping(await asyncio.to_thread(_read_file, context, self.file.path), f"source.file {self.file.path}")
        if self.configmap is not None:
            return await self._from_configmap(context, namespace, self.configmap)
        if self.url is not None:
            return _mapping(await _fetch(self.url), f"source.url {self.url.path}")
        raise TriggerRejected("source: no resource given")

    @staticmethod
    async def _from_configmap(context: TriggerContext, namespace: str, ref: ConfigMapSource) -> dict[str, Any]:
        if context.resources is None:
            raise TriggerFailed("no resource store in this process")
        record = await context.resources.get_resource("ConfigMap", namespace, ref.name)
        if record is None:
            raise TriggerRejected(f"source.configmap: ConfigMap {namespace}/{ref.name} not found")
        data = record.manifest.get("data") or {}
        if ref.key not in data:
            raise TriggerRejected(f"source.configmap: ConfigMap {namespace}/{ref.name} has no key {ref.key!r} (keys: {', '.join(sorted(data)) or 'none'})")
        return _mapping(str(data[ref.key]), f"source.configmap {ref.name}/{ref.key}")


def _mapping(text: str, what: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise TriggerRejected(f"{what}: invalid YAML{where}") from None
    if not isinstance(loaded, dict):
        raise TriggerRejected(f"{what}: expected a YAML mapping (a Kubernetes object)")
    return loaded


def _read_file(context: TriggerContext, path: str) -> str:
    root = context.resource_dir
    if root is None:
        raise TriggerRejected("source.file: this server has no trigger resources directory")
    base = Path(root).resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise TriggerRejected(f"source.file: {path!r} is outside the trigger resources directory {base}")
    try:
        return target.read_text()
    except OSError as exc:
        raise TriggerRejected(f"source.file: cannot read {path!r}: {exc.strerror or exc}") from None


async def _fetch(source: UrlSource) -> str:
    try:
        async with httpx.AsyncClient(timeout=URL_TIMEOUT_SECONDS, verify=source.verifyCert) as client:
            response = await client.get(source.path)
    except httpx.HTTPError as exc:
        raise TriggerFailed(f"source.url: GET {source.path}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise TriggerFailed(f"source.url: GET {source.path} answered {response.status_code}")
    if response.status_code >= 400:
        raise TriggerRejected(f"source.url: GET {source.path} answered {response.status_code}")
    return response.text

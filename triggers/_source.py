"""Where a trigger's resource comes from (Argo's ``ArtifactLocation``): ``resource`` inline or an
``inline`` YAML string today; ``file``, ``configmap``, ``url``, ``git`` and ``s3`` are refused with a
clear message until they are implemented."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

__all__ = ["ResourceSource"]

_LATER = ("file", "configmap", "url", "git", "s3")


class ResourceSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    resource: dict[str, Any] | None = None
    inline: str | None = None
    file: Any = None
    configmap: Any = None
    url: Any = None
    git: Any = None
    s3: Any = None

    def check(self, where: str) -> list[str]:
        problems = [f"{where}.{key}: resources from {key} are not supported yet (use source.resource)" for key in _LATER if getattr(self, key) is not None]
        given = [k for k in ("resource", "inline", *_LATER) if getattr(self, k) is not None]
        if not given:
            problems.append(f"{where}: give the resource (source.resource)")
        if self.inline is not None:
            try:
                if not isinstance(yaml.safe_load(self.inline), dict):
                    problems.append(f"{where}.inline: expected a YAML mapping")
            except yaml.YAMLError as exc:
                problems.append(f"{where}.inline: invalid YAML: {exc}")
        return problems

    def load(self) -> dict[str, Any]:
        if self.resource is not None:
            return copy.deepcopy(self.resource)
        loaded = yaml.safe_load(self.inline or "")
        return loaded if isinstance(loaded, dict) else {}

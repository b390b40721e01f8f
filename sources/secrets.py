"""Secrets named in EventSource specs (tokens, HMAC keys), read where the server runs.

A reference is Argo's ``{name, key}`` (a Kubernetes SecretKeySelector), found as the file
``<secrets dir>/<namespace>/<name>/<key>`` or else the environment variable
``EVENTFLOW_SECRET_<NAME>_<KEY>`` (upper case, other characters as ``_``); or eventflow's own
``{file: /path}`` / ``{env: VARIABLE}``. Values are read when the source starts and never logged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["SecretError", "SecretRef", "Secrets"]


class SecretError(ValueError):
    """A secret that cannot be read; the message names where it was looked for."""


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    key: str | None = None
    file: str | None = None
    env: str | None = None
    optional: bool | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        given = [bool(self.name and self.key), bool(self.file), bool(self.env)]
        if sum(given) != 1:
            raise ValueError("give one of {name, key}, {file} or {env}")
        return self

    def describe(self) -> str:
        if self.file:
            return f"file {self.file}"
        if self.env:
            return f"environment variable {self.env}"
        return f"secret {self.name}/{self.key}"


class Secrets:
    def __init__(self, directory: Path | None = None, environ: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.environ = os.environ if environ is None else environ

    def read(self, ref: SecretRef, namespace: str) -> str:
        if ref.file:
            return _read_file(Path(ref.file), ref.describe())
        if ref.env:
            value = self.environ.get(ref.env)
            if value is None:
                raise SecretError(f"{ref.describe()} is not set")
            return value
        assert ref.name and ref.key
        if self.directory is not None:
            path = self.directory / namespace / ref.name / ref.key
            if path.is_file():
                return _read_file(path, ref.describe())
        variable = "EVENTFLOW_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", f"{ref.name}_{ref.key}").upper()
        value = self.environ.get(variable)
        if value is None:
            where = f"{self.directory / namespace / ref.name / ref.key} or " if self.directory else ""
            raise SecretError(f"{ref.describe()} not found (looked in {where}${variable})")
        return value


def _read_file(path: Path, what: str) -> str:
    try:
        return path.read_text().strip("\n")
    except OSError as exc:
        raise SecretError(f"{what}: cannot read: {exc.strerror or exc}") from None

"""Where artifacts are kept: one small interface, one class per kind of storage.

Every repository stores plain files under string keys (``my-wf/my-wf-123/hello.tgz``). A directory
artifact stored without an archive is one file per member under ``<key>/``. Keys are checked here,
once, so no backend can be tricked into writing outside its own space.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
    "ArtifactNotFound",
    "ArtifactRepository",
    "DirectoryRepository",
    "InvalidArtifactKey",
    "RepositoryError",
    "check_key",
]


class RepositoryError(Exception):
    """The repository could not do what was asked (unreachable, refused, out of space...)."""


class ArtifactNotFound(RepositoryError):
    """No artifact is stored under the key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"artifact {key!r} not found")


class InvalidArtifactKey(RepositoryError, ValueError):
    """A key that is empty, absolute, or climbs out of the repository with ``..``."""


def check_key(key: str) -> str:
    """``key`` normalised (no leading/trailing/double slashes), or :class:`InvalidArtifactKey`."""
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if not parts or key.startswith("/"):
        raise InvalidArtifactKey(f"artifact key {key!r} is empty or absolute")
    if any(p == ".." for p in parts) or any("\x00" in p for p in parts):
        raise InvalidArtifactKey(f"artifact key {key!r} leaves the repository")
    return "/".join(parts)


@runtime_checkable
class ArtifactRepository(Protocol):
    """Files under keys. Implementations: :class:`DirectoryRepository` (default), the NATS JetStream
    object store (``workflows.artifacts.objectstore``) and S3 (``workflows.artifacts.s3``)."""

    kind: str  # "directory", "nats", "s3": shown in node status and `eventflow artifacts list`

    async def put_file(self, key: str, source: Path) -> None:
        """Store the file ``source`` under ``key``, replacing what was there."""
        ...

    async def get_file(self, key: str, dest: Path) -> None:
        """Write the file stored under ``key`` to ``dest``; :class:`ArtifactNotFound` if there is none."""
        ...

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key equal to ``prefix`` or under ``prefix/``, sorted."""
        ...

    async def delete_keys(self, keys: list[str]) -> None:
        """Delete these keys; a key that is already gone is not an error."""
        ...

    async def close(self) -> None: ...


class DirectoryRepository:
    """Keys are files under ``root`` (the default: ``<data dir>/artifacts``)."""

    kind = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"<DirectoryRepository {self.root}>"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_file(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self.put_file_sync, key, source)

    async def get_file(self, key: str, dest: Path) -> None:
        await asyncio.to_thread(self.get_file_sync, key, dest)

    async def list_keys(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self.list_keys_sync, prefix)

    async def delete_keys(self, keys: list[str]) -> None:
        await asyncio.to_thread(self.delete_keys_sync, keys)

    # The same, for code already on a worker thread (see ``transfer.Blocking``).

    def put_file_sync(self, key: str, source: Path) -> None:
        target = self.path(key)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)  # a directory artifact stored earlier under the same key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)  # readers never see half a file

    def put_with_sync(self, key: str, produce: Callable[[Path], None]) -> None:
        """Store what ``produce(path)`` writes, written in place (no copy) and renamed when complete."""
        target = self.path(key)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            produce(partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def get_file_sync(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self.path(key), dest)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ArtifactNotFound(key) from exc

    def list_keys_sync(self, prefix: str) -> list[str]:
        prefix = check_key(prefix)
        top = self.root / prefix
        if top.is_file():
            return [prefix]
        found = []
        for parent, _, files in os.walk(top):
            for name in files:
                if name.startswith(".") and name.endswith(".partial"):
                    continue
                found.append(os.path.relpath(os.path.join(parent, name), self.root).replace(os.sep, "/"))
        return sorted(found)

    def delete_keys_sync(self, keys: list[str]) -> None:
        for path in [self.path(k) for k in keys]:
            path.unlink(missing_ok=True)
            # Drop directories the deletion left empty, up to the repository's root.
            parent = path.parent
            while parent != self.root and parent.is_relative_to(self.root):
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    async def close(self) -> None:
        return None

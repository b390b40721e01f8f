"""Moving artifact bytes for the scheduler: a finished node's outputs into the repository, a node's
inputs from the repository (or inline ``raw`` data) into host staging paths the executor binds in.

Everything here works on host paths and repository keys; the node's own filesystem is the
executor's business (it hands over what it took, and binds in what is staged).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workflows.artifacts.archive import ArchiveError, archive_kind, gzip_file, pack_file_tgz, pack_zip, unpack, untar_to
from workflows.artifacts.repository import ArtifactNotFound, ArtifactRepository, RepositoryError, check_key
from workflows.executor.outputs import CollectedArtifact
from workflows.models import Template
from workflows.operator.artifacts import LOCATION_KINDS, storage_of
from workflows.status import NodeStatus, NodeType

__all__ = ["ArtifactFailure", "delete_artifacts", "fetch", "gc_keys", "save_outputs", "stage_inputs"]

_SUFFIX = {"tar": ".tgz", "zip": ".zip", "none": ""}


class ArtifactFailure(Exception):
    """An artifact could not be saved or loaded; the message is the node's."""


async def save_outputs(
    repo: ArtifactRepository,
    key_base: str,
    template: Template,
    collected: dict[str, CollectedArtifact],
    scratch: Path,
    gc_strategy: str | None = None,
) -> list[dict[str, Any]]:
    """Put each output artifact of a finished leaf into ``repo``; their status entries.

    ``gc_strategy`` is the workflow's ``artifactGC.strategy``; an artifact's own overrides it, and
    the entry records the one that applies (``artifactGC``), so deletion needs no template later.

    ``key_base`` is the node's key prefix (Argo's default ``<workflow>/<pod>``); an artifact with a
    key of its own (key-only) is stored under that key instead. A missing non-optional artifact
    raises :class:`ArtifactFailure` with Argo's message.
    """
    saved: list[dict[str, Any]] = []
    for art in (template.outputs.artifacts or []) if template.outputs else []:
        if not art.path:
            continue  # a steps/dag template's output: resolved by the walk (``from``)
        taken = collected.get(art.name)
        if taken is None or taken.kind is None or taken.staged is None:
            if taken is not None and taken.error:
                raise ArtifactFailure(taken.error)
            if art.optional:
                continue
            raise ArtifactFailure(f"{art.path} no such file or directory")
        try:
            archive = archive_kind(art.archive)
        except ArchiveError as exc:
            raise ArtifactFailure(f"outputs.artifacts.{art.name}: {exc}") from exc
        own = storage_of(art)
        if own is not None and "key" not in own:
            kind = next(k for k in LOCATION_KINDS if k in own)
            raise ArtifactFailure(
                f"outputs.artifacts.{art.name}: a {kind} location of its own is not supported; "
                "give only a key (a key-only artifact) to use the workflow's artifact repository"
            )
        key = check_key(own["key"]) if own else f"{key_base}/{art.name}{_SUFFIX[archive]}"
        try:
            await _put(repo, key, Path(taken.staged), taken.kind, archive, os.path.basename(art.path.rstrip("/")) or art.name, scratch)
        except RepositoryError as exc:
            raise ArtifactFailure(f"failed to save outputs: {exc}") from exc
        entry: dict[str, Any] = {"name": art.name, "path": art.path, "key": key, "archive": {archive: {}}, "kind": taken.kind, "size": taken.size}
        strategy = str((art.artifact_gc or {}).get("strategy") or gc_strategy or "")
        if strategy and strategy != "Never":
            entry["artifactGC"] = strategy
        saved.append(entry)
    return saved


async def _put(repo: ArtifactRepository, key: str, staged: Path, kind: str, archive: str, member: str, scratch: Path) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    if archive == "none" and kind == "file":
        await repo.put_file(key, staged)
        return
    if archive == "none":  # a directory, one key per file below it (as Argo uploads it)
        tree = Path(tempfile.mkdtemp(dir=scratch))
        try:
            await asyncio.to_thread(untar_to, staged, tree)
            top = tree / member
            stale = set(await repo.list_keys(key))
            for parent, _, files in os.walk(top):
                for name in sorted(files):
                    path = Path(parent) / name
                    if path.is_symlink():
                        continue  # an object store has no links
                    rel = path.relative_to(top).as_posix()
                    await repo.put_file(f"{key}/{rel}", path)
                    stale.discard(f"{key}/{rel}")
            if stale:
                await repo.delete_keys(sorted(stale))  # files an earlier attempt left there
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        return
    packed = scratch / f".{member}.pack"
    try:
        if archive == "zip":
            await asyncio.to_thread(pack_zip, staged, kind, member, packed)
        elif kind == "file":
            await asyncio.to_thread(pack_file_tgz, staged, member, packed)
        else:
            await asyncio.to_thread(gzip_file, staged, packed)
        await repo.put_file(key, packed)
    finally:
        packed.unlink(missing_ok=True)


async def stage_inputs(
    repo: ArtifactRepository, artifacts: list[dict[str, Any]], staging: Path
) -> list[tuple[str, str, bool]]:
    """Fetch a leaf's input artifacts into ``staging``: (host path, path in the node, read-only) mounts.

    Raises :class:`ArtifactFailure` (the node fails with it) for a missing key, a location that
    cannot be read here, or an archive that would unpack outside its target.
    """
    mounts: list[tuple[str, str, bool]] = []
    if not artifacts:
        return mounts
    shutil.rmtree(staging, ignore_errors=True)  # an earlier attempt's copies
    staging.mkdir(parents=True)
    for index, art in enumerate(artifacts):
        path = art.get("path")
        if not path:
            continue
        target = staging / f"{index}-{art['name']}"
        try:
            if "raw" in art:
                await asyncio.to_thread(target.write_text, str((art.get("raw") or {}).get("data", "")))
            elif "key" in art:
                await fetch(repo, str(art["key"]), target, extract=archive_kind(art.get("archive")) != "none" or art.get("kind") == "dir")
            else:
                kind = next((k for k in LOCATION_KINDS if k in art), "unknown")
                raise ArtifactFailure(f"inputs.artifacts.{art['name']}: {kind} artifacts are not supported here")
            if art.get("subPath"):
                target = _sub_path(target, str(art["subPath"]), art["name"])
            if art.get("mode") is not None:
                await asyncio.to_thread(_chmod_tree, target, int(art["mode"]))
        except ArtifactNotFound as exc:
            raise ArtifactFailure(f"failed to load artifacts: artifact {art['name']!r}: key {exc.key!r} does not exist") from exc
        except (RepositoryError, ArchiveError) as exc:
            raise ArtifactFailure(f"failed to load artifacts: artifact {art['name']!r}: {exc}") from exc
        mounts.append((str(target), str(path), False))
    return mounts


async def fetch(repo: ArtifactRepository, key: str, target: Path, *, extract: bool) -> None:
    """What ``key`` holds, at ``target``: a file (unpacked if ``extract``) or a directory."""
    keys = await repo.list_keys(key)
    if keys == [check_key(key)] or not keys:
        download = target.with_name(target.name + ".download")
        await repo.get_file(key, download)  # raises ArtifactNotFound when there is nothing
        await asyncio.to_thread(unpack, download, target, extract=extract)
        return
    # A directory stored without an archive: one key per file under ``key/``.
    prefix = check_key(key) + "/"
    target.mkdir()
    for member in keys:
        dest = target / member[len(prefix):]
        dest.parent.mkdir(parents=True, exist_ok=True)
        await repo.get_file(member, dest)


def _sub_path(target: Path, sub_path: str, name: str) -> Path:
    inner = (target / sub_path.lstrip("/")).resolve()
    if not inner.is_relative_to(target.resolve()):
        raise ArchiveError(f"subPath {sub_path!r} leaves the artifact")
    if not inner.exists():
        raise ArchiveError(f"subPath {sub_path!r} not found in artifact {name!r}")
    return inner


def _chmod_tree(path: Path, mode: int) -> None:
    if path.is_dir():
        for parent, dirs, files in os.walk(path):
            for name in files:
                if not os.path.islink(os.path.join(parent, name)):
                    os.chmod(os.path.join(parent, name), mode)
    else:
        os.chmod(path, mode)


def gc_keys(nodes: Iterable[NodeStatus], strategies: set[str]) -> list[str]:
    """The repository keys of the leaves' output artifacts whose ``artifactGC`` is one of ``strategies``
    (a directory stored without an archive is its key's prefix)."""
    keys = {
        str(art["key"])
        for node in nodes
        if node.type == NodeType.POD and node.outputs is not None
        for art in node.outputs.artifacts or []
        if art.get("key") and art.get("artifactGC") in strategies
    }
    return sorted(keys)


async def delete_artifacts(repo: ArtifactRepository, keys: list[str]) -> int:
    """Delete what is stored under each key (and under ``key/``); how many files went."""
    doomed: set[str] = set()
    for key in keys:
        doomed.update(await repo.list_keys(key))
    if doomed:
        await repo.delete_keys(sorted(doomed))
    return len(doomed)

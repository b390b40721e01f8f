"""Moving artifact bytes for the scheduler: a finished node's outputs into the repository, a node's
inputs from the repository (or inline ``raw`` data) into host staging paths the executor binds in.

Everything here works on host paths and repository keys; the node's own filesystem is the
executor's business (it hands over what it took, and binds in what is staged).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from workflows.artifacts.archive import ArchiveError, archive_kind, gzip_file, pack_file_tgz, pack_zip, unpack, untar_to
from workflows.artifacts.repository import ArtifactNotFound, ArtifactRepository, DirectoryRepository, RepositoryError, check_key
from workflows.executor.outputs import CollectedArtifact
from workflows.models import Template
from workflows.operator.artifacts import LOCATION_KINDS, storage_of
from workflows.status import NodeStatus, NodeType

__all__ = ["ArtifactFailure", "Blocking", "delete_artifacts", "fetch", "fetch_blocking", "gc_keys", "save_outputs", "stage_inputs"]

_SUFFIX = {"tar": ".tgz", "zip": ".zip", "none": ""}
T = TypeVar("T")


class ArtifactFailure(Exception):
    """An artifact could not be saved or loaded; the message is the node's."""


class Blocking:
    """A repository driven from a worker thread: the directory repository's own file calls, or any
    other repository's coroutines run on the event loop that owns it. The transfer code below runs
    whole on one worker thread, so a node's artifacts cost one thread hop, not one per file."""

    def __init__(self, repo: ArtifactRepository, loop: asyncio.AbstractEventLoop) -> None:
        self.repo = repo
        self.loop = loop
        self.local = repo if isinstance(repo, DirectoryRepository) else None

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def local_path(self, key: str) -> Path | None:
        """Where the local repository keeps ``key`` (read it in place), else None."""
        return self.local.path(key) if self.local is not None else None

    def put_with(self, key: str, produce: Callable[[Path], None], scratch: Path) -> None:
        """Store what ``produce(path)`` writes: straight into the local repository, else via ``scratch``."""
        if self.local is not None:
            self.local.put_with_sync(key, produce)
            return
        scratch.mkdir(parents=True, exist_ok=True)
        packed = scratch / f".{os.path.basename(key)}.pack"
        try:
            produce(packed)
            self.put_file(key, packed)
        finally:
            packed.unlink(missing_ok=True)

    def put_file(self, key: str, source: Path) -> None:
        if self.local is not None:
            self.local.put_file_sync(key, source)
        else:
            self._call(self.repo.put_file(key, source))

    def get_file(self, key: str, dest: Path) -> None:
        if self.local is not None:
            self.local.get_file_sync(key, dest)
        else:
            self._call(self.repo.get_file(key, dest))

    def list_keys(self, prefix: str) -> list[str]:
        return self.local.list_keys_sync(prefix) if self.local is not None else list(self._call(self.repo.list_keys(prefix)))

    def delete_keys(self, keys: list[str]) -> None:
        if self.local is not None:
            self.local.delete_keys_sync(keys)
        else:
            self._call(self.repo.delete_keys(keys))


def _blocking(repo: ArtifactRepository) -> Blocking:
    return Blocking(repo, asyncio.get_running_loop())


# Transfers run here, never on the loop's default executor: a remote repository's coroutine, called
# back from a transfer thread, may itself need a default-executor thread (boto3 calls do), and a
# default pool full of waiting transfers would then wait forever.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="artifact-transfer")


async def _in_pool(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))


async def save_outputs(
    repo: ArtifactRepository,
    key_base: str,
    template: Template,
    collected: dict[str, CollectedArtifact],
    scratch: Path,
    gc_strategy: str | None = None,
) -> list[dict[str, Any]]:
    """Put each output artifact of a finished leaf into ``repo``; their status entries.

    ``key_base`` is the node's key prefix (Argo's default ``<workflow>/<pod>``); an artifact with a
    key of its own (key-only) is stored under that key instead. A missing non-optional artifact
    raises :class:`ArtifactFailure` with Argo's message.

    ``gc_strategy`` is the workflow's ``artifactGC.strategy``; an artifact's own overrides it, and
    the entry records the one that applies (``artifactGC``), so deletion needs no template later.
    """
    return await _in_pool(_save_outputs, _blocking(repo), key_base, template, collected, scratch, gc_strategy)


def _save_outputs(
    repo: Blocking,
    key_base: str,
    template: Template,
    collected: dict[str, CollectedArtifact],
    scratch: Path,
    gc_strategy: str | None,
) -> list[dict[str, Any]]:
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
            _put(repo, key, Path(taken.staged), taken.kind, archive, os.path.basename(art.path.rstrip("/")) or art.name, scratch)
        except RepositoryError as exc:
            raise ArtifactFailure(f"failed to save outputs: {exc}") from exc
        entry: dict[str, Any] = {"name": art.name, "path": art.path, "key": key, "archive": {archive: {}}, "kind": taken.kind, "size": taken.size}
        strategy = str((art.artifact_gc or {}).get("strategy") or gc_strategy or "")
        if strategy and strategy != "Never":
            entry["artifactGC"] = strategy
        saved.append(entry)
    return saved


def _put(repo: Blocking, key: str, staged: Path, kind: str, archive: str, member: str, scratch: Path) -> None:
    if archive == "none" and kind == "file":
        repo.put_file(key, staged)
        return
    if archive == "none":
        scratch.mkdir(parents=True, exist_ok=True)  # a directory, one key per file below it (as Argo uploads it)
        tree = Path(tempfile.mkdtemp(dir=scratch))
        try:
            untar_to(staged, tree)
            top = tree / member
            stale = set(repo.list_keys(key))
            for parent, _, files in os.walk(top):
                for name in sorted(files):
                    path = Path(parent) / name
                    if path.is_symlink():
                        continue  # an object store has no links
                    rel = path.relative_to(top).as_posix()
                    repo.put_file(f"{key}/{rel}", path)
                    stale.discard(f"{key}/{rel}")
            if stale:
                repo.delete_keys(sorted(stale))  # files an earlier attempt left there
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        return
    def produce(packed: Path) -> None:
        if archive == "zip":
            pack_zip(staged, kind, member, packed)
        elif kind == "file":
            pack_file_tgz(staged, member, packed)
        else:
            gzip_file(staged, packed)

    repo.put_with(key, produce, scratch)


async def stage_inputs(
    repo: ArtifactRepository, artifacts: list[dict[str, Any]], staging: Path
) -> list[tuple[str, str, int]]:
    """Fetch a leaf's input artifacts into ``staging``: (host path, path in the node, bytes) each.

    Raises :class:`ArtifactFailure` (the node fails with it) for a missing key, a location that
    cannot be read here, or an archive that would unpack outside its target.
    """
    if not artifacts:
        return []
    return await _in_pool(_stage_inputs, _blocking(repo), artifacts, staging)


def _stage_inputs(repo: Blocking, artifacts: list[dict[str, Any]], staging: Path) -> list[tuple[str, str, int]]:
    staged: list[tuple[str, str, int]] = []
    if staging.exists():
        shutil.rmtree(staging)  # an earlier attempt's copies
    staging.mkdir(parents=True)
    for index, art in enumerate(artifacts):
        path = art.get("path")
        if not path:
            continue
        target = staging / f"{index}-{art['name']}"
        try:
            if "raw" in art:
                target.write_text(str((art.get("raw") or {}).get("data", "")))
            elif "key" in art:
                extract = archive_kind(art.get("archive")) != "none" or art.get("kind") == "dir"
                fetch_blocking(repo, str(art["key"]), target, extract=extract)
            else:
                kind = next((k for k in LOCATION_KINDS if k in art), "unknown")
                raise ArtifactFailure(f"inputs.artifacts.{art['name']}: {kind} artifacts are not supported here")
            if art.get("subPath"):
                target = _sub_path(target, str(art["subPath"]), art["name"])
            if art.get("mode") is not None:
                _chmod_tree(target, int(art["mode"]))
        except ArtifactNotFound as exc:
            raise ArtifactFailure(f"failed to load artifacts: artifact {art['name']!r}: key {exc.key!r} does not exist") from exc
        except (RepositoryError, ArchiveError) as exc:
            raise ArtifactFailure(f"failed to load artifacts: artifact {art['name']!r}: {exc}") from exc
        staged.append((str(target), str(path), _size(target)))
    return staged


async def fetch(repo: ArtifactRepository, key: str, target: Path, *, extract: bool) -> None:
    """What ``key`` holds, at ``target``: a file (unpacked if ``extract``) or a directory."""
    await _in_pool(fetch_blocking, _blocking(repo), key, target, extract=extract)


def fetch_blocking(repo: Blocking, key: str, target: Path, *, extract: bool) -> None:
    """:func:`fetch` on a worker thread."""
    in_place = repo.local_path(key)
    if in_place is not None and in_place.is_file():
        unpack(in_place, target, extract=extract, keep=True)
        return
    download = target.with_name(target.name + ".download")
    try:
        repo.get_file(key, download)
    except ArtifactNotFound:
        keys = repo.list_keys(key)
        if not keys:
            raise
    else:
        unpack(download, target, extract=extract)
        return
    # A directory stored without an archive: one key per file under ``key/``.
    prefix = check_key(key) + "/"
    target.mkdir()
    for member in keys:
        dest = target / member[len(prefix):]
        dest.parent.mkdir(parents=True, exist_ok=True)
        repo.get_file(member, dest)


def _sub_path(target: Path, sub_path: str, name: str) -> Path:
    inner = (target / sub_path.lstrip("/")).resolve()
    if not inner.is_relative_to(target.resolve()):
        raise ArchiveError(f"subPath {sub_path!r} leaves the artifact")
    if not inner.exists():
        raise ArchiveError(f"subPath {sub_path!r} not found in artifact {name!r}")
    return inner


def _size(path: Path) -> int:
    if not path.is_dir():
        return path.stat().st_size
    return sum(os.lstat(os.path.join(parent, name)).st_size for parent, _, files in os.walk(path) for name in files)


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

"""Output artifacts: taken out of a node's filesystem after it exits, before its root is lent again.

The paths are opened where the node's view applies (chrooted into its root, so its symlinks and
volume mounts resolve as the node saw them); the copying then works from the open descriptors on
any thread, so a large artifact never holds up the namespace thread that starts other nodes. A
directory becomes an uncompressed tar whose members are ``<basename>/...`` (Argo's layout); its
symlinks are kept as symlinks and never followed; sockets, devices and fifos are left out.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CollectedArtifact", "collect", "open_paths", "read_fd_text"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class CollectedArtifact:
    """One output artifact as the node left it: ``kind`` "file", "dir" (``staged`` is a tar) or None
    when the path does not exist; ``error`` when it could not be taken (too large, unreadable)."""

    kind: str | None
    staged: str | None
    size: int
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "staged": self.staged, "size": self.size, "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> CollectedArtifact:
        size = data.get("size")
        return cls(
            kind=None if data.get("kind") is None else str(data["kind"]),
            staged=None if data.get("staged") is None else str(data["staged"]),
            size=int(size) if isinstance(size, int) else 0,
            error=None if data.get("error") is None else str(data["error"]),
        )


def open_paths(paths: list[str | None]) -> list[int | None]:
    """Open each path read-only (None where it is missing or unreadable); call with the node's view."""
    fds: list[int | None] = []
    for path in paths:
        try:
            fds.append(None if path is None else os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK))
        except OSError:
            fds.append(None)
    return fds


class _TooLarge(Exception):
    pass


def collect(fd: int | None, node_path: str, dest: Path, limit: int | None) -> CollectedArtifact:
    """Copy what ``fd`` (from :func:`open_paths`) refers to into ``dest`` (closing ``fd``)."""
    if fd is None:
        return CollectedArtifact(None, None, 0)
    try:
        mode = os.fstat(fd).st_mode
        dest.parent.mkdir(parents=True, exist_ok=True)
        if stat.S_ISDIR(mode):
            size = _tar_dir(fd, posixpath.basename(node_path.rstrip("/")) or "root", dest, limit)
            return CollectedArtifact("dir", str(dest), size)
        if not stat.S_ISREG(mode):
            return CollectedArtifact(None, None, 0, f"{node_path} is neither a file nor a directory")
        size = _copy_file(fd, dest, limit)
        return CollectedArtifact("file", str(dest), size)
    except _TooLarge:
        dest.unlink(missing_ok=True)
        return CollectedArtifact(None, None, 0, f"artifact at {node_path} is larger than the limit of {limit} bytes (artifacts.maxSize)")
    except OSError as exc:
        dest.unlink(missing_ok=True)
        return CollectedArtifact(None, None, 0, f"cannot read {node_path}: {exc.strerror or exc}")
    finally:
        os.close(fd)


def _copy_file(fd: int, dest: Path, limit: int | None) -> int:
    os.set_blocking(fd, True)
    total = 0
    with open(dest, "wb") as out:
        while chunk := os.read(fd, _CHUNK):
            total += len(chunk)
            if limit is not None and total > limit:
                raise _TooLarge
            out.write(chunk)
    return total


def _tar_dir(fd: int, top: str, dest: Path, limit: int | None) -> int:
    total = 0
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(top, os.fstat(fd), tarfile.DIRTYPE))
        # fwalk works from the descriptor: nothing here resolves a path from the host's root.
        for parent, dirs, files, parent_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            base = top if parent == "." else f"{top}/{parent[2:]}"
            for name in sorted(dirs + files):
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
                member = f"{base}/{name}"
                if stat.S_ISDIR(st.st_mode):
                    tar.addfile(_info(member, st, tarfile.DIRTYPE))
                elif stat.S_ISLNK(st.st_mode):
                    info = _info(member, st, tarfile.SYMTYPE)
                    info.linkname = os.readlink(name, dir_fd=parent_fd)
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    total += st.st_size
                    if limit is not None and total > limit:
                        raise _TooLarge
                    info = _info(member, st, tarfile.REGTYPE)
                    file_fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=parent_fd)
                    with os.fdopen(file_fd, "rb") as handle:
                        info.size = os.fstat(file_fd).st_size
                        tar.addfile(info, handle)
    return total


def _info(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    return info


def read_fd_text(fd: int | None) -> str | None:
    """An output parameter's text from :func:`open_paths` (closing ``fd``): minus one trailing
    newline; None for a missing file or a directory, as Argo treats both as "no value"."""
    if fd is None:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        os.set_blocking(fd, True)
        chunks = []
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace").removesuffix("\n")
    except OSError:
        return None
    finally:
        os.close(fd)

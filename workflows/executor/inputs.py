"""Input files copied into a node's root just before it starts (small input artifacts).

A bind mount would do as well, but a root that had anything mounted into it must be unmounted and
mounted afresh before it is lent again (milliseconds); a copy into the root's fresh /tmp or /mnt
keeps the cheap recycle. The sources are opened on the host; the copy runs chrooted into the node's
root, reading from the descriptors, so the node's symlinks resolve in its own view and nothing is
written outside it.
"""

from __future__ import annotations

import os
import stat

__all__ = ["open_sources", "place"]

_CHUNK = 1 << 20


def open_sources(paths: list[str]) -> list[int]:
    """Read-only descriptors of the staged files and directories (closed by the caller)."""
    fds: list[int] = []
    try:
        for path in paths:
            fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def place(fd: int, target: str) -> None:
    """Copy the file or directory ``fd`` refers to to ``target`` (call chrooted into the node's root)."""
    target = os.path.normpath("/" + target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode):
        _copy(fd, target, stat.S_IMODE(st.st_mode))
        return
    os.makedirs(target, exist_ok=True)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    for parent, dirs, files, parent_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
        here = target if parent == "." else f"{target}/{parent[2:]}"
        for name in dirs + files:
            entry = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            dest = f"{here}/{name}"
            if stat.S_ISLNK(entry.st_mode):
                os.symlink(os.readlink(name, dir_fd=parent_fd), dest)
            elif stat.S_ISDIR(entry.st_mode):
                os.mkdir(dest, stat.S_IMODE(entry.st_mode) | 0o700)
            elif stat.S_ISREG(entry.st_mode):
                src = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=parent_fd)
                try:
                    _copy(src, dest, stat.S_IMODE(entry.st_mode))
                finally:
                    os.close(src)


def _copy(src: int, dest: str, mode: int) -> None:
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        offset = 0
        while sent := os.sendfile(out, src, offset, _CHUNK):
            offset += sent
        os.fchmod(out, mode)
    finally:
        os.close(out)

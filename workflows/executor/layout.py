"""Per-node directories, and how a path the node sees maps to a path on the host.

Layout under the executor's work dir::

    .bin/                  shims first on every node's PATH (argosay, cowsay, python);
                           mounted at /.eventflow/bin in a private root
    <node_id>.log          the node's combined stdout+stderr, kept by cleanup()
    <node_id>.result.json  how it ended, saved before the scheduler commits it (renamed to
                           ``.result.json.committed`` once committed)
    <node_id>/             made only when needed: fs/ in host mode, removed by cleanup(): tmp/
                           (TMPDIR and HOME), wd/ (the default working dir) and staging/ (script
                           sources); artifacts/ while output artifacts wait for the commit
    .roots/<n>/            private mode: one pooled root (see ``roots``), lent to one node at a time
        tmp/ mnt/          fresh /tmp and /mnt of the node
        upper/ ovwork/     overlay upper and work dirs: every other write the node makes
        root/              where the root is mounted (in the namespace thread's namespace only)

Two views: :class:`PrivateView` (the node has its own root, see ``nsthread``) and :class:`HostView` (no
isolation: the node's paths are the host's).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from workflows.executor.images import ARGO_SCRIPT_PATH

__all__ = [
    "BIN_IN_NODE",
    "FRESH_DIRS",
    "HostView",
    "NodeDirs",
    "NodeView",
    "PrivateView",
    "RootDirs",
    "empty_dir",
    "read_output",
]

# Paths that start empty in every private node, as in a fresh container (not an overlay of the host's).
FRESH_DIRS = ("/tmp", "/mnt")
# Where the executor's shim dir is mounted inside a private node.
BIN_IN_NODE = "/.eventflow/bin"

_OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass(frozen=True)
class NodeDirs:
    """The host paths of one node. Its log and saved result sit beside its dir, which only host
    mode and output artifacts need: a step in a private root creates two files and no dir (file
    creation is the costly part of a step's file work on some disks; docs/benchmarks.md)."""

    node: Path

    @property
    def log(self) -> Path:
        return Path(f"{self.node}.log")

    @property
    def result(self) -> Path:
        return Path(f"{self.node}.result.json")

    @property
    def committed_result(self) -> Path:
        return Path(f"{self.node}.result.json.committed")

    @property
    def legacy_result(self) -> Path:
        """Where a result was saved before logs and results moved beside the node's dir."""
        return self.node / "result.json"

    def remove(self) -> None:
        """Everything of the node: its dir, log and results."""
        shutil.rmtree(self.node, ignore_errors=True)
        for path in (self.log, self.result, self.committed_result):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    @property
    def fs(self) -> Path:
        return self.node / "fs"

    def sub(self, name: str) -> Path:
        return self.fs / name

    def reset(self, names: tuple[str, ...]) -> None:
        """Create fresh dirs, dropping what an earlier run of the same node left (a restart re-runs it)."""
        fs = str(self.fs)
        if os.path.lexists(fs):
            shutil.rmtree(fs)
        for name in names:
            os.makedirs(f"{fs}/{name}")


@dataclass(frozen=True)
class RootDirs:
    """The host directories behind one private root; the pool lends it to node after node."""

    base: Path

    NAMES = ("tmp", "mnt", "upper", "ovwork", "root")

    def sub(self, name: str) -> Path:
        return self.base / name

    def make(self) -> None:
        for name in self.NAMES:
            os.makedirs(self.base / name, exist_ok=True)

    def clear(self) -> None:
        """Empty every dir but the mount point, so the next node starts as fresh as in a new root
        (call only while nothing is mounted on it)."""
        for name in self.NAMES:
            if name != "root":
                empty_dir(self.base / name)


def empty_dir(path: Path) -> None:
    """Remove everything inside ``path``, keeping the directory itself."""
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


class NodeView(Protocol):
    """How one node sees the filesystem."""

    dirs: NodeDirs
    bin_dir: str  # the shim dir, as the node sees it
    home: str
    default_cwd: str
    script_path: str  # where the node sees a script template's source

    def to_host(self, path: str) -> Path | None:
        """Where the node's absolute ``path`` is on the host; None when the node cannot see it."""
        ...

    def resolve(self, path: str) -> Path | None:
        """Like ``to_host`` but following symlinks as the node would."""
        ...

    def env(self) -> dict[str, str]:
        """Variables that point into the node's private dirs."""
        ...


def _under(path: str, prefix: str) -> str | None:
    """The rest of ``path`` below ``prefix`` ('' for prefix itself), or None if not under it."""
    if path == prefix:
        return ""
    if path.startswith(prefix + "/"):
        return path[len(prefix) + 1 :]
    return None


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, _OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class PrivateView:
    """The node has its own root: an overlay of the host's ``/`` with fresh /tmp and /mnt.

    A path the node wrote is in ``upper``; one it deleted is a whiteout there; anything else is the
    host's own file (the overlay's lower layer), read in place. Until a root is attached (the node
    has not started), the node's private dirs are empty and everything else is the host's.
    """

    NAMES: tuple[str, ...] = ()  # no dir of its own: the root is pooled

    def __init__(self, dirs: NodeDirs, host_bin: Path, root: RootDirs | None = None) -> None:
        self.dirs = dirs
        self.host_bin = host_bin
        self.bin_dir = BIN_IN_NODE
        self.home = "/tmp"
        self.default_cwd = "/"
        self.script_path = ARGO_SCRIPT_PATH
        self.root: RootDirs | None = None
        self._upper: str | None = None
        self._fixed: list[tuple[str, str | None]] = [
            *((prefix, None) for prefix in FRESH_DIRS),
            (BIN_IN_NODE, str(host_bin)),
        ]
        if root is not None:
            self.attach(root)

    def attach(self, root: RootDirs) -> None:
        """The node now runs in ``root``: map its paths there."""
        self.root = root
        self._upper = str(root.sub("upper"))
        self._fixed = [
            *((prefix, str(root.sub(prefix[1:]))) for prefix in FRESH_DIRS),
            (BIN_IN_NODE, str(self.host_bin)),
        ]

    def env(self) -> dict[str, str]:
        return {"HOME": self.home}

    def to_host(self, path: str) -> Path | None:
        found = self._host(posixpath.normpath(path))
        return None if found is None else Path(found)

    def resolve(self, path: str) -> Path | None:
        """Like :meth:`to_host`, but symlinks are followed inside the node's view (for reading outputs):
        a link the node made to /output means the node's /output, not the host's."""
        todo = path.split("/")
        todo.reverse()
        at, hops = "/", 0
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                at = posixpath.dirname(at)
                continue
            here = posixpath.join(at, part)
            host = self._host(here)
            if host is None:
                return None
            if os.path.islink(host):
                hops += 1
                if hops > 40:  # the kernel's ELOOP limit
                    return None
                target = os.readlink(host)
                at = "/" if target.startswith("/") else at
                todo.extend(reversed(target.split("/")))
                continue
            at = here
        found = self._host(at)
        return None if found is None else Path(found)

    def _host(self, path: str) -> str | None:
        # Plain strings, not Path: this runs once per PATH entry for every command lookup.
        for prefix, host in self._fixed:
            rest = _under(path, prefix)
            if rest is not None:
                if host is None:
                    return None
                return f"{host}/{rest}" if rest else host
        upper = self._upper
        if upper is None:
            return path
        opaque = False
        for part in path.strip("/").split("/"):
            upper = f"{upper}/{part}"
            try:
                st = os.lstat(upper)
            except OSError:
                # Not in the upper layer: the lower (host) file shows through unless a parent hid it.
                return None if opaque else path
            if _is_whiteout(st):
                return None
            opaque = opaque or (stat.S_ISDIR(st.st_mode) and _is_opaque(upper))
        return upper


class HostView:
    """No isolation: the node's paths are the host's, except its own temp, working and script dirs."""

    NAMES = ("tmp", "wd", "staging")

    def __init__(self, dirs: NodeDirs, host_bin: Path) -> None:
        self.dirs = dirs
        self.bin_dir = str(host_bin)
        self.home = str(dirs.sub("tmp"))
        self.default_cwd = str(dirs.sub("wd"))
        self.script_path = str(dirs.sub("staging") / "script")
        self.script_host = Path(self.script_path)

    def env(self) -> dict[str, str]:
        # Well-behaved programs (mktemp, Python's tempfile) then stay inside the node's dir.
        return {"HOME": self.home, "TMPDIR": self.home}

    def to_host(self, path: str) -> Path | None:
        return Path(posixpath.normpath(path))

    def resolve(self, path: str) -> Path | None:
        return self.to_host(path)  # the host's own symlinks are the node's


def read_output(host: Path | None) -> str | None:
    """An output parameter's text, minus one trailing newline; None for a missing file or a directory."""
    if host is None:
        return None
    try:
        data = host.read_bytes()
    except OSError:  # missing, a directory, or unreadable: Argo treats all of them as "no value"
        return None
    text = data.decode("utf-8", errors="replace")
    return text.removesuffix("\n")

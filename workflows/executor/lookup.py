"""Find a node's executable before starting it, and word a miss the way Argo (runc, Go's exec) does.

Looking up first, instead of letting exec fail, gives the node Argo's message
(``exec: "foo": executable file not found in $PATH``) rather than a shell's or nsenter's, and keeps
"could not start" (exit code None) apart from "ran and exited 127".
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable
from pathlib import Path

from workflows.executor.errors import ExecNotFound

__all__ = ["find_executable"]


def _problem(host: Path | None, shown: str) -> str | None:
    """Why ``host`` cannot be executed (Go's ``findExecutable``), or None if it can."""
    try:
        st = os.stat(host) if host is not None else None
    except OSError:
        st = None
    if st is None:
        return f"stat {shown}: no such file or directory"
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        return "permission denied"
    return None


def find_executable(name: str, path: str, cwd: str, to_host: Callable[[str], Path | None]) -> str:
    """Resolve ``name`` as the node will see it; return the path to exec, or raise :class:`ExecNotFound`.

    ``to_host`` maps an absolute path in the node's view to where it is on the host (None = hidden).
    A name with a slash is taken as a path (relative to ``cwd``); otherwise each PATH entry is tried.
    """
    if "/" in name:
        full = posixpath.normpath(posixpath.join(cwd, name))
        reason = _problem(to_host(full), name)
        if reason is not None:
            raise ExecNotFound(name, reason)
        return name
    for entry in path.split(":"):
        candidate = posixpath.normpath(posixpath.join(cwd, entry or ".", name))
        if _problem(to_host(candidate), candidate) is None:
            return candidate
    raise ExecNotFound(name, "executable file not found in $PATH")

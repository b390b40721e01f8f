"""The shim dir put first on every node's PATH.

``argosay`` always (the argosay:v2 entrypoint); ``cowsay`` when the host has none (argosay:v1);
``python`` -> python3 when the host has no ``python`` (examples mean python3).
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

__all__ = ["install_shims"]


def _put(path: Path, content: bytes) -> None:
    if path.exists() and path.read_bytes() == content:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(content)
    tmp.chmod(0o755)
    tmp.replace(path)  # atomic: a node starting meanwhile sees the old or the new file, never half of one


def install_shims(bin_dir: Path, host_path: str) -> Path:
    """Fill ``bin_dir`` for a host whose PATH is ``host_path``; return it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    package = resources.files("workflows.executor") / "shims"
    names = ["argosay"] + (["cowsay"] if shutil.which("cowsay", path=host_path) is None else [])
    for name in names:
        _put(bin_dir / name, (package / name).read_bytes())
    python3 = shutil.which("python3", path=host_path)
    link = bin_dir / "python"
    if shutil.which("python", path=host_path) is None and python3 is not None and not link.is_symlink():
        link.symlink_to(python3)
    return bin_dir

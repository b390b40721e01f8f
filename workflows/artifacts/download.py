"""Reading one stored output artifact back, as a user downloads it."""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from workflows.artifacts.archive import archive_kind
from workflows.artifacts.repository import ArtifactRepository
from workflows.artifacts.transfer import fetch

__all__ = ["fetch_for_download"]


async def fetch_for_download(repo: ArtifactRepository, artifact: dict[str, Any], scratch: Path) -> tuple[Path, str]:
    """The artifact as one file under ``scratch`` and its download name: a file artifact as the file
    itself (unpacked from its archive), a directory as a gzipped tar of it."""
    name = str(artifact["name"])
    workdir = Path(tempfile.mkdtemp(prefix="download-", dir=scratch))
    target = workdir / "content"
    await fetch(repo, str(artifact["key"]), target, extract=archive_kind(artifact.get("archive")) != "none")
    if target.is_dir():
        packed = workdir / f"{name}.tgz"
        await asyncio.to_thread(_tar_dir, target, name, packed)
        await asyncio.to_thread(shutil.rmtree, target, True)
        return packed, packed.name
    path = str(artifact.get("path") or name)
    return target, Path(path.rstrip("/")).name or name


def _tar_dir(top: Path, name: str, dest: Path) -> None:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(top, arcname=name)




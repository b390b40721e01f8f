"""Files a step takes to a remote worker and brings back (its artifacts), through the task files store:
a directory travels as one tar, a file as itself."""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from eventbus import ObjectStore

__all__ = ["fetch", "send"]


def _tar(source: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix="carry-", suffix=".tar")
    os.close(fd)
    with tarfile.open(name, "w") as tar:
        tar.add(source, arcname=".")
    return Path(name)


def _untar(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")  # no absolute paths, links out of dest or device files


async def send(store: ObjectStore, key: str, source: Path) -> bool:
    """Store ``source`` under ``key``; True if it was a directory (sent as a tar)."""
    if not source.is_dir():
        await store.put_file(key, source)
        return False
    archive = await asyncio.to_thread(_tar, source)
    try:
        await store.put_file(key, archive)
    finally:
        archive.unlink(missing_ok=True)
    return True


async def fetch(store: ObjectStore, key: str, dest: Path, *, tar: bool) -> None:
    """Write the object ``key`` to ``dest`` (a directory when it is a tar)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not tar:
        await store.get_file(key, dest)
        return
    archive = dest.with_name(dest.name + ".tar")
    try:
        await store.get_file(key, archive)
        if dest.exists():
            await asyncio.to_thread(shutil.rmtree, dest)
        await asyncio.to_thread(_untar, archive, dest)
    finally:
        archive.unlink(missing_ok=True)

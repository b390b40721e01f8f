"""Packing a node's output for the repository and unpacking a repository file for a node.

Argo's formats: ``tar`` (the default, a gzipped tar whose one top entry is the artifact's base
name), ``none`` (a file as it is; a directory as one key per file) and ``zip``. Unpacking looks at
the bytes, not at the key, as Argo's executor does: a gzipped tar or a zip is extracted, anything
else is the file itself. Extraction refuses members that would land outside the target (``../``,
absolute names, links pointing out) and devices.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

__all__ = ["ArchiveError", "ARCHIVES", "archive_kind", "gzip_file", "pack_file_tgz", "pack_zip", "unpack", "untar_to"]

ARCHIVES = ("tar", "none", "zip")


class ArchiveError(ValueError):
    """An archive that cannot be unpacked safely (or at all)."""


def archive_kind(archive: dict[str, object] | None) -> str:
    """``archive: {none: {}}`` -> "none"; absent or ``{tar: {...}}`` -> "tar"."""
    if not archive:
        return "tar"
    for kind in ARCHIVES:
        if kind in archive:
            return kind
    raise ArchiveError(f"unknown archive strategy {sorted(archive)}; expected one of {list(ARCHIVES)}")


def pack_file_tgz(source: Path, member: str, dest: Path, level: int = 6) -> None:
    """A gzipped tar holding ``source`` as its one member ``member``."""
    with gzip.open(dest, "wb", compresslevel=level) as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname=member, recursive=False)


def gzip_file(source: Path, dest: Path, level: int = 6) -> None:
    """``source`` (an uncompressed tar made by the executor) gzipped into ``dest``."""
    with open(source, "rb") as src, gzip.open(dest, "wb", compresslevel=level) as out:
        shutil.copyfileobj(src, out, 1 << 20)


def pack_zip(source: Path, kind: str, member: str, dest: Path) -> None:
    """A zip of a file (``kind`` "file") or of the executor's tar of a directory ("dir")."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        if kind == "file":
            zf.write(source, member)
            return
        with tarfile.open(source) as tar:
            for info in tar:
                if info.isdir():
                    zf.writestr(info.name.rstrip("/") + "/", b"")
                elif info.isfile():
                    handle = tar.extractfile(info)
                    assert handle is not None
                    with handle, zf.open(info.name, "w") as out:
                        shutil.copyfileobj(handle, out, 1 << 20)


def untar_to(tar_path: Path, dest: Path) -> None:
    """Extract a tar (any compression) into the directory ``dest``, safely."""
    try:
        with tarfile.open(tar_path) as tar:
            tar.extractall(dest, filter=_safe_member)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:  # EOFError: a gzip stream cut short
        raise ArchiveError(f"cannot extract {tar_path.name}: {exc or type(exc).__name__}") from exc


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Nothing lands outside ``dest``: names that climb out with ``..`` or would pass through a symlink
    extracted earlier are refused (a leading ``/`` is dropped, so such a name lands inside), and so
    are hard links to outside files. Symlinks may
    point anywhere (an absolute one is resolved in the node's view, where the tree is bound in, and
    nothing here follows it). Devices and fifos are left out."""
    try:
        member = tarfile.tar_filter(member, dest)
    except tarfile.FilterError as exc:
        raise ArchiveError(f"archive member {member.name!r} refused: {exc}") from exc
    if member.islnk():
        top = os.path.realpath(dest)
        target = os.path.realpath(os.path.join(top, member.linkname))
        if os.path.isabs(member.linkname) or os.path.commonpath([target, top]) != top:
            raise ArchiveError(f"archive member {member.name!r} refused: hard link to {member.linkname!r} outside the target")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return None
    return member


def _unzip_to(zip_path: Path, dest: Path) -> None:
    top = os.path.realpath(dest)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArchiveError(f"cannot extract {zip_path.name}: {exc}") from exc
    with zf:
        for info in zf.infolist():
            target = os.path.realpath(os.path.join(top, info.filename))
            if os.path.isabs(info.filename) or not (target == top or target.startswith(top + os.sep)):
                raise ArchiveError(f"archive member {info.filename!r} refused: it would be outside the target")
        try:
            zf.extractall(dest)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(f"cannot extract {zip_path.name}: {exc}") from exc


def unpack(downloaded: Path, dest: Path, *, extract: bool = True, keep: bool = False) -> str:
    """Put what ``downloaded`` holds at ``dest`` (a path that does not exist yet): "file" or "dir".

    ``extract`` False (an input declared ``archive: {none: {}}``): the file as it is, whatever it holds.
    ``keep``: ``downloaded`` is not ours to consume (a file of the local repository): it is copied or
    read, never moved or deleted.

    An archive whose only top entry is one file or directory yields that entry (Argo archives an
    artifact under its base name); an archive with several top entries yields a directory of them.
    """
    kind = _sniff(downloaded) if extract else "plain"
    if kind == "plain":
        if keep:
            shutil.copyfile(downloaded, dest)
        else:
            os.replace(downloaded, dest)
        return "file"
    try:
        if kind == "tar" and _single_file(downloaded, dest):
            return "file"
    finally:
        if not keep and dest.exists():
            downloaded.unlink(missing_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        if kind == "tar":
            untar_to(downloaded, scratch)
        else:
            _unzip_to(downloaded, scratch)
        entries = list(scratch.iterdir())
        if len(entries) == 1 and not entries[0].is_symlink():
            os.replace(entries[0], dest)
        else:
            os.replace(scratch, dest)
        return "dir" if dest.is_dir() else "file"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not keep:
            downloaded.unlink(missing_ok=True)


def _single_file(archive: Path, dest: Path) -> bool:
    """The common case, fast: a gzipped tar holding one regular file under a plain name (Argo's
    archive of a file artifact) is written straight to ``dest``. False for anything else."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            first = tar.next()
            # Only what the general path would also turn into one file at dest: one plain top-level name.
            if first is None or not first.isreg() or "/" in first.name or first.name in ("", ".", ".."):
                return False
            if tar.next() is not None:
                return False
            source = tar.extractfile(first)
            assert source is not None
            with source, open(dest, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            os.chmod(dest, (first.mode & 0o755) | 0o600)
            return True
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        dest.unlink(missing_ok=True)
        raise ArchiveError(f"cannot extract {archive.name}: {exc or type(exc).__name__}") from exc


def _sniff(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] == b"\x1f\x8b":
        try:
            with tarfile.open(path, "r:gz") as tar:
                tar.next()
            return "tar"
        except (tarfile.TarError, OSError, EOFError):
            return "plain"  # gzipped, but not a tar: the file as it is
    if head == b"PK\x03\x04":
        return "zip"
    return "plain"  # an uncompressed tar too: Argo extracts only gzipped tars and zips

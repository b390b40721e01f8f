"""Unpacking hostile archives: nothing is ever written outside the target, links are never followed
out of it, devices and fifos are left out; and the shapes a friendly archive unpacks to."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from workflows.artifacts.archive import ArchiveError, unpack, untar_to

# -- building archives ------------------------------------------------------------------------

Member = tuple[str, bytes | None, dict[str, object]]  # name, file content (None: not a file), TarInfo fields


def _file(name: str, data: bytes = b"pwned\n") -> Member:
    return (name, data, {})


def _dir(name: str) -> Member:
    return (name, None, {"type": tarfile.DIRTYPE, "mode": 0o755})


def _symlink(name: str, target: str) -> Member:
    return (name, None, {"type": tarfile.SYMTYPE, "linkname": target})


def _hardlink(name: str, target: str) -> Member:
    return (name, None, {"type": tarfile.LNKTYPE, "linkname": target})


def _tgz(path: Path, members: list[Member], *, gz: bool = True) -> Path:
    with tarfile.open(path, "w:gz") if gz else tarfile.open(path, "w") as tar:
        for name, data, fields in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            for key, value in fields.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name exactly as given
    return path


class Layout:
    """``sentinel/`` must stay empty; archives are downloaded into ``dl/`` and unpacked into ``work/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sentinel = root / "sentinel"
        self.work = root / "work"
        self.dl = root / "dl"
        for path in (self.sentinel, self.work, self.dl):
            path.mkdir()

    def untouched(self) -> None:
        assert list(self.sentinel.iterdir()) == []
        leftovers = {p.name for p in self.root.iterdir()} - {"sentinel", "work", "dl"}
        assert leftovers == set()


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


def _everything_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# -- hostile tarballs -------------------------------------------------------------------------

# Each case: members built against the layout (so links can name the sentinel by absolute path).
Hostile = Callable[[Layout], list[Member]]

REFUSED: dict[str, Hostile] = {
    # scratch is work/.unpack-*/, so ../../sentinel is the sentinel; untar_to's dest is work/out.
    "dotdot": lambda lay: [_file("ok"), _file("../../sentinel/pwned")],
    "dotdot-nested": lambda lay: [_file("a/b/../../../../sentinel/pwned")],
    "symlink-dir-then-member": lambda lay: [_symlink("link", str(lay.sentinel)), _file("link/pwned")],
    "relative-symlink-then-member": lambda lay: [_symlink("link", "../../sentinel"), _file("link/pwned")],
    "hardlink-absolute": lambda lay: [_hardlink("h", str(lay.sentinel / "victim"))],
    "hardlink-dotdot": lambda lay: [_hardlink("h", "../../sentinel/victim")],
    # A hard link to an in-archive symlink that points out: os.link follows it to the outside file.
    "hardlink-through-symlink": lambda lay: [
        _symlink("s", str(lay.sentinel / "victim")),
        _hardlink("h", "s"),
    ],
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unpack_hostile_tarball_raises_and_writes_nothing_outside(layout: Layout, case: str) -> None:
    victim = layout.sentinel / "victim"
    if "hardlink" in case:
        victim.write_text("original\n")
    archive = _tgz(layout.dl / "a.tgz", REFUSED[case](layout))
    with pytest.raises(ArchiveError, match="refused"):
        unpack(archive, layout.work / "out")
    if victim.exists():
        assert victim.read_text() == "original\n"
        assert victim.stat().st_nlink == 1  # no hard link to it was made anywhere
        victim.unlink()
    layout.untouched()
    assert list(layout.work.iterdir()) == []  # scratch removed, no partial result at dest
    assert not archive.exists()


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_untar_to_hostile_tarball_raises_and_writes_nothing_outside(layout: Layout, case: str) -> None:
    victim = layout.sentinel / "victim"
    if "hardlink" in case:
        victim.write_text("original\n")
    archive = _tgz(layout.dl / "a.tgz", REFUSED[case](layout))
    dest = layout.work / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match="refused"):
        untar_to(archive, dest)
    if victim.exists():
        assert victim.read_text() == "original\n"
        assert victim.stat().st_nlink == 1
        victim.unlink()
    layout.untouched()


def test_unpack_symlink_to_etc_then_member_through_it_never_writes_into_etc(layout: Layout) -> None:
    name = f"eventflow-escape-{uuid.uuid4().hex[:12]}"
    escaped = Path("/etc") / name
    archive = _tgz(layout.dl / "a.tgz", [_symlink("link", "/etc"), _file(f"link/{name}")])
    try:
        with pytest.raises(ArchiveError, match="refused"):
            unpack(archive, layout.work / "out")
        assert not escaped.exists()
    finally:
        escaped.unlink(missing_ok=True)
    layout.untouched()


def test_unpack_symlink_then_member_named_passwd_leaves_etc_passwd_alone(layout: Layout) -> None:
    before = Path("/etc/passwd").read_bytes()
    archive = _tgz(
        layout.dl / "a.tgz", [_symlink("link", "/etc"), _file("link/passwd", b"root::0:0::/:/bin/sh\n")]
    )
    with pytest.raises(ArchiveError, match="refused"):
        unpack(archive, layout.work / "out")
    assert Path("/etc/passwd").read_bytes() == before


def test_unpack_absolute_member_name_stays_inside_the_target(layout: Layout) -> None:
    # Python's tar filter (like Argo's untar, which joins the name onto the target) strips the
    # leading slash: the member is refused or lands inside the target, never at the absolute path.
    outside = layout.sentinel / "pwned"
    archive = _tgz(layout.dl / "a.tgz", [_file(str(outside))])
    dest = layout.work / "out"
    try:
        unpack(archive, dest)
    except ArchiveError:
        assert not dest.exists()
    else:
        # The name with its slash stripped, under the target (its one top dir unwrapped).
        inside = dest.joinpath(*outside.parts[2:])
        assert [p for p in dest.rglob("*") if p.is_file()] == [inside]
        assert inside.read_text() == "pwned\n"
    layout.untouched()


def test_untar_to_absolute_member_name_stays_inside_the_target(layout: Layout) -> None:
    outside = layout.sentinel / "pwned"
    archive = _tgz(layout.dl / "a.tgz", [_file(str(outside))])
    dest = layout.work / "out"
    dest.mkdir()
    try:
        untar_to(archive, dest)
    except ArchiveError:
        pass
    assert [p for p in dest.rglob("*") if p.is_file()] in ([], [dest / str(outside).lstrip("/")])
    layout.untouched()


def test_unpack_fifo_and_device_members_are_left_out(layout: Layout) -> None:
    archive = _tgz(
        layout.dl / "a.tgz",
        [
            _dir("d"),
            _file("d/keep", b"kept\n"),
            ("d/fifo", None, {"type": tarfile.FIFOTYPE}),
            ("d/null", None, {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}),
            ("d/disk", None, {"type": tarfile.BLKTYPE, "devmajor": 7, "devminor": 0}),
        ],
    )
    dest = layout.work / "out"
    assert unpack(archive, dest) == "dir"
    assert _everything_under(dest) == ["keep"]
    assert (dest / "keep").read_text() == "kept\n"
    layout.untouched()


def test_unpack_zip_with_dotdot_member_raises_and_writes_nothing_outside(layout: Layout) -> None:
    archive = _zip(layout.dl / "a.zip", {"ok": b"ok\n", "../../sentinel/pwned": b"pwned\n"})
    with pytest.raises(ArchiveError, match="refused"):
        unpack(archive, layout.work / "out")
    layout.untouched()
    assert list(layout.work.iterdir()) == []


def test_unpack_zip_with_absolute_member_raises_and_writes_nothing_outside(layout: Layout) -> None:
    archive = _zip(layout.dl / "a.zip", {str(layout.sentinel / "pwned"): b"pwned\n"})
    with pytest.raises(ArchiveError, match="refused"):
        unpack(archive, layout.work / "out")
    layout.untouched()


def _truncated(good: bytes) -> bytes:
    return good[: len(good) // 2]


def _bit_flipped(good: bytes) -> bytes:
    return good[:200] + bytes(b ^ 0x5A for b in good[200:260]) + good[260:]


@pytest.mark.parametrize("damage", [_truncated, _bit_flipped], ids=["truncated", "bit-flipped"])
def test_unpack_damaged_tgz_raises_archive_error(layout: Layout, damage: Callable[[bytes], bytes]) -> None:
    good = _tgz(layout.dl / "good.tgz", [_file("a", b"hello world " * 20_000)]).read_bytes()
    archive = layout.dl / "a.tgz"
    archive.write_bytes(damage(good))
    with pytest.raises(ArchiveError, match="cannot extract"):
        unpack(archive, layout.work / "out")
    layout.untouched()
    assert list(layout.work.iterdir()) == []


# -- friendly archives ------------------------------------------------------------------------


def test_unpack_tgz_with_one_top_file_gives_that_file(layout: Layout) -> None:
    archive = _tgz(layout.dl / "a.tgz", [_file("hello.txt", b"hello\n")])
    dest = layout.work / "out"
    assert unpack(archive, dest) == "file"
    assert dest.is_file()
    assert dest.read_text() == "hello\n"
    assert not archive.exists()
    assert [p.name for p in layout.work.iterdir()] == ["out"]  # no scratch left behind


def test_unpack_tgz_with_one_top_dir_gives_its_contents_at_dest(layout: Layout) -> None:
    archive = _tgz(
        layout.dl / "a.tgz",
        [_dir("top"), _file("top/a", b"A\n"), _dir("top/sub"), _file("top/sub/b", b"B\n")],
    )
    dest = layout.work / "out"
    assert unpack(archive, dest) == "dir"
    assert _everything_under(dest) == ["a", "sub", "sub/b"]
    assert (dest / "sub" / "b").read_text() == "B\n"
    assert [p.name for p in layout.work.iterdir()] == ["out"]


def test_unpack_tgz_with_several_top_entries_gives_a_dir_of_them(layout: Layout) -> None:
    archive = _tgz(layout.dl / "a.tgz", [_file("one", b"1\n"), _dir("two"), _file("two/x", b"x\n")])
    dest = layout.work / "out"
    assert unpack(archive, dest) == "dir"
    assert _everything_under(dest) == ["one", "two", "two/x"]


def test_unpack_without_extract_keeps_a_tgz_as_a_file(layout: Layout) -> None:
    archive = _tgz(layout.dl / "a.tgz", [_file("hello.txt", b"hello\n")])
    raw = archive.read_bytes()
    dest = layout.work / "out"
    assert unpack(archive, dest, extract=False) == "file"
    assert dest.read_bytes() == raw


def test_unpack_absolute_symlink_inside_a_dir_is_kept_not_followed(layout: Layout) -> None:
    target = layout.sentinel / "target"
    archive = _tgz(
        layout.dl / "a.tgz",
        [
            _dir("top"),
            _file("top/f", b"f\n"),
            _symlink("top/abs", str(target)),
            _symlink("top/etc", "/etc/passwd"),
        ],
    )
    dest = layout.work / "out"
    assert unpack(archive, dest) == "dir"
    assert (dest / "abs").is_symlink()
    assert os.readlink(dest / "abs") == str(target)
    assert os.readlink(dest / "etc") == "/etc/passwd"
    assert stat.S_ISREG((dest / "f").lstat().st_mode)
    layout.untouched()  # the dangling link was not followed to create its target


def test_unpack_hard_link_inside_the_archive_is_kept(layout: Layout) -> None:
    archive = _tgz(layout.dl / "a.tgz", [_dir("top"), _file("top/f", b"f\n"), _hardlink("top/g", "top/f")])
    dest = layout.work / "out"
    assert unpack(archive, dest) == "dir"
    assert (dest / "g").read_text() == "f\n"


def test_unpack_zip_with_one_top_file_gives_that_file(layout: Layout) -> None:
    archive = _zip(layout.dl / "a.zip", {"hello.txt": b"hello\n"})
    dest = layout.work / "out"
    assert unpack(archive, dest) == "file"
    assert dest.read_text() == "hello\n"


def test_unpack_uncompressed_tar_is_kept_as_a_file(layout: Layout) -> None:
    archive = _tgz(layout.dl / "a.tar", [_file("hello.txt", b"hello\n")], gz=False)
    raw = archive.read_bytes()
    dest = layout.work / "out"
    assert unpack(archive, dest) == "file"
    assert dest.read_bytes() == raw

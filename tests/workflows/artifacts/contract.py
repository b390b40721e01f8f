"""What every artifact repository must do. A backend's test module subclasses
:class:`RepositoryContract` and provides a ``repo`` fixture (a fresh, empty repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workflows.artifacts.repository import ArtifactNotFound, ArtifactRepository, InvalidArtifactKey


class RepositoryContract:
    async def test_round_trip_of_a_file(self, repo: ArtifactRepository, tmp_path: Path) -> None:
        source = tmp_path / "in.bin"
        payload = os.urandom(300_000) + b"\x00end"
        source.write_bytes(payload)
        await repo.put_file("wf/wf-123/out.tgz", source)
        dest = tmp_path / "out.bin"
        await repo.get_file("wf/wf-123/out.tgz", dest)
        assert dest.read_bytes() == payload

    async def test_put_replaces(self, repo: ArtifactRepository, tmp_path: Path) -> None:
        source = tmp_path / "in.txt"
        source.write_text("first")
        await repo.put_file("k/a.txt", source)
        source.write_text("second, longer")
        await repo.put_file("k/a.txt", source)
        await repo.get_file("k/a.txt", tmp_path / "out.txt")
        assert (tmp_path / "out.txt").read_text() == "second, longer"

    async def test_empty_file(self, repo: ArtifactRepository, tmp_path: Path) -> None:
        (tmp_path / "empty").write_bytes(b"")
        await repo.put_file("k/empty", tmp_path / "empty")
        await repo.get_file("k/empty", tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == b""

    async def test_missing_key_raises_not_found(self, repo: ArtifactRepository, tmp_path: Path) -> None:
        with pytest.raises(ArtifactNotFound):
            await repo.get_file("no/such/key", tmp_path / "x")

    async def test_list_is_by_key_prefix_not_string_prefix(self, repo: ArtifactRepository, tmp_path: Path) -> None:
        source = tmp_path / "f"
        source.write_text("x")
        for key in ("wf/a/1.txt", "wf/a/sub/2.txt", "wf/ab/3.txt", "other/4.txt"):
            await repo.put_file(key, source)
        assert await repo.list_keys("wf/a") == ["wf/a/1.txt", "wf/a/sub/2.txt"]
        assert await repo.list_keys("wf/a/1.txt") == ["wf/a/1.txt"]
        assert await repo.list_keys("nothing") == []

    async def test_delete(self, repo: ArtifactRepository, tmp_path: Path) -> None:
        source = tmp_path / "f"
        source.write_text("x")
        await repo.put_file("d/1", source)
        await repo.put_file("d/2", source)
        await repo.delete_keys(["d/1", "d/never-existed"])
        assert await repo.list_keys("d") == ["d/2"]
        with pytest.raises(ArtifactNotFound):
            await repo.get_file("d/1", tmp_path / "gone")

    @pytest.mark.parametrize("key", ["", "/abs/key", "../up", "a/../../b", "a/..", "nul\x00"])
    async def test_bad_keys_are_refused(self, repo: ArtifactRepository, tmp_path: Path, key: str) -> None:
        source = tmp_path / "f"
        source.write_text("x")
        with pytest.raises(InvalidArtifactKey):
            await repo.put_file(key, source)

"""The default repository: files under the data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.workflows.artifacts.contract import RepositoryContract
from workflows.artifacts.repository import DirectoryRepository


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[DirectoryRepository]:
    repository = DirectoryRepository(tmp_path / "repo")
    yield repository
    await repository.close()


class TestDirectoryRepository(RepositoryContract):
    async def test_nothing_is_written_outside_the_root(self, repo: DirectoryRepository, tmp_path: Path) -> None:
        source = tmp_path / "f"
        source.write_text("x")
        await repo.put_file("a/b/c.txt", source)
        assert (tmp_path / "repo" / "a" / "b" / "c.txt").read_text() == "x"
        await repo.delete_keys(["a/b/c.txt"])
        assert not (tmp_path / "repo" / "a").exists()  # emptied dirs go too

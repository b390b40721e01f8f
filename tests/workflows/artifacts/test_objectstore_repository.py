"""The NATS JetStream object store repository, against a real server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventbus import JetStreamBus
from tests.workflows.artifacts.contract import RepositoryContract
from workflows.artifacts.objectstore import ObjectStoreRepository
from workflows.artifacts.repository import ArtifactNotFound, ArtifactRepository, RepositoryError

pytestmark = pytest.mark.nats


@pytest.fixture
async def repo(bus: JetStreamBus) -> AsyncIterator[ObjectStoreRepository]:
    bucket = f"t-artifacts-{uuid.uuid4().hex[:12]}"  # CI may share one server between runs
    repository = await ObjectStoreRepository.open(bus, bucket)
    yield repository
    await repository.close()
    await bus.js.delete_object_store(bucket)


class TestObjectStoreRepository(RepositoryContract):
    def test_is_an_artifact_repository_of_kind_nats(self, repo: ObjectStoreRepository) -> None:
        assert isinstance(repo, ArtifactRepository)
        assert repo.kind == "nats"

    async def test_file_of_some_megabytes_round_trips_byte_exact(
        self, repo: ObjectStoreRepository, tmp_path: Path
    ) -> None:
        payload = os.urandom(3 * 1024 * 1024 + 5)
        (tmp_path / "in").write_bytes(payload)
        await repo.put_file("wf/wf-1/big.tgz", tmp_path / "in")
        await repo.get_file("wf/wf-1/big.tgz", tmp_path / "out")
        assert (tmp_path / "out").read_bytes() == payload

    async def test_deleted_key_no_longer_lists(self, repo: ObjectStoreRepository, tmp_path: Path) -> None:
        (tmp_path / "f").write_text("x")
        await repo.put_file("wf/a/1", tmp_path / "f")
        await repo.put_file("wf/a/2", tmp_path / "f")
        await repo.delete_keys(["wf/a/1", "wf/a/2"])
        assert await repo.list_keys("wf") == []
        await repo.delete_keys(["wf/a/1"])  # deleting again is not an error

    @pytest.mark.parametrize("key", ["a b/ü €.txt", "wild/*/>", "x.y/=+%/~!$&'()", "wf//a/./b"])
    async def test_keys_with_any_allowed_characters_round_trip(
        self, repo: ObjectStoreRepository, tmp_path: Path, key: str
    ) -> None:
        (tmp_path / "f").write_text(key)
        await repo.put_file(key, tmp_path / "f")
        normal = "/".join(p for p in key.split("/") if p not in ("", "."))
        assert await repo.list_keys(normal.split("/")[0]) == [normal]
        await repo.get_file(key, tmp_path / "out")
        assert (tmp_path / "out").read_text() == key
        await repo.delete_keys([key])
        with pytest.raises(ArtifactNotFound):
            await repo.get_file(normal, tmp_path / "out")

    async def test_bucket_is_shared_by_repositories_opened_on_it(
        self, bus: JetStreamBus, repo: ObjectStoreRepository, tmp_path: Path
    ) -> None:
        (tmp_path / "f").write_text("x")
        await repo.put_file("k/1", tmp_path / "f")
        other = await ObjectStoreRepository.open(bus, repo.store.bucket)
        assert await other.list_keys("k") == ["k/1"]

    async def test_invalid_bucket_raises_repository_error(self, bus: JetStreamBus) -> None:
        with pytest.raises(RepositoryError, match=r"bucket 'a\.b'"):
            await ObjectStoreRepository.open(bus, "a.b")

"""Artifacts in a NATS JetStream object store bucket, one object per key.

The object's name is the checked key itself: nats-py base64-encodes names into subjects, so
every key :func:`check_key` accepts (spaces, ``*``, ``>``, non-ASCII...) round-trips unchanged.
"""

from __future__ import annotations

from pathlib import Path

from eventbus import BusError, JetStreamBus, ObjectNotFound, ObjectStore
from workflows.artifacts.repository import ArtifactNotFound, RepositoryError, check_key

__all__ = ["DEFAULT_BUCKET", "ObjectStoreRepository"]

DEFAULT_BUCKET = "eventflow-artifacts"


class ObjectStoreRepository:
    """Keys are objects in one bucket. The bus belongs to the caller: :meth:`close` leaves it open."""

    kind = "nats"

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"<ObjectStoreRepository {self.store.bucket}>"

    @classmethod
    async def open(cls, bus: JetStreamBus, bucket: str = DEFAULT_BUCKET) -> ObjectStoreRepository:
        """The repository over ``bucket``, created if it does not exist yet."""
        try:
            return cls(await bus.object_store(bucket))
        except BusError as exc:
            raise RepositoryError(str(exc)) from exc

    async def put_file(self, key: str, source: Path) -> None:
        key = check_key(key)
        try:
            await self.store.put_file(key, source)
        except BusError as exc:
            raise RepositoryError(str(exc)) from exc

    async def get_file(self, key: str, dest: Path) -> None:
        key = check_key(key)
        try:
            await self.store.get_file(key, dest)
        except ObjectNotFound as exc:
            raise ArtifactNotFound(key) from exc
        except BusError as exc:
            raise RepositoryError(str(exc)) from exc

    async def list_keys(self, prefix: str) -> list[str]:
        prefix = check_key(prefix)
        try:
            names = await self.store.list_names(prefix)
        except BusError as exc:
            raise RepositoryError(str(exc)) from exc
        return [n for n in names if n == prefix or n.startswith(f"{prefix}/")]

    async def delete_keys(self, keys: list[str]) -> None:
        for key in [check_key(k) for k in keys]:  # refuse a bad key before deleting anything
            try:
                await self.store.delete(key)
            except ObjectNotFound:
                continue
            except BusError as exc:
                raise RepositoryError(str(exc)) from exc

    async def close(self) -> None:
        return None

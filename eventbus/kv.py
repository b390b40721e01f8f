"""A small key-value helper over JetStream KV with revision-checked updates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nats.js.errors
from nats.js.kv import KeyValue as NatsKeyValue

from eventbus.errors import RevisionMismatch

__all__ = ["Entry", "KeyValue"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A value and the revision it was read at (pass it back to :meth:`KeyValue.update`)."""

    key: str
    value: bytes
    revision: int


class KeyValue:
    """One bucket. Keys follow NATS KV rules: ``[-/_=.a-zA-Z0-9]+``."""

    def __init__(self, bucket: str, store: NatsKeyValue) -> None:
        self.bucket = bucket
        self._store = store

    def __repr__(self) -> str:
        return f"<KeyValue {self.bucket}>"

    async def get(self, key: str) -> Entry | None:
        try:
            entry = await self._store.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        return Entry(key, entry.value or b"", entry.revision or 0)

    async def put(self, key: str, value: bytes) -> int:
        """Write unconditionally; returns the new revision."""
        return await self._store.put(key, value)

    async def create(self, key: str, value: bytes) -> int:
        """Write only if the key does not exist; :class:`RevisionMismatch` otherwise."""
        try:
            return await self._store.create(key, value)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RevisionMismatch(self.bucket, key, None) from None

    async def update(self, key: str, value: bytes, revision: int) -> int:
        """Write only if the key is still at ``revision``; :class:`RevisionMismatch` otherwise."""
        try:
            return await self._store.update(key, value, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RevisionMismatch(self.bucket, key, revision) from None

    async def mutate(self, key: str, change: Callable[[bytes | None], bytes], *, attempts: int = 20) -> Entry:
        """Read-modify-write with optimistic concurrency, retrying lost races."""
        for _ in range(attempts):
            current = await self.get(key)
            new_value = change(current.value if current else None)
            try:
                if current is None:
                    revision = await self.create(key, new_value)
                else:
                    revision = await self.update(key, new_value, current.revision)
            except RevisionMismatch:
                continue
            return Entry(key, new_value, revision)
        raise RevisionMismatch(self.bucket, key, None)

    async def delete(self, key: str) -> None:
        await self._store.delete(key)

    async def keys(self) -> list[str]:
        try:
            return list(await self._store.keys())
        except nats.js.errors.NoKeysError:
            return []

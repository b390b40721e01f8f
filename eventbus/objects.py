"""Files in a JetStream object store bucket, streamed in chunks from and to disk.

nats-py quirks this module hides (nats-py 2.16):

* ``list()`` raises ``NotFoundError`` on an empty bucket, and also when every object in it was
  deleted, since deleted objects stay behind as tombstones (``deleted=True``) in its listing.
* ``get()`` ends quietly, without checking the digest, if its subscription ends before the last
  chunk (the connection closed); we compare the bytes written with the object's size.
* Not-found errors are ``ObjectNotFoundError`` for a missing *and* for a deleted object.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ObjectInfo as NatsObjectInfo
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.object_store import ObjectStore as NatsObjectStore

from eventbus.errors import BusError, BusUnavailable, ObjectNotFound

__all__ = ["ObjectInfo", "ObjectStore"]

# Everything nats-py raises: nats.js.errors.* derive from nats.errors.Error, and a request that
# gets no answer raises asyncio's TimeoutError. A local file's OSError is *not* translated.
_NATS_ERRORS = (nats.errors.Error, TimeoutError)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One stored object. ``mtime`` is ISO 8601 as the writing client set it, or ``None``."""

    name: str
    size: int
    digest: str
    mtime: str | None

    @classmethod
    def _from_nats(cls, info: NatsObjectInfo) -> ObjectInfo:
        return cls(info.name, info.size or 0, info.digest or "", info.mtime or None)


class ObjectStore:
    """One bucket. Object names are any non-empty string (nats-py base64-encodes them into
    subjects), so ``a/b c/ü.txt`` is a valid name. Open with :meth:`JetStreamBus.object_store`."""

    def __init__(self, bucket: str, store: NatsObjectStore, *, url: str) -> None:
        self.bucket = bucket
        self._store = store
        self._url = url

    def __repr__(self) -> str:
        return f"<ObjectStore {self.bucket}>"

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, *, url: str, replicas: int = 1) -> ObjectStore:
        """The bucket ``bucket`` (named as is), created with file storage if it does not exist.

        Safe to call concurrently: creating a stream that exists with the same configuration
        succeeds, and a bucket someone created with other settings is used as it is.
        """
        try:
            try:
                store = await js.object_store(bucket)
            except nats.js.errors.BucketNotFoundError:
                config = ObjectStoreConfig(storage=StorageType.FILE, replicas=replicas)
                store = await js.create_object_store(bucket, config)
        except nats.js.errors.InvalidBucketNameError:
            raise BusError(f"object store bucket {bucket!r}: use only letters, digits, '_' and '-'") from None
        except _NATS_ERRORS as exc:
            raise _error(url, bucket, "", "open", exc) from None
        return cls(bucket, store, url=url)

    async def put_file(self, name: str, path: Path) -> ObjectInfo:
        """Store the file at ``path`` under ``name``, replacing any object of that name.

        The file is read chunk by chunk (128 KiB) in a thread, never whole into memory.
        """
        with await asyncio.to_thread(open, path, "rb") as source:
            try:
                info = await self._store.put(name, source)
            except _NATS_ERRORS as exc:
                raise self._error(name, "put", exc) from None
        return ObjectInfo._from_nats(info)

    async def get_file(self, name: str, path: Path) -> ObjectInfo:
        """Write the object ``name`` to ``path``; :class:`ObjectNotFound` if there is none.

        Chunks go to a temporary file beside ``path`` that replaces it once complete, so
        ``path`` never holds half an object and is left untouched on any error.
        """
        # Not mkstemp: its 0600 mode would stick to the result, unlike a plain open()'s umask mode.
        partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
        try:
            with await asyncio.to_thread(open, partial, "xb") as dest:
                try:
                    result = await self._store.get(name, writeinto=dest)
                except _NATS_ERRORS as exc:
                    raise self._error(name, "get", exc) from None
                written = dest.tell()
            if written != (result.info.size or 0):
                reason = (
                    f"object store {self.bucket}: get {name!r}: got {written} of {result.info.size} bytes"
                )
                raise BusUnavailable(self._url, reason)
            os.replace(partial, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        return ObjectInfo._from_nats(result.info)

    async def info(self, name: str) -> ObjectInfo:
        """Size and digest of ``name``; :class:`ObjectNotFound` if missing or deleted."""
        try:
            return ObjectInfo._from_nats(await self._store.get_info(name))
        except _NATS_ERRORS as exc:
            raise self._error(name, "info", exc) from None

    async def list_names(self, prefix: str = "") -> list[str]:
        """Names of the objects (not the deleted ones) that start with ``prefix``, sorted."""
        try:
            infos = await self._store.list(ignore_deletes=True)
        except nats.js.errors.NotFoundError:
            return []  # nats-py's answer for "nothing stored" (or only tombstones)
        except _NATS_ERRORS as exc:
            raise self._error(prefix, "list", exc) from None
        return sorted(i.name for i in infos if not i.deleted and i.name.startswith(prefix))

    async def delete(self, name: str) -> None:
        """Delete ``name`` (its chunks are purged); :class:`ObjectNotFound` if there is none."""
        try:
            await self._store.delete(name)
        except _NATS_ERRORS as exc:
            raise self._error(name, "delete", exc) from None

    def _error(self, name: str, op: str, exc: nats.errors.Error | TimeoutError) -> BusError:
        return _error(self._url, self.bucket, name, op, exc)


def _error(url: str, bucket: str, name: str, op: str, exc: nats.errors.Error | TimeoutError) -> BusError:
    what = f"{op} {name!r}" if name else op
    if isinstance(exc, (nats.js.errors.ObjectNotFoundError, nats.js.errors.ObjectDeletedError)):
        return ObjectNotFound(bucket, name)
    if isinstance(exc, nats.js.errors.APIError):
        return BusError(f"object store {bucket}: {what} refused: {exc.description or exc}")
    if isinstance(exc, nats.js.errors.Error):  # digest mismatch, bad metadata, no stream...
        return BusError(
            f"object store {bucket}: {what} failed: {type(exc).__name__} {exc.description or ''}".rstrip()
        )
    # Connection closed, no responders, no answer in time: the server cannot be reached.
    return BusUnavailable(url, f"object store {bucket}: {what}: {str(exc) or type(exc).__name__}")

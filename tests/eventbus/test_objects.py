from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventbus import BusConfig, BusError, BusUnavailable, JetStreamBus, ObjectNotFound, ObjectStore
from tests.support.poll import eventually

pytestmark = pytest.mark.nats


@pytest.fixture
async def store(bus: JetStreamBus) -> AsyncIterator[ObjectStore]:
    bucket = f"t-{uuid.uuid4().hex[:12]}"  # object store buckets are not scoped to the bus prefix
    yield await bus.object_store(bucket)
    await bus.js.delete_object_store(bucket)


def _file(tmp_path: Path, name: str, payload: bytes) -> Path:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_bytes(payload)
    return path


async def test_object_store_file_of_some_megabytes_round_trips_byte_exact(
    store: ObjectStore, tmp_path: Path
) -> None:
    payload = os.urandom(5 * 1024 * 1024 + 17)  # not a multiple of the 128 KiB chunk size
    stored = await store.put_file("big.bin", _file(tmp_path, "in.bin", payload))
    assert stored.size == len(payload)
    got = await store.get_file("big.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == payload
    assert got.size == len(payload) and got.digest == stored.digest
    assert hashlib.sha256((tmp_path / "out.bin").read_bytes()).digest() == hashlib.sha256(payload).digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin", "out.bin"]  # no partial file left


async def test_object_store_put_replaces_and_get_overwrites_dest(store: ObjectStore, tmp_path: Path) -> None:
    await store.put_file("k", _file(tmp_path, "a", b"first, and longer"))
    await store.put_file("k", _file(tmp_path, "a", b"second"))
    dest = _file(tmp_path, "out", b"old contents of dest")
    await store.get_file("k", dest)
    assert dest.read_bytes() == b"second"
    assert (await store.info("k")).size == 6
    assert await store.list_names() == ["k"]


async def test_object_store_empty_file_round_trips(store: ObjectStore, tmp_path: Path) -> None:
    await store.put_file("empty", _file(tmp_path, "empty", b""))
    await store.get_file("empty", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == b""
    assert (await store.info("empty")).size == 0


async def test_object_store_missing_object_raises_not_found_and_leaves_dest_alone(
    store: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(ObjectNotFound, match=r"'nope' not found in object store t-") as caught:
        await store.get_file("nope", tmp_path / "out")
    assert (caught.value.bucket, caught.value.name) == (store.bucket, "nope")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ObjectNotFound):
        await store.info("nope")
    with pytest.raises(ObjectNotFound):
        await store.delete("nope")


async def test_object_store_deleted_object_is_gone_from_list_get_and_info(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = _file(tmp_path, "f", b"x" * 1000)
    await store.put_file("a/1", source)
    await store.put_file("a/2", source)
    await store.delete("a/1")
    assert await store.list_names() == ["a/2"]  # nats-py lists the tombstone of a/1
    with pytest.raises(ObjectNotFound):
        await store.get_file("a/1", tmp_path / "out")
    with pytest.raises(ObjectNotFound):
        await store.info("a/1")
    with pytest.raises(ObjectNotFound):
        await store.delete("a/1")  # a second delete finds nothing
    await store.put_file("a/1", _file(tmp_path, "g", b"again"))  # a deleted name can be reused
    await store.get_file("a/1", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"again"
    assert await store.list_names() == ["a/1", "a/2"]


async def test_object_store_list_of_empty_or_all_deleted_bucket_is_empty(
    store: ObjectStore, tmp_path: Path
) -> None:
    assert await store.list_names() == []  # nats-py raises NotFoundError here
    await store.put_file("only", _file(tmp_path, "f", b"x"))
    await store.delete("only")
    assert await store.list_names() == []  # ... and here, where only a tombstone is left


async def test_object_store_list_filters_by_string_prefix_and_sorts(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = _file(tmp_path, "f", b"x")
    for name in ("wf/b", "wf/a/1", "wfx", "other"):
        await store.put_file(name, source)
    assert await store.list_names("wf") == ["wf/a/1", "wf/b", "wfx"]
    assert await store.list_names("wf/") == ["wf/a/1", "wf/b"]
    assert await store.list_names() == ["other", "wf/a/1", "wf/b", "wfx"]


@pytest.mark.parametrize("name", ["a b/ü €.txt", "wild/*/>", "dots/../x", "=/+/%2F", "x" * 300])
async def test_object_store_names_with_any_characters_round_trip(
    store: ObjectStore, tmp_path: Path, name: str
) -> None:
    await store.put_file(name, _file(tmp_path, "f", name.encode()))
    assert await store.list_names() == [name]
    await store.get_file(name, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == name.encode()
    assert (await store.info(name)).name == name


async def test_object_store_open_is_idempotent_and_keeps_objects(
    bus: JetStreamBus, store: ObjectStore, tmp_path: Path
) -> None:
    await store.put_file("kept", _file(tmp_path, "f", b"x"))
    again = await bus.object_store(store.bucket)
    assert await again.list_names() == ["kept"]


async def test_object_store_invalid_bucket_name_raises_bus_error(bus: JetStreamBus) -> None:
    with pytest.raises(BusError, match=r"bucket 'no.dots': use only letters"):
        await bus.object_store("no.dots")


async def test_object_store_missing_source_file_raises_os_error_not_bus_error(
    store: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        await store.put_file("k", tmp_path / "absent")


async def test_object_store_on_closed_connection_raises_bus_unavailable(
    bus_config: BusConfig, store: ObjectStore, tmp_path: Path
) -> None:
    other = await JetStreamBus.connect(bus_config, ensure_streams=False)
    view = await other.object_store(store.bucket)
    await other.close()
    with pytest.raises(BusUnavailable, match=r"info 'k'"):
        await view.info("k")
    with pytest.raises(BusUnavailable):
        await view.put_file("k", _file(tmp_path, "f", b"x"))
    with pytest.raises(BusUnavailable):
        await view.list_names()


async def test_object_store_connection_lost_mid_get_raises_bus_unavailable_and_leaves_no_file(
    bus_config: BusConfig, store: ObjectStore, tmp_path: Path
) -> None:
    # nats-py's get() itself returns normally with a truncated file here; the size check catches it.
    await store.put_file("big", _file(tmp_path / "src", "in", os.urandom(32 * 1024 * 1024)))
    other = await JetStreamBus.connect(bus_config, ensure_streams=False)
    view = await other.object_store(store.bucket)
    (tmp_path / "dl").mkdir()
    download = asyncio.create_task(view.get_file("big", tmp_path / "dl" / "out"))
    await eventually(
        lambda: any(p.stat().st_size > 0 for p in (tmp_path / "dl").iterdir()) or download.done(),
        what="first chunk written",
    )
    await other.close()
    with pytest.raises(BusUnavailable, match=r"get 'big': got \d+ of 33554432 bytes"):
        await download
    assert list((tmp_path / "dl").iterdir()) == []

"""An S3 server for the artifact tests: moto's, in this process, on a free port (skipped with the
reason when moto or boto3 is not installed)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"S3 tests need boto3 and moto[server] (pip install -e '.[test]'): {exc}")
    before = set(threading.enumerate())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()  # shutdown() + join; werkzeug's serve_forever closes the listening socket as it ends
        _assert_nothing_left(before, host, port)


def _assert_nothing_left(before: set[threading.Thread], host: str, port: int) -> None:
    deadline = time.monotonic() + 5
    def left_behind() -> set[threading.Thread]:
        # The artifact transfer pool is the process's own and outlives any one server.
        return {t for t in set(threading.enumerate()) - before if not t.name.startswith("artifact-transfer")}

    while (left := left_behind()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"moto left threads behind: {left}"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=1).close()

"""Fixtures shared by the tests that drive a real ``eventflow serve`` process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server_proc import ServerProcess, start_ready


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module: a data dir of its own, started once it answers /readyz."""
    proc = start_ready(tmp_path_factory.mktemp("data"))
    yield proc
    proc.stop()

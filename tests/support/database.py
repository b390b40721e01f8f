"""Where a test's store lives, so one suite checks both backends the product supports.

By default a store is a SQLite file in the test's temp dir. With ``EVENTFLOW_TEST_DB=postgres`` it
is a fresh database ``ef_t_<uuid12>`` on the server of ``EVENTFLOW_TEST_PG_URL`` (unique names: CI
shares that server with other runs). A database is keyed by ``(directory, name)`` exactly as the
SQLite file would be, so a test that reopens the same store (a restart, a kill -9) finds its data.

Databases are dropped (``WITH (FORCE)``) when no holder uses them any more, at the end of the test
(``drop_released``, an autouse fixture) and at the end of the session (``drop_all``): a server
process or a module-scoped fixture may hold one past the test that created it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import URL, make_url

SELECT_ENV = "EVENTFLOW_TEST_DB"
PG_URL_ENV = "EVENTFLOW_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

Backend = Literal["sqlite", "postgres"]


def backend() -> Backend:
    """The backend this run's stores use; an unknown value is a mistake, not a silent SQLite run."""
    value = os.environ.get(SELECT_ENV, "").strip().lower() or "sqlite"
    if value in ("postgres", "postgresql"):
        return "postgres"
    if value == "sqlite":
        return "sqlite"
    raise ValueError(f"{SELECT_ENV}={value!r}: expected 'sqlite' or 'postgres'")


def pg_server_url() -> URL:
    """The Postgres server the test databases are created on (its own database is only for admin)."""
    url = make_url(os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL)
    return url.set(drivername="postgresql")


def describe() -> str:
    """One line for the report header: which database this run's stores use."""
    if backend() == "sqlite":
        return (
            f"database: SQLite, a file per store in the test's tmp dir ({SELECT_ENV}=postgres for Postgres)"
        )
    shown = pg_server_url().render_as_string(hide_password=True)
    return f"database: Postgres ({SELECT_ENV}=postgres), a fresh database per store on {shown}"


def _run_in_thread(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on a loop of its own, so sync callers work inside a running event loop too."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-db") as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(*statements: str, server_url: str | None = None) -> None:
    import asyncpg

    url = server_url or pg_server_url().render_as_string(hide_password=False)
    conn = await asyncpg.connect(url, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def admin(server_url: str, *statements: str) -> None:
    """Run ``statements`` on the Postgres server of ``server_url``, in order, from sync code."""
    _run_in_thread(_admin(*statements, server_url=server_url))


@contextlib.contextmanager
def scratch_postgres(pg_url: str, prefix: str = "ef_scratch") -> Iterator[tuple[str, str]]:
    """(the server's admin URL, the URL of a fresh database) for a test about Postgres itself (an
    outage, servers sharing one database), whichever backend the run's other stores use; dropped after."""
    server = make_url(pg_url).set(drivername="postgresql")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_url = server.render_as_string(hide_password=False)
    admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield admin_url, server.set(database=name).render_as_string(hide_password=False)
    finally:
        admin(
            admin_url,
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true',
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        )


def postgres_problem() -> str | None:
    """``None`` when the Postgres server answers a query, else why not (for a loud failure)."""
    try:
        _run_in_thread(_admin("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the user verbatim
        shown = pg_server_url().render_as_string(hide_password=True)
        return f"{shown} does not answer: {type(exc).__name__}: {exc}"
    return None


@dataclass
class _Database:
    name: str
    url: str
    holds: int = 0


_lock = threading.Lock()
_databases: dict[tuple[Path, str], _Database] = {}


def acquire(directory: Path, name: str = "store") -> str:
    """The URL of the store ``name`` for ``directory``, created on first use; pair with ``release``."""
    if backend() == "sqlite":
        return f"sqlite:///{directory / name}.db"
    key = (directory.resolve(), name)
    with _lock:
        db = _databases.get(key)
        if db is None:
            db_name = f"ef_t_{uuid.uuid4().hex[:12]}"
            url = pg_server_url().set(database=db_name).render_as_string(hide_password=False)
            _run_in_thread(_admin(f'CREATE DATABASE "{db_name}"'))
            db = _databases[key] = _Database(db_name, url)
        db.holds += 1
        return db.url


def release(url: str) -> None:
    """The holder of ``url`` is done with it; the database is dropped at the end of the test."""
    with _lock:
        for db in _databases.values():
            if db.url == url and db.holds > 0:
                db.holds -= 1
                return


def _drop(only_released: bool) -> None:
    with _lock:
        doomed = [(key, db) for key, db in _databases.items() if db.holds == 0 or not only_released]
        for key, _ in doomed:
            del _databases[key]
    if doomed:
        _run_in_thread(_admin(*(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)' for _, db in doomed)))


def drop_released() -> None:
    """Drop every database no one holds; run after each test (a held one waits for its holder)."""
    _drop(only_released=True)


def drop_all() -> None:
    """Drop every database this process created, held or not; run at the end of the session."""
    _drop(only_released=False)


@contextlib.contextmanager
def database_url(directory: Path, name: str = "store") -> Iterator[str]:
    """A store URL for ``directory`` (see the module docstring), held while the block runs."""
    url = acquire(directory, name)
    try:
        yield url
    finally:
        release(url)


@contextlib.asynccontextmanager
async def async_database_url(directory: Path, name: str = "store") -> AsyncIterator[str]:
    """``database_url`` for async code: creating the database does not block the event loop."""
    url = await asyncio.to_thread(acquire, directory, name)
    try:
        yield url
    finally:
        release(url)


# -- which tests use a database ------------------------------------------------------------------


def _entry_points() -> set[int]:
    from eventflow.database import open_engine

    return {id(acquire), id(open_engine)}


_TESTS_DIR = str(Path(__file__).resolve().parents[1]) + os.sep


def _code_names(code: Any) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            yield from _code_names(const)


def _reaches(obj: Any, entries: set[int], seen: set[int]) -> bool:
    import importlib
    import inspect
    import sys

    if id(obj) in entries:
        return True
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    if inspect.isclass(obj):
        module_file = getattr(sys.modules.get(obj.__module__), "__file__", None) or ""
        return module_file.startswith(_TESTS_DIR) and any(
            _reaches(getattr(member, "__func__", member), entries, seen) for member in vars(obj).values()
        )
    func = inspect.unwrap(obj) if callable(obj) else obj
    if id(func) in entries:
        return True
    code = getattr(func, "__code__", None)
    if code is None or not code.co_filename.startswith(_TESTS_DIR):
        return False  # only our tests' own helpers are followed; product code is not a test's choice
    names = list(dict.fromkeys(_code_names(code)))
    scopes: list[dict[str, Any]] = [func.__globals__]
    for name in names:  # `from tests.x import f` inside a function, or `module.f(...)`
        if name.startswith("tests.") or name == "eventflow.database":
            with contextlib.suppress(ImportError):  # a name that only looks like a module
                scopes.append(vars(importlib.import_module(name)))
        elif isinstance(func.__globals__.get(name), type(sys)):
            scopes.append(vars(func.__globals__[name]))
    return any(name in scope and _reaches(scope[name], entries, seen) for scope in scopes for name in names)


def reaches_database(obj: Any) -> bool:
    """Whether calling ``obj`` (a test or fixture function) can open a store: its code, or that of
    the test helpers it names (followed through functions, classes and modules under tests/),
    reaches ``acquire`` or ``open_engine``."""
    return _reaches(obj, _entry_points(), set())


if __name__ == "__main__":  # `./dev test` asks before its Postgres phase: exit 0 if the server answers
    import sys

    problem = postgres_problem()
    print(problem or f"{pg_server_url().render_as_string(hide_password=True)} answers")
    sys.exit(1 if problem else 0)

"""The SQL database engine (SQLite by default, Postgres by URL) and its health check."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from eventflow.errors import UsageError

__all__ = ["normalize_url", "open_engine", "ping"]

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def normalize_url(url: str) -> str:
    """Accept plain ``sqlite:///`` / ``postgresql://`` URLs and pick the async driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"--db: {url!r} is not a database URL (e.g. sqlite:///path.db or postgresql://host/db)") from None
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UsageError(f"--db: unsupported database {parsed.get_backend_name()!r}; use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def open_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """An async engine; ``schema`` (Postgres only) isolates tests that share one database."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # Every write is an explicit begin()/commit, so the pool's rollback on check-in is a wasted
        # round trip to aiosqlite's thread on each transaction.
        return create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None)
    connect_args = {"server_settings": {"search_path": schema}} if schema else {}
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args)


async def ping(engine: AsyncEngine) -> str | None:
    """``None`` when the database answers, else the reason it does not (password-free)."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None

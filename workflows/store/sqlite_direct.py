"""The store's hot statements on SQLite, handed to the sqlite3 driver without SQLAlchemy's executor.

Each workflow transition and each sensor firing runs a few small statements. Through SQLAlchemy's
execution machinery (execution context, parameter construction, result set-up) each cost more
CPU than SQLite took to run it, and at 200 workflows/s the store was about 30 % of the server's
event loop. Here values are bound with the columns' own SQLAlchemy type processors, so rows are
stored exactly as SQLAlchemy would store them and every other query (and Postgres) reads them
the same way; only the execute path is ours. Statements run on the connection of the caller's
SQLAlchemy transaction, so they commit or roll back with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

__all__ = ["DirectTable", "driver_cursor"]

_DIALECT = sqlite.dialect()


def driver_cursor(conn: sa.Connection) -> Any:
    """A cursor of the sqlite3 connection under ``conn`` (inside its transaction)."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


class DirectTable:
    """Binds, writes and reads one table's rows the way SQLAlchemy's SQLite dialect does."""

    def __init__(self, table: sa.Table) -> None:
        self.name = table.name
        self.columns = tuple(c.name for c in table.columns)
        self._bind: dict[str, Callable[[Any], Any] | None] = {}
        self._result: dict[str, Callable[[Any], Any] | None] = {}
        for column in table.columns:
            impl = column.type.dialect_impl(_DIALECT)
            self._bind[column.name] = impl.bind_processor(_DIALECT)
            self._result[column.name] = impl.result_processor(_DIALECT, None)
        self._sql: dict[tuple[Any, ...], str] = {}

    def params(self, names: Sequence[str], row: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name in names:
            value = row[name]
            process = self._bind[name]
            out.append(process(value) if process is not None else value)
        return tuple(out)

    def insert(self, cursor: Any, rows: Sequence[Mapping[str, Any]], *, verb: str = "INSERT", suffix: str = "") -> None:
        """``verb INTO ... VALUES ... suffix`` for ``rows``, which all have the same keys."""
        if not rows:
            return
        names = tuple(rows[0])
        key = ("insert", verb, suffix, names)
        sql = self._sql.get(key)
        if sql is None:
            marks = ", ".join("?" * len(names))
            sql = self._sql[key] = f"{verb} INTO {self.name} ({', '.join(names)}) VALUES ({marks}) {suffix}"
        cursor.executemany(sql, [self.params(names, row) for row in rows])

    def update(self, cursor: Any, values: Mapping[str, Any], where: Mapping[str, Any], *, bump: str = "") -> int:
        """``UPDATE ... SET values [, bump = bump + 1] WHERE where``; returns the rows changed."""
        names, keys = tuple(values), tuple(where)
        key = ("update", names, keys, bump)
        sql = self._sql.get(key)
        if sql is None:
            sets = [f"{n} = ?" for n in names] + ([f"{bump} = {bump} + 1"] if bump else [])
            sql = self._sql[key] = f"UPDATE {self.name} SET {', '.join(sets)} WHERE " + " AND ".join(f"{k} = ?" for k in keys)
        cursor.execute(sql, self.params(names, values) + self.params(keys, where))
        return int(cursor.rowcount)

    def select(self, cursor: Any, where: Mapping[str, Any], *, order_by: str = "", limit: int | None = None) -> list[dict[str, Any]]:
        """Whole rows matching ``where`` (equality on each key), as SQLAlchemy would return them."""
        keys = tuple(where)
        key = ("select", keys, order_by, limit is not None)
        sql = self._sql.get(key)
        if sql is None:
            sql = f"SELECT {', '.join(self.columns)} FROM {self.name}"
            if keys:
                sql += " WHERE " + " AND ".join(f"{k} = ?" for k in keys)
            if order_by:
                sql += f" ORDER BY {order_by}"
            if limit is not None:
                sql += " LIMIT ?"
            self._sql[key] = sql
        params = self.params(keys, where) + ((limit,) if limit is not None else ())
        return [self.row(values) for values in cursor.execute(sql, params)]

    def delete(self, cursor: Any, column: str, values: Iterable[Any]) -> int:
        """``DELETE ... WHERE column = ?`` for each value; returns the rows deleted."""
        sql = self._sql.get(("delete", column))
        if sql is None:
            sql = self._sql["delete", column] = f"DELETE FROM {self.name} WHERE {column} = ?"
        process = self._bind[column]
        cursor.executemany(sql, [(process(v) if process is not None else v,) for v in values])
        return int(cursor.rowcount)

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        out = {}
        for name, value in zip(self.columns, values, strict=True):
            process = self._result[name]
            out[name] = process(value) if process is not None else value
        return out

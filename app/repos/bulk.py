"""Many rows in one statement on PostgreSQL: each column sent as one array (``unnest``).

SQLAlchemy's multi-row ``INSERT ... VALUES (...), (...)`` names every value with a placeholder of its own,
and psycopg turns each placeholder into PostgreSQL's form in Python, uncached once a statement passes
4,096 characters: for a text import of 100,000 rows (3 million placeholders) that conversion was 45 of
86 seconds (docs/benchmarks.md, "Text import speed"). Here a statement has one placeholder a column,
whatever the number of rows, so its text is short, cached, and far from the 65,535 parameters a
statement PostgreSQL takes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

_PG = postgresql.dialect()


def _defaults(table: Table, given: set[str]) -> dict[str, Any]:
    """The Python-side defaults (``default=``) of the columns the rows leave out: an INSERT of Core
    would fill them, a statement written here must."""
    out: dict[str, Any] = {}
    for col in table.columns:
        d = col.default
        if col.name in given or d is None or not (getattr(d, "is_scalar", False) or getattr(d, "is_callable", False)):
            continue
        out[col.name] = d.arg(None) if d.is_callable else d.arg  # type: ignore[attr-defined]
    return out


def array_insert(session: Session, table: Table, rows: Sequence[dict], *, conflict: Sequence[str] = (),
                 returning: Sequence[str] = (), ordered: bool = False) -> list[Row]:
    """``INSERT INTO table (cols) SELECT * FROM unnest(col arrays)`` (PostgreSQL), in the caller's
    transaction; every row has the same keys. ``conflict``: ``ON CONFLICT (those columns) DO NOTHING``.
    ``returning``: those columns of the rows inserted. ``ordered``: the rows inserted in the given order
    and returned in it (the generated ``id`` rises with the order: ``returning`` must lead with it)."""
    if not rows:
        return []
    names = list(rows[0])
    fill = _defaults(table, set(names))
    names += list(fill)
    params = {f"c{i}": [r[n] for r in rows] if n not in fill else [fill[n]] * len(rows) for i, n in enumerate(names)}
    arrays = ", ".join(f"CAST(:c{i} AS {table.c[n].type.compile(dialect=_PG)}[])" for i, n in enumerate(names))
    cols = ", ".join(f'"{n}"' for n in names)
    sql = (f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM unnest({arrays}) '
           + ("WITH ORDINALITY AS u(" + cols + ", n) ORDER BY n" if ordered else f"AS u({cols})"))
    if conflict:
        sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(f'"{n}"' for n in returning)
        found = list(session.execute(text(sql), params).all())
        # PostgreSQL draws the ids in the SELECT's order; RETURNING's own order is not promised.
        return sorted(found, key=lambda r: r[0]) if ordered else found
    session.execute(text(sql), params)
    return []


def copy_rows(session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` on the session's own connection (PostgreSQL), so in the caller's
    transaction: the rows are formatted by psycopg's C code, with no placeholder and no array literal
    (long documents made escaping them the larger part of an array INSERT's cost)."""
    raw = session.connection().connection.driver_connection
    cols = ", ".join(f'"{c}"' for c in columns)
    sql = f'COPY "{table}" ({cols}) FROM STDIN'
    try:
        with raw.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        # As SQLAlchemy raises a driver's error (IntegrityError, OperationalError...): the callers and the
        # API's error answers know those, not psycopg's own.
        raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc

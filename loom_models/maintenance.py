"""Looking after an open database: check it, tidy it, measure it.

    db = open_database("./loom-data/sessions.db")
    integrity_check(db)              # [] when healthy
    fragmentation(db)                # Fragmentation(page_count=120, freelist_count=6, ratio=0.05)
    wal_checkpoint(db, "TRUNCATE")   # (0, 0, 0): not busy, the WAL emptied
    explain(db, "SELECT * FROM messages WHERE session_id = ?", ("s",))

Each function takes a database as `open_database` returns it. `analyze`,
`reindex`, `vacuum`, `sizes` and `explain` work on PostgreSQL too; the others are
SQLite's own and raise NotImplementedError there, naming the backend.
"""

from __future__ import annotations

import collections
import os
import sqlite3

import peewee

from .calls import storage_call
from .db import is_sqlite, require_sqlite
from .errors import DatabaseCorruptError, ValidationError, translate

Fragmentation = collections.namedtuple("Fragmentation", "page_count freelist_count ratio")
Sizes = collections.namedtuple("Sizes", "database_bytes wal_bytes")

CHECKPOINT_MODES = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")


@storage_call
def integrity_check(database: peewee.Database, *, quick: bool = False, raise_on_error: bool = False) -> list[str]:
    """The problems SQLite finds in the file and its foreign keys; [] when healthy.

    integrity_check(db, quick=True)          # quick_check: no index cross-checks
    integrity_check(db, raise_on_error=True) # DatabaseCorruptError instead of a list
    """
    require_sqlite(database, "integrity_check")
    pragma = "quick_check" if quick else "integrity_check"
    try:
        problems = [row[0] for row in database.execute_sql("PRAGMA %s" % pragma).fetchall() if row[0] != "ok"]
    except (peewee.DatabaseError, sqlite3.DatabaseError) as error:  # fetchall() raises the driver's own
        if not isinstance(translate(error), DatabaseCorruptError):
            raise
        return _reported([str(error)], raise_on_error)  # too damaged for the check to finish
    problems += [
        "foreign key: %s row %s refers to a missing %s row" % (table, rowid, parent)
        for table, rowid, parent, _ in database.execute_sql("PRAGMA foreign_key_check").fetchall()
    ]
    return _reported(problems, raise_on_error)


def _reported(problems: list[str], raise_on_error: bool) -> list[str]:
    if problems and raise_on_error:
        raise DatabaseCorruptError("integrity check failed: %s" % "; ".join(problems[:10]))
    return problems


@storage_call
def analyze(database: peewee.Database) -> None:
    """Refresh the planner's statistics.  analyze(db)"""
    database.execute_sql("ANALYZE")


@storage_call
def reindex(database: peewee.Database) -> None:
    """Rebuild every index of the store.  reindex(db)"""
    if is_sqlite(database):
        database.execute_sql("REINDEX")
    else:
        schema = database.execute_sql("SELECT current_schema()").fetchone()[0]
        database.execute_sql("REINDEX SCHEMA %s" % _quoted(database, schema))


@storage_call
def vacuum(database: peewee.Database) -> None:
    """Rewrite the database compactly (SQLite), or reclaim dead rows (PostgreSQL).  vacuum(db)"""
    database.execute_sql("VACUUM")


@storage_call
def incremental_vacuum(database: peewee.Database, pages: int) -> int:
    """Free up to `pages` pages of the freelist; return how many went.

    Only a file in auto_vacuum=INCREMENTAL mode gives pages back this way.

        incremental_vacuum(db, 100)
    """
    sqlite = require_sqlite(database, "incremental_vacuum")
    if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
        raise ValidationError({"pages": ["Must be a positive integer."]})
    before = sqlite.pragma("freelist_count")
    # It frees a page a step; executescript steps it to the end, execute only once.
    sqlite.connection().executescript("PRAGMA incremental_vacuum(%d);" % pages)
    return before - sqlite.pragma("freelist_count")


@storage_call
def wal_checkpoint(database: peewee.Database, mode: str = "PASSIVE") -> tuple[int, int, int]:
    """Copy the WAL into the database file: (busy, log_pages, checkpointed_pages).

    wal_checkpoint(db, "TRUNCATE")   # and empty the WAL file
    """
    require_sqlite(database, "wal_checkpoint")
    if mode not in CHECKPOINT_MODES:
        raise ValidationError({"mode": ["Must be one of %s." % ", ".join(CHECKPOINT_MODES)]})
    busy, log_pages, checkpointed = database.execute_sql("PRAGMA wal_checkpoint(%s)" % mode).fetchone()
    return busy, log_pages, checkpointed


@storage_call
def fragmentation(database: peewee.Database) -> Fragmentation:
    """Pages in the file, pages free, and the free share (0-1): VACUUM when it is high.

    fragmentation(db).ratio
    """
    sqlite = require_sqlite(database, "fragmentation")
    pages, free = sqlite.pragma("page_count"), sqlite.pragma("freelist_count")
    return Fragmentation(pages, free, free / pages if pages else 0.0)


@storage_call
def sizes(database: peewee.Database) -> Sizes:
    """Bytes of the database and of its WAL (PostgreSQL: the tables of the current schema; WAL 0).

    sizes(db).wal_bytes
    """
    if not is_sqlite(database):
        (size,) = database.execute_sql(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).fetchone()
        return Sizes(int(size), 0)
    wal = database.database + "-wal"
    return Sizes(
        database.pragma("page_count") * database.pragma("page_size"),
        os.path.getsize(wal) if os.path.exists(wal) else 0,
    )


@storage_call
def explain(database: peewee.Database, sql: str | peewee.Node, params: tuple | list = ()) -> list[str]:
    """The query plan's lines for SQL text or a peewee query.

    explain(db, repo.Message.select().where(repo.Message.session == "s"))
    """
    text, values = database.get_sql_context().sql(sql).query() if isinstance(sql, peewee.Node) else (sql, params)
    if is_sqlite(database):
        return [row[-1] for row in database.execute_sql("EXPLAIN QUERY PLAN " + text, values).fetchall()]
    return [row[0] for row in database.execute_sql("EXPLAIN " + text, values).fetchall()]


def _quoted(database: peewee.Database, name: str) -> str:
    return database.get_sql_context().sql(peewee.Entity(name)).query()[0]

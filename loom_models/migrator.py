"""Each domain's schema history, applied with peewee's own playhouse.migrations.

    upgrade(database, "sessions")    # ['0001_reference_schema', '0002_query_indexes']
    upgrade(database, "sessions")    # [] : nothing pending
    runner(database, "sessions").down("0002_query_indexes")

The files are migrations/<domain>/NNNN_name.py, shipped as loom_models.migrations.
Each domain keeps its history in its own table, so all domains can share one
PostgreSQL database.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sqlite3
import tempfile
from collections.abc import Iterator

import peewee
from playhouse.migrations import Runner

from . import migrations  # type: ignore[attr-defined]  # mapped from migrations/ by package_dir
from .db import is_sqlite
from .errors import ForeignKeyConstraintError, SchemaMismatchError, not_initialised

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.dirname(migrations.__file__)

# Any constant will do: it only has to be the same in every process.
_POSTGRES_LOCK_KEY = 0x6C6F6F6D  # "loom"


def runner(database: peewee.Database, domain: str) -> Runner:
    return Runner(database, os.path.join(MIGRATIONS_DIR, domain), table_name="schema_migration_%s" % domain)


def upgrade(database: peewee.Database, domain: str) -> list[str]:
    """Apply the pending migrations of `domain`; return their names.

    Several processes may call this on one database at once: they take turns,
    and the history is written once. A SQLite database that already holds data
    is first copied next to itself (see `_backup`).
    """
    history = runner(database, domain)
    if not pending(history):
        return []
    with _exclusive(database):
        todo = pending(history)
        if todo and is_sqlite(database) and _holds_data(database):
            _backup(database, domain)
        return history.up() if todo else []


def pending(history: Runner) -> list[str]:
    """The migrations not yet applied; SchemaMismatchError if the database is ahead."""
    status = history.status()
    if any(m.path is None for m in status):
        raise _mismatch(status)
    return [m.name for m in status if not m.applied]


def check_current(database: peewee.Database, domain: str) -> None:
    """SchemaMismatchError unless the database is exactly at the code's version."""
    status = runner(database, domain).status()
    if any(m.path is None or not m.applied for m in status):
        raise _mismatch(status)


def _mismatch(status: list) -> SchemaMismatchError:
    expected = max((m.idx for m in status if m.path is not None), default=0)
    got = max((m.idx for m in status if m.applied), default=0)
    mismatch = "schema version mismatch: expected %d, got %d" % (expected, got)
    return not_initialised(mismatch) if got == 0 else SchemaMismatchError(mismatch)


@contextlib.contextmanager
def _exclusive(database: peewee.Database) -> Iterator[None]:
    """A transaction that one process at a time can be in, to migrate in."""
    if not is_sqlite(database):
        with database.atomic():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_POSTGRES_LOCK_KEY,))
            yield
        return
    # A migration that rebuilds a table drops it, which with foreign keys on
    # cascades into its children. SQLite ignores the pragma inside a
    # transaction, so the keys go off before BEGIN and are checked before COMMIT.
    enforced = database.pragma("foreign_keys")
    database.pragma("foreign_keys", 0)
    try:
        with database.atomic(lock_type="IMMEDIATE"):
            yield
            if database.execute_sql("PRAGMA foreign_key_check").fetchone():
                raise ForeignKeyConstraintError("a migration left rows whose foreign keys match nothing")
    finally:
        database.pragma("foreign_keys", enforced)


def _holds_data(database: peewee.SqliteDatabase) -> bool:
    """Whether any table but a migration history has a row."""
    tables = [t for t in database.get_tables() if not t.startswith("schema_migration")]
    return any(database.execute(peewee.Table(t).select(peewee.SQL("1")).limit(1)).fetchone() for t in tables)


def _backup(database: peewee.SqliteDatabase, domain: str) -> None:
    """Copy the database next to itself with SQLite's online backup API.

    Called while this connection holds the write lock, so the copy is exactly
    what the migrations start from; it reads through a second connection because
    the backup API cannot read from a connection that is writing.
    """
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    directory, name = os.path.split(os.path.abspath(database.database))
    # mkstemp: a new name of our own, created 0600 like the database.
    handle, path = tempfile.mkstemp(prefix="%s.%s.pre-%s-" % (name, stamp, domain), suffix=".bak", dir=directory)
    os.close(handle)
    try:
        with (
            contextlib.closing(sqlite3.connect(database.database)) as source,
            contextlib.closing(sqlite3.connect(path)) as copy,
        ):
            source.backup(copy)
    except BaseException:
        os.remove(path)  # never leave a partial file that looks like a backup
        raise
    logger.warning("loom_models: backed up %s to %s before migrating %s", database.database, path, domain)

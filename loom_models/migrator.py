"""Each domain's schema history, applied with peewee's own playhouse.migrations.

    upgrade(database, "sessions")    # ['0001_reference_schema', '0002_query_indexes']
    upgrade(database, "sessions")    # [] : nothing pending
    migrate(database, "sessions", to="0002_query_indexes")   # down (or up) to exactly that one
    runner(database, "sessions").status()

The files are migrations/<domain>/NNNN_name.py, shipped as loom_models.migrations.
Each domain keeps its history in its own table, so all domains can share one
PostgreSQL database. Before a migration changes a SQLite database that holds
data, a verified copy of it is written beside it (backup.safety_copy).
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Iterator

import peewee
from playhouse.migrations import MigrationError, Runner

from . import backup, migrations  # type: ignore[attr-defined]  # migrations: mapped from migrations/ by package_dir
from .db import is_sqlite
from .errors import ForeignKeyConstraintError, NotFoundError, SchemaMismatchError, not_initialised

MIGRATIONS_DIR = os.path.dirname(migrations.__file__)

# Any constant will do: it only has to be the same in every process.
_POSTGRES_LOCK_KEY = 0x6C6F6F6D  # "loom"

MigrationRun = collections.namedtuple("MigrationRun", "applied reverted backup")
MigrationRun.__doc__ = "What migrate() did: the migrations applied, those reverted, and the copy taken first (or None)."


def runner(database: peewee.Database, domain: str) -> Runner:
    return Runner(database, os.path.join(MIGRATIONS_DIR, domain), table_name="schema_migration_%s" % domain)


def upgrade(database: peewee.Database, domain: str) -> list[str]:
    """Apply the pending migrations of `domain`; return their names.

    upgrade(database, "hitl")   # ['0003_decided_index']
    """
    return migrate(database, domain).applied


def migrate(database: peewee.Database, domain: str, to: str | None = None) -> MigrationRun:
    """Bring `domain` to the migration `to` (applying, or reverting through each `down`), or to the latest.

        migrate(database, "sessions", to="0003_search")   # reverts 0004_search_by_rowid if applied

    Several processes may call this on one database at once: they take turns,
    and the history is written once.
    """
    history = runner(database, domain)
    if to is not None and to not in {m.name for m in history.status() if m.path is not None}:
        raise NotFoundError("migration not found: %s has no %s" % (domain, to))
    if plan(history, to) == ([], []):
        return MigrationRun([], [], None)
    with _exclusive(database):
        apply, revert = plan(history, to)  # again, now that no other process migrates
        copy = None
        if (apply or revert) and is_sqlite(database) and _holds_data(database):
            copy = backup.safety_copy(database.database, "pre-migrate")
        try:
            # Runner.down reverts every applied migration back through the one it is given.
            reverted = history.down(revert[0]) if revert else []
            return MigrationRun(history.up(to) if apply else [], reverted, copy)
        except MigrationError as error:  # a migration file without down(), say
            raise SchemaMismatchError("cannot migrate %s: %s" % (domain, error)) from error


def plan(history: Runner, to: str | None = None) -> tuple[list[str], list[str]]:
    """(to apply, to revert) to bring a history to the migration `to`, or to the latest.

    plan(runner(database, "sessions"), "0003_search")   # ([], ['0004_search_by_rowid'])
    """
    todo = pending(history)  # SchemaMismatchError if the database is ahead of this code
    if to is None:
        return todo, []
    status = history.status()
    position = [m.name for m in status].index(to) + 1
    return [m.name for m in status[:position] if not m.applied], [m.name for m in status[position:] if m.applied]


def has_migration(domain: str, name: str) -> bool:
    """Whether `name` is one of the migrations of `domain` this code ships."""
    return os.path.exists(os.path.join(MIGRATIONS_DIR, domain, name + ".py"))


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

"""Each domain's schema history, applied with peewee's own playhouse.migrations.

    upgrade(database, "sessions")    # ['0001_reference_schema', '0002_query_indexes']
    upgrade(database, "sessions")    # [] : nothing pending
    migrate(database, "sessions", to="0002_query_indexes")   # down (or up) to exactly that one
    runner(database, "sessions").status()

The files are migrations/<domain>/NNNN_name.py, shipped as loom_models.migrations.
Each domain keeps its history in its own table, so all domains can share one
PostgreSQL database. Before a migration changes a SQLite database that holds
data, a verified copy of it is written beside it (copies.safety_copy).
"""

from __future__ import annotations

import collections
import os

import peewee
from playhouse.migrations import MigrationError, Runner

from . import copies, migrations  # type: ignore[attr-defined]  # migrations: mapped from migrations/ by package_dir
from .backends import backend_of
from .errors import NotFoundError, SchemaMismatchError, not_initialised

MIGRATIONS_DIR = os.path.dirname(migrations.__file__)

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
    if to is not None and not has_migration(domain, to):
        raise NotFoundError("migration not found: %s has no %s" % (domain, to))
    if plan(history, to) == ([], []):
        return MigrationRun([], [], None)
    backend = backend_of(database)
    with backend.migration_lock():
        apply, revert = plan(history, to)  # again, now that no other process migrates
        worth_copying = backend.file_worth_copying() if apply or revert else None
        copy = copies.safety_copy(worth_copying, "pre-migrate") if worth_copying else None
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

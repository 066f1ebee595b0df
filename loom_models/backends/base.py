"""The interface every backend has: what the code above may ask of a database.

An operation that is SQLite's own (a file, its pragmas, its integrity check)
raises NotImplementedError here, naming the operation and the backend; the
SQLite backend overrides it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import peewee
from playhouse.pool import PooledDatabase

from ..errors import NotWritableError

Q = TypeVar("Q", bound="peewee.ModelSelect[Any]")  # a query, as the caller's type checker knows it

Fragmentation = collections.namedtuple("Fragmentation", "page_count freelist_count ratio")
Sizes = collections.namedtuple("Sizes", "database_bytes wal_bytes")


class Backend:
    """The operations whose SQL or semantics differ by backend; SQLite's own ones refused here."""

    name: str  # "sqlite" or "postgresql", as reports show it
    # SQL sent before a read whose ORDER BY an index gives, in the same round trip,
    # so that it walks that index whatever the statistics say (Statement(preamble=)).
    index_order_preamble = ""

    def __init__(self, database: peewee.Database) -> None:
        self.database = database

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, self.describe())

    def describe(self) -> str:
        """Where the database is, without credentials: a path, or database@host."""
        raise NotImplementedError

    def path(self) -> str | None:
        """The database's file, if it is one: errors about it name it."""
        return None

    def label(self) -> str:
        """The database's short name in a report: a file name, or a database name."""
        raise NotImplementedError

    def write(self) -> AbstractContextManager[Any]:
        """A write transaction (or a savepoint inside one)."""
        return self.database.atomic()

    def commits_alone(self) -> bool:
        """Whether a statement run now is a transaction of its own that a write() would only wrap."""
        return False

    def snapshot(self) -> AbstractContextManager[Any]:
        """A transaction whose reads all see one moment."""
        raise NotImplementedError

    def row_lock(self, model: type[peewee.Model]) -> Callable[[str], object]:
        """A function that, inside write(), holds the row of `model` with a given id until the end."""
        raise NotImplementedError

    def lock_keys(self, space: int, keys: list[str]) -> None:
        """Inside write(), take a lock per key (of the key space `space`) that other writers of those keys wait for.

        What two transactions of the same keys must not interleave (a prune and a
        put of one LangGraph thread) takes these first.
        """
        raise NotImplementedError

    def skip_locked(self, query: Q) -> Q:
        """`query`, passing over rows another transaction holds (they wait for the next run)."""
        return query

    def give_way(self, milliseconds: int) -> None:
        """From now on (until discard_connection), this thread's write transactions wait at most so long for a lock."""
        raise NotImplementedError

    def discard_connection(self) -> None:
        """Close this thread's connection for good: a pooled one is not given back, with what was set on it."""
        if isinstance(self.database, PooledDatabase):
            self.database.manual_close()
        else:
            self.database.close()

    def follow_ids(self, field: peewee.AutoField) -> None:
        """Let the ids `field` generates go on past the highest in its table (after rows were written with theirs).

        SQLite's rowid always does; a sequence has to be told.
        """

    def greatest(self, *values: Any) -> peewee.Function:
        """The greatest of `values`, in SQL."""
        raise NotImplementedError

    def json_member_is(self, column: peewee.Field, key: str, value_json: str) -> peewee.Node:
        """Whether the JSON object in `column` has `key`, with the value that `value_json` spells."""
        raise NotImplementedError

    def match(self, query: Q, column: peewee.Field, index: str, words: list[str]) -> Q:
        """`query` narrowed to rows whose `column` matches any of `words`, best match first.

        `index` is the column's full-text table, where the backend keeps one,
        whose rowid is the primary key of the column's row.
        """
        raise NotImplementedError

    def migration_lock(self) -> AbstractContextManager[Any]:
        """A transaction that one process at a time can be in, to migrate in."""
        raise NotImplementedError

    def file_worth_copying(self) -> str | None:
        """The database's file when it holds data to keep a copy of before a change; None otherwise."""
        return None

    def check_writable(self) -> None:
        """NotWritableError naming each file (or directory) of the database this process cannot write.

        A store whose files this process cannot write fails on its first write,
        or at once (SQLite's readers write its -shm file too): say so at open.
        """
        unwritable = self.unwritable()
        if unwritable:
            raise NotWritableError(
                "cannot write %s: permission denied; the store's files and their directory must be"
                " writable by the user it runs as" % " or ".join(unwritable)
            )

    def unwritable(self) -> list[str]:
        """The files (or directory) of the database this process cannot write."""
        return []

    def health(self, report: dict) -> bool:
        """Add to a health report what the database's files say of themselves; False if too damaged to go on."""
        return True

    def reindex(self) -> None:
        raise NotImplementedError

    def sizes(self) -> Sizes:
        raise NotImplementedError

    def explain(self, sql: str, params: tuple | list) -> list[str]:
        raise NotImplementedError

    # SQLite's own.

    def file(self, operation: str) -> str:
        """The database's file, for an operation on it (a backup, a dump)."""
        raise self._not_here(operation)

    def pragmas(self) -> dict:
        raise self._not_here("check_pragmas")

    def integrity_problems(self, quick: bool) -> list[str]:
        raise self._not_here("integrity_check")

    def incremental_vacuum(self, pages: int) -> int:
        raise self._not_here("incremental_vacuum")

    def wal_checkpoint(self, mode: str) -> tuple[int, int, int]:
        raise self._not_here("wal_checkpoint")

    def fragmentation(self) -> Fragmentation:
        raise self._not_here("fragmentation")

    def _not_here(self, operation: str) -> NotImplementedError:
        return NotImplementedError(
            "%s is SQLite's own; this database is %s" % (operation, type(self.database).__name__)
        )

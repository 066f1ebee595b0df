"""What every domain repository shares: its database, transactions, migrations.

    repo = SessionRepository.open("./loom-data/sessions.db")   # opens, migrates, owns
    repo = SessionRepository(database)                         # wraps an open database
    repo = SessionRepository.open(path, tracer=tracer)         # a span per call (tracing.py)
    repo.migrate()                                             # applies pending migrations
    repo.close()

Backend differences are settled here, once: on SQLite a write transaction takes
the write lock up front (BEGIN IMMEDIATE), because a deferred transaction that
reads and then writes fails with SQLITE_BUSY under concurrency whatever the busy
timeout, and waits for it in equal short steps (see _SqliteWrite); on PostgreSQL
a snapshot read uses REPEATABLE READ, and a write that must read the clock after
its lock takes the row lock first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import peewee

from . import migrator
from .calls import repository_call, storage_call
from .db import check_writable, describe, is_sqlite, open_database, retry_while_locked
from .statements import Statement, param

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer  # the tracing extra; only a caller with a tracer has it


RepositoryT = TypeVar("RepositoryT", bound="Repository")


class Repository:
    domain: str  # the folder of its migrations, migrations/<domain>/
    span_prefix: str  # its spans are named <span_prefix>.<method>

    def __init__(self, database: peewee.Database, tracer: Tracer | None = None):
        self.database = database
        self.tracer = tracer
        self.closed = False  # once True, every call refuses (calls.repository_call)
        self._owns_database = False
        self._sqlite = is_sqlite(database)
        self._snapshot_options = {} if self._sqlite else {"isolation_level": "REPEATABLE READ"}

    @classmethod
    @storage_call
    def open(
        cls: type[RepositoryT], path_or_url: str | os.PathLike, tracer: Tracer | None = None, *, migrate: bool = True
    ) -> RepositoryT:
        """Open the database at a path or URL, apply pending migrations, own it.

        with SessionRepository.open("./loom-data/sessions.db") as repo: ...

        With `migrate=False` the schema must already be current (SchemaMismatchError).
        """
        repository = cls(open_database(path_or_url), tracer)
        repository._owns_database = True
        try:
            check_writable(repository.database)
            repository.migrate() if migrate else repository.check_schema()
        except BaseException:
            repository.close()
            raise
        return repository

    @repository_call()
    def migrate(self) -> list[str]:
        """Apply this domain's pending migrations; return the names applied.

        SessionRepository(open_database(path)).migrate()   # ['0001_...', ...]
        """
        return migrator.upgrade(self.database, self.domain)

    @repository_call()
    def migrate_to(self, name: str | None = None) -> migrator.MigrationRun:
        """Bring this domain's schema to the migration `name` (up, or down through each `down`), or the latest.

        repo.migrate_to("0003_search")   # MigrationRun(applied=[], reverted=['0004_...'], backup='...bak')

        On SQLite a database that holds data is first copied beside itself,
        verified (the run's `backup`).
        """
        return migrator.migrate(self.database, self.domain, name)

    @repository_call()
    def check_schema(self) -> None:
        """SchemaMismatchError unless the database is at this code's version.

        repo.check_schema()   # before serving from a database migrated elsewhere
        """
        migrator.check_current(self.database, self.domain)

    def close(self) -> None:
        """Refuse every call from now on, and close the database if this repository opened it.

        repo.close()   # safe to call twice
        """
        self.closed = True
        if self._owns_database:
            self.database.close()

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, describe(self.database))

    def __enter__(self: RepositoryT) -> RepositoryT:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self) -> AbstractContextManager[Any]:
        if is_sqlite(self.database) and not self.database.in_transaction():
            return _SqliteWrite(self.database)
        return self.database.atomic()

    def _snapshot(self) -> AbstractContextManager[Any]:
        return self.database.atomic(**self._snapshot_options)

    def _row_lock(self, model: type[peewee.Model]) -> Callable[[str], object]:
        """A function that, inside `_write()`, holds the row of `model` with a given id until the end.

        SQLite's write transaction holds the whole database already; PostgreSQL
        locks rows as a statement reaches them, so a clock read before that
        statement could be stale by the time it runs.
        """
        if self._sqlite:
            return lambda row_id: None
        key = model._meta.primary_key
        lock = Statement(model.select(key).where(key == param("id")).for_update())
        return lambda row_id: lock.execute(id=row_id)


class _SqliteWrite:
    """A write transaction that waits for SQLite's write lock by trying every millisecond or so.

    SQLite's own busy handler backs off to a try every 100 ms: under steady
    contention a writer that has waited long tries least often, and newer ones
    keep getting through ahead of it until its busy timeout runs out (measured:
    3-5 s waits with 16 writers at full speed, while most waited a millisecond).
    Equal short steps give every waiter the same chance at each commit. The wait
    is bounded by the busy timeout in force on the connection.
    """

    def __init__(self, database: peewee.SqliteDatabase) -> None:
        self.database = database
        self.transaction = database.atomic(lock_type="IMMEDIATE")

    def __enter__(self) -> Any:
        connection = self.database.connection()
        wait_ms = connection.execute("PRAGMA busy_timeout").fetchone()[0]
        connection.execute("PRAGMA busy_timeout = 0")
        try:
            return retry_while_locked(self.transaction.__enter__, wait_ms / 1000)
        finally:
            connection.execute("PRAGMA busy_timeout = %d" % wait_ms)

    def __exit__(self, *exc_info: Any) -> Any:
        return self.transaction.__exit__(*exc_info)

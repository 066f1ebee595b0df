"""What every domain repository shares: its database, transactions, migrations.

    repo = SessionRepository.open("./loom-data/sessions.db")   # opens, migrates, owns
    repo = SessionRepository(database)                         # wraps an open database
    repo = SessionRepository.open(path, tracer=tracer)         # a span per call (tracing.py)
    repo.migrate()                                             # applies pending migrations
    repo.close()

What differs between SQLite and PostgreSQL (transactions, row locks, search)
each repository asks of its backend (backends/), chosen once when it is made.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TypeVar

import peewee
from peewee import fn

from . import migrator
from .backends import backend_of
from .calls import repository_call, storage_call
from .db import open_database
from .pool import PostgresPool
from .validation import check_id, check_positive

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer  # the tracing extra; only a caller with a tracer has it

    from .monitoring import CallWatch


RepositoryT = TypeVar("RepositoryT", bound="Repository")


class Repository:
    domain: str  # its name, and the folder of its migrations, migrations/<domain>/
    file: str  # its SQLite file in a data directory
    table: str  # the table that tells a database of this domain from the others'
    span_prefix: str  # its spans are named <span_prefix>.<method>
    models: tuple[type[peewee.Model], ...]  # the models of its tables, parents first

    def __init__(self, database: peewee.Database, tracer: Tracer | None = None):
        self.database = database
        self.tracer = tracer
        self.closed = False  # once True, every call refuses (calls.repository_call)
        self.backend = backend_of(database)
        self._owns_database = False
        # A server's pooled connections: each call gives its thread's back for the next (calls.repository_call).
        self.gives_back_connections = isinstance(database, PostgresPool)
        self.watch: CallWatch | None = None  # a storage's slow-call log and meter (monitoring.py)

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
            repository.backend.check_writable()
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

    def _ids_starting(self, id_field: peewee.Field, prefix: str, limit: int) -> list[str]:
        """The ids of `id_field` that start with `prefix`, at most `limit`: the id `prefix` itself, then in order.

        The id itself is looked up by its key, and is all that limit=1 reads;
        a start is compared exactly (LIKE is case-insensitive on SQLite), which reads every id.
        """
        model, limit = id_field.model, check_positive(limit, "limit")
        starting = model.select(id_field).where(fn.SUBSTR(id_field, 1, len(check_id(prefix, "prefix"))) == prefix)
        if not model.select().where(id_field == prefix).exists():
            return [getattr(row, id_field.name) for row in starting.order_by(id_field).limit(limit)]
        if limit == 1:
            return [prefix]
        others = starting.where(id_field != prefix).order_by(id_field).limit(limit - 1)
        return [prefix] + [getattr(row, id_field.name) for row in others]

    def close(self) -> None:
        """Refuse every call from now on, and close the database if this repository opened it.

        repo.close()   # safe to call twice
        """
        self.closed = True
        if self._owns_database:
            self.database.close()

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, self.backend.describe())

    def __enter__(self: RepositoryT) -> RepositoryT:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

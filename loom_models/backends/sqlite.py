"""SQLite: one file a database, one writer at a time, WAL, and the pragmas every connection gets.

    backend = SqliteBackend(peewee.SqliteDatabase(path, pragmas=PRAGMAS))
    with backend.write(): ...      # BEGIN IMMEDIATE, waiting for the lock in fair short steps
    backend.integrity_problems(quick=False)   # [] when healthy

A write transaction takes the write lock up front (BEGIN IMMEDIATE): a deferred
one that reads and then writes fails with SQLITE_BUSY under concurrency whatever
the busy timeout.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import peewee

from ..errors import DatabaseCorruptError, ForeignKeyConstraintError, LoomStorageError, translate
from .base import Backend, Fragmentation, Q, Sizes

T = TypeVar("T")

# Applied in this order on every SQLite connection. journal_mode=wal is stored in
# the file; the others are per connection.
PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "NORMAL",
    "cache_size": 10000,
    "busy_timeout": 5000,
    "temp_store": "MEMORY",
    "mmap_size": 268435456,
    "automatic_index": 1,
}

# Above this share of free pages, a health check suggests a vacuum.
FRAGMENTATION_WARNING = 0.25

# How SQLite reports the named values of PRAGMAS.
_PRAGMA_NUMBERS = {
    "synchronous": {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3},
    "temp_store": {"DEFAULT": 0, "FILE": 1, "MEMORY": 2},
}


class SqliteBackend(Backend):
    name = "sqlite"
    database: peewee.SqliteDatabase

    def describe(self) -> str:
        return self.database.database

    def path(self) -> str:
        return self.database.database

    def label(self) -> str:
        return os.path.basename(self.database.database)

    def file(self, operation: str) -> str:
        return self.database.database

    def write(self) -> AbstractContextManager[Any]:
        if self.database.in_transaction():
            return self.database.atomic()
        return _FairWrite(self.database)

    def snapshot(self) -> AbstractContextManager[Any]:
        return self.database.atomic()  # WAL: a read transaction is a snapshot already

    def row_lock(self, model: type[peewee.Model]) -> Callable[[str], object]:
        return lambda row_id: None  # the write transaction holds the whole database

    def lock_keys(self, space: int, keys: list[str]) -> None:
        pass  # the write transaction holds the whole database

    def give_way(self, milliseconds: int) -> None:
        self.database.pragma("busy_timeout", milliseconds)

    def greatest(self, *values: Any) -> peewee.Function:
        return peewee.fn.MAX(*values)  # MAX of more than one value is a scalar

    def json_member_is(self, column: peewee.Field, key: str, value_json: str) -> peewee.Node:
        # As PostgreSQL's jsonb compares: the JSON types agree (1 is not true, nor "1"),
        # but a number is a number (1 is 1.0). Objects compare as their text: both sides
        # are written with their keys in order.
        member = (
            "AS member WHERE member.key = ? AND (member.type = json_type(?)"
            " OR member.type IN ('integer', 'real') AND json_type(?) IN ('integer', 'real'))"
            " AND member.value IS json_extract(?, '$'))"
        )
        values = [key, value_json, value_json, value_json]
        return peewee.NodeList(
            (peewee.SQL("EXISTS (SELECT 1 FROM json_each("), column, peewee.SQL(") " + member, values)), glue=""
        )

    def match(self, query: Q, column: peewee.Field, index: str, words: list[str]) -> Q:
        if index not in self.database.get_tables():
            raise LoomStorageError("full-text search needs SQLite's FTS5, which this SQLite build lacks")
        key, table = column.model._meta.primary_key, peewee.Table(index)
        # Each word quoted is a plain term in FTS5: no operator, no column filter.
        terms = " OR ".join('"%s"' % word for word in words)
        query = query.join(table, on=(table.c.rowid == key)).where(peewee.SQL("%s MATCH ?" % index, [terms]))
        return query.order_by(peewee.SQL("bm25(%s)" % index), key)

    @contextlib.contextmanager
    def migration_lock(self) -> Iterator[None]:
        # A migration that rebuilds a table drops it, which with foreign keys on
        # cascades into its children. SQLite ignores the pragma inside a
        # transaction, so the keys go off before BEGIN and are checked before COMMIT.
        database = self.database
        enforced = database.pragma("foreign_keys")
        database.pragma("foreign_keys", 0)
        try:
            with database.atomic(lock_type="IMMEDIATE"):
                yield
                if database.execute_sql("PRAGMA foreign_key_check").fetchone():
                    raise ForeignKeyConstraintError("a migration left rows whose foreign keys match nothing")
        finally:
            database.pragma("foreign_keys", enforced)

    def file_worth_copying(self) -> str | None:
        # Any table but a migration history with a row.
        tables = [t for t in self.database.get_tables() if not t.startswith("schema_migration")]
        first_rows = [peewee.Table(table).select(peewee.SQL("1")).limit(1) for table in tables]
        holds_data = any(self.database.execute(query).fetchone() for query in first_rows)
        return self.database.database if holds_data else None

    def unwritable(self) -> list[str]:
        if self.database.database in ("", ":memory:"):
            return []
        return unwritable_files(self.database.database)

    def health(self, report: dict) -> bool:
        # Before the first connection: SQLite may replace an unwritable -shm file it finds.
        report["problems"] += [{"kind": "permission", "detail": "cannot write %s" % p} for p in self.unwritable()]
        damage = self.integrity_problems(quick=False)
        report["problems"] += [{"kind": "integrity", "detail": problem} for problem in damage]
        if damage:
            return False
        report["pragmas"] = self.pragmas()
        report["problems"] += [{"kind": "pragma", "detail": problem} for problem in self.pragma_problems()]
        report["copies"] = safety_copies(self.database.database)
        report["warnings"] += [
            "copy left beside it: %s (%d bytes); remove it once the store is known good" % (path, os.path.getsize(path))
            for path in report["copies"]
        ]
        report["fragmentation"] = self.fragmentation()._asdict()
        if report["fragmentation"]["ratio"] > FRAGMENTATION_WARNING:
            free = 100 * report["fragmentation"]["ratio"]
            report["warnings"].append("%.0f%% of the pages are free: `loom-db vacuum` gives them back" % free)
        return True

    def pragmas(self) -> dict:
        """The values of PRAGMAS in force on this thread's connection, as SQLite reports them."""
        return {name: self.database.pragma(name) for name in PRAGMAS}

    def pragma_problems(self) -> list[str]:
        """Each pragma of PRAGMAS whose value in force is not the one the database was opened with, or PRAGMAS'."""
        # peewee's record of the pragmas open_database gave it
        opened = {**PRAGMAS, **dict(self.database._pragmas)}  # type: ignore[attr-defined]
        expected = {name: _PRAGMA_NUMBERS.get(name, {}).get(str(opened[name]), opened[name]) for name in PRAGMAS}
        return [
            "%s is %r, not %r" % (name, value, expected[name])
            for name, value in self.pragmas().items()
            if str(value).lower() != str(expected[name]).lower()
        ]

    def integrity_problems(self, quick: bool) -> list[str]:
        pragma = "quick_check" if quick else "integrity_check"
        try:
            rows = self.database.execute_sql("PRAGMA %s" % pragma).fetchall()
        except (peewee.DatabaseError, sqlite3.DatabaseError) as error:  # fetchall() raises the driver's own
            if not isinstance(translate(error), DatabaseCorruptError):
                raise
            return [str(error)]  # too damaged for the check to finish
        problems = [row[0] for row in rows if row[0] != "ok"]
        return problems + [
            "foreign key: %s row %s refers to a missing %s row" % (table, rowid, parent)
            for table, rowid, parent, _ in self.database.execute_sql("PRAGMA foreign_key_check").fetchall()
        ]

    def reindex(self) -> None:
        self.database.execute_sql("REINDEX")

    def incremental_vacuum(self, pages: int) -> int:
        before = self.database.pragma("freelist_count")
        # It frees a page a step; executescript steps it to the end, execute only once.
        self.database.connection().executescript("PRAGMA incremental_vacuum(%d);" % pages)
        return before - self.database.pragma("freelist_count")

    def wal_checkpoint(self, mode: str) -> tuple[int, int, int]:
        busy, log_pages, checkpointed = self.database.execute_sql("PRAGMA wal_checkpoint(%s)" % mode).fetchone()
        return busy, log_pages, checkpointed

    def fragmentation(self) -> Fragmentation:
        pages, free = self.database.pragma("page_count"), self.database.pragma("freelist_count")
        return Fragmentation(pages, free, free / pages if pages else 0.0)

    def sizes(self) -> Sizes:
        wal = self.database.database + "-wal"
        return Sizes(
            self.database.pragma("page_count") * self.database.pragma("page_size"),
            os.path.getsize(wal) if os.path.exists(wal) else 0,
        )

    def explain(self, sql: str, params: tuple | list) -> list[str]:
        return [row[-1] for row in self.database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()]


class _FairWrite:
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


def retry_while_locked(attempt: Callable[[], T], seconds: float) -> T:
    """attempt(), tried again every millisecond or so while SQLite says the database is locked, for `seconds`.

    retry_while_locked(lambda: connection.execute("BEGIN IMMEDIATE"), 5.0)

    For the lock waits that SQLite's busy handler does not serve, or serves
    unfairly (its backoff makes a long waiter try least often).
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            return attempt()
        except (sqlite3.OperationalError, peewee.OperationalError) as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(random.uniform(0.0005, 0.0015))  # out of step with the other waiters


def create_file(path: str, pragmas: dict) -> None:
    """Create a database file (0600) if there is none, and switch a new one to WAL; several processes may at once.

    The switch writes the file's header: a connection takes the read lock, then
    asks for the write lock. When another process holds that (switching the
    same new file), SQLite returns SQLITE_BUSY at once, without calling the busy
    handler, since waiting while holding the read lock could deadlock. So the
    switch is retried here, for up to busy_timeout. Once the header says WAL,
    the journal_mode pragma that peewee runs on each new connection only reads
    it, and every lock it takes waits as busy_timeout says.
    """
    create_private_file(path)
    if path in ("", ":memory:") or str(pragmas["journal_mode"]).lower() != "wal" or os.path.getsize(path):
        return
    seconds = pragmas["busy_timeout"] / 1000
    names = list(pragmas)
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=seconds, isolation_level=None)) as connection:
            # Up to journal_mode: the pragmas of the file format before it (page_size,
            # auto_vacuum) take only before the first write, and the switch is that write.
            for name in names[: names.index("journal_mode") + 1]:
                statement = "PRAGMA %s = %s" % (name, pragmas[name])
                retry_while_locked(functools.partial(connection.execute, statement), seconds)
    except sqlite3.Error as error:
        raise translate(error, path) from error


def create_private_file(path: str) -> None:
    """Create `path` (mode 0600) unless it exists.

    SQLite gives its -wal and -shm files the mode of the database file, so a
    database created this way keeps all three private.
    """
    if path and path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def unwritable_files(path: str) -> list[str]:
    """Which of a SQLite database's files (and their directory) this process may not write.

    unwritable_files("./loom-data/sessions.db")   # ['./loom-data/sessions.db-shm']

    Asked of the file system, never by opening a file: closing any descriptor
    of a database file drops every lock this process's connections hold on it.
    """
    directory = os.path.dirname(os.path.abspath(path))
    unwritable = [f for f in (path, path + "-wal", path + "-shm") if not _writable(f)]
    if not os.access(directory, os.W_OK | os.X_OK):
        unwritable.append(directory)
    return unwritable


def _writable(path: str) -> bool:
    # Other processes' connections delete and create -wal and -shm files all
    # the time: "no" about a file replaced while we asked is no answer.
    try:
        before = os.stat(path)
        if os.access(path, os.W_OK):
            return True
        after = os.stat(path)
    except FileNotFoundError:
        return True  # nothing there to be unwritable
    return (before.st_dev, before.st_ino) != (after.st_dev, after.st_ino)


def safety_copies(path: str) -> list[str]:
    """The copies a migration or a restore left beside a database (copies.safety_copy makes them)."""
    directory, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(r"%s\.\d{8}T\d{6}Z\.pre-\w+-\w+\.(?:bak|damaged(?:-wal)?)$" % re.escape(name))
    return sorted(os.path.join(directory, entry) for entry in os.listdir(directory) if pattern.match(entry))

"""The store as SQL text: dumped from one snapshot, loaded into a new verified database.

dump_sql(db, "sessions.sql")                  # a new file, 0600
for statement in iter_dump(db): print(statement)
load_sql("sessions.sql", "/tmp/copy.db")
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator

import peewee

from .. import copies
from ..backends import backend_of
from ..calls import storage_call
from ..copies import Path
from ..errors import ConflictError, DatabaseCorruptError, NotFoundError, ValidationError


@storage_call
def dump_sql(database: peewee.Database, path: Path) -> str:
    """Write the database as SQL text (schema and rows), one snapshot, to a new file at `path` (0600).

    dump_sql(db, "sessions.sql")
    """
    path = os.fspath(path)
    staged = copies.temporary_beside(path)
    try:
        with open(staged, "w", encoding="utf-8") as out:
            for statement in iter_dump(database):
                out.write(statement + "\n")
        copies.install(staged, path)
    except BaseException:
        copies.discard(staged)
        raise
    return path


def iter_dump(database: peewee.Database) -> Iterator[str]:
    """The database as SQL statements, read from one snapshot, a statement at a time.

        for statement in iter_dump(db): out.write(statement + "\n")

    The snapshot (a read transaction, which writers do not wait for) is held
    until the iterator is exhausted or closed.
    """
    path = backend_of(database).file("dump_sql")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as source:
        source.execute("BEGIN")  # one snapshot for every table, while writers go on
        try:
            virtual = dict(source.execute("SELECT name, sql FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%'"))
            skipped = tuple('INSERT INTO "%s"' % name for name in virtual)
            for statement in source.iterdump():
                # A virtual table's rows live in its shadow tables, which are dumped.
                if not statement.startswith(skipped):
                    yield _as_schema_entry(statement, virtual)
        finally:
            source.execute("COMMIT")


def _as_schema_entry(statement: str, virtual: dict) -> str:
    """A CREATE VIRTUAL TABLE as a bare schema entry, as Python 3.11+ dumps it.

    Run as it is, it would make the shadow tables that the dump creates and fills
    itself after it (Python 3.10's iterdump), and loading would fail on them.
    """
    for name, sql in virtual.items():
        if statement == sql + ";":
            entry = "INSERT INTO sqlite_master(type, name, tbl_name, rootpage, sql) VALUES('table', %s, %s, 0, %s);"
            values = entry % (_literal(name), _literal(name), _literal(sql))
            return "PRAGMA writable_schema=ON;\n%s\nPRAGMA writable_schema=OFF;" % values
    return statement


def _literal(text: str) -> str:
    """A SQL string literal (for the dump file; queries bind their values)."""
    return "'%s'" % text.replace("'", "''")


@storage_call
def load_sql(path: Path, database_path: Path) -> None:
    """Build a new database at `database_path` from a dump_sql file, verified.

    load_sql("sessions.sql", "copy.db")
    """
    path, database_path = os.fspath(path), os.fspath(database_path)
    if os.path.exists(database_path):
        raise ConflictError("database exists: %s; load into a new path" % database_path)
    try:
        with open(path, encoding="utf-8") as dump:
            script = dump.read()
    except FileNotFoundError:
        raise NotFoundError("dump not found: %s" % path) from None
    except UnicodeDecodeError as error:
        raise ValidationError({"path": ["Not a SQL dump (%s)." % error]}) from None
    staged = copies.temporary_beside(database_path)
    try:
        with contextlib.closing(sqlite3.connect(staged, isolation_level=None)) as target:
            target.executescript(script)
            problems = copies.integrity_problems(target)
        if problems:
            raise DatabaseCorruptError("the database loaded from %s fails its check: %s" % (path, problems[0]))
        copies.install(staged, database_path)
    except BaseException:
        copies.discard(staged)
        raise

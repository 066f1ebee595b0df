"""Opening databases: one pragma dict for SQLite, a URL for anything else.

    db = open_database("./loom-data/sessions.db")          # SqliteDatabase, DEFAULT_PRAGMAS
    db = open_database("sqlite:////srv/loom/sessions.db")   # the same, through playhouse.db_url
    db = open_database("postgresql://loom@127.0.0.1:5432/loom")
    check_pragmas(db)   # {'journal_mode': 'wal', 'foreign_keys': 1, ...}

peewee applies the pragmas to every new connection, and connections are per thread,
so each thread's connection runs with the same settings.
"""

from __future__ import annotations

import os
from typing import TypeGuard
from urllib.parse import urlparse

import peewee
from playhouse import db_url

from .errors import ValidationError

# Applied in this order on every SQLite connection. journal_mode=wal is stored in
# the file; the others are per connection.
DEFAULT_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "NORMAL",
    "cache_size": 10000,
    "busy_timeout": 5000,
    "temp_store": "MEMORY",
    "mmap_size": 268435456,
    "automatic_index": 1,
}


def open_database(path_or_url: str | os.PathLike, pragmas: dict | None = None) -> peewee.Database:
    """A peewee database for a file path or a database URL.

    `pragmas` override single entries of DEFAULT_PRAGMAS (SQLite only; they are
    never passed to PostgreSQL):

        open_database("/tmp/x.db", pragmas={"busy_timeout": 100})
    """
    if not isinstance(path_or_url, (str, os.PathLike)) or not os.fspath(path_or_url):
        raise ValidationError({"path_or_url": ["Must be a file path or a database URL."]})
    target = os.fspath(path_or_url)
    if "://" not in target:
        _create_private_file(target)
        return peewee.SqliteDatabase(target, pragmas=_merged(pragmas))
    scheme = urlparse(target).scheme
    if scheme.startswith("sqlite"):
        _create_private_file(urlparse(target).path[1:])
        return db_url.connect(target, pragmas=_merged(pragmas))
    if scheme.startswith("postgres"):
        return db_url.connect(target, unquote_user=True, unquote_password=True)
    raise ValidationError({"path_or_url": ["Unsupported database URL scheme %r." % scheme]})


def redact(url: str) -> str:
    """A database URL fit for a message or a log: its password replaced by ***.

    redact("postgresql://loom:s3cret@db/loom")   # 'postgresql://loom:***@db/loom'
    """
    parts = urlparse(url)
    if parts.password is None:
        return url
    credentials, host = parts.netloc.rsplit("@", 1)
    return parts._replace(netloc="%s:***@%s" % (credentials.split(":", 1)[0], host)).geturl()


def describe(database: peewee.Database) -> str:
    """Where a database is, without its credentials: a path, or database@host."""
    if is_sqlite(database):
        return database.database
    return "%s@%s" % (database.database, database.connect_params.get("host", "localhost"))


def is_sqlite(database: peewee.Database) -> TypeGuard[peewee.SqliteDatabase]:
    return isinstance(database, peewee.SqliteDatabase)


def require_sqlite(database: peewee.Database, operation: str) -> peewee.SqliteDatabase:
    """The database, if SQLite; NotImplementedError naming the backend for an operation that is SQLite's own."""
    if not is_sqlite(database):
        raise NotImplementedError("%s is SQLite's own; this database is %s" % (operation, type(database).__name__))
    return database


def check_pragmas(database: peewee.Database) -> dict:
    """The values in force on this thread's connection, as SQLite reports them.

    check_pragmas(db)["journal_mode"]   # 'wal'
    """
    sqlite = require_sqlite(database, "check_pragmas")
    return {name: sqlite.pragma(name) for name in DEFAULT_PRAGMAS}


def _merged(pragmas: dict | None) -> dict:
    overrides = pragmas or {}
    # Pragmas of the file format (page_size, auto_vacuum) only take on a new file,
    # and switching to WAL writes one: those not in the defaults go first.
    extra = {name: value for name, value in overrides.items() if name not in DEFAULT_PRAGMAS}
    return {**extra, **DEFAULT_PRAGMAS, **overrides}


def _create_private_file(path: str) -> None:
    # SQLite gives its -wal and -shm files the mode of the database file, so
    # creating the file 0600 keeps all three private.
    if path and path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))

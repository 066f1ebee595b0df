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
import re
from typing import TypeGuard
from urllib.parse import ParseResult, urlparse

import peewee
from playhouse import db_url

from .errors import NotWritableError, ValidationError, unwritable_files

# user:password@ in the authority of a URL; the password runs to the last @ before the path.
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^/]*@")

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
        create_private_file(target)
        return peewee.SqliteDatabase(target, pragmas=_merged(pragmas))
    url = _checked_url(target)
    if url.scheme.startswith("sqlite"):
        create_private_file(url.path[1:])
        return db_url.connect(target, pragmas=_merged(pragmas))
    return db_url.connect(target, unquote_user=True, unquote_password=True)


def _checked_url(url: str) -> ParseResult:
    """The parts of a database URL we can open; ValidationError, never naming the password, if not."""
    try:
        parts = urlparse(url)
        parts.port  # noqa: B018 - parsing the port is what checks it
    except ValueError as error:  # a port out of range or not a number, a broken IPv6 host
        raise ValidationError({"path_or_url": ["Not a valid database URL: %s." % error]}) from None
    if parts.scheme.startswith("sqlite"):
        if parts.netloc or len(parts.path) < 2:
            raise ValidationError({"path_or_url": ["A SQLite URL is sqlite:///relative.db or sqlite:////absolute.db."]})
    elif not parts.scheme.startswith("postgres"):
        raise ValidationError({"path_or_url": ["Unsupported database URL scheme %r." % parts.scheme]})
    elif len(parts.path) < 2:
        raise ValidationError({"path_or_url": ["A PostgreSQL URL names its database: postgresql://user@host/db."]})
    return parts


def redact(url: str) -> str:
    """A database URL fit for a message or a log: its password replaced by ***.

    redact("postgresql://loom:s3cret@db/loom")   # 'postgresql://loom:***@db/loom'

    Text only, so that even a URL that does not parse is shown without its password.
    """
    return _PASSWORD.sub(r"\1:***@", url, count=1)


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


def check_writable(database: peewee.Database) -> None:
    """NotWritableError naming each file of a SQLite database (or their directory) that cannot be written.

    check_writable(open_database("./loom-data/sessions.db"))

    Every connection needs to write the -shm file, readers too: a store whose
    files this process cannot write fails on its first write, or at once.
    """
    if is_sqlite(database) and database.database not in ("", ":memory:"):
        unwritable = unwritable_files(database.database)
        if unwritable:
            raise NotWritableError(
                "cannot write %s: permission denied; the store's files and their directory must be"
                " writable by the user it runs as" % " or ".join(unwritable)
            )


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


def create_private_file(path: str) -> None:
    """Create `path` (mode 0600) unless it exists.

    SQLite gives its -wal and -shm files the mode of the database file, so a
    database created this way keeps all three private.
    """
    if path and path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))

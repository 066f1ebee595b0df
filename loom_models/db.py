"""Opening databases: one pragma dict for SQLite, a URL for anything else.

    db = open_database("./loom-data/sessions.db")          # SqliteDatabase, DEFAULT_PRAGMAS
    db = open_database("sqlite:////srv/loom/sessions.db")   # the same, through playhouse.db_url
    db = open_database("postgresql://loom@127.0.0.1:5432/loom")
    check_pragmas(db)   # {'journal_mode': 'wal', 'foreign_keys': 1, ...}

peewee applies the pragmas to every new connection, and connections are per thread,
so each thread's connection runs with the same settings.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable
from typing import TypeGuard, TypeVar
from urllib.parse import ParseResult, urlparse

import peewee
from playhouse import db_url

from .calls import storage_call
from .errors import NotWritableError, ValidationError, translate

T = TypeVar("T")

# user:password@ at the start of a URL. The password runs to the last @: one
# with an unescaped / ? or # in it is hidden too (and a host with it, rarely).
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):.*@")
_NOT_A_URL = (
    "Not a valid database URL: a port is a number from 0 to 65535, an IPv6 host is in brackets,"
    " and / ? # @ : in a user name or password are %-encoded."
)

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


@storage_call
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
        _create_database_file(target, _merged(pragmas))
        return peewee.SqliteDatabase(target, pragmas=_merged(pragmas))
    url = _checked_url(target)
    if url.scheme.startswith("sqlite"):
        _create_database_file(url.path[1:], _merged(pragmas))
        return db_url.connect(target, pragmas=_merged(pragmas))
    return db_url.connect(target, unquote_user=True, unquote_password=True)


def _checked_url(url: str) -> ParseResult:
    """The parts of a database URL we can open; ValidationError, never naming the password, if not."""
    try:
        parts = urlparse(url)
        parts.port  # noqa: B018 - parsing the port is what checks it
    except ValueError:  # its message may quote a password that has a / in it
        raise ValidationError({"path_or_url": [_NOT_A_URL]}) from None
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


def _create_database_file(path: str, pragmas: dict) -> None:
    """Create a new database file (0600) and switch it to WAL; several processes may do so at once.

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

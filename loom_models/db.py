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
from urllib.parse import ParseResult, urlparse

import peewee
from playhouse import db_url
from playhouse.pool import PooledSqliteDatabase

from .backends import backend_of, sqlite
from .calls import storage_call
from .errors import ValidationError
from .pool import PostgresPool
from .validation import check_positive

# user:password@ at the start of a URL. The password runs to the last @: one
# with an unescaped / ? or # in it is hidden too (and a host with it, rarely).
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):.*@")
_NOT_A_URL = (
    "Not a valid database URL: a port is a number from 0 to 65535, an IPv6 host is in brackets,"
    " and / ? # @ : in a user name or password are %-encoded."
)

# Applied in this order on every SQLite connection (backends/sqlite.py says why).
DEFAULT_PRAGMAS = sqlite.PRAGMAS
# A pooled connection goes from thread to thread; the threads that use the pool bound its size.
_POOLED_SQLITE = {"check_same_thread": False, "max_connections": None}


@storage_call
def open_database(
    path_or_url: str | os.PathLike, pragmas: dict | None = None, *, pooled: bool = False, pool_size: int | None = None
) -> peewee.Database:
    """A peewee database for a file path or a database URL.

    `pragmas` override single entries of DEFAULT_PRAGMAS (SQLite only; they are
    never passed to PostgreSQL):

        open_database("/tmp/x.db", pragmas={"busy_timeout": 100})

    `pooled`, or a `+pool` URL: connections are pooled (playhouse.pool, as
    many as threads ask for at once; pool.PostgresPool on PostgreSQL) and any
    thread may take one: `database.close()` gives a thread's back, and
    `database.close_all()` closes them all. `pool_size`, or a PostgreSQL URL's
    `?pool_size=N`: at most N connections, which threads wait for.
    """
    if not isinstance(path_or_url, (str, os.PathLike)) or not os.fspath(path_or_url):
        raise ValidationError({"path_or_url": ["Must be a file path or a database URL."]})
    target, merged = os.fspath(path_or_url), _merged(pragmas)
    if "://" not in target:
        sqlite.create_file(target, merged)
        if pooled:
            return PooledSqliteDatabase(target, pragmas=merged, **_POOLED_SQLITE)
        return peewee.SqliteDatabase(target, pragmas=merged)
    url = _checked_url(target)
    params = db_url.parse(target, unquote_password=True, unquote_user=True)
    pool_size = params.pop("pool_size", None) if pool_size is None else pool_size
    pooled = pooled or url.scheme.endswith("+pool")
    if url.scheme.startswith("sqlite"):
        if pool_size is not None:
            raise ValidationError({"pool_size": ["Is for a PostgreSQL database URL."]})
        sqlite.create_file(url.path[1:], merged)
        if pooled and not url.scheme.endswith("+pool"):
            target = url.scheme + "+pool" + target[len(url.scheme) :]
        return db_url.connect(target, pragmas=merged, **(_POOLED_SQLITE if pooled else {}))
    if pool_size is not None or pooled:
        bound = params.pop("max_connections", None)  # playhouse's own name for it, in a +pool URL
        size = pool_size if pool_size is not None else bound
        size = None if size is None else check_positive(size, "pool_size")
        return PostgresPool(params.pop("database"), max_connections=size, **params)
    return db_url.connect(target, unquote_user=True, unquote_password=True)


def check_pragmas(database: peewee.Database) -> dict:
    """The values of DEFAULT_PRAGMAS in force on this thread's connection, as SQLite reports them.

    check_pragmas(db)["journal_mode"]   # 'wal'
    """
    return backend_of(database).pragmas()


def redact(url: str) -> str:
    """A database URL fit for a message or a log: its password replaced by ***.

    redact("postgresql://loom:s3cret@db/loom")   # 'postgresql://loom:***@db/loom'

    Text only, so that even a URL that does not parse is shown without its password.
    """
    return _PASSWORD.sub(r"\1:***@", url, count=1)


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


def _merged(pragmas: dict | None) -> dict:
    overrides = pragmas or {}
    # Pragmas of the file format (page_size, auto_vacuum) only take on a new file,
    # and switching to WAL writes one: those not in the defaults go first.
    extra = {name: value for name, value in overrides.items() if name not in DEFAULT_PRAGMAS}
    return {**extra, **DEFAULT_PRAGMAS, **overrides}

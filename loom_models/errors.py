"""The errors every repository call may raise, and the translation of driver errors.

    try:
        storage.sessions.load_session("sess_missing")
    except NotFoundError as error:
        print(error.code, error.http_status, error.grpc_code, error.retryable)
        # not_found 404 NOT_FOUND False

Every repository call translates what it meets below it (calls.py), so a peewee,
sqlite3 or psycopg exception never escapes one: it comes out as one of these
classes, with the driver's exception as `__cause__`. This module imports none of
the package's own.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import TypeVar

import marshmallow
import peewee
from playhouse.pool import MaxConnectionsExceeded

E = TypeVar("E", bound="LoomStorageError")

try:
    import psycopg2
except ImportError:  # the postgres extra is optional
    psycopg2 = None


class LoomStorageError(Exception):
    """Base class of every error a repository call raises.

    `advice`, when set, is what a person should do about this very error
    (loom-db prints it); else the class's advice applies.
    """

    code = "internal"
    http_status = 500
    grpc_code = "INTERNAL"
    retryable = False
    advice: str | None = None

    def advised(self: E, advice: str) -> E:
        """This error, with `advice` for a person: raise NotFoundError(...).advised("Check the id.")"""
        self.advice = advice
        return self


class NotFoundError(LoomStorageError):
    code, http_status, grpc_code = "not_found", 404, "NOT_FOUND"


class ValidationError(LoomStorageError):
    """Bad input; `messages` maps each field to its list of messages."""

    code, http_status, grpc_code = "invalid_argument", 400, "INVALID_ARGUMENT"

    def __init__(self, messages: dict):
        self.messages = messages
        super().__init__("invalid input: %s" % _describe(messages))


class ConflictError(LoomStorageError):
    code, http_status, grpc_code = "conflict", 409, "FAILED_PRECONDITION"


class ExpiredError(LoomStorageError):
    code, http_status, grpc_code = "expired", 410, "FAILED_PRECONDITION"


class RequestExpiredError(ExpiredError):
    pass


class ReferenceExpiredError(ExpiredError):
    pass


class DatabaseLockedError(LoomStorageError):
    code, http_status, grpc_code = "database_locked", 503, "UNAVAILABLE"
    retryable = True


class ForeignKeyConstraintError(LoomStorageError):
    code, http_status, grpc_code = "foreign_key_constraint", 400, "INVALID_ARGUMENT"


class DatabaseCorruptError(LoomStorageError):
    code, http_status, grpc_code = "database_corrupt", 500, "DATA_LOSS"


class DiskFullError(LoomStorageError):
    code, http_status, grpc_code = "disk_full", 507, "RESOURCE_EXHAUSTED"
    retryable = True


class SchemaMismatchError(LoomStorageError):
    code, http_status, grpc_code = "schema_mismatch", 500, "FAILED_PRECONDITION"


class DatabaseUnavailableError(LoomStorageError):
    """The database server cannot be reached or refuses the connection: worth a retry later."""

    code, http_status, grpc_code = "unavailable", 503, "UNAVAILABLE"
    retryable = True


class NotWritableError(LoomStorageError):
    """A database file, its -wal or -shm file, or their directory cannot be written."""

    code, http_status, grpc_code = "not_writable", 500, "FAILED_PRECONDITION"


def not_initialised(detail: str) -> SchemaMismatchError:
    """The error of a database that has no schema yet; `detail` says how that showed."""
    return SchemaMismatchError(
        "%s (database not initialised: `loom-db init`, or open_storage() with migrate=True, creates its schema)"
        % detail
    ).advised("Run `loom-db init` to create the schema.")


def _describe(messages: object) -> str:
    if isinstance(messages, dict):
        return "; ".join("%s: %s" % (k, _describe(v)) for k, v in messages.items())
    if isinstance(messages, (list, tuple)):
        return ", ".join(_describe(m) for m in messages)
    return str(messages)


# SQLite reports its result codes in the message text on every Python version
# (`sqlite_errorname` only exists from 3.11 on), so the text is what we match.
_SQLITE_MESSAGES = (
    ("database is locked", DatabaseLockedError),
    ("database table is locked", DatabaseLockedError),
    ("database schema is locked", DatabaseLockedError),
    ("foreign key constraint failed", ForeignKeyConstraintError),
    ("database disk image is malformed", DatabaseCorruptError),
    ("file is not a database", DatabaseCorruptError),
    ("malformed database schema", DatabaseCorruptError),
    ("database or disk is full", DiskFullError),
    ("unique constraint failed", ConflictError),
    ("not null constraint failed", ValidationError),
    ("check constraint failed", ValidationError),
    ("string or blob too big", ValidationError),
    ("attempt to write a readonly database", NotWritableError),
    ("no such table", SchemaMismatchError),
)

# SQLSTATE codes and classes (the first two characters) of PostgreSQL.
_POSTGRES_CODES = {
    "55P03": DatabaseLockedError,  # lock_not_available (lock_timeout)
    "40001": DatabaseLockedError,  # serialization_failure
    "40P01": DatabaseLockedError,  # deadlock_detected
    "57014": DatabaseLockedError,  # query_canceled (statement_timeout)
    "23503": ForeignKeyConstraintError,
    "23505": ConflictError,
    "53100": DiskFullError,
    "53300": DatabaseLockedError,  # too_many_connections: wait and retry
    "XX001": DatabaseCorruptError,  # data_corrupted
    "XX002": DatabaseCorruptError,  # index_corrupted
    "42P01": SchemaMismatchError,  # undefined_table
    "57P01": DatabaseUnavailableError,  # admin_shutdown
    "57P02": DatabaseUnavailableError,  # crash_shutdown
    "57P03": DatabaseUnavailableError,  # cannot_connect_now (starting up)
}
_POSTGRES_CLASSES = {"08": DatabaseUnavailableError, "22": ValidationError, "23": ValidationError}
# A connection refused for what the URL says carries no SQLSTATE either, but a
# retry cannot help it: the words libpq and the server use for those.
_POSTGRES_REFUSALS = (
    "authentication failed",
    "no password supplied",
    "does not exist",  # the database or the role
    "no pg_hba.conf entry",
    "invalid dsn",
    "invalid connection option",
    "invalid sslmode value",
    "invalid integer value",
)

# The errors that are about a database file: their messages name it.
_ABOUT_THE_FILE = (
    LoomStorageError,
    DatabaseCorruptError,
    DatabaseLockedError,
    DiskFullError,
    NotWritableError,
    SchemaMismatchError,
)

_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}

# What a repository call may meet below it: the drivers' errors, and the file
# system's when it creates a data directory or a backup.
DRIVER_ERRORS: tuple = (peewee.PeeweeException, sqlite3.Error, OSError, MaxConnectionsExceeded)
if psycopg2 is not None:
    DRIVER_ERRORS += (psycopg2.Error,)


def translate(error: BaseException, path: str | None = None) -> LoomStorageError:
    """The LoomStorageError that stands for a driver or validation `error`.

    `path` is the SQLite file the error came from, if known: an error about the
    file names it.
    """
    translated = _translated(_original(error), path)
    if path and type(translated) in _ABOUT_THE_FILE and path not in str(translated):
        located = type(translated)("%s (in %s)" % (translated, path))
        located.advice = translated.advice
        return located
    return translated


def _translated(error: BaseException, path: str | None) -> LoomStorageError:
    if isinstance(error, LoomStorageError):
        return error
    if isinstance(error, marshmallow.ValidationError):
        return ValidationError(error.normalized_messages())
    if isinstance(error, OSError):
        return _os_error(error)
    if isinstance(error, MaxConnectionsExceeded):  # a bounded pool's every connection stayed in use
        return DatabaseUnavailableError("no pooled connection came free in time: %s" % error)
    driver = _driver_error(error)
    sqlstate = getattr(driver, "pgcode", None) or getattr(driver, "sqlstate", None)
    cls: type[LoomStorageError] | None
    if sqlstate:
        cls = _POSTGRES_CODES.get(sqlstate) or _POSTGRES_CLASSES.get(sqlstate[:2])
    elif psycopg2 is not None and isinstance(driver, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        if any(refusal in str(driver) for refusal in _POSTGRES_REFUSALS):
            return LoomStorageError(" ".join(str(driver).split())).advised(
                "Check the URL: its user, password, database name and options."
            )
        cls = DatabaseUnavailableError  # no SQLSTATE: the connection failed or was lost
    else:
        text = str(driver).lower()
        cls = next((c for msg, c in _SQLITE_MESSAGES if msg in text), None)
    message = " ".join(str(driver).split())
    if cls is None and path and "unable to open database file" in message:
        return LoomStorageError("cannot open %s: %s" % (path, message))
    if cls is None:
        return LoomStorageError(message)
    if cls is ValidationError:
        return ValidationError({"_database": [message]})
    if cls is SchemaMismatchError:
        return not_initialised(message)
    if cls is NotWritableError and path:
        return _not_writable(path, message)
    return cls(message)


def _os_error(error: OSError) -> LoomStorageError:
    if error.errno in _DISK_FULL_ERRNOS:
        return DiskFullError(str(error))
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return NotWritableError(str(error))
    return LoomStorageError(str(error))


def _not_writable(path: str, message: str) -> NotWritableError:
    return NotWritableError("cannot write %s (or its -wal or -shm file, or their directory): %s" % (path, message))


def _driver_error(error: BaseException) -> BaseException:
    # peewee re-raises a driver exception as its own class, keeping the original
    # as `orig` or as the exception it was handling: the original carries the
    # SQLSTATE.
    while isinstance(error, peewee.PeeweeException):
        inner = getattr(error, "orig", None) or error.__context__
        if inner is None:
            break
        error = inner
    return error


def cause_of(error: BaseException) -> BaseException | None:
    """The driver's exception behind `error`: what its translation is raised from."""
    if isinstance(error, LoomStorageError):
        return error.__cause__
    return _driver_error(_original(error))


def _original(error: BaseException) -> BaseException:
    # On some errors (a full disk) SQLite rolls the transaction back itself; the
    # ROLLBACK that peewee then issues fails and would hide the error that mattered.
    hidden: BaseException | None = error
    while hidden is not None and "no transaction is active" in str(hidden):
        hidden = hidden.__context__
    return hidden or error

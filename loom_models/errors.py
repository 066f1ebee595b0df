"""The errors every repository call may raise, and the translation of driver errors.

    try:
        storage.sessions.load_session("sess_missing")
    except NotFoundError as error:
        print(error.code, error.http_status, error.grpc_code, error.retryable)
        # not_found 404 NOT_FOUND False

Repository methods are wrapped in `storage_call`, so a peewee, sqlite3 or psycopg
exception never escapes one: it comes out as one of these classes, with the driver's
exception as `__cause__`. The same decorator makes a public method's span when its
repository has a tracer (tracing.py), around the translation: a span records the
error the caller gets.
"""

from __future__ import annotations

import errno
import functools
import sqlite3
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import marshmallow
import peewee

from .tracing import traced

P = ParamSpec("P")
R = TypeVar("R")

try:
    import psycopg2
except ImportError:  # the postgres extra is optional
    psycopg2 = None


class LoomStorageError(Exception):
    """Base class of every error a repository call raises."""

    code = "internal"
    http_status = 500
    grpc_code = "INTERNAL"
    retryable = False


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
}
_POSTGRES_CLASSES = {"22": ValidationError, "23": ValidationError}

_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}

# What a repository call may meet below it: the drivers' errors, and the file
# system's when it creates a data directory or a backup.
_DRIVER_ERRORS: tuple = (peewee.PeeweeException, sqlite3.Error, OSError)
if psycopg2 is not None:
    _DRIVER_ERRORS += (psycopg2.Error,)


def translate(error: BaseException) -> LoomStorageError:
    """The LoomStorageError that stands for a driver or validation `error`."""
    if isinstance(error, LoomStorageError):
        return error
    if isinstance(error, marshmallow.ValidationError):
        return ValidationError(error.normalized_messages())
    if isinstance(error, OSError):
        return (DiskFullError if error.errno in _DISK_FULL_ERRNOS else LoomStorageError)(str(error))
    driver = _driver_error(error)
    sqlstate = getattr(driver, "pgcode", None) or getattr(driver, "sqlstate", None)
    cls: type[LoomStorageError] | None
    if sqlstate:
        cls = _POSTGRES_CODES.get(sqlstate) or _POSTGRES_CLASSES.get(sqlstate[:2])
    else:
        text = str(driver).lower()
        cls = next((c for msg, c in _SQLITE_MESSAGES if msg in text), None)
    if cls is None:
        return LoomStorageError(str(driver))
    if cls is ValidationError:
        return ValidationError({"_database": [str(driver).strip()]})
    return cls(str(driver).strip())


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


def _original(error: BaseException) -> BaseException:
    # On some errors (a full disk) SQLite rolls the transaction back itself; the
    # ROLLBACK that peewee then issues fails and would hide the error that mattered.
    hidden: BaseException | None = error
    while hidden is not None and "no transaction is active" in str(hidden):
        hidden = hidden.__context__
    return hidden or error


def storage_call(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate a repository method so that only LoomStorageErrors leave it, and in a span if traced."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (marshmallow.ValidationError, *_DRIVER_ERRORS) as error:
            error = _original(error)
            raise translate(error) from _driver_error(error)

    return traced(wrapper)

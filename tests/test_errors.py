"""The error table (README.md), and the translation of driver errors of both backends."""

import sqlite3
from pathlib import Path

import peewee
import pytest

import loom_models
from loom_models import calls, errors
from loom_models.sessions import SessionRepository

TABLE = [
    (errors.NotFoundError, "not_found", 404, "NOT_FOUND", False),
    (errors.ValidationError, "invalid_argument", 400, "INVALID_ARGUMENT", False),
    (errors.ConflictError, "conflict", 409, "FAILED_PRECONDITION", False),
    (errors.RequestExpiredError, "expired", 410, "FAILED_PRECONDITION", False),
    (errors.ReferenceExpiredError, "expired", 410, "FAILED_PRECONDITION", False),
    (errors.DatabaseLockedError, "database_locked", 503, "UNAVAILABLE", True),
    (errors.ForeignKeyConstraintError, "foreign_key_constraint", 400, "INVALID_ARGUMENT", False),
    (errors.DatabaseCorruptError, "database_corrupt", 500, "DATA_LOSS", False),
    (errors.DiskFullError, "disk_full", 507, "RESOURCE_EXHAUSTED", True),
    (errors.SchemaMismatchError, "schema_mismatch", 500, "FAILED_PRECONDITION", False),
    (errors.DatabaseUnavailableError, "unavailable", 503, "UNAVAILABLE", True),
    (errors.NotWritableError, "not_writable", 500, "FAILED_PRECONDITION", False),
]


@pytest.mark.parametrize("cls, code, http_status, grpc_code, retryable", TABLE)
def test_error_table(cls, code, http_status, grpc_code, retryable):
    assert issubclass(cls, errors.LoomStorageError)
    assert (cls.code, cls.http_status, cls.grpc_code, cls.retryable) == (code, http_status, grpc_code, retryable)


def test_validation_error_carries_field_messages():
    error = errors.ValidationError({"role": ["Must be one of: user."], "limit": ["Must be a positive integer."]})

    assert error.messages["role"] == ["Must be one of: user."]
    assert str(error) == "invalid input: role: Must be one of: user.; limit: Must be a positive integer."


@pytest.mark.parametrize(
    "message, expected",
    [
        ("database is locked", errors.DatabaseLockedError),
        ("database table is locked", errors.DatabaseLockedError),
        ("FOREIGN KEY constraint failed", errors.ForeignKeyConstraintError),
        ("database disk image is malformed", errors.DatabaseCorruptError),
        ("file is not a database", errors.DatabaseCorruptError),
        ("database or disk is full", errors.DiskFullError),
        ("UNIQUE constraint failed: sessions.id", errors.ConflictError),
        ("NOT NULL constraint failed: messages.role", errors.ValidationError),
        ("no such table: sessions", errors.SchemaMismatchError),
        ("attempt to write a readonly database", errors.NotWritableError),
        ("disk I/O error", errors.LoomStorageError),
    ],
)
def test_sqlite_errors_as_peewee_raises_them(message, expected):
    driver = sqlite3.OperationalError(message)
    wrapped = peewee.OperationalError(driver, *driver.args)

    translated = errors.translate(wrapped)

    assert type(translated) is expected
    assert message in str(translated)


class FakePostgresError(Exception):
    def __init__(self, pgcode):
        super().__init__("postgres says %s" % pgcode)
        self.pgcode = pgcode


@pytest.mark.parametrize(
    "sqlstate, expected",
    [
        ("55P03", errors.DatabaseLockedError),
        ("40001", errors.DatabaseLockedError),
        ("40P01", errors.DatabaseLockedError),
        ("23503", errors.ForeignKeyConstraintError),
        ("23505", errors.ConflictError),
        ("23502", errors.ValidationError),
        ("22P05", errors.ValidationError),
        ("53100", errors.DiskFullError),
        ("53300", errors.DatabaseLockedError),
        ("53200", errors.LoomStorageError),
        ("XX001", errors.DatabaseCorruptError),
        ("42P01", errors.SchemaMismatchError),
        ("08006", errors.DatabaseUnavailableError),
        ("57P01", errors.DatabaseUnavailableError),
        ("42703", errors.LoomStorageError),
    ],
)
def test_postgres_errors_by_sqlstate(sqlstate, expected):
    # psycopg2 raises as peewee handles it; peewee re-raises with the text only.
    try:
        try:
            raise FakePostgresError(sqlstate)
        except FakePostgresError as driver:
            raise peewee.DatabaseError(str(driver))  # noqa: B904 - as peewee does: the driver's error is the context
    except peewee.DatabaseError as wrapped:
        assert type(errors.translate(wrapped)) is expected


def test_a_connection_that_fails_without_a_sqlstate_is_unavailable():
    psycopg2 = pytest.importorskip("psycopg2")
    lost = psycopg2.InterfaceError("connection already closed")
    for driver in (psycopg2.OperationalError("connection refused"), lost):
        wrapped = peewee.OperationalError("wrapped")
        wrapped.__context__ = driver  # as peewee re-raises the driver's error
        translated = errors.translate(wrapped)
        assert type(translated) is errors.DatabaseUnavailableError and translated.retryable
    refused = psycopg2.OperationalError('FATAL:  password authentication failed for user "loom"')
    wrapped = peewee.OperationalError("wrapped")
    wrapped.__context__ = refused
    assert type(errors.translate(wrapped)) is errors.LoomStorageError and not errors.translate(wrapped).retryable


def test_storage_call_keeps_the_driver_error_as_cause():
    driver = sqlite3.OperationalError("database is locked")

    @calls.storage_call
    def locked():
        raise peewee.OperationalError(driver, *driver.args)

    with pytest.raises(errors.DatabaseLockedError) as caught:
        locked()
    assert caught.value.__cause__ is driver
    assert caught.value.retryable


def test_a_file_that_is_not_a_database_is_corrupt(tmp_path):
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is no SQLite database, just text " * 200)

    with pytest.raises(errors.DatabaseCorruptError) as caught:
        SessionRepository.open(path)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_os_errors_are_translated():
    assert type(errors.translate(OSError(28, "No space left on device"))) is errors.DiskFullError
    assert type(errors.translate(FileNotFoundError(2, "No such file"))) is errors.LoomStorageError


def test_opening_what_cannot_be_opened(tmp_path):
    with pytest.raises(errors.LoomStorageError) as caught:
        SessionRepository.open(tmp_path / "missing" / "sessions.db")
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    for target in (None, "", 42, "mysqlx://host/db"):
        with pytest.raises(errors.ValidationError):
            SessionRepository.open(target)


def test_the_readme_tables_every_error_class_with_its_codes():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in readme.splitlines() if line.startswith("| `")}
    for name in loom_models.__all__:
        cls = getattr(loom_models, name)
        if isinstance(cls, type) and issubclass(cls, errors.LoomStorageError):
            (row,) = [line for first, line in rows.items() if "`%s`" % name in first]
            cells = [cell.strip() for cell in row.split("|")[2:6]]
            assert cells == [cls.code, str(cls.http_status), cls.grpc_code, "yes" if cls.retryable else "no"], name

"""The database layer: one pragma dict on every connection, paths and URLs."""

import contextlib
import os
import sqlite3
import stat
import threading

import peewee
import pytest

from loom_models import DatabaseLockedError
from loom_models.db import check_pragmas, open_database

# The pragmas of the contract, as SQLite reports them in force.
IN_FORCE = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": 1,
    "cache_size": 10000,
    "busy_timeout": 5000,
    "temp_store": 2,
    "mmap_size": 268435456,
    "automatic_index": 1,
}


def test_a_path_opens_sqlite_with_every_pragma(tmp_path):
    database = open_database(tmp_path / "x.db")

    assert type(database) is peewee.SqliteDatabase
    assert check_pragmas(database) == IN_FORCE


def test_pragmas_are_in_force_on_a_second_threads_connection(tmp_path):
    database = open_database(str(tmp_path / "x.db"))
    database.connect()
    seen = {}

    def read():
        seen.update(check_pragmas(database))
        seen["connection"] = database.connection()
        database.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()

    assert seen.pop("connection") is not database.connection()
    assert seen == IN_FORCE


def test_a_sqlite_url_gets_the_pragmas_too(tmp_path):
    database = open_database("sqlite:///%s" % (tmp_path / "x.db"))

    assert type(database) is peewee.SqliteDatabase
    assert check_pragmas(database) == IN_FORCE


def test_pragmas_override_single_entries(tmp_path):
    database = open_database(tmp_path / "x.db", pragmas={"busy_timeout": 100})

    assert check_pragmas(database) == {**IN_FORCE, "busy_timeout": 100}


def test_a_postgres_url_gets_no_pragmas():
    database = open_database("postgresql://loom:p%40ss@127.0.0.1:5432/loom?connect_timeout=5")

    assert isinstance(database, peewee.PostgresqlDatabase)
    assert database.connect_params == {
        "user": "loom",
        "password": "p@ss",
        "host": "127.0.0.1",
        "port": 5432,
        "connect_timeout": 5,
    }
    with pytest.raises(NotImplementedError, match="PostgresqlDatabase"):
        check_pragmas(database)


def test_a_new_database_file_is_private(tmp_path):
    database = open_database(tmp_path / "x.db")
    database.execute_sql("CREATE TABLE t (x)")

    for name in ("x.db", "x.db-wal", "x.db-shm"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name


def test_a_new_file_waits_for_another_process_switching_it_to_wal(tmp_path):
    # SQLite answers a second switch to WAL with SQLITE_BUSY at once, whatever the
    # busy timeout: here, another connection holds the write lock of the new file
    # for a moment, as a process switching it at the same instant does.
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, holder.execute, ["ROLLBACK"])
    release.start()
    try:
        database = open_database(path)
        assert database.pragma("journal_mode") == "wal"
        database.execute_sql("CREATE TABLE t (x)")
    finally:
        release.join()
        holder.close()
    assert database.pragma("journal_mode") == "wal"
    database.close()


def test_a_new_file_locked_for_longer_than_the_busy_timeout_is_locked(tmp_path):
    path = tmp_path / "new.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseLockedError, match="locked .*new.db"):
            open_database(path, pragmas={"busy_timeout": 100})
        holder.execute("ROLLBACK")

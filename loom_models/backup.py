"""Backups that are consistent while the store is in use, verified, and restorable.

    backup(db, "/backups/sessions.db")                      # the verified copy's path
    backup_data_dir("./loom-data", "/backups", keep_days=7) # every database, old copies pruned
    restore("/backups/sessions-20261126T120000Z.db", "./loom-data/sessions.db")
    dump_sql(db, "sessions.sql"); load_sql("sessions.sql", "/tmp/copy.db")

Copies go through SQLite's online backup API, reading one snapshot while writers
go on (a file copy of a WAL database misses what is still in the -wal file).
Nothing is left looking like a backup unless its integrity check passed: each
copy is written to a temporary file beside its destination and renamed into place.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import re
import sqlite3
import struct
import tempfile
from collections.abc import Callable

import peewee

from .db import require_sqlite
from .errors import ConflictError, DatabaseCorruptError, NotFoundError, ValidationError, storage_call

DATABASE_FILES = ("sessions.db", "hitl.db", "references.db")
_STAMP = "%Y%m%dT%H%M%SZ"
_STEP_PAGES = 1024

# SQLite's unix VFS keeps a shared lock on this byte of the -shm file for as long
# as a connection has the database open (its "dead man switch").
_SHM_OPEN_BYTE = 128

Path = str | os.PathLike
Progress = Callable[[int, int], object]  # progress(remaining_pages, total_pages)


@storage_call
def backup(database: peewee.Database, destination: Path, progress: Progress | None = None) -> str:
    """Copy a SQLite database to `destination`, verify the copy, and return its path.

    `progress(remaining_pages, total_pages)` is called as the copy advances.

        backup(open_database("./loom-data/sessions.db"), "/backups/sessions.db")
    """
    require_sqlite(database, "backup")
    return _install(_staged_copy(database.database, os.fspath(destination), progress), os.fspath(destination))


@storage_call
def backup_data_dir(
    data_dir: Path, backup_dir: Path, keep_days: int = 7, progress: Progress | None = None
) -> list[str]:
    """Back up each database of a data directory to `<name>-<UTC time>.db`; prune older ones.

    `progress(remaining_pages, total_pages)` follows each database's copy in turn.

        backup_data_dir("./loom-data", "/backups", keep_days=14)
    """
    data_dir, backup_dir = os.fspath(data_dir), os.fspath(backup_dir)
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    written = []
    for name in DATABASE_FILES:
        source = os.path.join(data_dir, name)
        if os.path.exists(source):
            target = os.path.join(backup_dir, "%s-%s.db" % (name[:-3], now.strftime(_STAMP)))
            written.append(_install(_staged_copy(source, target, progress), target))
    _prune(backup_dir, now - datetime.timedelta(days=keep_days), keep=written)
    return written


@storage_call
def restore(backup_file: Path, database_path: Path, progress: Progress | None = None) -> None:
    """Replace a database that nobody has open with a verified backup of it, atomically.

    `progress(remaining_pages, total_pages)` follows the copy.

        restore("/backups/sessions-20261126T120000Z.db", "./loom-data/sessions.db")
    """
    backup_file, database_path = os.fspath(backup_file), os.fspath(database_path)
    if not os.path.exists(backup_file):
        raise NotFoundError("backup not found: %s" % backup_file)
    _refuse_if_open(database_path)
    try:
        staged = _staged_copy(backup_file, database_path, progress)
    except (sqlite3.DatabaseError, DatabaseCorruptError) as error:
        raise DatabaseCorruptError(
            "backup %s is not a usable database (%s); choose another backup" % (backup_file, error)
        ) from error
    try:
        _check_same_kind(staged, database_path)
        _refuse_if_open(database_path)  # again: the copy took a while
    except BaseException:
        os.remove(staged)
        raise
    _install(staged, database_path)


# The table that tells which domain a database file holds.
_DOMAIN_TABLES = ("sessions", "human_requests", "reference_store")


@storage_call
def dump_sql(database: peewee.Database, path: Path) -> str:
    """Write the database as SQL text (schema and rows), one snapshot, to `path`.

    dump_sql(db, "sessions.sql")
    """
    require_sqlite(database, "dump_sql")
    path = os.fspath(path)
    with contextlib.closing(sqlite3.connect(database.database, isolation_level=None)) as source:
        source.execute("BEGIN")  # one snapshot for every table, while writers go on
        virtual = dict(source.execute("SELECT name, sql FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%'"))
        skipped = tuple('INSERT INTO "%s"' % name for name in virtual)
        with open(path, "w") as out:
            for statement in source.iterdump():
                # A virtual table's rows live in its shadow tables, which are dumped.
                if not statement.startswith(skipped):
                    out.write(_as_schema_entry(statement, virtual) + "\n")
        source.execute("COMMIT")
    return path


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
    staged = _temporary_beside(database_path)
    try:
        with contextlib.closing(sqlite3.connect(staged, isolation_level=None)) as target:
            target.executescript(script)
            problems = [row[0] for row in target.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"]
        if problems:
            raise DatabaseCorruptError("the database loaded from %s fails its check: %s" % (path, problems[0]))
        _install(staged, database_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staged)
        raise


def _refuse_if_open(database_path: str) -> None:
    if _open_elsewhere(database_path):
        raise ConflictError("database is open: %s; stop the processes using it, then restore" % database_path)


def _check_same_kind(staged: str, database_path: str) -> None:
    """A backup replaces only a database that holds what it holds (sessions, requests...)."""
    if not os.path.exists(database_path):
        return
    wanted = set(_DOMAIN_TABLES) & _tables(database_path)
    missing = wanted - _tables(staged)
    if missing:
        raise ConflictError(
            "the backup holds no %s table, which %s has: it is a backup of another database"
            % (", ".join(sorted(missing)), database_path)
        )


def _tables(path: str) -> set:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _staged_copy(source_path: str, destination: str, progress: Progress | None) -> str:
    """A verified copy of the database at `source_path`, in a temporary file beside `destination`."""
    staged = _temporary_beside(destination)
    try:
        with contextlib.closing(sqlite3.connect(source_path, isolation_level=None)) as source:
            # A read transaction held across the steps is one snapshot: writers
            # go on in the WAL, and the copy does not restart when they commit.
            source.execute("BEGIN")
            source.execute("SELECT count(*) FROM sqlite_master").fetchone()
            with contextlib.closing(sqlite3.connect(staged)) as copy:
                source.backup(copy, pages=_STEP_PAGES, progress=_reporter(progress))
                problems = [row[0] for row in copy.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"]
            source.execute("COMMIT")
        if problems:
            raise DatabaseCorruptError("copy of %s failed its integrity check: %s" % (source_path, problems[0]))
    except BaseException:
        os.remove(staged)
        raise
    return staged


def _install(staged: str, destination: str) -> str:
    """Rename a verified copy into place, durably, with no old WAL left beside it."""
    _fsync(staged)
    # The old WAL belongs to the old file: replayed over the new one it would corrupt it.
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(destination + suffix)
    os.replace(staged, destination)
    _fsync(os.path.dirname(os.path.abspath(destination)))
    return destination


def _fsync(path: str) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _temporary_beside(path: str) -> str:
    directory, name = os.path.split(os.path.abspath(path))
    handle, staged = tempfile.mkstemp(prefix=".%s." % name, suffix=".tmp", dir=directory)  # 0600
    os.close(handle)
    return staged


def _reporter(progress: Progress | None) -> Callable[[int, int, int], object] | None:
    if progress is None:
        return None
    return lambda status, remaining, total: progress(remaining, total)


def _prune(backup_dir: str, cutoff: datetime.datetime, keep: list[str]) -> None:
    pattern = re.compile(r"(?:%s)-(\d{8}T\d{6}Z)\.db$" % "|".join(n[:-3] for n in DATABASE_FILES))
    kept = {os.path.basename(path) for path in keep}  # just written, whatever keep_days says
    for name in os.listdir(backup_dir):
        match = pattern.match(name)
        if match and name not in kept:
            taken = datetime.datetime.strptime(match.group(1), _STAMP).replace(tzinfo=datetime.timezone.utc)
            if taken < cutoff:
                os.remove(os.path.join(backup_dir, name))


def _open_elsewhere(database_path: str) -> bool:
    """Whether any connection, in this process or another, has the database open.

    Linux only (open-file-description locks); elsewhere this cannot tell, and says no.
    """
    shm = database_path + "-shm"
    if not os.path.exists(shm) or not hasattr(fcntl, "F_OFD_SETLK"):
        return False
    with open(shm, "rb+") as handle:
        # An open-file-description lock conflicts with every other lock on the
        # byte, this process's own included, and releasing it disturbs none.
        try:
            fcntl.fcntl(handle, fcntl.F_OFD_SETLK, _flock(fcntl.F_WRLCK))
        except OSError:
            return True
        fcntl.fcntl(handle, fcntl.F_OFD_SETLK, _flock(fcntl.F_UNLCK))
        return False


def _flock(kind: int) -> bytes:
    # Linux's struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks).
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, _SHM_OPEN_BYTE, 1, 0)

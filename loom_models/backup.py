"""Backups that are consistent while the store is in use, verified, and restorable.

    backup(db, "/backups/sessions.db")                       # one database: the verified copy's path
    run = backup_set("./loom-data", "/backups", keep_days=7) # every database as one set; older sets pruned
    run.directory, run.written, run.failed, run.pruned
    restore("/backups/loom-20261126T120000Z/sessions.db", "./loom-data/sessions.db")
    restore_set("/backups/loom-20261126T120000Z", "./loom-data")   # every database, or none
    safety_copy("./loom-data/sessions.db", "pre-migrate")   # a verified copy beside the database
    dump_sql(db, "sessions.sql"); load_sql("sessions.sql", "/tmp/copy.db")

Copies go through SQLite's online backup API, reading one snapshot while writers
go on (a file copy of a WAL database misses what is still in the -wal file).
Nothing is left looking like a backup unless its integrity check passed, and
nothing of an interrupted copy is left at all: each copy is written to a
temporary file and renamed into place once verified. A set is a directory,
loom-<UTC time>, written under a temporary name and renamed once every copy in
it is verified; a run that could not copy every database names its set
loom-<UTC time>.incomplete, and its manifest says what is missing and why.
Before a restore replaces a database, a verified copy of it is kept beside it.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterator

import peewee

from .backends import backend_of
from .backends.sqlite import create_private_file
from .backends.sqlite import safety_copies as safety_copies  # beside safety_copy, which makes them
from .calls import storage_call
from .errors import (
    ConflictError,
    DatabaseCorruptError,
    LoomStorageError,
    NotFoundError,
    ValidationError,
    translate,
)

logger = logging.getLogger(__name__)

DATABASE_FILES = ("sessions.db", "hitl.db", "references.db")
MANIFEST = "manifest.json"
SET_PREFIX = "loom-"
INCOMPLETE = ".incomplete"
MAX_KEEP_DAYS = 36500  # a century: any more is a typo
_STAMP = "%Y%m%dT%H%M%SZ"
_STEP_PAGES = 1024
# A backup set, and the single-file backups of earlier versions.
_SET = re.compile(r"%s(\d{8}T\d{6}Z)(?:-\d+)?(?:%s)?$" % (SET_PREFIX, re.escape(INCOMPLETE)))
_SINGLE = re.compile(r"(?:%s)-(\d{8}T\d{6}Z)\.db$" % "|".join(n[:-3] for n in DATABASE_FILES))

# SQLite's unix VFS keeps a shared lock on this byte of the -shm file for as long
# as a connection has the database open (its "dead man switch").
_SHM_OPEN_BYTE = 128

Path = str | os.PathLike
Progress = Callable[[int, int], object]  # progress(remaining_pages, total_pages)


class BackupRun(collections.namedtuple("BackupRun", "directory written failed pruned")):
    """A backup_set run: the set's directory, the files written, {file name: the error} of
    the databases it could not copy, and the older backups it deleted."""

    def error(self) -> LoomStorageError | None:
        """The error to raise for the databases not copied, saying where the others are; None if none."""
        if not self.failed:
            return None
        problems = "; ".join(map(str, self.failed.values()))
        first = next(iter(self.failed.values()))
        return type(first)("could not back up %s; the other databases are saved in %s" % (problems, self.directory))


@storage_call
def backup(database: peewee.Database, destination: Path, progress: Progress | None = None) -> str:
    """Copy a SQLite database to `destination`, verify the copy, and return its path.

    `progress(remaining_pages, total_pages)` is called as the copy advances.

        backup(open_database("./loom-data/sessions.db"), "/backups/sessions.db")
    """
    source = backend_of(database).file("backup")
    return _install(_staged_copy(source, os.fspath(destination), progress), os.fspath(destination))


@storage_call
def backup_set(data_dir: Path, backup_dir: Path, keep_days: int = 7, progress: Progress | None = None) -> BackupRun:
    """Back up every database of a data directory into one new set; then delete older backups.

        run = backup_set("./loom-data", "/backups", keep_days=14)

    A damaged database does not stop the others: they are copied (and verified),
    and the set is named incomplete. Older backups (sets, and single files of
    earlier versions) are deleted only after a complete run, and only those
    older than `keep_days`; `progress` follows each database's copy in turn.
    """
    keep_days = _checked_keep_days(keep_days)
    data_dir, backup_dir = os.fspath(data_dir), os.fspath(backup_dir)
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    staging = tempfile.mkdtemp(prefix=".%s%s." % (SET_PREFIX, now.strftime(_STAMP)), suffix=".tmp", dir=backup_dir)
    try:
        copied, failed = _copy_databases(data_dir, staging, progress)
        if not copied:
            raise next(iter(failed.values()))
        _write_manifest(staging, now, data_dir, copied, failed)
        directory = _install_set(staging, backup_dir, now.strftime(_STAMP), INCOMPLETE if failed else "")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pruned = [] if failed else prune_backups(backup_dir, keep_days, keep=directory)
    return BackupRun(directory, [os.path.join(directory, name) for name in copied], failed, pruned)


@storage_call
def backup_data_dir(
    data_dir: Path, backup_dir: Path, keep_days: int = 7, progress: Progress | None = None
) -> list[str]:
    """backup_set, for a caller that wants the files written, or an error naming what could not be copied.

    backup_data_dir("./loom-data", "/backups", keep_days=14)
    """
    run = backup_set(data_dir, backup_dir, keep_days, progress)
    error = run.error()
    if error is not None:
        raise error
    return run.written


@storage_call
def prune_backups(backup_dir: Path, keep_days: int, keep: str | None = None) -> list[str]:
    """Delete the backups in `backup_dir` taken more than `keep_days` ago (never `keep`); their paths.

        prune_backups("/backups", 7)   # ['/backups/loom-20261101T000000Z', ...]

    Each deletion is logged. Files of other kinds in the directory are never touched.
    """
    backup_dir = os.fspath(backup_dir)
    cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=_checked_keep_days(keep_days))
    pruned = []
    for name in sorted(os.listdir(backup_dir)):
        path = os.path.join(backup_dir, name)
        taken = _taken_at(name, os.path.isdir(path))
        if taken is not None and taken < cutoff and path != keep:
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            logger.info("loom_models: deleted backup %s, taken %s", path, taken.isoformat())
            pruned.append(path)
    return pruned


def _taken_at(name: str, is_dir: bool) -> datetime.datetime | None:
    match = (_SET if is_dir else _SINGLE).match(name)
    if match is None:
        return None
    return datetime.datetime.strptime(match.group(1), _STAMP).replace(tzinfo=datetime.timezone.utc)


def _checked_keep_days(keep_days: object) -> int:
    if isinstance(keep_days, bool) or not isinstance(keep_days, int) or not 0 <= keep_days <= MAX_KEEP_DAYS:
        raise ValidationError({"keep_days": ["Must be a whole number of days from 0 to %d." % MAX_KEEP_DAYS]})
    return keep_days


def _copy_databases(data_dir: str, staging: str, progress: Progress | None) -> tuple[list[str], dict]:
    """Verified copies of each database into `staging`: the names copied, {name: error} of the others.

    A database that cannot be read, or is damaged, is left out and the others
    go on; a copy that cannot be written (a full disk...) ends the run.
    """
    copied, failed = [], {}
    for name in DATABASE_FILES:
        source, target = os.path.join(data_dir, name), os.path.join(staging, name)
        try:
            _check_readable(source)
        except (LoomStorageError, sqlite3.Error) as error:
            failed[name] = translate(error, source)
            continue
        try:
            create_private_file(target)
            _copy_verified(source, target, progress)
            copied.append(name)
        except (LoomStorageError, sqlite3.Error) as error:
            _discard(target)  # no file of that name in the set, not even an empty one
            if not isinstance(translate(error), DatabaseCorruptError):
                raise _failed_copy(error, "cannot write a backup set in %s" % os.path.dirname(staging)) from error
            failed[name] = _failed_copy(error, source)
    return copied, failed


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise NotFoundError("database not found: %s" % path)
    with contextlib.closing(sqlite3.connect(path)) as database:
        database.execute("SELECT count(*) FROM sqlite_master").fetchone()


def _write_manifest(staging: str, now: datetime.datetime, data_dir: str, copied: list, failed: dict) -> None:
    manifest = {
        "taken_at": now.isoformat(),
        "data_dir": os.path.abspath(data_dir),
        "databases": {name: _file_facts(os.path.join(staging, name)) for name in copied},
        "failed": {name: str(error) for name, error in failed.items()},
    }
    create_private_file(os.path.join(staging, MANIFEST))
    with open(os.path.join(staging, MANIFEST), "w") as out:
        json.dump(manifest, out, indent=2)


def _file_facts(path: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def _install_set(staging: str, backup_dir: str, stamp: str, suffix: str) -> str:
    """Rename a staged set into place, durably: loom-<stamp><suffix>, or loom-<stamp>-2<suffix>... if taken."""
    for name in os.listdir(staging):
        _fsync(os.path.join(staging, name))
    _fsync(staging)
    name, attempt = SET_PREFIX + stamp, 1
    while os.path.exists(os.path.join(backup_dir, name + suffix)):
        attempt += 1
        name = "%s%s-%d" % (SET_PREFIX, stamp, attempt)
    directory = os.path.join(backup_dir, name + suffix)
    os.rename(staging, directory)  # a rename, not a copy: the set appears whole or not at all
    _fsync(backup_dir)
    return directory


@storage_call
def restore(backup_file: Path, database_path: Path, progress: Progress | None = None) -> str | None:
    """Replace a database that nobody has open with a verified backup of it, atomically.

        kept = restore("/backups/loom-20261126T120000Z/sessions.db", "./loom-data/sessions.db")

    The database it replaces is kept beside it first (`safety_copy`, or as it
    is when it is too damaged to verify): its path is returned (None if there
    was none). `progress(remaining_pages, total_pages)` follows the copy.
    """
    backup_file, database_path = os.fspath(backup_file), os.fspath(database_path)
    if not os.path.exists(backup_file):
        raise NotFoundError("backup not found: %s" % backup_file)
    _refuse_if_open(database_path)
    staged = _staged_restore(backup_file, database_path, progress)
    try:
        _refuse_if_open(database_path)  # again: the copy took a while
        kept = _keep_current(database_path)
    except BaseException:
        _discard(staged)
        raise
    _install(staged, database_path)
    return kept


@storage_call
def restore_set(set_dir: Path, data_dir: Path, progress: Progress | None = None) -> dict[str, str | None]:
    """Restore every database of a backup set into a data directory nobody uses: all of them, or none.

        restore_set("/backups/loom-20261126T120000Z", "./loom-data")   # {'/.../sessions.db': kept copy, ...}

    The set must be complete and match its manifest. Each database replaced is
    kept beside itself first; the result maps each database to that copy.
    """
    set_dir, data_dir = os.fspath(set_dir), os.fspath(data_dir)
    names = _checked_set(set_dir)
    targets = {name: os.path.join(data_dir, name) for name in names}
    for target in targets.values():
        _refuse_if_open(target)
    staged: dict[str, str] = {}
    try:
        for name, target in targets.items():
            staged[name] = _staged_restore(os.path.join(set_dir, name), target, progress)
        for target in targets.values():
            _refuse_if_open(target)
        kept = {name: _keep_current(target) for name, target in targets.items()}
    except BaseException:
        for path in staged.values():
            _discard(path)
        raise
    _install_all(staged, targets, kept)
    return {targets[name]: kept[name] for name in names}


def _checked_set(set_dir: str) -> list[str]:
    """The databases of a complete backup set whose files match its manifest."""
    try:
        with open(os.path.join(set_dir, MANIFEST)) as handle:
            manifest = json.load(handle)
        databases, failed = manifest["databases"], manifest["failed"]
    except (OSError, ValueError, KeyError, TypeError):
        problem = "%s is not a backup set (it has no readable %s)." % (set_dir, MANIFEST)
        raise ValidationError({"backup": [problem]}) from None
    if failed or set(databases) != set(DATABASE_FILES):
        missing = ", ".join(sorted(set(DATABASE_FILES) - set(databases)))
        raise ConflictError("backup set %s is incomplete: it lacks %s" % (set_dir, missing)).advised(
            "Restore its databases one by one (`loom-db restore FILE`), or choose a complete set."
        )
    for name, facts in databases.items():
        path = os.path.join(set_dir, name)
        if not os.path.exists(path) or _file_facts(path) != facts:
            raise DatabaseCorruptError("backup set %s: %s does not match its manifest" % (set_dir, name)).advised(
                "Choose another backup set."
            )
    return [name for name in DATABASE_FILES if name in databases]


def _staged_restore(backup_file: str, database_path: str, progress: Progress | None) -> str:
    """A verified copy of a backup beside the database it is to replace, checked to be of its kind."""
    try:
        staged = _staged_copy(backup_file, database_path, progress)
    except (sqlite3.DatabaseError, DatabaseCorruptError) as error:
        raise DatabaseCorruptError(
            "backup %s is not a usable database (%s)" % (backup_file, " ".join(str(error).split()))
        ).advised("Choose another backup: this one is damaged.") from error
    try:
        _check_same_kind(backup_file, staged, database_path)
    except BaseException:
        _discard(staged)
        raise
    return staged


def _install_all(staged: dict[str, str], targets: dict[str, str], kept: dict[str, str | None]) -> None:
    """Install every staged copy; if one fails, put back the databases already replaced."""
    installed = []
    try:
        for name, path in staged.items():
            _install(path, targets[name])
            installed.append(name)
    except BaseException:
        for name in installed:
            previous = kept[name]
            if previous is None:
                os.remove(targets[name])
            else:
                _install(_staged_copy(previous, targets[name], None), targets[name])
        for name in staged.keys() - set(installed):
            _discard(staged[name])
        raise


@storage_call
def safety_copy(database_path: Path, reason: str) -> str:
    """A verified copy of a database beside it, <name>.<UTC time>.<reason>-<random>.bak; its path.

        safety_copy("./loom-data/sessions.db", "pre-migrate")

    Taken before a migration or a restore changes the database, so that the
    change can be undone; `loom-db check` lists the copies left behind. Made as
    a backup is: verified in a temporary file, then renamed into place.
    """
    database_path = os.fspath(database_path)
    path = _beside(database_path, reason, ".bak")
    _install(_staged_copy(database_path, path, None), path)
    logger.warning("loom_models: copied %s to %s (%s)", database_path, path, reason)
    return path


def _keep_current(database_path: str) -> str | None:
    """Keep the database a restore is to replace: a verified copy, or, if it is too damaged for one, as it is."""
    if not os.path.exists(database_path):
        return None
    if _has_sqlite_header(database_path):
        try:
            return safety_copy(database_path, "pre-restore")
        except DatabaseCorruptError:  # SQLite read it, and left what its WAL held in the file
            pass
    # Byte for byte, and before SQLite touches it: closing a connection to a
    # file it cannot read would delete the file's -wal.
    kept = _beside(database_path, "pre-restore", ".damaged")
    for suffix in ("", "-wal"):
        if os.path.exists(database_path + suffix):
            staged = _temporary_beside(kept + suffix)
            shutil.copyfile(database_path + suffix, staged)  # into the 0600 file mkstemp made
            os.replace(staged, kept + suffix)
    logger.warning("loom_models: kept damaged %s as %s", database_path, kept)
    return kept


def _has_sqlite_header(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def _beside(database_path: str, reason: str, suffix: str) -> str:
    """A new name beside a database, for the time and the reason: <name>.<UTC time>.<reason>-<random><suffix>."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(_STAMP)
    return "%s.%s.%s-%s%s" % (os.path.abspath(database_path), stamp, reason, secrets.token_hex(4), suffix)


# The table that tells which domain a database file holds.
_DOMAIN_TABLES = ("sessions", "human_requests", "reference_store")


@storage_call
def dump_sql(database: peewee.Database, path: Path) -> str:
    """Write the database as SQL text (schema and rows), one snapshot, to a new file at `path` (0600).

    dump_sql(db, "sessions.sql")
    """
    path = os.fspath(path)
    staged = _temporary_beside(path)
    try:
        with open(staged, "w") as out:
            for statement in iter_dump(database):
                out.write(statement + "\n")
        _install(staged, path)
    except BaseException:
        _discard(staged)
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
    staged = _temporary_beside(database_path)
    try:
        with contextlib.closing(sqlite3.connect(staged, isolation_level=None)) as target:
            target.executescript(script)
            problems = [row[0] for row in target.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"]
        if problems:
            raise DatabaseCorruptError("the database loaded from %s fails its check: %s" % (path, problems[0]))
        _install(staged, database_path)
    except BaseException:
        _discard(staged)
        raise


def _refuse_if_open(database_path: str) -> None:
    if _open_elsewhere(database_path):
        raise ConflictError("database is open: %s" % database_path).advised(
            "Stop the processes that use the store, then restore."
        )


def _check_same_kind(backup_file: str, staged: str, database_path: str) -> None:
    """A backup replaces only a database that holds what it holds (sessions, requests...), and holds some."""
    held = set(_DOMAIN_TABLES) & _tables(staged)
    if not held:
        raise ConflictError("%s holds none of the store's tables: it is no backup of a loom database" % backup_file)
    # Not a database to SQLite: too damaged to tell (and SQLite must not touch it: see _keep_current).
    if not os.path.exists(database_path) or not _has_sqlite_header(database_path):
        return
    try:
        wanted = set(_DOMAIN_TABLES) & _tables(database_path)
    except sqlite3.DatabaseError:  # damaged inside: the backup is what will tell
        return
    missing = wanted - held
    if missing:
        raise ConflictError(
            "the backup holds no %s table, which %s has: it is a backup of another database"
            % (", ".join(sorted(missing)), database_path)
        ).advised("Choose the backup of that database, or name its kind with --database.")


def _tables(path: str) -> set:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _staged_copy(source_path: str, destination: str, progress: Progress | None) -> str:
    """A verified copy of the database at `source_path`, in a temporary file beside `destination`."""
    staged = _temporary_beside(destination)
    try:
        _copy_verified(source_path, staged, progress)
    except sqlite3.Error as error:  # reading the one or writing the other: the message names both
        _discard(staged)
        raise _failed_copy(error, "cannot copy %s to %s" % (source_path, destination)) from error
    except BaseException:
        _discard(staged)
        raise
    return staged


def _failed_copy(error: BaseException, what: str) -> LoomStorageError:
    """The LoomStorageError of a failed copy, saying what was being copied."""
    failure = translate(error)
    return failure if what in str(failure) else type(failure)("%s: %s" % (what, failure))


def _copy_verified(source_path: str, target: str, progress: Progress | None) -> None:
    """Copy a database into the new (or empty) file `target` and check the copy's integrity."""
    with contextlib.closing(sqlite3.connect(source_path, isolation_level=None)) as source:
        # A read transaction held across the steps is one snapshot: writers
        # go on in the WAL, and the copy does not restart when they commit.
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()
        with contextlib.closing(sqlite3.connect(target)) as copy:
            source.backup(copy, pages=_STEP_PAGES, progress=_reporter(progress))
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"]
        source.execute("COMMIT")
    if problems:
        raise DatabaseCorruptError("copy of %s failed its integrity check: %s" % (source_path, problems[0]))


def _discard(path: str) -> None:
    """Remove a temporary copy and whatever SQLite left beside it (a -journal when a write failed)."""
    for leftover in (path, path + "-journal", path + "-wal", path + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)


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

"""Verified copies of SQLite files: what backups, restores and migrations copy with.

    path = safety_copy("./loom-data/sessions.db", "pre-migrate")   # a verified copy beside it
    staged = staged_copy(source, destination, progress)           # verified, in a temporary file
    install(staged, destination)                                   # renamed into place, durably

Copies go through SQLite's online backup API, reading one snapshot while writers
go on (a file copy of a WAL database misses what is still in the -wal file).
Nothing is left looking like a copy unless its integrity check passed, and
nothing of a copy that fails is left at all: each copy is written to a
temporary file (.<name>.*.tmp, which only a killed process leaves behind) and
renamed into place once verified.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
from collections.abc import Callable

from .calls import storage_call
from .errors import DatabaseCorruptError, LoomStorageError, translate

logger = logging.getLogger(__name__)

STAMP = "%Y%m%dT%H%M%SZ"  # the UTC time in the names of copies and backups
_STEP_PAGES = 1024

Path = str | os.PathLike
Progress = Callable[[int, int], object]  # progress(remaining_pages, total_pages)


@storage_call
def safety_copy(database_path: Path, reason: str) -> str:
    """A verified copy of a database beside it, <name>.<UTC time>.<reason>-<random>.bak; its path.

        safety_copy("./loom-data/sessions.db", "pre-migrate")

    Taken before a migration or a restore changes the database, so that the
    change can be undone; `loom-db check` lists the copies left behind.
    """
    database_path = os.fspath(database_path)
    path = beside(database_path, reason, ".bak")
    install(staged_copy(database_path, path, None), path)
    logger.warning("loom_models: copied %s to %s (%s)", database_path, path, reason)
    return path


def keep_as_it_is(database_path: str, reason: str) -> str:
    """Keep a database too damaged to verify beside it, byte for byte with its -wal, as <...>.damaged."""
    kept = beside(database_path, reason, ".damaged")
    copy_as_it_is(database_path, kept)
    logger.warning("loom_models: kept damaged %s as %s", database_path, kept)
    return kept


def copy_as_it_is(source: str, destination: str) -> None:
    """Copy a database file and its -wal byte for byte, durably: for one SQLite cannot read."""
    for suffix in ("", "-wal"):
        if os.path.exists(source + suffix):
            staged = temporary_beside(destination + suffix)
            try:
                shutil.copyfile(source + suffix, staged)  # into the 0600 file mkstemp made
            except BaseException:
                discard(staged)
                raise
            install(staged, destination + suffix)


def has_sqlite_header(path: str) -> bool:
    """Whether a file starts as a SQLite database does (without letting SQLite touch it)."""
    with open(path, "rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def beside(database_path: str, reason: str, suffix: str) -> str:
    """A new name beside a database, for the time and the reason: <name>.<UTC time>.<reason>-<random><suffix>."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(STAMP)
    return "%s.%s.%s-%s%s" % (os.path.abspath(database_path), stamp, reason, secrets.token_hex(4), suffix)


def staged_copy(source_path: str, destination: str, progress: Progress | None) -> str:
    """A verified copy of the database at `source_path`, in a temporary file beside `destination`."""
    staged = temporary_beside(destination)
    try:
        copy_verified(source_path, staged, progress)
    except sqlite3.Error as error:  # reading the one or writing the other: the message names both
        discard(staged)
        raise failed_copy(error, "cannot copy %s to %s" % (source_path, destination)) from error
    except BaseException:
        discard(staged)
        raise
    return staged


def failed_copy(error: BaseException, what: str) -> LoomStorageError:
    """The LoomStorageError of a failed copy, saying what was being copied."""
    failure = translate(error)
    return failure if what in str(failure) else type(failure)("%s: %s" % (what, failure))


def copy_verified(source_path: str, target: str, progress: Progress | None) -> None:
    """Copy a database into the new (or empty) file `target` and check the copy's integrity."""
    with contextlib.closing(sqlite3.connect(source_path, isolation_level=None)) as source:
        # A read transaction held across the steps is one snapshot: writers
        # go on in the WAL, and the copy does not restart when they commit.
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()
        with contextlib.closing(sqlite3.connect(target)) as copy:
            source.backup(copy, pages=_STEP_PAGES, progress=_reporter(progress))
            problems = integrity_problems(copy)
        source.execute("COMMIT")
    if problems:
        raise DatabaseCorruptError("copy of %s failed its integrity check: %s" % (source_path, problems[0]))


def integrity_problems(connection: sqlite3.Connection) -> list[str]:
    """What SQLite's integrity check finds wrong in a database; [] when it is sound."""
    return [row[0] for row in connection.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"]


def discard(path: str) -> None:
    """Remove a temporary copy and whatever SQLite left beside it (a -journal when a write failed)."""
    for leftover in (path, path + "-journal", path + "-wal", path + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)


def install(staged: str, destination: str) -> str:
    """Rename a verified copy into place, durably, with no old WAL left beside it; if that fails, remove the copy."""
    try:
        fsync(staged)
        # The old WAL belongs to the old file: replayed over the new one it would corrupt it.
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(destination + suffix)
        os.replace(staged, destination)
        fsync(os.path.dirname(os.path.abspath(destination)))
    except BaseException:
        discard(staged)  # nothing once it is renamed
        raise
    return destination


def fsync(path: str) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def temporary_beside(path: str) -> str:
    """A new empty file (0600) beside `path`, named to read as temporary."""
    directory, name = os.path.split(os.path.abspath(path))
    handle, staged = tempfile.mkstemp(prefix=".%s." % name, suffix=".tmp", dir=directory)
    os.close(handle)
    return staged


def _reporter(progress: Progress | None) -> Callable[[int, int, int], object] | None:
    if progress is None:
        return None
    return lambda status, remaining, total: progress(remaining, total)

"""Restoring backups: one database from a file, or every database from a set, all or none.

    kept = restore("/backups/loom-20261126T120000Z/sessions.db", "./loom-data/sessions.db")
    restore_set("/backups/loom-20261126T120000Z", "./loom-data")   # {database: the copy kept of it}

Nothing may have the store open. Before a database is replaced, it is kept
beside itself: a verified copy, or, when it is too damaged for one, the file as
it is; so a restore of the wrong backup can be undone.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3

from .. import copies
from ..calls import storage_call
from ..copies import Path, Progress
from ..errors import ConflictError, DatabaseCorruptError, LoomStorageError, NotFoundError, ValidationError
from ..storage import DATABASE_FILES, REPOSITORIES
from .sets import MANIFEST, file_facts

# SQLite's unix VFS keeps a shared lock on this byte of the -shm file for as long
# as a connection has the database open (its "dead man switch").
_SHM_OPEN_BYTE = 128
# The table that tells which domain a database file holds.
_DOMAIN_TABLES = tuple(repository.table for repository in REPOSITORIES)


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
        copies.discard(staged)
        raise
    copies.install(staged, database_path)
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
            copies.discard(path)
        raise
    _install_all(staged, targets, kept)
    return {targets[name]: kept[name] for name in names}


def _checked_set(set_dir: str) -> list[str]:
    """The databases of a complete backup set whose files match its manifest."""
    try:
        with open(os.path.join(set_dir, MANIFEST), encoding="utf-8") as handle:
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
        if not os.path.exists(path) or file_facts(path) != facts:
            raise DatabaseCorruptError("backup set %s: %s does not match its manifest" % (set_dir, name)).advised(
                "Choose another backup set."
            )
    return [name for name in DATABASE_FILES if name in databases]


def _staged_restore(backup_file: str, database_path: str, progress: Progress | None) -> str:
    """A verified copy of a backup beside the database it is to replace, checked to be of its kind."""
    try:
        staged = copies.staged_copy(backup_file, database_path, progress)
    except (sqlite3.DatabaseError, DatabaseCorruptError) as error:
        raise DatabaseCorruptError(
            "backup %s is not a usable database (%s)" % (backup_file, " ".join(str(error).split()))
        ).advised("Choose another backup: this one is damaged.") from error
    try:
        _check_same_kind(backup_file, staged, database_path)
    except BaseException:
        copies.discard(staged)
        raise
    return staged


def _install_all(staged: dict[str, str], targets: dict[str, str], kept: dict[str, str | None]) -> None:
    """Install every staged copy; if one fails, put back the databases already replaced."""
    installed = []
    try:
        for name, path in staged.items():
            copies.install(path, targets[name])
            installed.append(name)
    except BaseException as error:
        for name in staged.keys() - set(installed):
            copies.discard(staged[name])
        not_back = [name for name in installed if not _put_back(kept[name], targets[name])]
        if not_back:
            before = "; ".join("%s (was: %s)" % (targets[name], kept[name] or "no file") for name in not_back)
            problem = "restore failed half-way (%s), and these were not put back: %s" % (error, before)
            raise LoomStorageError(problem).advised(
                "Restore each from the copy it was (`loom-db restore FILE`), or restore the set again."
            ) from error
        raise


def _put_back(previous: str | None, target: str) -> bool:
    """Whether the database a restore replaced is back in place: its kept copy, or no file where there was none."""
    try:
        if previous is None:
            os.remove(target)
        elif previous.endswith(".damaged"):
            copies.copy_as_it_is(previous, target)
        else:
            copies.install(copies.staged_copy(previous, target, None), target)
    except Exception:
        return False
    return True


def _keep_current(database_path: str) -> str | None:
    """Keep the database a restore is to replace: a verified copy, or, if it is too damaged for one, as it is."""
    if not os.path.exists(database_path):
        return None
    if copies.has_sqlite_header(database_path):
        try:
            return copies.safety_copy(database_path, "pre-restore")
        except DatabaseCorruptError:  # SQLite read it, and left what its WAL held in the file
            pass
    # Before SQLite touches it: closing a connection to a file it cannot read
    # would delete the file's -wal.
    return copies.keep_as_it_is(database_path, "pre-restore")


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
    if not os.path.exists(database_path) or not copies.has_sqlite_header(database_path):
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


def _open_elsewhere(database_path: str) -> bool:
    """Whether any connection, in this process or another, has the database open.

    Read from the kernel's table of file locks (Linux), without opening the
    -shm file: closing a descriptor of it would drop this process's own locks.
    Where there is no such table this cannot tell, and says no.
    """
    try:
        shm = os.stat(database_path + "-shm")
        with open("/proc/locks") as table:
            locks = table.read().splitlines()
    except FileNotFoundError:
        return False
    inode = "%02x:%02x:%d" % (os.major(shm.st_dev), os.minor(shm.st_dev), shm.st_ino)
    for line in locks:  # "1: POSIX  ADVISORY  READ 4242 fe:00:2147692 128 128"
        fields = line.replace("->", "").split()
        if inode in fields:
            start, end = fields[fields.index(inode) + 1 : fields.index(inode) + 3]
            if int(start) <= _SHM_OPEN_BYTE and (end == "EOF" or int(end) >= _SHM_OPEN_BYTE):
                return True
    return False

"""Backups of a data directory as sets, verified, pruned by age.

    run = backup_set("./loom-data", "/backups", keep_days=7)   # one set, loom-<UTC time>/; older ones pruned
    run.directory, run.written, run.failed, run.pruned
    backup(db, "/backups/sessions.db")                         # one database: the verified copy's path

A set is a directory, loom-<UTC time>, holding a verified copy of each database
and a manifest (their sizes and SHA-256). It is written under a temporary name
and renamed once every copy in it is verified, so a run that fails or is
interrupted leaves nothing (a killed one, its hidden .loom-*.tmp); a run that
could not copy every database names its set loom-<UTC time>.incomplete, and its
manifest says what is missing and why.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile

import peewee

from .. import copies
from ..backends import backend_of
from ..backends.sqlite import create_private_file
from ..calls import storage_call
from ..copies import Path, Progress
from ..errors import ConflictError, DatabaseCorruptError, LoomStorageError, NotFoundError, ValidationError, translate
from ..storage import DATABASE_FILES

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SET_PREFIX = "loom-"
INCOMPLETE = ".incomplete"
MAX_KEEP_DAYS = 36500  # a century: any more is a typo
# A backup set, and the single-file backups of earlier versions.
_SET = re.compile(r"%s(\d{8}T\d{6}Z)(?:-\d+)?(?:%s)?$" % (SET_PREFIX, re.escape(INCOMPLETE)))
_SINGLE = re.compile(r"(?:%s)-(\d{8}T\d{6}Z)\.db$" % "|".join(n[:-3] for n in DATABASE_FILES))


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
    source, destination = backend_of(database).file("backup"), os.fspath(destination)
    if os.path.exists(destination) and os.path.samefile(source, destination):
        # Installing over it would delete the -wal its open connections still use.
        raise ConflictError("cannot back up %s over itself" % source).advised("Choose a path outside the store.")
    return copies.install(copies.staged_copy(source, destination, progress), destination)


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
    inside = os.path.relpath(os.path.realpath(backup_dir), os.path.realpath(data_dir))
    if inside.split(os.sep)[0] != os.pardir:  # the data directory, or a directory in it
        # A copy beside what it copies is lost with it, and the next backup would copy it again.
        raise ValidationError({"backup_dir": ["Must be outside the data directory %s." % data_dir]})
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime(copies.STAMP)
    staging = tempfile.mkdtemp(prefix=".%s%s." % (SET_PREFIX, stamp), suffix=".tmp", dir=backup_dir)
    try:
        copied, failed = _copy_databases(data_dir, staging, progress)
        if not copied:
            raise next(iter(failed.values()))
        _write_manifest(staging, now, data_dir, copied, failed)
        directory = _install_set(staging, backup_dir, stamp, INCOMPLETE if failed else "")
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
    return datetime.datetime.strptime(match.group(1), copies.STAMP).replace(tzinfo=datetime.timezone.utc)


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
            copies.copy_verified(source, target, progress)
            copied.append(name)
        except (LoomStorageError, sqlite3.Error) as error:
            copies.discard(target)  # no file of that name in the set, not even an empty one
            if not isinstance(translate(error), DatabaseCorruptError):
                raise copies.failed_copy(error, "cannot write a backup set in %s" % os.path.dirname(staging)) from error
            failed[name] = copies.failed_copy(error, source)
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
        "databases": {name: file_facts(os.path.join(staging, name)) for name in copied},
        "failed": {name: str(error) for name, error in failed.items()},
    }
    create_private_file(os.path.join(staging, MANIFEST))
    with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2)


def file_facts(path: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def _install_set(staging: str, backup_dir: str, stamp: str, suffix: str) -> str:
    """Rename a staged set into place, durably: loom-<stamp><suffix>, or loom-<stamp>-2<suffix>... if taken."""
    for name in os.listdir(staging):
        copies.fsync(os.path.join(staging, name))
    copies.fsync(staging)
    name, attempt = SET_PREFIX + stamp, 1
    while os.path.exists(os.path.join(backup_dir, name + suffix)):
        attempt += 1
        name = "%s%s-%d" % (SET_PREFIX, stamp, attempt)
    directory = os.path.join(backup_dir, name + suffix)
    os.rename(staging, directory)  # a rename, not a copy: the set appears whole or not at all
    copies.fsync(backup_dir)
    return directory

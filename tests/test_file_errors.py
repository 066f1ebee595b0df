"""Errors about a database file name the file and say what is wrong with it.

Permissions are tried in a child process without the powers that let root write
anything (CAP_DAC_OVERRIDE and its kin), so that a file's mode counts as it does
for the user a store normally runs as.
"""

import ctypes
import json
import os
import subprocess
import sys

import pytest

from loom_models import DatabaseCorruptError, SchemaMismatchError, open_storage
from loom_models.db import open_database
from loom_models.hitl import HumanRequestRepository
from loom_models.sessions import Session, SessionRepository
from loom_models.storage import DATABASE_FILES

LOOM_DB = os.path.join(os.path.dirname(sys.executable), "loom-db")
_PR_CAPBSET_DROP = 24
_FILE_POWERS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _as_a_plain_user() -> None:
    # Runs in the child before exec: a capability left out of the bounding set is
    # not granted again by exec, even to root.
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in _FILE_POWERS:
            if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


WRITE_A_SESSION = """
import json, sys
from loom_models import LoomStorageError, open_storage
from loom_models.sessions import Session
try:
    with open_storage(sys.argv[1], gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="written"))
    print(json.dumps(["ok", ""]))
except LoomStorageError as error:
    print(json.dumps([type(error).__name__, str(error)]))
"""


def write_as_a_plain_user(data_dir) -> tuple[str, str]:
    """(error class, message) of opening the store and saving a session, or ("ok", "")."""
    done = subprocess.run(
        [sys.executable, "-c", WRITE_A_SESSION, str(data_dir)],
        preexec_fn=_as_a_plain_user,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return tuple(json.loads(done.stdout))


def check_as_a_plain_user(data_dir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LOOM_DB, "--data-dir", str(data_dir), "--json", "check"],
        preexec_fn=_as_a_plain_user,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    with open_storage(path, gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="s"))
    return path


def test_a_healthy_store_is_written_by_a_plain_user(data_dir):
    assert write_as_a_plain_user(data_dir) == ("ok", "")
    assert check_as_a_plain_user(data_dir).returncode == 0


def test_a_database_file_without_write_permission_is_named(data_dir):
    os.chmod(data_dir / "sessions.db", 0o444)

    kind, message = write_as_a_plain_user(data_dir)

    assert kind == "NotWritableError"
    assert message.startswith("cannot write %s: permission denied" % (data_dir / "sessions.db")), message


def test_a_read_only_data_directory_is_named(data_dir):
    os.chmod(data_dir, 0o500)
    try:
        kind, message = write_as_a_plain_user(data_dir)
        checked = check_as_a_plain_user(data_dir)
    finally:
        os.chmod(data_dir, 0o700)

    assert kind == "NotWritableError" and str(data_dir) in message, message
    assert checked.returncode == 14
    details = [p["detail"] for r in json.loads(checked.stdout)["databases"] for p in r["problems"]]
    assert "cannot write %s" % data_dir in details


def test_an_shm_file_left_unwritable_is_named_and_check_reports_it(data_dir):
    shm = data_dir / "sessions.db-shm"
    shm.write_bytes(b"")  # as a process of another user leaves it
    os.chmod(shm, 0o444)

    kind, message = write_as_a_plain_user(data_dir)
    checked = check_as_a_plain_user(data_dir)

    assert kind == "NotWritableError" and message.startswith("cannot write %s: " % shm), message
    assert checked.returncode == 14, checked.stderr
    report = json.loads(checked.stdout)
    assert not report["ok"]
    problems = {r["database"]: r["problems"] for r in report["databases"]}
    assert problems["sessions.db"] == [{"kind": "permission", "detail": "cannot write %s" % shm}]
    assert problems["hitl.db"] == [] and problems["references.db"] == []
    assert "permission check failed on sessions.db" in checked.stderr


@pytest.mark.parametrize("name", ["sessions.db", "hitl.db", "references.db"])
def test_a_corrupt_database_is_named_by_open_storage_and_loom_db(data_dir, name):
    (data_dir / name).write_bytes(b"this is no SQLite database, just text " * 200)

    with pytest.raises(DatabaseCorruptError, match="in .*%s" % name):
        open_storage(data_dir, gc_interval=0)
    shown = subprocess.run([LOOM_DB, "--data-dir", str(data_dir), "stats"], capture_output=True, text=True)
    assert shown.returncode == 9 and str(data_dir / name) in shown.stderr, shown.stderr


def test_a_repository_on_an_unmigrated_database_says_it_is_not_initialised(backend):
    repository = SessionRepository(open_database(backend.target))
    try:
        with pytest.raises(SchemaMismatchError, match="not initialised: .*loom-db init"):
            repository.save_session(Session(id="s"))
        with pytest.raises(SchemaMismatchError, match="not initialised"):
            repository.check_schema()
    finally:
        repository.database.close()
    with pytest.raises(SchemaMismatchError, match="not initialised"):
        HumanRequestRepository(open_database(backend.target)).list_pending()


def test_an_empty_database_opened_without_migrating_says_it_is_not_initialised(data_store):
    with pytest.raises(SchemaMismatchError, match=r"got 0 \(database not initialised"):
        open_storage(**data_store.location, gc_interval=0, migrate=False)


def test_a_database_this_user_cannot_read_is_left_out_of_a_backup_by_name(data_dir, tmp_path):
    os.chmod(data_dir / "sessions.db", 0)
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o777)
    os.chmod(backups, 0o777)

    done = subprocess.run(
        [LOOM_DB, "--data-dir", str(data_dir), "--json", "backup", str(backups)],
        preexec_fn=_as_a_plain_user,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode not in (0, 2) and str(data_dir / "sessions.db") in done.stderr, done.stderr
    document = json.loads(done.stdout)
    assert [os.path.basename(p) for p in document["written"]] == [f for f in DATABASE_FILES if f != "sessions.db"]
    assert document["directory"].endswith(".incomplete") and list(document["failed"]) == ["sessions.db"]

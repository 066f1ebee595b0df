"""Backups while writers write, verified copies, pruning, restore, and SQL dumps."""

import contextlib
import datetime
import glob
import hashlib
import json
import logging
import multiprocessing
import os
import pathlib
import re
import shutil
import sqlite3
import stat
import subprocess
import sys

import pytest

from loom_models import (
    ConflictError,
    DatabaseCorruptError,
    DiskFullError,
    LoomStorageError,
    NotFoundError,
    ValidationError,
    backup,
    copies,
    open_storage,
)
from loom_models.db import open_database
from loom_models.hitl import HumanRequest, HumanRequestRepository
from loom_models.sessions import Message, Session, SessionRepository


def count(path, table="messages"):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM %s" % table).fetchone()[0]


def backed_up_between(tmp_path, before, after):
    """sessions.db holding the sessions `before` and `after`, and copy.db, a backup taken between them."""
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as sessions:
        sessions.save_session(Session(id=before))
        backup.backup(sessions.database, tmp_path / "copy.db")
        sessions.save_session(Session(id=after))
    return path


def _keep_writing(path, started, stop):
    with SessionRepository.open(path) as sessions:
        sessions.save_session(Session(id="busy"))
        started.set()
        while not stop.is_set():
            sessions.save_messages("busy", [Message(role="user", content="x" * 300, token_count=1)] * 20)


@contextlib.contextmanager
def another_process_writing(path):
    """A store at `path` that another process writes to, once it holds 2,000 messages."""
    SessionRepository.open(path).close()
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    writer = context.Process(target=_keep_writing, args=(path, started, stop))
    writer.start()
    try:
        started.wait(30)
        while count(path) < 2000:
            pass
        yield
    finally:
        stop.set()
        writer.join(30)


def test_a_backup_taken_while_another_process_writes_is_consistent_and_complete(tmp_path, monkeypatch):
    monkeypatch.setattr(copies, "_STEP_PAGES", 16)  # many steps, for writers to commit between
    path = str(tmp_path / "sessions.db")
    with another_process_writing(path):
        before = count(path)
        steps = []
        copy = backup.backup(open_database(path), tmp_path / "copy.db", progress=lambda *step: steps.append(step))
        after = count(path)

    assert copy == str(tmp_path / "copy.db") and steps and steps[-1][0] == 0
    totals = {total for _, total in steps}
    assert len(totals) == 1 and len(steps) <= totals.pop() // 16 + 1  # one snapshot: no restarts
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        copied, tokens = db.execute("SELECT (SELECT COUNT(*) FROM messages), total_tokens FROM sessions").fetchone()
    assert before <= copied <= after and copied % 20 == 0  # whole transactions only
    assert tokens == copied  # the totals of the same snapshot
    assert glob.glob(str(tmp_path / ".*.tmp")) == []


def test_a_corrupt_source_leaves_no_backup_behind(tmp_path):
    (tmp_path / "bad.db").write_bytes(b"garbage " * 1000)

    with pytest.raises(DatabaseCorruptError):
        backup.backup(open_database(tmp_path / "bad.db"), tmp_path / "copy.db")
    assert sorted(os.listdir(tmp_path)) == ["bad.db"]


def stamp(days_ago: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def a_store(tmp_path, sessions=1):
    with open_storage(tmp_path / "data", gc_interval=0) as storage:
        for i in range(sessions):
            storage.sessions.save_session(Session(id="s%d" % i))
            storage.sessions.save_message("s%d" % i, Message(role="user", content="x" * 500))
    return tmp_path / "data"


def test_a_backup_into_the_data_directory_itself_is_refused(tmp_path):
    data = a_store(tmp_path)
    for inside in (data, data / "backups", data / "nested" / "..", data / "..dots"):
        with pytest.raises(ValidationError, match="outside the data directory"):
            backup.backup_set(data, inside)
    assert sorted(os.listdir(data)) == sorted(backup.DATABASE_FILES)  # nothing made there


def test_backup_set_writes_every_database_as_one_verified_set(tmp_path):
    data = a_store(tmp_path)

    run = backup.backup_set(data, tmp_path / "backups")

    assert re.fullmatch(r"loom-\d{8}T\d{6}Z", os.path.basename(run.directory))
    assert [os.path.basename(p) for p in run.written] == list(backup.DATABASE_FILES)
    assert (run.failed, run.pruned) == ({}, [])
    assert sorted(os.listdir(run.directory)) == sorted([*backup.DATABASE_FILES, "manifest.json"])
    assert stat.S_IMODE(os.stat(run.directory).st_mode) == 0o700
    manifest = json.loads((pathlib.Path(run.directory) / "manifest.json").read_text())
    assert manifest["failed"] == {} and manifest["data_dir"] == str(data)
    for path in run.written:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        facts = manifest["databases"][os.path.basename(path)]
        assert facts["sha256"] == hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
        with contextlib.closing(sqlite3.connect(path)) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert count(run.written[0]) == 1


def test_older_backups_are_pruned_by_name_and_announced(tmp_path, caplog):
    data = a_store(tmp_path)
    backups = tmp_path / "backups"
    backups.mkdir()
    nine_days_ago = stamp(9)
    old_set, recent_set = backups / ("loom-%s" % nine_days_ago), backups / ("loom-%s" % stamp(2))
    old_partial = backups / ("loom-%s.incomplete" % stamp(30))
    old_file, not_ours = backups / ("sessions-%s.db" % nine_days_ago), backups / ("notes-%s.db" % nine_days_ago)
    for directory in (old_set, recent_set, old_partial):
        directory.mkdir()
    old_file.write_bytes(b"a single-file backup of an earlier version")
    not_ours.write_text("not ours")
    (backups / "notes.txt").write_text("not ours")

    with caplog.at_level(logging.INFO, logger="loom_models"):
        run = backup.backup_set(data, backups, keep_days=7)

    assert sorted(run.pruned) == sorted(str(p) for p in (old_set, old_partial, old_file))
    assert all(path in caplog.text for path in run.pruned)
    left = sorted(os.listdir(backups))
    assert left == sorted([recent_set.name, os.path.basename(run.directory), not_ours.name, "notes.txt"])
    assert backup.backup_set(data, tmp_path / "again", keep_days=0).pruned == []  # what it wrote, it keeps


@pytest.mark.parametrize("keep_days", [-1, 99999999999, 1.5, True, "7"])
def test_a_bad_keep_days_is_refused_before_anything_is_written(tmp_path, keep_days):
    data = a_store(tmp_path)

    with pytest.raises(ValidationError, match="keep_days"):
        backup.backup_set(data, tmp_path / "backups", keep_days=keep_days)
    assert not (tmp_path / "backups").exists()


def test_a_damaged_database_does_not_take_the_others_down(tmp_path):
    data = a_store(tmp_path)
    old_set = tmp_path / "backups" / ("loom-%s" % stamp(30))
    old_set.mkdir(parents=True)
    (data / "sessions.db").write_bytes(b"this is no SQLite database " * 500)

    run = backup.backup_set(data, tmp_path / "backups", keep_days=1)

    assert run.directory.endswith(".incomplete")
    others = [name for name in backup.DATABASE_FILES if name != "sessions.db"]
    assert [os.path.basename(p) for p in run.written] == others
    assert sorted(os.listdir(run.directory)) == sorted([*others, "manifest.json"])
    assert list(run.failed) == ["sessions.db"] and isinstance(run.failed["sessions.db"], DatabaseCorruptError)
    assert str(data / "sessions.db") in str(run.failed["sessions.db"])
    for path in run.written:
        with contextlib.closing(sqlite3.connect(path)) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    manifest = json.loads((pathlib.Path(run.directory) / "manifest.json").read_text())
    assert set(manifest["databases"]) == set(others) and list(manifest["failed"]) == ["sessions.db"]
    assert run.pruned == [] and old_set.exists()  # a failed run deletes no older backup
    with pytest.raises(DatabaseCorruptError, match="sessions.db.*the other databases are saved in .*incomplete"):
        backup.backup_data_dir(data, tmp_path / "more")


def test_an_interrupted_backup_leaves_no_backup_and_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(copies, "_STEP_PAGES", 1)  # many steps, for the interruption to land in one
    data = a_store(tmp_path, sessions=50)
    backups = tmp_path / "backups"
    backups.mkdir()
    copied = []

    def ctrl_c_in_the_second_database(remaining, total):
        if remaining == 0:
            copied.append(total)
        elif len(copied) == 1 and remaining < total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backup.backup_set(data, backups, progress=ctrl_c_in_the_second_database)

    assert os.listdir(backups) == []


def test_a_backup_over_the_file_size_limit_leaves_nothing_behind(tmp_path):
    data = a_store(tmp_path, sessions=400)  # about 1 MB of sessions
    backups = tmp_path / "backups"
    backups.mkdir()
    script = (
        "import resource, sys\n"
        "from loom_models import LoomStorageError, backup\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
        "try:\n"
        "    backup.backup_set(sys.argv[1], sys.argv[2])\n"
        "except LoomStorageError as error:\n"
        "    print(type(error).__name__)\n"
    )

    done = subprocess.run([sys.executable, "-c", script, data, backups], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0 and done.stdout.strip() in ("DiskFullError", "LoomStorageError"), done
    assert os.listdir(backups) == []  # no set, no staging directory, no -journal


def test_a_single_backup_that_fails_leaves_no_temporary_file(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as sessions:
        sessions.save_session(Session(id="s"))
        sessions.save_messages("s", [Message(role="user", content="x" * 1000)] * 400)
    script = (
        "import resource, sys\n"
        "from loom_models import LoomStorageError, backup\n"
        "from loom_models.db import open_database\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "try:\n"
        "    backup.backup(open_database(sys.argv[1]), sys.argv[2])\n"
        "except LoomStorageError as error:\n"
        "    print(type(error).__name__)\n"
    )
    (tmp_path / "out").mkdir()

    done = subprocess.run(
        [sys.executable, "-c", script, tmp_path / "sessions.db", tmp_path / "out" / "copy.db"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.stdout.strip() in ("DiskFullError", "LoomStorageError"), done
    assert os.listdir(tmp_path / "out") == []


def test_restore_round_trip_replaces_the_database_and_its_stale_wal(tmp_path):
    path = backed_up_between(tmp_path, "kept", "after_the_backup")
    (tmp_path / "sessions.db-wal").write_bytes(b"stale wal of the old file")

    backup.restore(tmp_path / "copy.db", path)

    assert not (tmp_path / "sessions.db-wal").exists()
    with SessionRepository.open(path) as sessions:
        assert [s.id for s in sessions.list_sessions()] == ["kept"]


def test_restore_refuses_a_database_that_is_open(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as sessions:
        sessions.save_session(Session(id="live"))
        backup.backup(sessions.database, tmp_path / "copy.db")
        sessions.save_session(Session(id="newer"))

        with pytest.raises(ConflictError, match="database is open"):
            backup.restore(tmp_path / "copy.db", path)
        assert len(sessions.list_sessions()) == 2


def test_restore_checks_the_backup_before_touching_anything(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as sessions:
        sessions.save_session(Session(id="precious"))
    (tmp_path / "bad.db").write_bytes(b"garbage " * 1000)

    with pytest.raises(NotFoundError):
        backup.restore(tmp_path / "missing.db", path)
    with pytest.raises(DatabaseCorruptError):
        backup.restore(tmp_path / "bad.db", path)
    assert count(path, "sessions") == 1
    assert glob.glob(str(tmp_path / ".*.tmp")) == []


def test_dump_and_load_sql_round_trip(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as sessions:
        sessions.save_session(Session(id="s", context={"k": "v"}))
        sessions.save_messages("s", [Message(role="user", content='it\'s "quoted"\n')] * 3)
        dumped = backup.dump_sql(sessions.database, tmp_path / "dump.sql")

    backup.load_sql(dumped, tmp_path / "loaded.db")

    with SessionRepository.open(tmp_path / "loaded.db") as copy:
        assert copy.load_session("s").context == {"k": "v"}
        assert [m.content for m in copy.load_messages("s")] == ['it\'s "quoted"\n'] * 3
    with pytest.raises(ConflictError):
        backup.load_sql(dumped, tmp_path / "loaded.db")


def test_a_dump_is_utf_8_whatever_the_locale(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as sessions:
        sessions.save_session(Session(id="s"))
        sessions.save_message("s", Message(role="user", content="Café ✓"))
    dump = "from loom_models import backup; from loom_models.db import open_database; "
    dump += "backup.dump_sql(open_database(%r), %r)" % (str(tmp_path / "sessions.db"), str(tmp_path / "dump.sql"))
    ascii_only = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}

    subprocess.run([sys.executable, "-X", "utf8=0", "-c", dump], env=ascii_only, check=True)
    backup.load_sql(tmp_path / "dump.sql", tmp_path / "loaded.db")

    with SessionRepository.open(tmp_path / "loaded.db") as loaded:
        assert [m.content for m in loaded.load_messages("s")] == ["Café ✓"]


def test_a_backup_over_the_database_itself_is_refused_and_changes_nothing(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as sessions:
        sessions.save_session(Session(id="s"))
        before = sorted(os.listdir(tmp_path))

        with pytest.raises(ConflictError, match="over itself"):
            backup.backup(sessions.database, tmp_path / "sessions.db")

        assert sorted(os.listdir(tmp_path)) == before
        assert sessions.load_session("s").id == "s"


def test_backups_are_sqlite_only(sessions, backend, tmp_path):
    if backend.name == "sqlite":
        assert backup.backup(sessions.database, tmp_path / "copy.db") == str(tmp_path / "copy.db")
    else:
        with pytest.raises(NotImplementedError, match="PostgresqlDatabase"):
            backup.backup(sessions.database, tmp_path / "never-written.db")
        assert not (tmp_path / "never-written.db").exists()


def test_a_dump_taken_while_another_process_writes_is_one_snapshot(tmp_path):
    path = str(tmp_path / "sessions.db")
    with another_process_writing(path):
        dumped = backup.dump_sql(open_database(path), tmp_path / "dump.sql")

    backup.load_sql(dumped, tmp_path / "loaded.db")
    with sqlite3.connect(tmp_path / "loaded.db") as db:
        messages, tokens = db.execute("SELECT (SELECT COUNT(*) FROM messages), total_tokens FROM sessions").fetchone()
    assert messages == tokens and messages % 20 == 0


def test_load_sql_of_what_is_no_dump(tmp_path):
    with pytest.raises(NotFoundError):
        backup.load_sql(tmp_path / "missing.sql", tmp_path / "a.db")
    (tmp_path / "binary.sql").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValidationError):
        backup.load_sql(tmp_path / "binary.sql", tmp_path / "a.db")
    (tmp_path / "broken.sql").write_text("CREATE TABLE t (x); INSERT INTO nowhere VALUES (1);")
    with pytest.raises(LoomStorageError):
        backup.load_sql(tmp_path / "broken.sql", tmp_path / "a.db")
    assert sorted(os.listdir(tmp_path)) == ["binary.sql", "broken.sql"]


def test_restore_refuses_a_backup_of_another_database(tmp_path):
    with open_storage(tmp_path / "data", gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="precious"))
    written = backup.backup_data_dir(tmp_path / "data", tmp_path / "backups")
    hitl_backup = next(p for p in written if os.path.basename(p) == "hitl.db")

    with pytest.raises(ConflictError, match="another database"):
        backup.restore(hitl_backup, tmp_path / "data" / "sessions.db")
    assert count(tmp_path / "data" / "sessions.db", "sessions") == 1


def test_restore_from_a_damaged_backup_names_the_backup(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as sessions:
        sessions.save_session(Session(id="s"))
    (tmp_path / "bad.db").write_bytes(b"garbage " * 1000)

    with pytest.raises(DatabaseCorruptError, match="backup .*bad.db is not a usable database"):
        backup.restore(tmp_path / "bad.db", tmp_path / "sessions.db")


# -- what a restore replaces is kept; a set is restored whole -------------------------------


def session_ids(path):
    with contextlib.closing(sqlite3.connect(path)) as db:
        return sorted(row[0] for row in db.execute("SELECT id FROM sessions"))


def test_restore_keeps_a_verified_copy_of_what_it_replaces(tmp_path):
    path = backed_up_between(tmp_path, "in_the_backup", "written_since")

    kept = backup.restore(tmp_path / "copy.db", path)

    assert session_ids(path) == ["in_the_backup"]
    assert re.fullmatch(r"sessions\.db\.\d{8}T\d{6}Z\.pre-restore-\w+\.bak", os.path.basename(kept))
    assert session_ids(kept) == ["in_the_backup", "written_since"]
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    assert backup.safety_copies(path) == [kept]
    backup.restore(kept, path)  # the wrong restore, undone
    assert session_ids(path) == ["in_the_backup", "written_since"]


def test_restore_over_a_damaged_database_keeps_it_as_it_is(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as sessions:
        sessions.save_session(Session(id="s"))
        backup.backup(sessions.database, tmp_path / "copy.db")
    damaged = b"this is no SQLite database " * 500
    path.write_bytes(damaged)

    (tmp_path / "sessions.db-wal").write_bytes(b"what the damaged database's WAL held")

    kept = backup.restore(tmp_path / "copy.db", path)

    assert kept.endswith(".damaged") and pathlib.Path(kept).read_bytes() == damaged
    assert pathlib.Path(kept + "-wal").read_bytes() == b"what the damaged database's WAL held"
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in (kept, kept + "-wal")} == {0o600}
    assert session_ids(path) == ["s"]
    assert backup.safety_copies(path) == [kept, kept + "-wal"]


def test_restore_refuses_a_file_that_holds_no_table_of_the_store(tmp_path):
    data = a_store(tmp_path)
    (tmp_path / "empty.db").write_bytes(b"")
    (data / "sessions.db").write_bytes(b"this is no SQLite database " * 500)

    with pytest.raises(ConflictError, match="empty.db holds none of the store's tables"):
        backup.restore(tmp_path / "empty.db", data / "sessions.db")
    assert (data / "sessions.db").read_bytes().startswith(b"this is no SQLite")


def test_restore_set_brings_every_database_back(tmp_path):
    data = a_store(tmp_path)
    run = backup.backup_set(data, tmp_path / "backups")
    with open_storage(data, gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="since"))
        storage.references.store(b"since")

    kept = backup.restore_set(run.directory, data)

    assert sorted(kept) == sorted(str(data / name) for name in backup.DATABASE_FILES)
    assert session_ids(data / "sessions.db") == ["s0"] and count(data / "references.db", "reference_store") == 0
    assert session_ids(kept[str(data / "sessions.db")]) == ["s0", "since"]


def test_restore_set_is_all_or_nothing(tmp_path, monkeypatch):
    data = a_store(tmp_path)
    run = backup.backup_set(data, tmp_path / "backups")
    with open_storage(data, gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="since"))
        storage.hitl.store(HumanRequest(agent_id="a", session_id="since", question="Still here?"))
    real_install = copies.install

    def disk_gone_at_the_last(staged, destination):
        if destination == str(data / backup.DATABASE_FILES[-1]):  # the last to be replaced
            raise OSError(5, "Input/output error")
        return real_install(staged, destination)

    monkeypatch.setattr(copies, "install", disk_gone_at_the_last)
    with pytest.raises(LoomStorageError, match="Input/output error"):
        backup.restore_set(run.directory, data)
    monkeypatch.undo()

    assert session_ids(data / "sessions.db") == ["s0", "since"]
    assert count(data / "hitl.db", "human_requests") == 1
    assert [f for f in os.listdir(data) if f.endswith(".tmp")] == []


def failing_installs(monkeypatch, *failures):
    """copies.install failing at these (destination, nth install to it) pairs."""
    real_install, seen = copies.install, []

    def install(staged, destination):
        seen.append(destination)
        if (destination, seen.count(destination)) in failures:
            copies.discard(staged)  # as the real one does when it fails
            raise OSError(5, "Input/output error")
        return real_install(staged, destination)

    monkeypatch.setattr(copies, "install", install)


def test_a_failed_restore_of_a_set_puts_a_damaged_database_back_as_it_was(tmp_path, monkeypatch):
    data = a_store(tmp_path)
    run = backup.backup_set(data, tmp_path / "backups")
    damaged = b"this is no SQLite database " * 500
    (data / "sessions.db").write_bytes(damaged)
    failing_installs(monkeypatch, (str(data / "references.db"), 1))

    with pytest.raises(LoomStorageError, match="Input/output error"):
        backup.restore_set(run.directory, data)

    assert (data / "sessions.db").read_bytes() == damaged
    assert [f for f in os.listdir(data) if f.endswith(".tmp")] == []


def test_a_restore_that_cannot_put_a_database_back_names_the_copy_it_was(tmp_path, monkeypatch):
    data = a_store(tmp_path)
    run = backup.backup_set(data, tmp_path / "backups")
    failing_installs(monkeypatch, (str(data / "references.db"), 1), (str(data / "hitl.db"), 2))

    with pytest.raises(LoomStorageError, match="not put back: .*hitl.db \\(was: .*pre-restore.*\\.bak\\)") as caught:
        backup.restore_set(run.directory, data)

    assert "restore" in caught.value.advice
    assert [f for f in os.listdir(data) if f.endswith(".tmp")] == []


def test_a_copy_that_cannot_be_put_in_place_leaves_no_temporary_file(tmp_path, monkeypatch):
    data = a_store(tmp_path)

    def refused(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(DiskFullError):
        backup.safety_copy(data / "sessions.db", "pre-migrate")
    with pytest.raises(DiskFullError):
        backup.backup(open_database(data / "hitl.db"), tmp_path / "hitl-copy.db")
    monkeypatch.undo()

    assert [f for f in os.listdir(data) if f.endswith(".tmp")] == []
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_restore_set_refuses_an_incomplete_or_altered_set_and_changes_nothing(tmp_path):
    data = a_store(tmp_path)
    complete = backup.backup_set(data, tmp_path / "backups").directory
    (pathlib.Path(complete) / "hitl.db").write_bytes((pathlib.Path(complete) / "references.db").read_bytes())
    shutil.copyfile(data / "hitl.db", tmp_path / "hitl-before.db")
    (data / "references.db").write_bytes(b"this is no SQLite database " * 500)
    incomplete = backup.backup_set(data, tmp_path / "backups").directory
    shutil.copyfile(tmp_path / "hitl-before.db", data / "references.db")  # some database again

    with pytest.raises(DatabaseCorruptError, match="hitl.db does not match its manifest"):
        backup.restore_set(complete, data)
    with pytest.raises(ConflictError, match="incomplete: it lacks references.db") as caught:
        backup.restore_set(incomplete, data)
    assert "one by one" in caught.value.advice
    with pytest.raises(ValidationError, match="not a backup set"):
        backup.restore_set(tmp_path, data)
    assert session_ids(data / "sessions.db") == ["s0"]
    assert backup.safety_copies(data / "sessions.db") == []


def test_restore_set_refuses_a_store_in_use(tmp_path):
    data = a_store(tmp_path)
    run = backup.backup_set(data, tmp_path / "backups")
    with HumanRequestRepository.open(data / "hitl.db") as hitl:
        hitl.get_stats()

        with pytest.raises(ConflictError, match="database is open: .*hitl.db"):
            backup.restore_set(run.directory, data)


# -- dumps ------------------------------------------------------------------------------------


def test_a_dump_file_is_private_whatever_the_umask(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as sessions:
        sessions.save_session(Session(id="s"))
        previous = os.umask(0)
        try:
            dumped = backup.dump_sql(sessions.database, tmp_path / "dump.sql")
        finally:
            os.umask(previous)

    assert stat.S_IMODE(os.stat(dumped).st_mode) == 0o600
    assert [name for name in os.listdir(tmp_path) if not name.startswith("sessions.db")] == ["dump.sql"]


def test_iter_dump_gives_the_statements_of_one_snapshot(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as sessions:
        sessions.save_session(Session(id="s"))
        statements = backup.iter_dump(sessions.database)
        first = next(statements)
        sessions.save_session(Session(id="after_the_dump_began"))
        rest = list(statements)

    assert first == "BEGIN TRANSACTION;" and rest[-1] == "COMMIT;"
    text = "\n".join(rest)
    assert "'s'" in text and "after_the_dump_began" not in text


def test_a_store_opened_again_in_the_same_process_still_counts_as_in_use(tmp_path):
    # Closing any descriptor of a database file drops every POSIX lock the process
    # holds on it: opening a second store must not close one behind SQLite's back.
    data = a_store(tmp_path)
    run = backup.backup_set(data, tmp_path / "backups")
    with open_storage(data, gc_interval=0) as app:
        app.sessions.get_stats()  # holds sessions.db open
        with open_storage(data, gc_interval=0) as worker:
            worker.hitl.get_stats()

        with pytest.raises(ConflictError, match="database is open"):
            backup.restore_set(run.directory, data)
        app.sessions.save_session(Session(id="still_written"))
    assert session_ids(data / "sessions.db") == ["s0", "still_written"]

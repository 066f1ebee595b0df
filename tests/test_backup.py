"""Backups while writers write, verified copies, pruning, restore, and SQL dumps."""

import contextlib
import datetime
import glob
import multiprocessing
import os
import sqlite3

import pytest

from loom_models import (
    ConflictError,
    DatabaseCorruptError,
    LoomStorageError,
    NotFoundError,
    ValidationError,
    backup,
    open_storage,
)
from loom_models.db import open_database
from loom_models.sessions import Message, Session, SessionRepository


def count(path, table="messages"):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM %s" % table).fetchone()[0]


def _keep_writing(path, started, stop):
    with SessionRepository.open(path) as repo:
        repo.save_session(Session(id="busy"))
        started.set()
        while not stop.is_set():
            repo.save_messages("busy", [Message(role="user", content="x" * 300, token_count=1)] * 20)


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
    monkeypatch.setattr(backup, "_STEP_PAGES", 16)  # many steps, for writers to commit between
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


def test_backup_data_dir_writes_every_database_and_prunes_old_copies(tmp_path):
    with open_storage(tmp_path / "data", gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="s"))
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=9)).strftime("%Y%m%dT%H%M%SZ")
    (tmp_path / "backups").mkdir()
    for stale in ("sessions-%s.db" % old, "hitl-%s.db" % old):
        (tmp_path / "backups" / stale).write_bytes(b"old")
    (tmp_path / "backups" / "notes.txt").write_text("not ours")

    written = backup.backup_data_dir(tmp_path / "data", tmp_path / "backups", keep_days=7)

    assert [os.path.basename(p).split("-")[0] for p in written] == ["sessions", "hitl", "references"]
    assert sorted(os.listdir(tmp_path / "backups")) == sorted([os.path.basename(p) for p in written] + ["notes.txt"])
    assert count(written[0], "sessions") == 1
    assert backup.backup_data_dir(tmp_path / "data", tmp_path / "again", keep_days=0)  # what it wrote, it keeps
    assert len(os.listdir(tmp_path / "again")) == 3


def test_restore_round_trip_replaces_the_database_and_its_stale_wal(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as repo:
        repo.save_session(Session(id="kept"))
        backup.backup(repo.database, tmp_path / "copy.db")
        repo.save_session(Session(id="after_the_backup"))
    (tmp_path / "sessions.db-wal").write_bytes(b"stale wal of the old file")

    backup.restore(tmp_path / "copy.db", path)

    assert not (tmp_path / "sessions.db-wal").exists()
    with SessionRepository.open(path) as repo:
        assert [s.id for s in repo.list_sessions()] == ["kept"]


def test_restore_refuses_a_database_that_is_open(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as repo:
        repo.save_session(Session(id="live"))
        backup.backup(repo.database, tmp_path / "copy.db")
        repo.save_session(Session(id="newer"))

        with pytest.raises(ConflictError, match="database is open"):
            backup.restore(tmp_path / "copy.db", path)
        assert len(repo.list_sessions()) == 2


def test_restore_checks_the_backup_before_touching_anything(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as repo:
        repo.save_session(Session(id="precious"))
    (tmp_path / "bad.db").write_bytes(b"garbage " * 1000)

    with pytest.raises(NotFoundError):
        backup.restore(tmp_path / "missing.db", path)
    with pytest.raises(DatabaseCorruptError):
        backup.restore(tmp_path / "bad.db", path)
    assert count(path, "sessions") == 1
    assert glob.glob(str(tmp_path / ".*.tmp")) == []


def test_dump_and_load_sql_round_trip(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as repo:
        repo.save_session(Session(id="s", context={"k": "v"}))
        repo.save_messages("s", [Message(role="user", content='it\'s "quoted"\n')] * 3)
        dumped = backup.dump_sql(repo.database, tmp_path / "dump.sql")

    backup.load_sql(dumped, tmp_path / "loaded.db")

    with SessionRepository.open(tmp_path / "loaded.db") as copy:
        assert copy.load_session("s").context == {"k": "v"}
        assert [m.content for m in copy.load_messages("s")] == ['it\'s "quoted"\n'] * 3
    with pytest.raises(ConflictError):
        backup.load_sql(dumped, tmp_path / "loaded.db")


def test_backups_are_sqlite_only(repo, backend, tmp_path):
    if backend.name == "sqlite":
        assert backup.backup(repo.database, tmp_path / "copy.db") == str(tmp_path / "copy.db")
    else:
        with pytest.raises(NotImplementedError, match="PostgresqlDatabase"):
            backup.backup(repo.database, tmp_path / "never-written.db")
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
    hitl_backup = next(p for p in written if os.path.basename(p).startswith("hitl-"))

    with pytest.raises(ConflictError, match="another database"):
        backup.restore(hitl_backup, tmp_path / "data" / "sessions.db")
    assert count(tmp_path / "data" / "sessions.db", "sessions") == 1


def test_restore_from_a_damaged_backup_names_the_backup(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as repo:
        repo.save_session(Session(id="s"))
    (tmp_path / "bad.db").write_bytes(b"garbage " * 1000)

    with pytest.raises(DatabaseCorruptError, match="backup .*bad.db is not a usable database"):
        backup.restore(tmp_path / "bad.db", tmp_path / "sessions.db")

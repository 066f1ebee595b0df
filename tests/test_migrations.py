"""Schema history: the reference layout, up/down/up, a database ahead of the code,
a backup before migrating data, and many processes opening one fresh store."""

import datetime
import glob
import logging
import multiprocessing
import os
import pathlib
import shutil
import sqlite3
import stat

import pytest

from loom_models import SchemaMismatchError, migrator, open_storage
from loom_models.migrator import MIGRATIONS_DIR, runner
from loom_models.sessions import Message, Session, SessionRepository

APPLIED = [
    "0001_reference_schema",
    "0002_query_indexes",
    "0003_search",
    "0004_search_by_rowid",
    "0005_framework_items",
    "0006_counts",
    "0007_no_prefix_indexes",
    "0008_search_over_messages",
    "0009_index_in_batches",
]

# Column order of the reference implementation's tables.
REFERENCE_COLUMNS = {
    "sessions": [
        "id",
        "name",
        "agent_id",
        "parent_session_id",
        "context_json",
        "created_at",
        "updated_at",
        "total_cost_usd",
        "total_tokens",
    ],
    "messages": [
        "id",
        "session_id",
        "role",
        "content",
        "tool_calls_json",
        "tool_use_id",
        "tool_result_json",
        "session_context",
        "timestamp",
        "token_count",
        "cost_usd",
        "agent_id",
    ],
    "tool_executions": [
        "id",
        "session_id",
        "tool_name",
        "input_json",
        "result_json",
        "error",
        "execution_time_ms",
        "timestamp",
    ],
}


# Ours, after the reference's: the reference implementation neither reads nor writes them.
OUR_COLUMNS = {"messages": ["item_json"]}


def columns(backend, table):
    if backend.name == "sqlite":
        return [row[1] for row in backend.sql("SELECT * FROM pragma_table_info(?)", table)]
    return [
        row[0]
        for row in backend.sql(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            table,
        )
    ]


def history(backend):
    return [row[0] for row in backend.sql("SELECT name FROM schema_migration_sessions ORDER BY name")]


def test_a_fresh_database_gets_the_reference_tables_and_a_history(backend):
    with SessionRepository.open(backend.target):
        pass

    for table, expected in REFERENCE_COLUMNS.items():
        assert columns(backend, table) == expected + OUR_COLUMNS.get(table, [])
    assert history(backend) == APPLIED


def test_opening_again_applies_nothing(backend):
    with SessionRepository.open(backend.target) as repo:
        assert repo.migrate() == []


def test_up_down_up_keeps_working(backend):
    with SessionRepository.open(backend.target) as repo:
        history_runner = runner(repo.database, "sessions")

        assert history_runner.down() == ["0009_index_in_batches"]
        assert history_runner.down() == ["0008_search_over_messages"]
        assert history_runner.down() == ["0007_no_prefix_indexes"]
        assert history_runner.down() == ["0006_counts"]
        assert history_runner.down() == ["0005_framework_items"]
        assert history_runner.down() == ["0004_search_by_rowid"]
        assert history_runner.down() == ["0003_search"]
        assert history_runner.down() == ["0002_query_indexes"]
        assert history_runner.down() == ["0001_reference_schema"]
        assert history(backend) == []
        assert "sessions" not in repo.database.get_tables()

        assert repo.migrate() == APPLIED
        repo.save_session(Session(id="again"))
        repo.save_message("again", Message(role="user", content="still works"))
        assert [m.content for m in repo.load_session("again").messages] == ["still works"]


def test_a_database_ahead_of_the_code_is_refused(backend):
    with SessionRepository.open(backend.target):
        pass
    ahead = len(APPLIED) + 1
    backend.sql(
        "INSERT INTO schema_migration_sessions (name, applied) VALUES (?, ?)",
        "%04d_from_the_future" % ahead,
        datetime.datetime.now(),
    )

    expected = r"^schema version mismatch: expected %d, got %d( \(in .*\))?$" % (len(APPLIED), ahead)
    with pytest.raises(SchemaMismatchError, match=expected):
        SessionRepository.open(backend.target)


def test_without_migrate_an_old_database_is_refused(tmp_path):
    expected = r"expected %d, got 0 \(database not initialised: .*loom-db init" % len(APPLIED)
    with pytest.raises(SchemaMismatchError, match=expected):
        open_storage(tmp_path, migrate=False)
    with open_storage(tmp_path):
        pass
    with open_storage(tmp_path, migrate=False) as storage:
        assert storage.sessions.list_sessions() == []


def test_migration_files_never_import_live_models():
    files = glob.glob(os.path.join(MIGRATIONS_DIR, "*", "[0-9]*.py"))

    assert len(files) >= 2
    for path in files:
        with open(path) as source:
            assert "loom_models" not in source.read(), path


def test_data_is_backed_up_before_it_is_migrated(tmp_path, caplog):
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as repo:
        repo.save_session(Session(id="keep_me"))
        runner(repo.database, "sessions").down()  # as if written by an older release

    with caplog.at_level(logging.WARNING, logger="loom_models"), SessionRepository.open(path) as repo:
        assert repo.load_session("keep_me").id == "keep_me"

    (backup,) = glob.glob(str(tmp_path / "sessions.db.*.pre-migrate-*.bak"))
    assert backup in caplog.text
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    with sqlite3.connect(backup) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT id FROM sessions").fetchall() == [("keep_me",)]
        assert copy.execute("SELECT name FROM schema_migration_sessions ORDER BY name").fetchall() == [
            (n,) for n in APPLIED[:-1]
        ]


def test_a_fresh_database_is_not_backed_up(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db"):
        pass
    assert glob.glob(str(tmp_path / "*.bak")) == []


def _open_together(target, barrier):
    barrier.wait()
    with SessionRepository.open(target) as repo:
        repo.save_session(Session(id="from_%d" % os.getpid()))


def test_many_processes_open_one_fresh_database_at_once(backend):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_open_together, args=(backend.target, barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert history(backend) == APPLIED
    assert backend.sql("SELECT COUNT(*) FROM sessions")[0][0] == 4


REBUILD = """
from peewee import TextField

def up(migrator, db):
    # On SQLite this rebuilds the table: create a copy, move the rows, drop, rename.
    migrator.migrate(migrator.add_column_default("sessions", "name", "untitled"))

def down(migrator, db):
    migrator.migrate(migrator.drop_column_default("sessions", "name"))
"""


def test_a_migration_that_rebuilds_a_table_keeps_its_children(backend, tmp_path, monkeypatch):
    with SessionRepository.open(backend.target) as repo:
        repo.save_session(Session(id="parent"))
        repo.save_session(Session(id="child", parent_session_id="parent"))
        repo.save_messages("parent", [Message(role="user", content="keep")] * 3)
    shutil.copytree(os.path.join(MIGRATIONS_DIR, "sessions"), tmp_path / "migrations" / "sessions")
    (tmp_path / "migrations" / "sessions" / "0099_name_default.py").write_text(REBUILD)
    monkeypatch.setattr(migrator, "MIGRATIONS_DIR", str(tmp_path / "migrations"))

    with SessionRepository.open(backend.target) as repo:
        assert history(backend)[-1] == "0099_name_default"
        assert len(repo.load_session("parent").messages) == 3
        assert repo.load_session("child").parent_session_id == "parent"
        if backend.name == "sqlite":
            assert repo.database.pragma("foreign_keys") == 1
            assert repo.database.execute_sql("PRAGMA foreign_key_check").fetchall() == []


def test_many_processes_opening_a_database_with_data_back_it_up_once(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as repo:
        repo.save_session(Session(id="keep_me"))
        runner(repo.database, "sessions").down()

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_open_together, args=(str(path), barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert len(glob.glob(str(tmp_path / "*.pre-migrate-*.bak"))) == 1
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM schema_migration_sessions ORDER BY name").fetchall() == [
            (n,) for n in APPLIED
        ]
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone() == (5,)


def test_migrate_to_over_a_gap_in_the_history(backend):
    with SessionRepository.open(backend.target) as repo:
        backend.sql("DELETE FROM schema_migration_sessions WHERE name = '0003_search'")

        run = repo.migrate_to("0002_query_indexes")

        reverted = APPLIED[:2:-1]  # down to 0004_search_by_rowid: 0003_search has no row to revert
        assert (run.applied, run.reverted) == ([], reverted)
        assert history(backend) == APPLIED[:2]
        assert repo.migrate_to().applied == APPLIED[2:]


def test_migrate_to_a_migration_without_down_is_a_schema_error(backend, tmp_path, monkeypatch):
    directory = tmp_path / "migrations"
    (directory / "sessions").mkdir(parents=True)
    for name in APPLIED:
        (directory / "sessions" / (name + ".py")).write_text(
            (pathlib.Path(migrator.MIGRATIONS_DIR) / "sessions" / (name + ".py")).read_text().split("\ndef down(")[0]
        )
    with SessionRepository.open(backend.target):
        pass
    monkeypatch.setattr(migrator, "MIGRATIONS_DIR", str(directory))

    with SessionRepository.open(backend.target) as repo, pytest.raises(SchemaMismatchError, match="down"):
        repo.migrate_to("0003_search")
    assert history(backend) == APPLIED

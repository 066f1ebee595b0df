"""Maintenance functions on a live store: SQLite in full, PostgreSQL where they apply."""

import pytest

from loom_models import DatabaseCorruptError, ValidationError, maintenance
from loom_models.db import open_database
from loom_models.sessions import Message, Session, SessionRepository


@pytest.fixture
def database(sessions):
    sessions.save_session(Session(id="s"))
    sessions.save_messages("s", [Message(role="user", content="x" * 2000)] * 50)
    return sessions.database


def test_analyze_reindex_vacuum_and_sizes_work_on_every_backend(database, backend):
    maintenance.analyze(database)
    maintenance.reindex(database)
    maintenance.vacuum(database)

    size = maintenance.sizes(database)
    assert size.database_bytes > 100_000 and size.wal_bytes >= 0
    assert backend.sql("SELECT COUNT(*) FROM messages") == [(50,)]


def test_explain_shows_the_plan_for_text_or_a_query(database, sessions, backend):
    query = sessions.Message.select().where(sessions.Message.session == "s")

    lines = maintenance.explain(database, query)
    text_lines = maintenance.explain(
        database,
        "SELECT * FROM messages WHERE session_id = ?".replace("?", "?" if backend.name == "sqlite" else "%s"),
        ("s",),
    )

    assert lines and text_lines
    if backend.name == "sqlite":
        assert any("INDEX" in line for line in lines)


SQLITE_ONLY = [
    lambda db: maintenance.integrity_check(db),
    lambda db: maintenance.incremental_vacuum(db, 10),
    lambda db: maintenance.wal_checkpoint(db),
    lambda db: maintenance.fragmentation(db),
]


@pytest.mark.parametrize("call", SQLITE_ONLY)
def test_sqlite_only_operations(database, backend, call):
    if backend.name == "sqlite":
        call(database)
    else:
        with pytest.raises(NotImplementedError, match="PostgresqlDatabase"):
            call(database)


def test_a_healthy_database_has_no_problems(tmp_path):
    with SessionRepository.open(tmp_path / "s.db") as sessions:
        sessions.save_session(Session(id="s"))
        assert maintenance.integrity_check(sessions.database) == []
        assert maintenance.integrity_check(sessions.database, quick=True) == []


def test_integrity_check_reports_and_raises_on_damage(tmp_path):
    path = tmp_path / "s.db"
    with SessionRepository.open(path) as sessions:
        sessions.save_session(Session(id="s"))
        sessions.save_messages("s", [Message(role="user", content="m%d" % i) for i in range(2000)])
        sessions.database.execute_sql("PRAGMA foreign_keys = 0")
        sessions.database.execute_sql(
            "INSERT INTO messages (session_id, role, content, timestamp) VALUES ('ghost', 'user', '', 0)"
        )
        # Make the index describe another column than the one its entries hold.
        sessions.database.execute_sql("PRAGMA writable_schema = 1")
        sessions.database.execute_sql(
            "UPDATE sqlite_master SET sql = replace(sql, '(agent_id)', '(role)') WHERE name = 'idx_messages_agent'"
        )

    database = open_database(path)
    problems = maintenance.integrity_check(database)
    assert any("foreign key: messages" in p for p in problems)
    assert any("missing from index idx_messages_agent" in p for p in problems), problems
    with pytest.raises(DatabaseCorruptError, match="integrity check failed"):
        maintenance.integrity_check(database, raise_on_error=True)


def test_wal_checkpoint_and_fragmentation(tmp_path):
    with SessionRepository.open(tmp_path / "s.db") as sessions:
        sessions.save_session(Session(id="s"))
        sessions.save_messages("s", [Message(role="user", content="y" * 4000)] * 200)
        busy, log_pages, checkpointed = maintenance.wal_checkpoint(sessions.database, "TRUNCATE")
        assert busy == 0 and log_pages == checkpointed
        assert maintenance.sizes(sessions.database).wal_bytes == 0

        sessions.delete_session("s")
        before = maintenance.fragmentation(sessions.database)
        assert before.freelist_count > 100 and 0 < before.ratio < 1
        maintenance.vacuum(sessions.database)
        after = maintenance.fragmentation(sessions.database)
        assert after.freelist_count == 0 and after.page_count < before.page_count


def test_bad_arguments_are_validation_errors(tmp_path):
    with SessionRepository.open(tmp_path / "s.db") as sessions:
        with pytest.raises(ValidationError):
            maintenance.wal_checkpoint(sessions.database, "EVERYTHING; DROP TABLE sessions")
        with pytest.raises(ValidationError):
            maintenance.incremental_vacuum(sessions.database, 0)


def test_a_file_too_damaged_to_check_is_one_problem(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"not a database at all " * 500)
    database = open_database(tmp_path / "junk.db")

    assert maintenance.integrity_check(database) == ["file is not a database"]


def test_incremental_vacuum_frees_pages_of_an_incremental_file(tmp_path):
    database = open_database(tmp_path / "s.db", pragmas={"auto_vacuum": "INCREMENTAL"})
    sessions = SessionRepository(database)
    sessions.migrate()
    sessions.save_session(Session(id="s"))
    sessions.save_messages("s", [Message(role="user", content="z" * 4000)] * 100)
    sessions.delete_session("s")
    free = maintenance.fragmentation(database).freelist_count

    assert maintenance.incremental_vacuum(database, 50) == 50
    assert maintenance.fragmentation(database).freelist_count == free - 50


def test_check_holds_a_database_to_the_pragmas_it_was_opened_with(tmp_path):
    database = open_database(tmp_path / "s.db", pragmas={"busy_timeout": 100, "cache_size": 2000})
    sessions = SessionRepository(database)
    sessions.migrate()

    assert maintenance.check(database, [sessions])["problems"] == []
    database.pragma("synchronous", "FULL")
    assert maintenance.check(database, [sessions])["problems"] == [
        {"kind": "pragma", "detail": "synchronous is 2, not 1"}
    ]

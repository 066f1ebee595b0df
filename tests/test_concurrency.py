"""Many writers, in threads and processes; a lock held too long; two stores side by side."""

import contextlib
import multiprocessing
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from loom_models import DatabaseLockedError, open_storage
from loom_models.db import check_pragmas, open_database
from loom_models.sessions import Message, Session, SessionRepository, ToolExecution


def _write_messages(target, session_id, count):
    with SessionRepository.open(target) as sessions:
        for i in range(count):
            sessions.save_message(session_id, Message(role="user", content=str(i), token_count=3, cost_usd=0.125))


def test_four_processes_writing_to_one_session_keep_exact_totals(backend):
    with SessionRepository.open(backend.target) as sessions:
        sessions.save_session(Session(id="shared"))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_messages, args=(backend.target, "shared", 200)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)

    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert backend.sql("SELECT COUNT(*) FROM messages WHERE session_id = 'shared'")[0][0] == 800
    assert backend.sql("SELECT total_tokens, total_cost_usd FROM sessions")[0] == (2400, 100.0)


def test_eight_threads_writing_to_one_session_keep_exact_totals(sessions, backend):
    sessions.save_session(Session(id="shared"))

    def write(_):
        for _ in range(50):
            sessions.save_message("shared", Message(role="user", token_count=1, cost_usd=0.5))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))

    assert sessions.get_stats().message_count == 400
    assert backend.sql("SELECT total_tokens, total_cost_usd FROM sessions")[0] == (400, 200.0)


def test_a_writer_held_past_the_timeout_gives_database_locked(backend):
    with SessionRepository.open(backend.target) as owner:
        owner.save_session(Session(id="sess_1"))
    sessions = SessionRepository(backend.database(lock_timeout_ms=100))
    holding, release = threading.Event(), threading.Event()

    def hold():
        with backend.write_lock():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    try:
        with pytest.raises(DatabaseLockedError) as caught:
            sessions.save_message("sess_1", Message(role="user", content="blocked"))
        assert caught.value.retryable
        assert sessions.load_messages("sess_1") == []  # readers are not blocked
    finally:
        release.set()
        holder.join()

    sessions.save_message("sess_1", Message(role="user", content="after"))
    assert [m.content for m in sessions.load_messages("sess_1")] == ["after"]
    sessions.database.close()


def test_two_stores_in_one_process_never_interfere(tmp_path):
    with open_storage(tmp_path / "a") as a, open_storage(tmp_path / "b") as b:
        errors = []

        def use(storage, name):
            try:
                for i in range(100):
                    storage.sessions.save_session(Session(id="%s%d" % (name, i)))
                    storage.sessions.save_message("%s%d" % (name, i), Message(role="user", content=name))
                    message = storage.sessions.load_messages("%s%d" % (name, i))[0]
                    assert message.content == name and message.session.id == "%s%d" % (name, i)
            except Exception as error:  # reported below, with the other thread's
                errors.append(error)

        threads = [threading.Thread(target=use, args=(s, n)) for s, n in ((a, "a"), (b, "b"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert {s.id[0] for s in a.sessions.list_sessions(limit=None)} == {"a"}
        assert {s.id[0] for s in b.sessions.list_sessions(limit=None)} == {"b"}
        assert a.sessions.get_stats().message_count == b.sessions.get_stats().message_count == 100


WRITES = {
    "save_session": lambda r: r.save_session(Session(id="w")),
    "save_message": lambda r: r.save_message("w", Message(role="user")),
    "save_messages": lambda r: r.save_messages("w", [Message(role="user")] * 2),
    "save_tool_execution": lambda r: r.save_tool_execution("w", ToolExecution(tool_name="t")),
    "delete_sessions_older_than": lambda r: r.delete_sessions_older_than(timedelta(days=1)),
    "delete_session": lambda r: r.delete_session("w"),
}


def test_every_write_takes_the_sqlite_write_lock_up_front(tmp_path):
    # A deferred transaction that reads before it writes fails with SQLITE_BUSY
    # under concurrency, whatever the busy timeout.
    with SessionRepository.open(tmp_path / "sessions.db") as sessions:
        statements = []
        sessions.database.connection().set_trace_callback(statements.append)
        for name, write in WRITES.items():
            statements.clear()
            write(sessions)
            run = [s for s in statements if not s.startswith("PRAGMA")]  # the busy timeout set around BEGIN
            assert run[0] == "BEGIN IMMEDIATE" and run[-1] == "COMMIT", (name, statements)


def test_a_writer_gets_through_a_stream_of_other_writers(tmp_path):
    # Another writer takes the lock again 0.2 ms after each 20 ms transaction.
    # SQLite's busy handler would try every 100 ms by then and most likely miss
    # every gap; trying in short steps finds one within a few.
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as sessions:
        sessions.save_session(Session(id="sess_1"))
    sessions = SessionRepository(open_database(path, pragmas={"busy_timeout": 1000}))
    streaming, stop = threading.Event(), threading.Event()

    def stream():
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
            while not stop.is_set():
                other.execute("BEGIN IMMEDIATE")
                streaming.set()
                time.sleep(0.02)
                other.execute("COMMIT")
                time.sleep(0.0002)

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        streaming.wait(10)
        saved = sessions.save_message("sess_1", Message(role="user", content="through"))
    finally:
        stop.set()
        streamer.join()
    assert [m.id for m in sessions.load_messages("sess_1")] == [saved.id]
    assert check_pragmas(sessions.database)["busy_timeout"] == 1000  # the wait left it as it was
    sessions.database.close()


def test_a_write_that_times_out_leaves_the_busy_timeout_as_it_was(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionRepository.open(path) as owner:
        owner.save_session(Session(id="sess_1"))
    sessions = SessionRepository(open_database(path, pragmas={"busy_timeout": 50}))
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseLockedError):
            sessions.save_message("sess_1", Message(role="user"))
        other.execute("ROLLBACK")
    assert check_pragmas(sessions.database)["busy_timeout"] == 50
    assert not sessions.database.in_transaction()
    sessions.database.close()

"""get_stats stays what a count of the tables says, however the rows change (on PostgreSQL it reads
the counts kept by migration 0006_counts, not the tables)."""

from __future__ import annotations

import functools
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from loom_models import open_storage
from loom_models.sessions import Message, Session, SessionRepository, ToolExecution


def counted(sql) -> tuple:
    """get_stats's figures, counted from the tables themselves (`sql`: a backend's, or a data store's sessions')."""
    ((sessions, messages, executions, cost, tokens),) = sql(
        "SELECT (SELECT COUNT(*) FROM sessions), (SELECT COUNT(*) FROM messages),"
        " (SELECT COUNT(*) FROM tool_executions), (SELECT COALESCE(SUM(total_cost_usd), 0) FROM sessions),"
        " (SELECT COALESCE(SUM(total_tokens), 0) FROM sessions)"
    )
    return (sessions, messages, executions, pytest.approx(float(cost), abs=1e-9), int(tokens))


def figures(sessions) -> tuple:
    return tuple(vars(sessions.get_stats()).values())


def test_every_kind_of_change_keeps_get_stats_equal_to_a_count(sessions, backend):
    for sid in ("a", "b", "c"):
        sessions.save_session(Session(id=sid))
        sessions.save_messages(sid, [Message(role="user", token_count=2, cost_usd=0.25)] * 4)
        sessions.save_tool_execution(sid, ToolExecution(tool_name="search"))
    checks = [
        lambda: sessions.save_message("a", Message(role="assistant", token_count=7, cost_usd=0.125)),
        lambda: sessions.add_usage("a", token_count=100, cost_usd=1.5),
        lambda: sessions.pop_message("b"),
        lambda: sessions.clear_messages("c"),
        lambda: sessions.save_session(Session(id="a", name="renamed")),
        lambda: sessions.import_session({**sessions.export_session("a"), "id": "a2"}),
        lambda: sessions.import_session(sessions.export_session("b"), replace=True),
        lambda: sessions.delete_session("a"),
    ]
    for change in checks:
        change()
        assert figures(sessions) == counted(backend.sql)
    assert figures(sessions)[:3] == (3, 8, 3)


def test_eight_threads_writing_and_deleting_leave_exact_counts(data_store):
    with open_storage(**data_store.location, gc_interval=0) as storage:
        sessions = storage.sessions

        def work(worker):
            for round_ in range(10):
                sid = "w%d-%d" % (worker, round_)
                sessions.save_session(Session(id=sid))
                sessions.save_messages(sid, [Message(role="user", token_count=1, cost_usd=0.5)] * 3)
                sessions.save_message(sid, Message(role="assistant", token_count=2, cost_usd=0.25))
                sessions.save_tool_execution(sid, ToolExecution(tool_name="t"))
                if round_ % 2:
                    sessions.delete_session(sid)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(work, range(8)))

        assert (
            figures(sessions)
            == counted(functools.partial(data_store.sql, "sessions"))
            == (40, 160, 40, 40 * 1.75, 40 * 5)
        )


def _write(location, worker):
    with open_storage(**location, gc_interval=0) as storage:
        for round_ in range(25):
            sid = "p%d-%d" % (worker, round_)
            storage.sessions.save_session(Session(id=sid))
            storage.sessions.save_message(sid, Message(role="user", token_count=1, cost_usd=0.5))


def test_four_processes_leave_exact_counts(data_store):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write, args=(data_store.location, n)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)

    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    with open_storage(**data_store.location, gc_interval=0) as storage:
        assert (
            figures(storage.sessions)
            == counted(functools.partial(data_store.sql, "sessions"))
            == (100, 100, 0, 50.0, 100)
        )


@pytest.fixture
def postgres_only(backend):
    if backend.name != "postgres":
        pytest.skip("PostgreSQL keeps the counts; SQLite counts an index at each call")


def test_postgres_get_stats_reads_the_kept_counts_not_the_tables(sessions, backend, postgres_only):
    sessions.save_session(Session(id="s"))
    plan = "\n".join(sessions.backend.explain(sessions._sql.stats.sql, ()))

    assert "session_counts" in plan
    assert "messages" not in plan and "sessions " not in plan


def test_postgres_kept_counts_are_folded_as_they_grow(sessions, backend, postgres_only):
    sessions.save_session(Session(id="s"))
    for _ in range(300):  # a row each
        sessions.save_message("s", Message(role="user", token_count=1, cost_usd=0.01))

    assert backend.sql("SELECT COUNT(*) FROM session_counts")[0][0] <= 2 * 128
    assert figures(sessions) == counted(backend.sql)


def test_postgres_migrating_a_store_with_data_counts_what_is_there(backend, postgres_only):
    with SessionRepository.open(backend.target) as sessions:
        sessions.save_session(Session(id="before"))
        sessions.migrate_to("0005_framework_items")  # before 0006_counts
        sessions.save_messages("before", [Message(role="user", token_count=40, cost_usd=2.5)])

        assert sessions.migrate() == [
            "0006_counts",
            "0007_no_prefix_indexes",
            "0008_search_over_messages",
            "0009_index_in_batches",
        ]
        assert figures(sessions) == counted(backend.sql) == (1, 1, 0, 2.5, 40)


def test_postgres_reclaimed_counts_keep_their_table_small(sessions, backend, postgres_only):
    sessions.save_session(Session(id="s"))

    def write_then_reclaim() -> int:
        for _ in range(1000):  # a counts row each, folded every 128th: dead rows
            sessions.save_message("s", Message(role="user", token_count=1))
        sessions.reclaim_counts()
        return backend.sql("SELECT pg_relation_size('session_counts')")[0][0]

    first = write_then_reclaim()
    # The space is used again: a page either way, where unreclaimed each round added about 25.
    assert max(write_then_reclaim() for _ in range(3)) <= first + 8192
    assert figures(sessions) == counted(backend.sql)


def test_reclaiming_counts_on_sqlite_does_nothing(sessions, backend):
    sessions.save_session(Session(id="s"))
    sessions.reclaim_counts()
    assert figures(sessions)[:2] == (1, 0)


def test_the_storage_collector_reclaims_the_counts(data_store, monkeypatch):
    reclaimed = threading.Event()
    monkeypatch.setattr(SessionRepository, "reclaim_counts", lambda repository: reclaimed.set())

    with open_storage(**data_store.location, gc_interval=0.05):
        assert reclaimed.wait(10)

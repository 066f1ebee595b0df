"""PostgreSQL's plans of the hot calls use their indexes, on tables no ANALYZE has seen.

A new deployment's tables have no statistics until autovacuum gets to them (it is
off here, so that it cannot): the planner then guesses from the tables' sizes,
and the plans must hold all the same. (SQLite's plans: test_query_plans.py.)
"""

from __future__ import annotations

import datetime

import pytest
from test_query_plans import statements_of

from loom_models.hitl import HumanRequestRepository
from loom_models.sessions import Message, SessionRepository

SESSIONS, MESSAGES_EACH, REQUESTS = 400, 50, 20_000
BIG_TABLES = ("sessions", "messages", "tool_executions", "human_requests")


@pytest.fixture
def postgres(backend):
    if backend.name != "postgres":
        pytest.skip("PostgreSQL's plans; SQLite's are test_query_plans.py's")
    return backend


@pytest.fixture
def sessions(postgres):
    with SessionRepository.open(postgres.target) as repo:
        _without_statistics(postgres, "sessions", "messages", "tool_executions", "session_counts")
        postgres.sql(
            "INSERT INTO sessions (id, agent_id, created_at, updated_at, total_cost_usd, total_tokens)"
            " SELECT 's' || n, 'agent' || mod(n, 20), n, n, 0, 0 FROM generate_series(1, %d) AS n" % SESSIONS
        )
        postgres.sql(
            "INSERT INTO messages (session_id, role, content, session_context, timestamp, token_count, cost_usd)"
            " SELECT 's' || (mod(n, %d) + 1), 'user', 'message ' || n, '', n, 1, 0.001"
            " FROM generate_series(1, %d) AS n" % (SESSIONS, SESSIONS * MESSAGES_EACH)
        )
        yield repo


@pytest.fixture
def requests(postgres):
    with HumanRequestRepository.open(postgres.target) as repo:
        _without_statistics(postgres, "human_requests")
        now = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
        postgres.sql(
            "INSERT INTO human_requests (id, agent_id, session_id, question, context_json, request_type, priority,"
            " timeout_ms, created_at, expires_at, status, response, response_data_json, responded_at, responded_by)"
            " SELECT 'r' || n, 'a' || mod(n, 3), 's' || mod(n, 40), 'why', 'null', 'approval',"
            " (ARRAY['low', 'high'])[mod(n, 2) + 1], 10000000000, %d - n * 1000, %d - n * 1000 + 10000000000,"
            " CASE WHEN mod(n, 10) = 1 THEN 'pending' ELSE 'approved' END, '', '', NULL, ''"
            " FROM generate_series(1, %d) AS n" % (now, now, REQUESTS)
        )
        yield repo


def _without_statistics(postgres, *tables):
    for table in tables:
        postgres.sql("ALTER TABLE %s SET (autovacuum_enabled = false)" % table)


def plans(repo, call) -> list[tuple[str, str]]:
    """(sql, plan) of every statement `call` runs, as the repository ran it; it must run one at least."""
    statements = statements_of(repo, call)
    assert statements, "the call ran no query"
    return [(sql, "\n".join(_explained(repo, sql, params))) for sql, params in statements]


def _explained(repo, sql, params) -> list[str]:
    # A statement sent with its preamble (Backend.index_order_preamble) is planned after it.
    preamble, _, query = sql.rpartition("; ")
    return [row[0] for row in repo.database.execute_sql(preamble + "; " * bool(preamble) + "EXPLAIN " + query, params)]


def scans(plan: str) -> list[str]:
    """The lines of `plan` that read a whole big table."""
    return [line.strip() for line in plan.splitlines() if "Seq Scan on" in line and line.split()[-1] in BIG_TABLES]


SESSION_CALLS = {
    "save_message": lambda r: r.save_message("s7", Message(role="user", content="hi")),
    "latest 100 messages": lambda r: r.load_messages("s7", limit=100),
    "load_session": lambda r: r.load_session("s7"),
    "get_stats": lambda r: r.get_stats(),
    "list_sessions": lambda r: r.list_sessions(limit=20),
    "list_sessions by agent": lambda r: r.list_sessions(agent_id="agent3", limit=20),
    "delete_session": lambda r: r.delete_session("s9"),
}


# The latest messages come in their index's order: sorting them would read all of a long session first.
IN_ORDER = {"latest 100 messages"}


@pytest.mark.parametrize("name", list(SESSION_CALLS))
def test_hot_session_calls_read_no_whole_table(sessions, name):
    for sql, plan in plans(sessions, SESSION_CALLS[name]):
        assert not scans(plan), (sql, plan)
        if name in IN_ORDER:
            assert "Sort" not in plan, (sql, plan)


HITL_CALLS = {
    "list_pending": lambda r: r.list_pending(limit=50),
    "list_pending by agent": lambda r: r.list_pending(agent_id="a1", limit=50),
    "get": lambda r: r.get("r11"),
    "respond_to_request": lambda r: r.respond_to_request("r11", "approved", "", "ada"),
    "expire_overdue": lambda r: r.expire_overdue(),
}


@pytest.mark.parametrize("name", list(HITL_CALLS))
def test_hot_hitl_calls_read_no_whole_table(requests, name):
    for sql, plan in plans(requests, HITL_CALLS[name]):
        assert not scans(plan), (sql, plan)
        if name.startswith("list_pending"):  # walked in the index's order, to the LIMIT: nothing sorted
            assert "idx_human_requests_pending" in plan and "Sort" not in plan, (sql, plan)

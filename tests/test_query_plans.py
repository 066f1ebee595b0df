"""Every query the repositories make is served by an index (SQLite's plans)."""

import datetime
import hashlib
import logging

import pytest

from loom_models import LoomStorageError
from loom_models.hitl import HumanRequestRepository
from loom_models.references import ReferenceRepository
from loom_models.sessions import Message, Session, SessionRepository, ToolExecution


class QueryLog(logging.Handler):
    """Collects the (sql, params) that peewee logs for each statement it runs."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.queries = []

    def emit(self, record):
        if isinstance(record.msg, tuple):
            self.queries.append(record.msg)


@pytest.fixture
def sessions(tmp_path):
    with SessionRepository.open(tmp_path / "sessions.db") as repo:
        for i in range(3):
            repo.save_session(Session(id="s%d" % i, agent_id="a", parent_session_id="s0" if i else None))
            repo.save_messages("s%d" % i, [Message(role="user", content="m")] * 5)
            repo.save_tool_execution("s%d" % i, ToolExecution(tool_name="t"))
        for i in range(30):  # other agents' sessions, so that an agent's are few, as in life
            repo.save_session(Session(id="o%d" % i, agent_id="other%d" % i))
            repo.save_messages("o%d" % i, [Message(role="user", content="o")] * 5)
        repo.database.execute_sql("ANALYZE")
        yield repo


def statements_of(repo, call):
    log, logger = QueryLog(), logging.getLogger("peewee")
    level = logger.level
    logger.addHandler(log)
    logger.setLevel(logging.DEBUG)
    try:
        call(repo)
    finally:
        logger.removeHandler(log)
        logger.setLevel(level)
    return [
        (sql, params)
        for sql, params in log.queries
        # the last statement of the text: a statement may be sent after a preamble (Backend.index_order_preamble)
        if sql.rpartition("; ")[2].lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"))
    ]


def planned(repo, call):
    """(sql, plan steps) of every statement `call` runs; it must run one at least."""
    statements = statements_of(repo, call)
    assert statements, "the call ran no query"
    return [(sql, plan(repo, sql, params)) for sql, params in statements]


def plan(repo, sql, params):
    return [row[-1] for row in repo.database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()]


CALLS = {
    "load_session": lambda r: r.load_session("s1"),
    "list_sessions": lambda r: r.list_sessions(limit=2),
    "list_sessions by agent": lambda r: r.list_sessions(agent_id="a", limit=2),
    "list_sessions page": lambda r: r.list_sessions(agent_id="a", limit=2, before="s1"),
    "list_sessions page, all agents": lambda r: r.list_sessions(limit=2, before="s1"),
    "load_messages": lambda r: r.load_messages("s1"),
    "load_messages latest": lambda r: r.load_messages("s1", limit=2),
    "load_messages before": lambda r: r.load_messages("s1", limit=2, before_id=8),
    "iter_messages": lambda r: list(r.iter_messages("s1", batch_size=2)),
    "save_message": lambda r: r.save_message("s1", Message(role="user")),
    "load_tool_executions": lambda r: r.load_tool_executions("s1"),
    "delete_sessions_older_than": lambda r: r.delete_sessions_older_than(datetime.timedelta(days=1)),
    "list_sessions updated before": lambda r: r.list_sessions(updated_before=datetime.timedelta(days=1), limit=None),
    "delete_session": lambda r: r.delete_session("s0"),
    "load_agent_sessions": lambda r: r.load_agent_sessions("a"),
    "load_messages_from_parent": lambda r: r.load_messages_from_parent("s1"),
    "load_messages_for_agent": lambda r: r.load_messages_for_agent("a", limit=10),
}


def needless_work(sql, step):
    """A plan step that reads more than the answer: a scan, or a sort.

    Walking an index in order under a LIMIT (the newest sessions) reads no more,
    nor does counting per group from a covering index (statistics).
    """
    ordered_walk = "USING" in step and "INDEX" in step and " LIMIT " in sql
    counting = "USING COVERING INDEX" in step and "GROUP BY" in sql
    return "TEMP B-TREE" in step or (step.startswith("SCAN") and not (ordered_walk or counting))


# Messages of several sessions are merged into one order: the sort is of the answer alone.
MERGES_SESSIONS = {"load_messages_for_agent"}


@pytest.mark.parametrize("name", list(CALLS))
def test_no_table_scan_and_no_sort(sessions, name):
    for sql, steps in planned(sessions, CALLS[name]):
        if name in MERGES_SESSIONS:
            steps = [s for s in steps if "TEMP B-TREE FOR ORDER BY" not in s]
        assert not [s for s in steps if needless_work(sql, s)], (sql, steps)


def test_a_cascading_delete_finds_children_by_index(sessions):
    # SQLite plans the foreign key actions of a delete as these lookups.
    for table, column in [
        ("messages", "session_id"),
        ("tool_executions", "session_id"),
        ("sessions", "parent_session_id"),
    ]:
        steps = plan(sessions, "SELECT 1 FROM %s WHERE %s = ?" % (table, column), ("s0",))
        assert steps and all("USING" in s and "INDEX" in s for s in steps), steps


@pytest.fixture
def requests(tmp_path):
    # 3,000 requests, one in ten pending, and no ANALYZE: a real database has no
    # statistics unless someone runs it, and the plans must hold without them.
    with HumanRequestRepository.open(tmp_path / "hitl.db") as repo:
        now = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
        rows = [
            (
                "r%d" % i,
                "a%d" % (i % 3),
                "s%d" % (i % 40),
                "?",
                "null",
                "approval",
                ("low", "high")[i % 2],
                10**10,
                now - i * 1000,
                now - i * 1000 + 10**10,
                "pending" if i % 10 == 1 else "approved",
                "",
                "",
                None,
                "",
            )
            for i in range(3000)
        ]
        with repo.database.atomic():
            repo.database.cursor().executemany("INSERT INTO human_requests VALUES (%s)" % ", ".join("?" * 15), rows)
        yield repo


def _refused(answer) -> None:
    with pytest.raises(LoomStorageError):
        answer()


HITL_CALLS = {
    "list_pending": lambda r: r.list_pending(limit=50),
    "list_pending by agent": lambda r: r.list_pending(agent_id="a1", limit=50),
    "list_pending by session": lambda r: r.list_pending(session_id="s1", limit=50),
    "list_pending by agent and session": lambda r: r.list_pending(agent_id="a1", session_id="s1"),
    "list_by_session": lambda r: r.list_by_session("s1"),
    "get": lambda r: r.get("r1"),
    "respond_to_request": lambda r: r.respond_to_request("r1", "approved", "", "x"),
    "a refused answer": lambda r: _refused(lambda: r.respond_to_request("r0", "approved", "", "x")),
    "get_stats, overdue part": lambda r: r.get_stats(),
    "expire_overdue": lambda r: r.expire_overdue(),
    "delete_older_than": lambda r: r.delete_older_than(datetime.timedelta(hours=20)),
    "list_decided_before": lambda r: r.list_decided_before(datetime.timedelta(hours=20), limit=10),
    "cancel": lambda r: r.cancel("r1", cancelled_by="agent:x"),
}


@pytest.mark.parametrize("name", list(HITL_CALLS))
def test_hitl_queries_use_their_indexes(requests, name):
    for sql, steps in planned(requests, HITL_CALLS[name]):
        assert not [s for s in steps if needless_work(sql, s)], (sql, steps)
        if "= 'pending'" in sql and "WHERE" in sql and 'id" = ' not in sql:
            assert any("pending" in s for s in steps), ("a pending query misses the partial index", sql, steps)


@pytest.fixture
def contents(tmp_path):
    with ReferenceRepository.open(tmp_path / "references.db") as repo:
        for i in range(60):
            repo.store(b"content %d" % i, ttl=None if i % 2 else 3600)
        repo.database.execute_sql("ANALYZE")
        yield repo


REFERENCE_CALLS = {
    "store": lambda r: r.store(b"content 1"),
    "resolve": lambda r: r.resolve(hashlib.sha256(b"content 1").hexdigest()),
    "retain": lambda r: r.retain(hashlib.sha256(b"content 1").hexdigest()),
    "release": lambda r: r.release(hashlib.sha256(b"content 3").hexdigest()),
    "get": lambda r: r.get(hashlib.sha256(b"content 1").hexdigest()),
    "list": lambda r: r.list(limit=10),
    "collect_garbage": lambda r: r.collect_garbage(),
}


@pytest.mark.parametrize("name", list(REFERENCE_CALLS))
def test_reference_queries_use_their_indexes(contents, name):
    for sql, steps in planned(contents, REFERENCE_CALLS[name]):
        assert not [s for s in steps if needless_work(sql, s)], (sql, steps)

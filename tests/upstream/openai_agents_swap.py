"""A pytest plugin: the OpenAI Agents SDK's own session tests, with LoomSession as their SQLiteSession.

    cd openai_agents-0.24.0 && python -m pytest -p openai_agents_swap tests/memory/test_session.py ...

(run_openai_agents.py does this from the SDK's source package.) SQLiteSession's
constructor is (session_id, db_path=":memory:", sessions_table, messages_table,
session_settings): ":memory:" is a fresh store of its own; a file path is the
store of that path, so that two sessions on one path share it. On SQLite the
store is the data directory `<db_path>.loom`; with LOOM_TEST_DATABASE_URL set,
a schema of that PostgreSQL database, dropped at the end. The tests of
SQLiteSession's internals are deselected, each for the reason written below.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from urllib.parse import quote

import agents
import pytest

from loom_models.integrations.openai_agents import LoomSession

POSTGRES_URL = os.environ.get("LOOM_TEST_DATABASE_URL")
# Of the 71 tests of test_session.py and test_session_limit.py, this many must pass.
AT_LEAST_PASSED = 53

INTERNALS = "tests SQLiteSession's internals, not the Session protocol: "
DESELECTED = {
    "test_sqlite_session_close_closes_worker_thread_connections": INTERNALS + "its per-thread sqlite3 connections",
    "test_sqlite_session_reaps_connections_from_exited_worker_threads": INTERNALS + "its per-thread connections",
    "test_sqlite_session_closes_retired_connections_before_the_next_allocation": INTERNALS + "its connection set",
    "test_sqlite_session_keeps_connections_of_live_worker_threads": INTERNALS + "its per-thread connections",
    "test_sqlite_session_closed_rejects_empty_add_items": INTERNALS
    + "it expects the message 'SQLiteSession is closed' (LoomSession raises LoomStorageError 'is closed')",
    "test_sqlite_session_pop_item_skips_corrupt_most_recent": INTERNALS
    + "it writes corrupt JSON rows into agent_messages with sqlite3 (loom reports a corrupt row, never skips it)",
    "test_sqlite_session_pop_item_returns_none_after_dropping_only_corrupt_rows": INTERNALS
    + "corrupt rows written with sqlite3 into its own table",
    "test_sqlite_session_get_items_limit_skips_corrupt_newest_rows": INTERNALS
    + "corrupt rows written with sqlite3 into its own table",
    "test_sqlite_session_get_items_session_settings_limit_skips_corrupt_rows": INTERNALS
    + "corrupt rows written with sqlite3 into its own table",
    "test_sqlite_session_file_lock_is_shared_across_instances": INTERNALS + "its process-wide lock per file",
    "test_sqlite_session_failed_add_items_releases_write_lock": INTERNALS
    + "it probes its agent_sessions table with sqlite3 (loom validates items before any write: nothing to roll back)",
    "test_sqlite_session_failed_clear_session_rolls_back": INTERNALS + "it makes its own statements fail",
    "test_sqlite_session_failed_pop_item_releases_write_lock": INTERNALS + "it makes its own statements fail",
    "test_sqlite_session_rollback_failure_evicts_connection": INTERNALS + "its connection eviction",
    "test_sqlite_session_close_retries_quarantined_connection": INTERNALS + "its quarantined connections",
    "test_sqlite_session_post_commit_cancellation_propagates_after_known_outcome": INTERNALS
    + "it patches its commit (loom's own cancellation test: tests/test_aio.py)",
}


class Stores:
    """Where each SQLiteSession(db_path) of a test keeps its items, and their cleanup."""

    def __init__(self) -> None:
        self.sessions: list[LoomSession] = []
        self.directories: list[str] = []
        self.schemas: set[str] = set()

    def location(self, db_path: object) -> dict:
        path = os.fspath(db_path)  # type: ignore[call-overload]
        if POSTGRES_URL:
            name = uuid.uuid4().hex if path == ":memory:" else hashlib.sha1(path.encode()).hexdigest()
            return {"database_url": self._schema("loom_sdk_" + name[:16])}
        if path == ":memory:":
            self.directories.append(tempfile.mkdtemp(prefix="loom-sdk-"))
            return {"data_dir": self.directories[-1]}
        return {"data_dir": path + ".loom"}

    def _schema(self, schema: str) -> str:
        if schema not in self.schemas:
            _postgres("CREATE SCHEMA IF NOT EXISTS %s" % schema)
            self.schemas.add(schema)
        separator = "&" if "?" in POSTGRES_URL else "?"  # type: ignore[operator]
        return "%s%soptions=%s" % (POSTGRES_URL, separator, quote("-csearch_path=%s" % schema))

    def clean(self) -> None:
        for session in self.sessions:
            session.close()
        for schema in self.schemas:
            _postgres("DROP SCHEMA %s CASCADE" % schema)
        for directory in self.directories:
            shutil.rmtree(directory, ignore_errors=True)
        self.sessions.clear()
        self.directories.clear()
        self.schemas.clear()


def _postgres(statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(POSTGRES_URL)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


STORES = Stores()


class SwappedSession(LoomSession):
    """LoomSession with SQLiteSession's constructor."""

    def __init__(
        self,
        session_id: str,
        db_path: object = ":memory:",
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        session_settings: object = None,
    ) -> None:
        super().__init__(session_id, session_settings=session_settings, **STORES.location(db_path))  # type: ignore[arg-type]
        STORES.sessions.append(self)


def pytest_configure(config: pytest.Config) -> None:
    # Before the SDK's test modules run `from agents import SQLiteSession`.
    agents.SQLiteSession = SwappedSession  # type: ignore[misc]
    config.addinivalue_line("markers", "loom_swapped: the SDK's test, run against LoomSession")


def pytest_report_header() -> str:
    return "SQLiteSession is loom_models' LoomSession, on %s" % ("PostgreSQL" if POSTGRES_URL else "SQLite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, deselected = [], []
    for item in items:
        (deselected if item.originalname in DESELECTED else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    yield
    STORES.clean()  # each test's stores, closed and removed


PASSED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        PASSED.append(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    terminalreporter.section("deselected: SQLiteSession's internals")
    for name, reason in DESELECTED.items():
        terminalreporter.write_line("%s: %s" % (name, reason.removeprefix(INTERNALS)))
    if len(PASSED) < AT_LEAST_PASSED:
        terminalreporter.write_line("only %d passed, fewer than %d" % (len(PASSED), AT_LEAST_PASSED), red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus == 0 and len(PASSED) < AT_LEAST_PASSED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

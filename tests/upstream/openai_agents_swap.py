"""A pytest plugin: the OpenAI Agents SDK's own session tests, with LoomSession as their SQLiteSession.

    cd openai_agents-0.24.0 && python -m pytest -p openai_agents_swap tests/memory/test_session.py ...

(run_openai_agents.py does this from the SDK's source package.) SQLiteSession's
constructor is (session_id, db_path=":memory:", sessions_table, messages_table,
session_settings): ":memory:" is a fresh store of its own; a file path is the
store of that path, so that two sessions on one path share it (throwaway.py). The tests of
SQLiteSession's internals are deselected, each for the reason written below.
"""

from __future__ import annotations

import agents
import pytest
from guards import AtLeastPassed, Deselected
from throwaway import POSTGRES_URL, ThrowawayStores

from loom_models.integrations.openai_agents import LoomSession

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


STORES = ThrowawayStores("loom_sdk_")


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
        STORES.close_later(self.close)


def pytest_configure(config: pytest.Config) -> None:
    # Before the SDK's test modules run `from agents import SQLiteSession`.
    agents.SQLiteSession = SwappedSession  # type: ignore[misc]
    deselected = {name: reason.removeprefix(INTERNALS) for name, reason in DESELECTED.items()}
    for plugin in (STORES, Deselected("SQLiteSession's internals", deselected), AtLeastPassed(AT_LEAST_PASSED)):
        config.pluginmanager.register(plugin)


def pytest_report_header() -> str:
    return "SQLiteSession is loom_models' LoomSession, on %s" % ("PostgreSQL" if POSTGRES_URL else "SQLite")

"""The pool of PostgreSQL connections: its size, connections given back, many threads, waits, lost connections.

PostgreSQL only (LOOM_TEST_DATABASE_URL): SQLite files take no pool_size.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import POSTGRES_URL
from test_cli import script

from loom_models import DatabaseUnavailableError, ValidationError, aio, open_storage
from loom_models.sessions import Message, Session

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="a PostgreSQL pool: runs with LOOM_TEST_DATABASE_URL")


def with_params(url: str, **params) -> str:
    return url + ("&" if "?" in url else "?") + "&".join("%s=%s" % item for item in params.items())


@pytest.fixture
def named(backend):
    """The suite's URL with an application_name of its own: its connections can be told from the others'."""
    name = "loom-pool-%s" % uuid.uuid4().hex[:8]
    return with_params(backend.target, application_name=name), name


def terminate(backend, name: str, *, wait: bool = True) -> int:
    """pg_terminate_backend every connection of `name`, as an administrator (or a server restart) would.

    `wait`: until the server has ended them (pg_terminate_backend only signals them).
    """
    rows = backend.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?", name, search_path=False
    )
    deadline = time.monotonic() + 10
    while wait and _connections_of(backend, name) and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(rows)


def _connections_of(backend, name: str, *, waiting_for_a_lock: bool = False) -> int:
    query = "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ?"
    if waiting_for_a_lock:
        query += " AND wait_event_type = 'Lock'"
    return backend.sql(query, name, search_path=False)[0][0]


def test_pool_size_from_the_argument_or_the_url(backend):
    with open_storage(database_url=backend.target, pool_size=4, gc_interval=0) as storage:
        assert storage.pool_stats().size == 4
        assert storage.stats()["pool"]["size"] == 4
    with open_storage(database_url=with_params(backend.target, pool_size=3), gc_interval=0) as storage:
        assert storage.pool_stats().size == 3
    with open_storage(database_url=backend.target, gc_interval=0) as storage:
        assert storage.pool_stats().size is None and storage.stats()["pool"]["size"] is None  # as threads ask
    pooled = backend.target.replace("postgresql://", "postgresql+pool://", 1)
    with open_storage(database_url=with_params(pooled, max_connections=5, stale_timeout=300), gc_interval=0) as storage:
        assert storage.pool_stats().size == 5  # playhouse's own name for it


def test_threads_that_come_and_go_share_one_connection(backend, monkeypatch):
    """LangGraph runs each graph's tasks in threads of their own: a connection each would cost 5-10 ms."""
    with open_storage(database_url=backend.target, gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="s1"))  # and gives its connection back
        adapter, opened = storage.sessions.database._adapter, []
        connect = adapter.connect
        monkeypatch.setattr(adapter, "connect", lambda *args, **kw: opened.append(connect(*args, **kw)) or opened[-1])
        for _ in range(20):
            thread = threading.Thread(target=storage.sessions.save_message, args=("s1", Message(role="user")))
            thread.start()
            thread.join()
        assert storage.sessions.get_stats().message_count == 20
        assert opened == [] and storage.pool_stats().open == 1


@pytest.mark.parametrize("size", [0, -1, "many", True])
def test_a_pool_size_that_is_no_size_is_refused(backend, size):
    with pytest.raises(ValidationError):
        open_storage(database_url=backend.target, pool_size=size, gc_interval=0)


def test_a_data_directory_takes_no_pool_size(tmp_path):
    with pytest.raises(ValidationError, match="pool_size"):
        open_storage(tmp_path / "data", pool_size=4)
    assert not (tmp_path / "data").exists()


def test_each_call_gives_its_connection_back(backend):
    with open_storage(database_url=backend.target, pool_size=2, gc_interval=0) as storage:
        with ThreadPoolExecutor(6) as threads:  # more threads than connections, one call each
            list(threads.map(lambda n: storage.sessions.save_session(Session(id="s%d" % n)), range(6)))
        figures = storage.pool_stats()
        assert (figures.in_use, figures.open) == (0, figures.idle) and 1 <= figures.open <= 2
        with storage.sessions.database.atomic():  # a caller's transaction keeps its connection to its end
            storage.sessions.save_message("s1", Message(role="user", content="in a transaction"))
            assert storage.pool_stats().in_use == 1
        storage.sessions.get_stats()  # the next call, after it, gives it back
        assert storage.pool_stats().in_use == 0


def test_32_threads_share_8_connections_and_keep_exact_totals(backend):
    with open_storage(database_url=backend.target, pool_size=8, gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="shared"))

        def write(_):
            for _ in range(25):
                storage.sessions.save_message("shared", Message(role="user", token_count=1, cost_usd=0.5))

        with ThreadPoolExecutor(32) as threads:
            list(threads.map(write, range(32)))

        assert storage.sessions.get_stats().message_count == 800
        assert backend.sql("SELECT total_tokens, total_cost_usd FROM sessions")[0] == (800, 400.0)
        assert storage.pool_stats().open <= 8


def test_a_thread_waits_for_a_connection_and_the_wait_is_counted(backend):
    with open_storage(database_url=backend.target, pool_size=2, gc_interval=0) as storage:
        holding, release = threading.Barrier(3), threading.Event()

        def hold():
            with storage.sessions.database.atomic():  # keeps its connection
                storage.sessions.get_stats()
                holding.wait(10)
                release.wait(10)
            storage.sessions.database.close()  # a transaction of one's own: its connection given back by hand

        holders = [threading.Thread(target=hold) for _ in range(2)]
        for holder in holders:
            holder.start()
        holding.wait(10)  # both connections in use
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        assert storage.sessions.get_stats().session_count == 0  # once a connection came free
        waited = time.monotonic() - started
        for holder in holders:
            holder.join(10)

        figures = storage.pool_stats()
        assert figures.waits == 1 and 0.2 <= figures.wait_seconds <= waited + 0.01


def test_the_next_call_after_the_server_ended_the_connections_works(backend, named):
    url, name = named
    with open_storage(database_url=url, pool_size=4, gc_interval=0) as storage:
        with ThreadPoolExecutor(4) as threads:
            list(threads.map(lambda n: storage.sessions.save_session(Session(id="s%d" % n)), range(4)))
        assert terminate(backend, name) >= 1  # as a restart, or an administrator, would

        assert storage.sessions.get_stats().session_count == 4  # no error: the dead connections are dropped
        assert storage.pool_stats().in_use == 0


def test_a_call_in_flight_when_its_connection_ends_gets_the_retryable_unavailable_error(backend, named):
    url, name = named
    with open_storage(database_url=url, pool_size=2, gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="s1"))
        outcome = []

        def blocked_write():
            try:
                storage.sessions.save_message("s1", Message(role="user", content="waits for the lock"))
                outcome.append("written")
            except DatabaseUnavailableError as error:
                outcome.append(error)

        with backend.write_lock():
            writer = threading.Thread(target=blocked_write)
            writer.start()
            deadline = time.monotonic() + 10
            while not _connections_of(backend, name, waiting_for_a_lock=True) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert terminate(backend, name, wait=False) >= 1
            writer.join(10)

        assert not writer.is_alive() and len(outcome) == 1
        assert isinstance(outcome[0], DatabaseUnavailableError) and outcome[0].retryable
        storage.sessions.save_message("s1", Message(role="user", content="after"))  # the next call works
        assert [m.content for m in storage.sessions.load_messages("s1")] == ["after"]


def test_loom_db_stats_shows_the_pool(backend):
    url = with_params(backend.target, pool_size=2)
    assert script("--database-url", url, "init", capture_output=True).returncode == 0
    shown = script("--database-url", url, "stats", capture_output=True, text=True)
    document = json.loads(script("--database-url", url, "--json", "stats", capture_output=True, text=True).stdout)
    unbounded = script("--database-url", backend.target, "stats", capture_output=True, text=True)

    assert document["pool"]["size"] == 2 and document["pool"]["in_use"] == 0
    assert re.search(r"pool connections +\d of 2 \(0 in use\)", shown.stdout), shown.stdout
    assert re.search(r"pool waits +0 \(0\.000 s\)", shown.stdout), shown.stdout
    assert re.search(r"pool connections +1 \(0 in use\)", unbounded.stdout), unbounded.stdout


def test_a_connection_whose_socket_is_numbered_past_1024_is_checked_too(backend):
    """select() refuses such a socket; a server process with many files open has them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(4096, hard)), hard))
    files = [open(os.devnull) for _ in range(1100)]  # noqa: SIM115 - held open, closed below
    try:
        with open_storage(database_url=backend.target, pool_size=2, gc_interval=0) as storage:
            storage.sessions.save_session(Session(id="s1"))
            assert storage.sessions.get_stats().session_count == 1  # a check-out of the pooled connection
            assert storage.pool_stats().open == 1
    finally:
        for file in files:
            file.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_async_storage_pools_too(backend):
    async def fifty_writes_at_once():
        async with aio.open_storage(database_url=backend.target, pool_size=2, gc_interval=0) as storage:
            await storage.sessions.save_session(Session(id="shared"))
            writes = [storage.sessions.save_message("shared", Message(role="user", token_count=1)) for _ in range(50)]
            await asyncio.gather(*writes)
            return storage.pool_stats(), (await storage.sessions.get_stats()).message_count

    figures, messages = asyncio.run(fifty_writes_at_once())

    assert messages == 50
    assert figures.size == 2 and 1 <= figures.open <= 2 and figures.in_use == 0


def test_a_pooled_connection_is_checked_out_without_a_round_trip(backend, monkeypatch):
    """playhouse's own check at each check-out is a SELECT 1: a round trip more per call."""
    with open_storage(database_url=backend.target, gc_interval=0) as storage:
        database = storage.sessions.database
        asked = []
        monkeypatch.setattr(database._adapter, "is_connection_closed", lambda conn: asked.append(conn) or False)
        storage.sessions.save_session(Session(id="s1"))
        storage.sessions.get_stats()
        assert storage.pool_stats().open == 1 and asked == []

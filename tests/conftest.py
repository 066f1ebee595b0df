"""One contract suite, two backends.

The `backend` fixture is SQLite (one file in the test's temporary directory, for
every domain) unless LOOM_TEST_DATABASE_URL names a PostgreSQL database; then each
test gets a throw-away schema of its own in it, dropped afterwards. Tests check results
through the backend's raw SQL, not through the repository under test.

With LOOM_TEST_PGBOUNCER_URL too (a pgbouncer before that database), the code under
test connects through pgbouncer, as a throw-away role whose search path is the
test's schema: pgbouncer forwards no `options` to set it with.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
import uuid
import warnings
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from hypothesis import strategies as st

from loom_models import maintenance
from loom_models.db import open_database, redact
from loom_models.hitl import HumanRequestRepository
from loom_models.references import ReferenceRepository
from loom_models.sessions import SessionRepository
from loom_models.storage import DOMAINS

# Any value a caller might pass, for Hypothesis: scalars of every kind, and lists and dicts of them.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=20),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.timedeltas(),
    st.tuples(st.integers()),
)
anything = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3), max_leaves=8
)

POSTGRES_URL = os.environ.get("LOOM_TEST_DATABASE_URL")
# A pgbouncer in transaction pooling before that database (.ci/run starts one): the
# code under test connects through it; the suite's own SQL still goes straight there.
PGBOUNCER_URL = os.environ.get("LOOM_TEST_PGBOUNCER_URL")


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, tmp_path):
        self.target = str(tmp_path / "loom.db")

    def database(self, lock_timeout_ms: int | None = None):
        pragmas = {"busy_timeout": lock_timeout_ms} if lock_timeout_ms else None
        return open_database(self.target, pragmas=pragmas)

    def sql(self, query: str, *params) -> list[tuple]:
        with contextlib.closing(sqlite3.connect(self.target)) as connection, connection:
            return connection.execute(query, params).fetchall()

    @contextlib.contextmanager
    def write_lock(self, tables=()):
        """Hold the database's write lock, as another writer would."""
        with contextlib.closing(sqlite3.connect(self.target, isolation_level=None)) as connection:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")

    def close(self):
        pass


class PostgresBackend:
    name = "postgres"

    def __init__(self, url: str):
        import psycopg2

        self._psycopg2 = psycopg2
        self.url = url
        self.schema = "loom_test_" + uuid.uuid4().hex[:12]
        if PGBOUNCER_URL:
            self.target = self._through_pgbouncer()
        else:
            self.target = self._url_with("-csearch_path=%s" % self.schema)
            self.sql("CREATE SCHEMA %s" % self.schema, search_path=False)

    def _through_pgbouncer(self) -> str:
        """A role of the test's own, whose default search path is its schema: pgbouncer forwards no options."""
        self.sql("CREATE ROLE %s LOGIN" % self.schema, search_path=False)
        self.sql("CREATE SCHEMA %s AUTHORIZATION %s" % (self.schema, self.schema), search_path=False)
        self.sql("ALTER ROLE %s SET search_path = %s" % (self.schema, self.schema), search_path=False)
        parts = urlsplit(PGBOUNCER_URL)
        return urlunsplit(parts._replace(netloc="%s@%s" % (self.schema, parts.netloc.rsplit("@", 1)[-1])))

    def _url_with(self, options: str) -> str:
        separator = "&" if "?" in self.url else "?"
        return "%s%soptions=%s" % (self.url, separator, quote(options))

    def database(self, lock_timeout_ms: int | None = None):
        if not lock_timeout_ms:
            return open_database(self.target)
        return open_database(self._url_with("-csearch_path=%s -clock_timeout=%d" % (self.schema, lock_timeout_ms)))

    def _connect(self, search_path: bool = True):
        dsn = self.url.split("?")[0]
        options = "-csearch_path=%s" % self.schema if search_path else ""
        return self._psycopg2.connect(dsn, options=options)

    def sql(self, query: str, *params, search_path: bool = True) -> list[tuple]:
        with contextlib.closing(self._connect(search_path)) as connection, connection, connection.cursor() as cursor:
            cursor.execute(query.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    @contextlib.contextmanager
    def write_lock(self, tables=("sessions", "messages", "tool_executions")):
        """Block writers of these tables (readers go on), as a long writer would."""
        with contextlib.closing(self._connect()) as connection:
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE %s IN EXCLUSIVE MODE" % ", ".join(tables))
                yield
            connection.rollback()

    def close(self):
        self.sql("DROP SCHEMA %s CASCADE" % self.schema, search_path=False)
        if PGBOUNCER_URL:
            self.sql("DROP ROLE %s" % self.schema, search_path=False)


@pytest.fixture
def backend(tmp_path):
    store = _postgres_backend(POSTGRES_URL) if POSTGRES_URL else SQLiteBackend(tmp_path)
    yield store
    store.close()


@pytest.fixture
def sessions(backend):
    with SessionRepository.open(backend.target) as repository:
        yield repository


@pytest.fixture
def hitl(backend):
    with HumanRequestRepository.open(backend.target) as repository:
        yield repository


@pytest.fixture
def references(backend):
    with ReferenceRepository.open(backend.target) as repository:
        yield repository


def _postgres_backend(url: str) -> PostgresBackend:
    import psycopg2

    try:
        return PostgresBackend(url)
    except psycopg2.Error as error:  # one line, without the password a traceback would show
        problem = "LOOM_TEST_DATABASE_URL=%s: %s" % (redact(url), " ".join(str(error).split()))
    pytest.fail(problem, pytrace=False)


class DataStore:
    """A whole store (every domain) under test, for tests that open it in other processes:
    a data directory on SQLite, the backend's schema on PostgreSQL.

        open_storage(**store.location, gc_interval=0)   # in any process: `location` pickles
        store.sql("hitl", "SELECT status FROM human_requests")
    """

    def __init__(self, backend, tmp_path):
        self.backend = backend
        self.sqlite = backend.name == "sqlite"
        self.target = str(tmp_path / "data") if self.sqlite else backend.target
        self.location = {"data_dir": self.target} if self.sqlite else {"database_url": self.target}

    def sql(self, domain: str, query: str, *params) -> list[tuple]:
        if not self.sqlite:
            return self.backend.sql(query, *params)
        with contextlib.closing(sqlite3.connect(self._path(domain))) as connection:
            return connection.execute(query, params).fetchall()

    @contextlib.contextmanager
    def write_lock(self, domain: str = "sessions"):
        """Hold the write lock of a domain's tables, as another writer would."""
        if not self.sqlite:
            tables = {} if domain == "sessions" else {"tables": (DOMAINS[domain].table,)}
            with self.backend.write_lock(**tables):
                yield
            return
        with contextlib.closing(sqlite3.connect(self._path(domain), isolation_level=None)) as connection:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")

    def integrity_problems(self) -> dict:
        """integrity_check of every database file (SQLite's own: {} on PostgreSQL)."""
        if not self.sqlite:
            return {}
        problems = {}
        for domain in DOMAINS:
            if not os.path.exists(self._path(domain)):  # a process was killed before it made it
                continue
            database = open_database(self._path(domain))
            try:
                problems[domain] = maintenance.integrity_check(database)
            finally:
                database.close()
        return {domain: found for domain, found in problems.items() if found}

    def _path(self, domain: str) -> str:
        return os.path.join(self.target, DOMAINS[domain].file)


@pytest.fixture
def data_store(backend, tmp_path):
    return DataStore(backend, tmp_path)


@pytest.fixture
def in_a_forked_child():
    """A function: the exit code of `work()` run in a forked child, 0 when it returns True; killed after 20 s."""

    def run(work):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: what such tests are about
            child = os.fork()
        if child == 0:
            signal.alarm(20)  # a hang must fail the test, not stall it
            try:
                os._exit(0 if work() else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(child, 0)
        return os.waitstatus_to_exitcode(status)

    return run


@pytest.fixture
def new_york(monkeypatch):
    """The process's local time zone is New York's (UTC-5 in winter) for the test."""
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")  # its rule itself: no time zone database needed
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()

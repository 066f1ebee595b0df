"""The loom-db command, driven through click's runner (and once as the installed script).

Commands that apply to both backends run on the suite's backend (a data directory
on SQLite, the `backend` fixture's URL on PostgreSQL); the SQLite-only ones always
run on a data directory of their own. Results are checked through raw SQL or the
--json output.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import pty
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from loom_models import DiskFullError, cli, db, migrator, open_storage
from loom_models.backends import sqlite as sqlite_backend
from loom_models.checkpoints import CheckpointRepository
from loom_models.cli import EXIT_CODES, main
from loom_models.cli.output import money, size
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session, SessionRepository, ToolExecution
from loom_models.storage import DATABASE_FILES, DOMAINS

NOW = datetime.datetime.now(datetime.timezone.utc)
OLD = int((NOW - datetime.timedelta(days=60)).timestamp())


def run(*args, input=None, env=None):
    """loom-db with these arguments; $LOOM_DATA_DIR unset unless `env` sets it."""
    return CliRunner().invoke(main, [str(a) for a in args], input=input, env={"LOOM_DATA_DIR": None, **(env or {})})


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def ok_json(*args, **kwargs):
    return json.loads(ok(run(*args, **kwargs)).stdout)


def fails(result, code: int):
    """The exit code, and the one-line error, without a traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    return result


class Store:
    """An initialised store and raw SQL on it: a data directory, or a PostgreSQL schema."""

    def __init__(self, args, sql, open_args):
        self.args, self._sql, self._open_args = args, sql, open_args
        self.data_dir = open_args.get("data_dir")

    def __call__(self, *args, **kwargs):
        return run(*self.args, *args, **kwargs)

    def sql(self, domain: str, query: str, *params):
        return self._sql(domain, query, *params)

    def count(self, domain: str, table: str) -> int:
        return self.sql(domain, "SELECT COUNT(*) FROM %s" % table)[0][0]

    def storage(self):
        return open_storage(gc_interval=0, **self._open_args)


def sqlite_sql(data_dir):
    def sql(domain, query, *params):
        with contextlib.closing(sqlite3.connect(os.path.join(data_dir, domain + ".db"))) as connection, connection:
            return connection.execute(query, params).fetchall()

    return sql


def data_dir_store(path) -> Store:
    store = Store(["--data-dir", path], sqlite_sql(path), {"data_dir": path})
    ok(store("init"))
    return store


@pytest.fixture
def store(backend, tmp_path):
    """An initialised store on the suite's backend."""
    if backend.name == "sqlite":
        return data_dir_store(tmp_path / "data")
    url_store = Store(
        ["--database-url", backend.target], lambda _, q, *p: backend.sql(q, *p), {"database_url": backend.target}
    )
    ok(url_store("init"))
    return url_store


@pytest.fixture
def sqlite_store(tmp_path):
    """An initialised data directory, whatever the suite's backend."""
    return data_dir_store(tmp_path / "sqlite-data")


def fill(store: Store) -> str:
    """One session with two messages and a tool execution; its id."""
    with store.storage() as storage:
        storage.sessions.save_session(Session(id="sess_1", name="Support", context={"user": "john"}))
        storage.sessions.save_messages(
            "sess_1",
            [
                Message(role="user", content="Where is my order?", token_count=7, cost_usd=0.25),
                Message(role="assistant", content="On its way.", token_count=5, cost_usd=0.5, tool_calls=[{"id": 1}]),
            ],
        )
        storage.sessions.save_tool_execution("sess_1", ToolExecution(tool_name="lookup", input={"order": 42}))
    return "sess_1"


def without_ids(document: dict) -> dict:
    rows = {
        name: [{k: v for k, v in row.items() if k != "id"} for row in document[name]]
        for name in ("messages", "tool_executions")
    }
    return {**document, **rows}


def put_thread(store: Store, thread_id: str, *, checkpoints: int = 3, namespaces=("",), days_ago: float = 0) -> None:
    """A LangGraph thread stored `days_ago`: in each namespace, checkpoints 0001, 0002... each with
    its own value of channel "x" and a pending write."""
    with store.storage() as storage:
        for namespace in namespaces:
            for n in range(1, checkpoints + 1):
                checkpoint_id, version = "%04d" % n, "%08d" % n
                row = {
                    "checkpoint_ns": namespace,
                    "checkpoint_id": checkpoint_id,
                    "type": "json",
                    "checkpoint": b"{}",
                    "metadata": {"step": n},
                    "channel_versions": {"x": version},
                }
                value = {"channel": "x", "version": version, "type": "json", "value": b"%d" % n}
                storage.checkpoints.put(thread_id, row, [value])
                write = {"checkpoint_ns": namespace, "checkpoint_id": checkpoint_id, "task_id": "task", "idx": 0}
                storage.checkpoints.put_writes(thread_id, [{**write, "channel": "x", "type": "json", "value": b"1"}])
        if days_ago:
            Checkpoint = storage.checkpoints.Checkpoint
            moment = NOW - datetime.timedelta(days=days_ago)
            Checkpoint.update(created_at=moment).where(Checkpoint.thread_id == thread_id).execute()


def checkpoints_by_thread(store: Store) -> dict:
    """{thread id: {"checkpoints": [(namespace, checkpoint id, its writes)], "values": n}}, through raw SQL."""
    rows = store.sql(
        "checkpoints",
        "SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id,"
        " (SELECT COUNT(*) FROM graph_writes w WHERE w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns"
        "  AND w.checkpoint_id = c.checkpoint_id)"
        " FROM graph_checkpoints c ORDER BY 1, 2, 3",
    )
    values = dict(store.sql("checkpoints", "SELECT thread_id, COUNT(*) FROM graph_channel_values GROUP BY thread_id"))
    found: dict = {}
    for thread_id, namespace, checkpoint_id, writes in rows:
        found.setdefault(thread_id, {"checkpoints": [], "values": values.get(thread_id, 0)})
        found[thread_id]["checkpoints"].append((namespace, checkpoint_id, writes))
    assert set(values) <= set(found), "channel values of threads without checkpoints: %s" % (set(values) - set(found))
    return found


# -- the error table ----------------------------------------------------------------------


def test_every_error_class_has_its_own_exit_code():
    codes = [code for _, code, _ in EXIT_CODES]
    assert len(set(codes)) == len(codes) and 0 not in codes and 2 not in codes
    assert [code for cls, code, _ in EXIT_CODES if cls.__name__ == "LoomStorageError"] == [1]
    for cls, code, advice in EXIT_CODES:
        error = cls({"x": ["bad"]}) if cls.__name__ == "ValidationError" else cls("boom")
        assert cli.exit_code(error) == (code, advice)


def test_an_unexpected_storage_error_is_one_line_with_its_code(store, monkeypatch):
    def full(self):
        raise DiskFullError("database or disk is full")

    monkeypatch.setattr(SessionRepository, "get_stats", full)
    result = fails(store("stats"), 10)
    assert "database or disk is full" in result.stderr and "disk space" in result.stderr


def test_a_locked_database_exits_7(sqlite_store, monkeypatch):
    monkeypatch.setitem(db.DEFAULT_PRAGMAS, "busy_timeout", 50)  # fail fast, not after 5 s
    path = os.path.join(sqlite_store.data_dir, "sessions.db")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        fails(sqlite_store("prune", "--older-than", "1d"), 7)


# -- global options -----------------------------------------------------------------------


def test_global_options_go_before_the_command_or_anywhere_after_it(store):
    first = ok_json(*store.args, "--json", "stats")
    where = [str(arg) for arg in store.args]
    location = [where[0] + "=" + where[1]]  # --data-dir=DIR, --database-url=URL

    assert ok_json("stats", "--json", *store.args) == first
    assert ok_json("sessions", "list", *location, "--limit", "5", "--json") == {"sessions": [], "more": 0}
    assert ok(run("stats", *store.args)).stdout == ok(store("stats")).stdout  # tables without --json
    # After "--" nothing is an option of loom-db's.
    assert fails(run(*store.args, "sessions", "show", "--", "--json"), 3).stderr.startswith("Error: session not found")


def test_data_dir_comes_from_the_environment_then_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok(run("init", env={"LOOM_DATA_DIR": str(tmp_path / "from-env")}))
    assert sorted(os.listdir(tmp_path / "from-env")) == sorted(DATABASE_FILES)
    ok(run("init"))
    assert (tmp_path / "loom-data" / "sessions.db").exists()


def test_data_dir_and_database_url_together_are_a_usage_error(tmp_path):
    fails(run("--data-dir", tmp_path, "--database-url", "postgresql://x@127.0.0.1/y", "stats"), 2)


def test_a_database_url_must_be_a_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "postgresql://" in fails(run("--database-url", "loom.db", "init"), 2).output
    assert os.listdir(tmp_path) == []


SECRET = "s3cret-pa55"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://loom:%s@127.0.0.1:99999/loom" % SECRET,
        "postgresql://loom:%s@127.0.0.1:port/loom" % SECRET,
        "postgresql://loom:%s@[::1/loom" % SECRET,
        "postgresql://loom:%s/x@127.0.0.1/loom" % SECRET,  # an unescaped / in the password
        "postgresql://loom:%s?x@127.0.0.1/loom" % SECRET,
        "postgresql://loom:%s@127.0.0.1/" % SECRET,
        "mysql://loom:%s@127.0.0.1/loom" % SECRET,
        "sqlite://relative.db",
        "sqlite:///",
    ],
)
def test_a_bad_database_url_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)

    result = fails(run("--database-url", url, "init"), 4)

    assert SECRET not in result.output and "URL" in result.stderr
    assert os.listdir(tmp_path) == []


def test_a_server_that_cannot_be_reached_is_one_line_exit_13_without_the_password(tmp_path):
    url = "postgresql://loom:%s@127.0.0.1:1/loom?connect_timeout=2" % SECRET  # nothing listens on port 1

    result = fails(run("--database-url", url, "stats"), 13)

    assert SECRET not in result.output and "Connection refused" in result.stderr
    assert "Check that the server is running" in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/loom_no_such_database",
        "postgresql://loom_no_such_role@127.0.0.1:5432/test",
        "postgresql://postgres@127.0.0.1:5432/test?sslmode=bogus",
    ],
)
def test_a_connection_refused_for_what_the_url_says_is_no_retry(url):
    result = fails(run("--database-url", url, "stats"), 1)

    assert "Check the URL: its user, password, database name and options." in result.stderr
    assert "server is running" not in result.stderr


def test_a_store_without_a_schema_is_advised_to_init(backend, tmp_path):
    url = backend.target if backend.name == "postgres" else "sqlite:///%s" % (tmp_path / "empty.db")

    result = fails(run("--database-url", url, "stats"), 11)

    assert "database not initialised" in result.stderr
    assert result.stderr.endswith("Run `loom-db init` to create the schema.\n")


def test_a_missing_store_is_not_found_and_not_created(tmp_path):
    result = fails(run("--data-dir", tmp_path / "nowhere", "stats"), 3)
    assert "loom-db init" in result.stderr
    assert not (tmp_path / "nowhere").exists()


# -- init, migrate, status ----------------------------------------------------------------


def shipped_migrations(domain: str) -> int:
    return len([name for name in os.listdir(os.path.join(migrator.MIGRATIONS_DIR, domain)) if name[:4].isdigit()])


def test_init_applies_every_migration_once(store):
    for domain in DOMAINS:
        assert store.count(domain, "schema_migration_%s" % domain) == shipped_migrations(domain) > 0
    assert ok_json(*store.args, "--json", "init")["applied"] == {domain: [] for domain in DOMAINS}


def test_init_makes_a_private_directory(tmp_path):
    ok(run("--data-dir", tmp_path / "fresh", "init"))
    assert (tmp_path / "fresh").stat().st_mode & 0o777 == 0o700


def test_an_outdated_schema_is_reported_and_migrated(store):
    store.sql("sessions", "DELETE FROM schema_migration_sessions WHERE name = '0003_search'")

    assert ok_json(*store.args, "--json", "migrate", "status")["sessions"]["pending"] == ["0003_search"]
    assert "migrate" in fails(store("stats"), 11).stderr
    fails(store("--json", "check"), 11)
    dry = ok_json(*store.args, "--json", "migrate", "--dry-run")
    nothing = {domain: [] for domain in DOMAINS}
    assert dry == {"dry_run": True, "apply": {**nothing, "sessions": ["0003_search"]}, "revert": nothing}
    assert store.count("sessions", "schema_migration_sessions") == shipped_migrations("sessions") - 1
    assert ok_json(*store.args, "--json", "migrate", "--database", "hitl")["applied"] == {"hitl": []}
    assert ok_json(*store.args, "--json", "migrate", "--database", "sessions", "--dry-run")["apply"] == {
        "sessions": ["0003_search"]
    }

    assert ok_json(*store.args, "--json", "migrate")["applied"]["sessions"] == ["0003_search"]
    assert store.count("sessions", "schema_migration_sessions") == shipped_migrations("sessions")
    ok(store("stats"))


def test_migrate_names_the_verified_copy_it_takes_first(sqlite_store):
    fill(sqlite_store)
    sqlite_store.sql("sessions", "DELETE FROM schema_migration_sessions WHERE name = '0004_search_by_rowid'")

    document = ok_json(*sqlite_store.args, "--json", "migrate")

    assert document["applied"]["sessions"] == ["0004_search_by_rowid"]
    copy = document["backups"]["sessions"]
    assert os.path.dirname(copy) == str(sqlite_store.data_dir)
    assert re.fullmatch(r"sessions\.db\.\d{8}T\d{6}Z\.pre-migrate-\w+\.bak", os.path.basename(copy))
    with contextlib.closing(sqlite3.connect(copy)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (2,)
    assert list(document["backups"]) == ["sessions"]  # the others had nothing to apply

    checked = ok_json(*sqlite_store.args, "--json", "check")  # the copy is left for the operator to remove
    sessions = next(r for r in checked["databases"] if r["database"] == "sessions.db")
    assert sessions["copies"] == [copy] and any(copy in w for w in sessions["warnings"])
    assert "copy left beside it: %s" % copy in ok(sqlite_store("check")).stdout


def test_migrate_to_goes_down_and_up_again_after_a_copy(store):
    fill(store)

    down = ok_json(*store.args, "--json", "migrate", "--to", "0002_query_indexes")

    assert down["reverted"] == {
        "sessions": [
            "0009_index_in_batches",
            "0008_search_over_messages",
            "0007_no_prefix_indexes",
            "0006_counts",
            "0005_framework_items",
            "0004_search_by_rowid",
            "0003_search",
        ]
    }
    assert store.sql("sessions", "SELECT name FROM schema_migration_sessions ORDER BY name") == [
        ("0001_reference_schema",),
        ("0002_query_indexes",),
    ]
    if store.data_dir is not None:
        assert os.path.exists(down["backups"]["sessions"])
    assert "migrate" in fails(store("stats"), 11).stderr
    assert ok_json(*store.args, "--json", "migrate", "--to", "0002_query_indexes", "--dry-run")["revert"] == {
        "sessions": []
    }
    assert ok_json(*store.args, "--json", "migrate", "--to", "0003_search")["applied"] == {"sessions": ["0003_search"]}
    printed = ok(store("migrate")).stdout
    assert ("on PostgreSQL, take one with pg_dump" in printed) == (store.data_dir is None)
    assert store.count("sessions", "messages") == 2
    with store.storage() as storage:
        assert [m.content for m in storage.sessions.search_messages("order")] == ["Where is my order?"]


def test_migrate_to_a_name_of_several_databases_or_of_none(store):
    assert "--database" in fails(store("migrate", "--to", "0001_reference_schema"), 2).output
    assert "no database has" in fails(store("migrate", "--to", "0009_nothing"), 2).output
    assert "hitl has no migration" in fails(store("migrate", "--to", "0003_search", "--database", "hitl"), 2).output
    document = ok_json(*store.args, "--json", "migrate", "--to", "0001_reference_schema", "--database", "hitl")
    assert document["reverted"] == {"hitl": ["0004_no_prefix_indexes", "0003_decided_index", "0002_pending_indexes"]}


def test_migrate_status_reads_as_a_table(store):
    lines = ok(store("migrate", "status")).stdout.splitlines()
    assert lines[0].split() == ["database", "migration", "state"]
    assert len(lines) == 1 + sum(map(shipped_migrations, DOMAINS))
    assert all("applied" in line for line in lines[1:])


# -- stats and demo -----------------------------------------------------------------------


def test_stats_of_an_empty_store_are_zero(store):
    document = ok_json(*store.args, "--json", "stats")
    assert document["sessions"]["session_count"] == 0
    assert document["requests"]["pending_by_priority"] == {"critical": 0, "high": 0, "medium": 0, "low": 0}
    assert document["references"] == {"count": 0, "bytes": 0}
    assert document["checkpoints"] == {
        "threads": 0,
        "checkpoints": 0,
        "writes": 0,
        "values": 0,
        "value_bytes": 0,
        "store_items": 0,
    }


def test_stats_print_cost_as_money_and_sizes_for_people(store):
    ok(store("demo", "--sessions", "6"))
    document = ok_json(*store.args, "--json", "stats")
    printed = dict(re.split(r"\s{2,}", line.strip()) for line in ok(store("stats")).stdout.splitlines())

    assert printed["total cost"] == money(document["sessions"]["total_cost_usd"])
    assert re.fullmatch(r"\$\d+\.\d{2,6}", printed["total cost"])
    assert printed["reference size"] == size(document["references"]["bytes"])
    assert re.fullmatch(r"\d+(\.\d)? (bytes|kB|MB)", printed["reference size"])


def test_stats_count_langgraph_threads_as_a_table_and_as_json(store):
    fill(store)
    put_thread(store, "thread-1", checkpoints=3, namespaces=("", "child"))
    put_thread(store, "thread-2", checkpoints=1)

    document = ok_json(*store.args, "--json", "stats")
    printed = dict(re.split(r"\s{2,}", line.strip()) for line in ok(store("stats")).stdout.splitlines())

    value_bytes = store.sql("checkpoints", "SELECT SUM(LENGTH(value)) FROM graph_channel_values")[0][0]
    tables = ("graph_checkpoints", "graph_writes", "graph_channel_values")
    assert [store.count("checkpoints", table) for table in tables] == [7, 7, 7]
    assert document["checkpoints"] == {
        "threads": 2,
        "checkpoints": 7,
        "writes": 7,
        "values": 7,
        "value_bytes": value_bytes,
        "store_items": 0,
    }
    assert {label: printed[label] for label in printed if label.startswith(("graph", "checkpoint", "channel"))} == {
        "graph threads": "2",
        "checkpoints": "7",
        "checkpoint writes": "7",
        "channel values": "7",
        "channel value size": size(value_bytes),
        "graph store items": "0",
    }
    assert printed["sessions"] == "1" and printed["references"] == "0"


def test_demo_fills_the_store_and_prints_what_stats_prints(store):
    added = ok_json(*store.args, "--json", "demo")
    document = ok_json(*store.args, "--json", "stats")

    assert added == document
    assert document["sessions"]["session_count"] == store.count("sessions", "sessions") == 3
    assert document["sessions"]["message_count"] == store.count("sessions", "messages") == 12
    assert document["sessions"]["tool_execution_count"] == store.count("sessions", "tool_executions") == 3
    assert document["sessions"]["total_tokens"] == store.sql("sessions", "SELECT SUM(total_tokens) FROM sessions")[0][0]
    pending = dict(
        store.sql("hitl", "SELECT priority, COUNT(*) FROM human_requests WHERE status = 'pending' GROUP BY priority")
    )
    assert {p: n for p, n in document["requests"]["pending_by_priority"].items() if n} == pending
    assert document["references"]["count"] == store.count("references", "reference_store") == 3


def test_demo_prints_the_stats_table_under_a_line_of_its_own(store):
    printed = ok(store("demo")).stdout.splitlines()

    assert printed[0].startswith("Added 3 sample sessions to ")
    assert printed[1:] == ok(store("stats")).stdout.splitlines()
    assert any(line.startswith("total tokens") for line in printed)


def test_demo_sessions_have_requests_in_every_state(store):
    document = ok_json(*store.args, "--json", "demo", "--sessions", 6)

    assert document["sessions"]["session_count"] == 6 and document["sessions"]["message_count"] == 24
    assert document["requests"]["by_status"] == {
        "pending": 2,
        "approved": 1,
        "rejected": 1,
        "responded": 1,
        "expired": 1,
    }
    statuses = dict(store.sql("hitl", "SELECT status, COUNT(*) FROM human_requests GROUP BY status"))
    assert statuses == {"pending": 2, "approved": 1, "rejected": 1, "responded": 1, "expired": 1}
    session_ids = {sid for (sid,) in store.sql("sessions", "SELECT id FROM sessions")}
    assert {sid for (sid,) in store.sql("hitl", "SELECT session_id FROM human_requests")} == session_ids
    expiring = store.sql("references", "SELECT COUNT(*) FROM reference_store WHERE expires_at > 0")[0][0]
    assert (store.count("references", "reference_store"), expiring) == (6, 3)


def test_demo_adds_to_what_is_there(store):
    ok(store("demo", "--sessions", 2))
    ok(store("demo", "--sessions", 2))
    assert store.count("sessions", "sessions") == 4


def test_demo_needs_one_to_ten_thousand_sessions(store):
    for count in (0, 10_001, 99999999999):
        assert "--sessions" in fails(store("demo", "--sessions", count), 2).output
    assert store.count("sessions", "sessions") == 0


def test_demo_creates_a_missing_data_directory(tmp_path):
    output = ok(run("--data-dir", tmp_path / "new", "demo")).stdout
    assert output.startswith("Added 3 sample sessions to %s" % (tmp_path / "new"))
    assert (tmp_path / "new" / "hitl.db").exists()


# -- check --------------------------------------------------------------------------------


def test_check_of_a_healthy_store(store, backend):
    document = ok_json(*store.args, "--json", "check")
    assert document["ok"] is True
    report = document["databases"][0]
    if backend.name == "sqlite":
        assert [r["database"] for r in document["databases"]] == list(DATABASE_FILES)
        assert report["pragmas"]["journal_mode"] == "wal" and report["fragmentation"]["page_count"] > 0
    else:
        assert len(document["databases"]) == 1 and report["backend"] == "postgresql"
        assert report["sizes"]["database_bytes"] > 0
    assert ok(store("check")).stdout.splitlines()[0].split() == ["database", "result", "detail"]


def test_check_and_stats_on_a_corrupt_file_exit_9(sqlite_store):
    path = os.path.join(sqlite_store.data_dir, "hitl.db")
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)
    with open(path, "wb") as handle:
        handle.write(b"this is not a database" * 500)

    result = fails(sqlite_store("--json", "check"), 9)
    reports = {r["database"]: r for r in json.loads(result.stdout)["databases"]}
    assert reports["sessions.db"]["problems"] == []
    assert reports["hitl.db"]["problems"][0]["kind"] == "integrity"
    assert "hitl.db" in result.stderr
    fails(sqlite_store("stats"), 9)


def test_check_flags_a_pragma_not_in_force(sqlite_store, monkeypatch):
    monkeypatch.setattr(
        sqlite_backend.SqliteBackend,
        "pragmas",
        lambda backend: {**sqlite_backend.PRAGMAS, "journal_mode": "delete", "synchronous": 1, "temp_store": 2},
    )
    result = fails(sqlite_store("--json", "check"), 1)
    problems = json.loads(result.stdout)["databases"][0]["problems"]
    assert problems == [{"kind": "pragma", "detail": "journal_mode is 'delete', not 'wal'"}]


def test_check_warns_of_fragmentation_without_failing(sqlite_store, monkeypatch):
    monkeypatch.setattr(sqlite_backend, "FRAGMENTATION_WARNING", -1)
    document = ok_json(*sqlite_store.args, "--json", "check")
    assert all("vacuum" in report["warnings"][0] for report in document["databases"])


# -- vacuum, analyze, checkpoint ----------------------------------------------------------


def test_vacuum_gives_free_pages_back(sqlite_store):
    with sqlite_store.storage() as storage:
        reference = storage.references.store(os.urandom(400_000))
        storage.references.release(reference.id)

    document = ok_json(*sqlite_store.args, "--json", "vacuum")
    sizes = {r["database"]: r for r in document["databases"]}
    assert sizes["references.db"]["bytes_after"] < sizes["references.db"]["bytes_before"]
    assert sqlite_store.sql("references", "PRAGMA freelist_count") == [(0,)]
    assert "[#" not in ok(sqlite_store("vacuum")).output  # no progress bar off a terminal


def test_vacuum_and_analyze_on_the_suite_backend(store):
    fill(store)
    databases = len(DOMAINS) if store.data_dir is not None else 1  # PostgreSQL: one database for all
    assert len(ok_json(*store.args, "--json", "vacuum")["databases"]) == databases
    assert len(ok_json(*store.args, "--json", "analyze")["analyzed"]) == databases


def test_checkpoint_empties_the_wal(sqlite_store):
    fill(sqlite_store)
    document = ok_json(*sqlite_store.args, "--json", "checkpoint")
    assert [r["database"] for r in document["databases"]] == list(DATABASE_FILES)
    assert [r["busy"] for r in document["databases"]] == [0] * len(DATABASE_FILES)
    wal = os.path.join(sqlite_store.data_dir, "sessions.db-wal")
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0


def test_sqlite_only_commands_exit_12_on_postgresql(store, backend):
    if backend.name == "sqlite":
        assert store("checkpoint").exit_code == 0
        return
    for command in (["checkpoint"], ["dump"], ["backup", "x"], ["restore", __file__, "--database", "hitl"]):
        assert "SQLite" in fails(store(*command), 12).stderr
    assert fails(store("--json", "dump"), 12).stdout == ""  # not half a JSON document


def test_backup_and_restore_of_a_database_url_exit_12(tmp_path):
    url = ("--database-url", "postgresql://nobody@127.0.0.1:1/none")
    fails(run(*url, "backup", tmp_path / "b"), 12)
    fails(run(*url, "restore", __file__, "--database", "sessions"), 12)
    assert not (tmp_path / "b").exists()


# -- backup, restore, dump ----------------------------------------------------------------


def test_backup_writes_a_verified_set_and_names_what_it_prunes(sqlite_store, tmp_path):
    fill(sqlite_store)
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "sessions-20000101T000000Z.db").write_bytes(b"an old backup")
    (backups / "loom-20000101T000000Z").mkdir()

    document = ok_json(*sqlite_store.args, "--json", "backup", backups, "--keep-days", 3)

    written = document["written"]
    assert [os.path.basename(p) for p in written] == list(DATABASE_FILES)
    assert {os.path.dirname(p) for p in written} == {document["directory"]} and document["failed"] == {}
    assert sorted(document["pruned"]) == sorted(
        str(backups / n) for n in ("loom-20000101T000000Z", "sessions-20000101T000000Z.db")
    )
    assert sorted(os.listdir(backups)) == [os.path.basename(document["directory"])]
    with contextlib.closing(sqlite3.connect(written[0])) as copy:
        assert copy.execute("SELECT COUNT(*) FROM messages").fetchone() == (2,)
    (backups / "loom-20000102T000000Z").mkdir()
    printed = ok(sqlite_store("backup", backups)).stdout
    assert "Deleted %s (taken more than 7 days ago)" % (backups / "loom-20000102T000000Z") in printed
    assert re.search(r"default:\s+7\b", ok(run("backup", "--help")).stdout)


@pytest.mark.parametrize("keep_days", ["-1", "99999999999", "36501", "seven"])
def test_backup_refuses_a_bad_keep_days_before_writing(sqlite_store, tmp_path, keep_days):
    result = fails(sqlite_store("backup", tmp_path / "backups", "--keep-days", keep_days), 2)

    assert "--keep-days" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "backups").exists()


def test_one_damaged_database_does_not_take_the_others_down(sqlite_store, tmp_path):
    fill(sqlite_store)
    with sqlite_store.storage() as storage:
        ref = storage.references.store(b"stale", ttl=3600)
        request = storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="Deploy?"))
    sqlite_store.sql("references", "UPDATE reference_store SET expires_at = ?", OLD)
    sqlite_store.sql("hitl", "UPDATE human_requests SET expires_at = ?", OLD * 1000)
    (sqlite_store.data_dir / "sessions.db").write_bytes(b"this is no SQLite database " * 500)

    result = fails(sqlite_store("--json", "backup", tmp_path / "backups"), 9)

    document = json.loads(result.stdout)
    assert [os.path.basename(p) for p in document["written"]] == [f for f in DATABASE_FILES if f != "sessions.db"]
    assert document["directory"].endswith(".incomplete") and list(document["failed"]) == ["sessions.db"]
    assert str(sqlite_store.data_dir / "sessions.db") in result.stderr and "incomplete" in result.stderr
    assert ok_json(*sqlite_store.args, "--json", "gc") == {"removed": 1}
    assert ok_json(*sqlite_store.args, "--json", "expire") == {"expired": 1}
    assert sqlite_store.sql("references", "SELECT COUNT(*) FROM reference_store WHERE id = ?", ref.id) == [(0,)]
    assert sqlite_store.sql("hitl", "SELECT status FROM human_requests WHERE id = ?", request.id) == [("expired",)]


def test_restore_brings_a_database_back_and_names_what_it_kept(sqlite_store, tmp_path):
    fill(sqlite_store)
    (written,) = [
        p for p in ok_json(*sqlite_store.args, "--json", "backup", tmp_path / "b")["written"] if "sessions" in p
    ]
    sqlite_store.sql("sessions", "DELETE FROM sessions")

    document = ok_json(*sqlite_store.args, "--json", "restore", written)

    ((restored,),) = [list(document["databases"])]
    assert restored["database"].endswith("sessions.db") and restored["kept"].endswith(".bak")
    assert sqlite_store.count("sessions", "messages") == 2
    with contextlib.closing(sqlite3.connect(restored["kept"])) as kept:
        assert kept.execute("SELECT COUNT(*) FROM sessions").fetchone() == (0,)
    renamed = tmp_path / "copy.db"
    renamed.write_bytes(pathlib.Path(written).read_bytes())
    assert "--database" in fails(sqlite_store("restore", renamed), 2).output
    printed = ok(sqlite_store("restore", renamed, "--database", "sessions")).stdout
    assert "The database it replaced is kept as %s" % sqlite_store.data_dir in printed


def test_restore_of_a_whole_set(sqlite_store, tmp_path):
    fill(sqlite_store)
    put_thread(sqlite_store, "thread-1")
    threads = checkpoints_by_thread(sqlite_store)
    directory = ok_json(*sqlite_store.args, "--json", "backup", tmp_path / "b")["directory"]
    for domain, repository in DOMAINS.items():
        sqlite_store.sql(domain, "DELETE FROM %s" % repository.table)

    document = ok_json(*sqlite_store.args, "--json", "restore", directory)

    assert [os.path.basename(d["database"]) for d in document["databases"]] == list(DATABASE_FILES)
    assert all(d["kept"] for d in document["databases"])
    assert sqlite_store.count("sessions", "messages") == 2
    assert checkpoints_by_thread(sqlite_store) == threads
    assert (
        "--database is for a single FILE" in fails(sqlite_store("restore", directory, "--database", "hitl"), 2).output
    )


def test_restore_advice_fits_the_error(sqlite_store, tmp_path):
    fill(sqlite_store)
    written = ok_json(*sqlite_store.args, "--json", "backup", tmp_path / "b")["written"]
    (tmp_path / "bad.db").write_bytes(b"garbage " * 1000)

    wrong_kind = fails(sqlite_store("restore", written[1], "--database", "sessions"), 5).stderr
    damaged = fails(sqlite_store("restore", tmp_path / "bad.db", "--database", "sessions"), 9).stderr
    with sqlite_store.storage() as storage:
        storage.sessions.get_stats()  # holds the database open
        in_use = fails(sqlite_store("restore", written[0]), 5).stderr

    assert "another database" in wrong_kind and "Choose the backup of that database" in wrong_kind
    assert "not a usable database" in damaged and "Choose another backup" in damaged
    assert "Restore the database from a backup" not in damaged
    assert "open" in in_use and "Stop the processes that use the store" in in_use


def test_dump_to_a_directory_and_to_stdout(sqlite_store, tmp_path):
    fill(sqlite_store)
    (tmp_path / "sql").mkdir(mode=0o777)
    os.chmod(tmp_path / "sql", 0o777)
    written = ok_json(*sqlite_store.args, "--json", "dump", tmp_path / "sql")["written"]
    assert [os.path.basename(p) for p in written] == ["%s.sql" % domain for domain in DOMAINS]
    assert "Where is my order?" in pathlib.Path(written[0]).read_text()
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in written} == {0o600}

    text = ok(sqlite_store("dump")).stdout
    assert "-- sessions.db" in text and "CREATE TABLE" in text and "Where is my order?" in text
    dumps = ok_json(*sqlite_store.args, "--json", "dump")
    assert set(dumps) == set(DOMAINS)
    assert dumps["sessions"] == pathlib.Path(written[0]).read_text()


def test_dump_to_stdout_streams_in_flat_memory(tmp_path):
    def peak_kb_of_a_dump(store):
        command = [SCRIPT, "--data-dir", store.data_dir, "dump"]
        measure = (
            "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True);"
        )
        measure += " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        done = subprocess.run([sys.executable, "-c", measure, *map(str, command)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    small, large = data_dir_store(tmp_path / "small"), data_dir_store(tmp_path / "large")
    rows = [("m%06d" % i, "x" * 3000) for i in range(12_000)]  # 36 MB of text
    large.sql("sessions", "INSERT INTO sessions (id, created_at, updated_at, context_json) VALUES ('s', 0, 0, 'null')")
    with contextlib.closing(sqlite3.connect(large.data_dir / "sessions.db")) as db, db:
        db.executemany(
            "INSERT INTO messages (session_id, role, content, timestamp) VALUES ('s', 'user', ? || ?, 0)", rows
        )

    grew_by_mb = (peak_kb_of_a_dump(large) - peak_kb_of_a_dump(small)) / 1024
    assert grew_by_mb < 12, "the dump of a 36 MB store took %.0f MB more memory than an empty one's" % grew_by_mb


# -- gc, expire, prune --------------------------------------------------------------------


def test_gc_removes_expired_references(store):
    with store.storage() as storage:
        expired = storage.references.store(b"stale", ttl=3600)
        storage.references.store(b"fresh")
    store.sql("references", "UPDATE reference_store SET expires_at = ? WHERE id = ?", OLD, expired.id)

    assert ok_json(*store.args, "--json", "gc") == {"removed": 1}
    assert store.count("references", "reference_store") == 1


def test_expire_marks_overdue_requests(store):
    with store.storage() as storage:
        overdue = storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="Deploy?"))
        storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="Later?"))
    store.sql("hitl", "UPDATE human_requests SET expires_at = ? WHERE id = ?", OLD * 1000, overdue.id)

    assert ok_json(*store.args, "--json", "expire") == {"expired": 1}
    assert store.sql("hitl", "SELECT status FROM human_requests WHERE id = ?", overdue.id) == [("expired",)]


def test_prune_deletes_old_sessions_and_requests_decided_long_ago(store):
    fill(store)
    with store.storage() as storage:
        storage.sessions.save_session(Session(id="sess_recent"))
        decided = storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="Decided long ago?"))
        storage.hitl.respond_to_request(decided.id, "approved", "ok", responded_by="bob")
        waiting = storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="Old, pending?"))
        late = storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="Old, decided today?"))
        storage.hitl.respond_to_request(late.id, "approved", "ok", responded_by="bob")
    store.sql("sessions", "UPDATE sessions SET updated_at = ? WHERE id = 'sess_1'", OLD)
    store.sql("hitl", "UPDATE human_requests SET created_at = ?, expires_at = ?", OLD * 1000, OLD * 1000 + 1)
    store.sql("hitl", "UPDATE human_requests SET responded_at = ? WHERE id = ?", OLD * 1000, decided.id)

    document = ok_json(*store.args, "--json", "prune", "--older-than", "30d")

    assert (document["dry_run"], document["sessions"], document["requests"]) == (False, 1, 1)
    cutoff = datetime.datetime.fromisoformat(document["cutoff"])
    assert abs((NOW - datetime.timedelta(days=30) - cutoff).total_seconds()) < 60
    assert store.sql("sessions", "SELECT id FROM sessions") == [("sess_recent",)]
    assert store.count("sessions", "messages") == 0
    assert sorted(store.sql("hitl", "SELECT id FROM human_requests")) == sorted([(waiting.id,), (late.id,)])
    assert "Deleted 0 sessions not updated since" in ok(store("prune", "--older-than", "12h")).stdout
    ok(store("prune", "--older-than", "90m"))


def test_prune_dry_run_lists_what_it_would_delete_and_deletes_nothing(store, monkeypatch):
    fill(store)
    with store.storage() as storage:
        storage.sessions.save_session(Session(id="sess_2", agent_id="billing"))
        storage.sessions.save_session(Session(id="sess_recent"))
        decided = storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="Decided long ago?"))
        storage.hitl.respond_to_request(decided.id, "rejected", "no", responded_by="bob")
    store.sql("sessions", "UPDATE sessions SET updated_at = ? WHERE id <> 'sess_recent'", OLD)
    store.sql("hitl", "UPDATE human_requests SET created_at = ?, responded_at = ?", OLD * 1000, OLD * 1000)

    printed = ok(store("prune", "--older-than", "30d", "--dry-run")).stdout.splitlines()

    assert printed[0].startswith("Would delete 2 sessions not updated since ")
    assert "1 request decided before then." in printed[0] and printed[-1] == "Nothing was deleted (--dry-run)."
    listed = [line.split() for line in printed[1:-1]]
    assert sorted(row[:2] for row in listed) == [["request", decided.id], ["session", "sess_1"], ["session", "sess_2"]]
    assert next(row[:4] for row in listed if row[1] == "sess_2") == ["session", "sess_2", "billing", "updated"]
    assert next(row for row in listed if row[0] == "request")[3] == "rejected"
    document = ok_json(*store.args, "--json", "prune", "--older-than", "30d", "--dry-run")
    assert (document["sessions"], sorted(document["session_ids"])) == (2, ["sess_1", "sess_2"])
    assert document["request_ids"] == [decided.id]
    assert (store.count("sessions", "sessions"), store.count("sessions", "messages")) == (3, 2)
    assert store.count("hitl", "human_requests") == 1
    monkeypatch.setattr(cli.records, "_LISTED", 1)
    assert "... and 2 more (--json lists them all)" in ok(store("prune", "--older-than", "30d", "--dry-run")).stdout


@pytest.mark.parametrize("option", ["--older-than", "--threads-older-than"])
@pytest.mark.parametrize("duration", ["30", "3x", "-1d", "1.5d", "", "30 d", "1w", "99999999999d", "1000000d"])
def test_prune_refuses_a_bad_duration(sqlite_store, option, duration):
    put_thread(sqlite_store, "old", days_ago=60)

    output = fails(sqlite_store("prune", option, duration), 2).output

    assert "duration" in output and option in output
    assert list(checkpoints_by_thread(sqlite_store)) == ["old"]


def test_prune_needs_something_to_prune(sqlite_store):
    output = fails(sqlite_store("prune", "--dry-run"), 2).output
    assert "--older-than, --threads-older-than or --keep-latest" in output


def test_prune_threads_dry_run_lists_the_idle_threads_and_deletes_nothing(store, monkeypatch):
    put_thread(store, "idle-40", days_ago=40)
    put_thread(store, "idle-90", days_ago=90, namespaces=("", "child"))
    put_thread(store, "recent")
    before = checkpoints_by_thread(store)

    printed = ok(store("prune", "--threads-older-than", "30d", "--dry-run")).stdout.splitlines()

    assert re.fullmatch(
        r"Would delete 2 threads with no checkpoint since \d{4}-\d\d-\d\d \d\d:\d\d UTC"
        r" \(with their checkpoints, writes and channel values\)\.",
        printed[0],
    )
    assert [line.split() for line in printed[1:-1]] == [["thread", "idle-90"], ["thread", "idle-40"]]  # oldest first
    assert printed[-1] == "Nothing was deleted (--dry-run)."
    document = ok_json(*store.args, "--json", "prune", "--threads-older-than", "30d", "--dry-run")
    cutoff = datetime.datetime.fromisoformat(document.pop("threads_cutoff"))
    assert abs((NOW - datetime.timedelta(days=30) - cutoff).total_seconds()) < 60
    assert document == {"dry_run": True, "keep_latest": False, "threads": 2, "thread_ids": ["idle-90", "idle-40"]}
    assert checkpoints_by_thread(store) == before
    monkeypatch.setattr(cli.records, "_LISTED", 1)
    printed = ok(store("prune", "--threads-older-than", "30d", "--dry-run")).stdout
    assert "... and 1 more (--json lists them all)" in printed


def test_prune_threads_deletes_only_the_idle_threads(store):
    put_thread(store, "idle", days_ago=31, namespaces=("", "child"))
    put_thread(store, "recent")
    put_thread(store, "resumed", days_ago=60)
    put_thread(store, "resumed", checkpoints=4)  # checkpoint 0004 today: the thread is not idle
    before = checkpoints_by_thread(store)

    document = ok_json(*store.args, "--json", "prune", "--threads-older-than", "30d")

    cutoff = datetime.datetime.fromisoformat(document.pop("threads_cutoff"))
    assert abs((NOW - datetime.timedelta(days=30) - cutoff).total_seconds()) < 60
    assert document == {"dry_run": False, "keep_latest": False, "threads": 1, "checkpoints": 6}
    assert checkpoints_by_thread(store) == {thread: before[thread] for thread in ("recent", "resumed")}
    printed = ok(store("prune", "--threads-older-than", "12h")).stdout
    assert re.fullmatch(
        r"Deleted 0 threads with no checkpoint since .* UTC: 0 checkpoints, with their writes and"
        r" channel values\.\n",
        printed,
    )
    ok(store("prune", "--threads-older-than", "3600s"))
    assert list(checkpoints_by_thread(store)) == ["recent", "resumed"]


def test_prune_keep_latest_keeps_the_newest_checkpoint_of_each_namespace(store):
    put_thread(store, "idle", days_ago=60, namespaces=("", "child"))
    put_thread(store, "recent")
    before = checkpoints_by_thread(store)

    dry = ok_json(*store.args, "--json", "prune", "--threads-older-than", "30d", "--keep-latest", "--dry-run")
    assert (dry["keep_latest"], dry["thread_ids"]) == (True, ["idle"]) and checkpoints_by_thread(store) == before
    printed = ok(store("prune", "--threads-older-than", "30d", "--keep-latest")).stdout

    assert re.fullmatch(
        r"Deleted 4 checkpoints: all but the newest of each namespace of 1 thread with no checkpoint since .* UTC\.\n",
        printed,
    )
    newest = {"checkpoints": [("", "0003", 1), ("child", "0003", 1)], "values": 2}
    assert checkpoints_by_thread(store) == {"idle": newest, "recent": before["recent"]}

    dry = ok_json(*store.args, "--json", "prune", "--keep-latest", "--dry-run")
    assert dry == {
        "dry_run": True,
        "threads_cutoff": None,
        "keep_latest": True,
        "threads": 2,
        "thread_ids": ["idle", "recent"],
    }
    printed = ok(store("prune", "--keep-latest", "--dry-run")).stdout.splitlines()
    assert printed[0] == "Would delete all checkpoints but the newest of each namespace of 2 threads."
    document = ok_json(*store.args, "--json", "prune", "--keep-latest")
    assert document == {"dry_run": False, "threads_cutoff": None, "keep_latest": True, "threads": 2, "checkpoints": 2}
    assert checkpoints_by_thread(store) == {"idle": newest, "recent": {"checkpoints": [("", "0003", 1)], "values": 1}}


def test_prune_of_records_and_threads_at_once(store):
    fill(store)
    store.sql("sessions", "UPDATE sessions SET updated_at = ? WHERE id = 'sess_1'", OLD)
    put_thread(store, "idle", days_ago=60)
    put_thread(store, "recent")

    dry = ok_json(*store.args, "--json", "prune", "--older-than", "30d", "--threads-older-than", "7d", "--dry-run")
    printed = ok(store("prune", "--older-than", "30d", "--threads-older-than", "7d", "--dry-run")).stdout.splitlines()
    document = ok_json(*store.args, "--json", "prune", "--older-than", "30d", "--threads-older-than", "7d")

    assert set(dry) == {
        *("dry_run", "cutoff", "sessions", "requests", "session_ids", "request_ids"),
        *("threads_cutoff", "keep_latest", "threads", "thread_ids"),
    }
    assert (dry["session_ids"], dry["thread_ids"]) == (["sess_1"], ["idle"])
    assert printed[0].startswith("Would delete 1 session not updated since ")
    assert printed[1].startswith("Would delete 1 thread with no checkpoint since ")
    assert [line.split()[:2] for line in printed[2:-1]] == [["session", "sess_1"], ["thread", "idle"]]
    assert set(document) == {
        "dry_run",
        "cutoff",
        "sessions",
        "requests",
        "threads_cutoff",
        "keep_latest",
        "threads",
        "checkpoints",
    }
    assert (document["sessions"], document["threads"], document["checkpoints"]) == (1, 1, 3)
    older = (
        datetime.datetime.fromisoformat(document["cutoff"]),
        datetime.datetime.fromisoformat(document["threads_cutoff"]),
    )
    assert older[1] - older[0] == datetime.timedelta(days=23)  # one moment for both
    assert store.count("sessions", "sessions") == 0 and list(checkpoints_by_thread(store)) == ["recent"]


def test_prune_threads_in_batches_of_their_own(store, monkeypatch):
    for n in range(5):
        put_thread(store, "idle-%d" % n, checkpoints=1, days_ago=60 - n)
    batches = []
    real_prune = CheckpointRepository.prune

    def prune(self, thread_ids, **kwargs):
        batches.append(list(thread_ids))
        return real_prune(self, thread_ids, **kwargs)

    monkeypatch.setattr(CheckpointRepository, "prune", prune)
    monkeypatch.setattr(cli.records, "_THREADS_PER_BATCH", 2)

    assert ok_json(*store.args, "--json", "prune", "--threads-older-than", "1d")["checkpoints"] == 5

    assert batches == [["idle-0", "idle-1"], ["idle-2", "idle-3"], ["idle-4"]]
    assert checkpoints_by_thread(store) == {}


def test_prune_threads_while_another_process_writes_checkpoints_exits_7(sqlite_store, monkeypatch):
    put_thread(sqlite_store, "idle", days_ago=60)
    monkeypatch.setitem(db.DEFAULT_PRAGMAS, "busy_timeout", 50)  # fail fast, not after 5 s
    path = os.path.join(sqlite_store.data_dir, "checkpoints.db")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        fails(sqlite_store("prune", "--threads-older-than", "30d"), 7)
    assert list(checkpoints_by_thread(sqlite_store)) == ["idle"]


# -- export and import --------------------------------------------------------------------


def test_export_import_round_trip(store, tmp_path):
    fill(store)
    exported = ok(store("export", "sess_1")).stdout
    other = data_dir_store(tmp_path / "other")

    imported = ok_json(*other.args, "--json", "import", "-", input=exported)

    assert imported == {"session_id": "sess_1", "messages": 2, "tool_executions": 1}
    assert other.sql("sessions", "SELECT total_tokens, total_cost_usd FROM sessions") == [(12, 0.75)]
    again = json.loads(ok(other("export", "sess_1")).stdout)
    assert without_ids(again) == without_ids(json.loads(exported))


def test_import_from_a_file_into_the_suite_backend(store, tmp_path):
    fill(store)
    path = tmp_path / "sess_1.json"
    path.write_text(ok(store("export", "sess_1")).stdout)

    assert "already exists" in fails(store("import", path), 5).stderr
    for table in ("messages", "tool_executions", "sessions"):  # raw SQLite does not cascade
        store.sql("sessions", "DELETE FROM %s" % table)
    assert ok(store("import", path)).stdout == "Imported session sess_1: 2 messages, 1 tool execution.\n"
    assert store.count("sessions", "messages") == 2 and store.count("sessions", "tool_executions") == 1


def test_import_of_a_session_the_store_holds_replaces_it_or_takes_another_id(store, tmp_path):
    fill(store)
    path = tmp_path / "sess_1.json"
    path.write_text(ok(store("export", "sess_1")).stdout)
    document = json.loads(path.read_text())
    document["messages"] = document["messages"][:1]  # the exported copy, changed since
    path.write_text(json.dumps(document))

    assert ok_json(*store.args, "--json", "import", path, "--as", "sess_copy")["session_id"] == "sess_copy"
    assert ok(store("import", path, "--replace")).stdout == "Imported session sess_1: 1 message, 1 tool execution.\n"

    rows = store.sql("sessions", "SELECT id, total_tokens FROM sessions ORDER BY id")
    assert [session_id for session_id, _ in rows] == ["sess_1", "sess_copy"]
    assert store.sql("sessions", "SELECT COUNT(*) FROM messages WHERE session_id = 'sess_1'") == [(1,)]
    assert rows[0][1] == rows[1][1] == document["messages"][0]["token_count"]  # totals of what was imported
    assert fails(store("import", path, "--replace", "--as", "x"), 2)


def test_import_of_a_file_without_a_session_names_it(store, tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("{}")
    assert str(path) in fails(store("import", path), 4).stderr
    assert store.count("sessions", "sessions") == 0


def test_export_of_a_missing_session_exits_3(store):
    assert "session not found: nope" in fails(store("export", "nope"), 3).stderr


def test_import_of_bad_input_exits_4(store):
    fails(store("import", "-", input="{not json"), 4)
    fails(store("import", "-", input=json.dumps({"id": "s", "messages": [{"role": "robot"}]})), 4)
    assert store.count("sessions", "sessions") == 0


FIXTURE = {
    "sessions": [{"id": "sess_f", "agent_id": "support", "messages": [{"role": "user", "content": "Hi"}]}],
    "requests": [
        {"id": "req_f", "agent_id": "support", "session_id": "sess_f", "question": "Refund?"},
        {
            "id": "req_g",
            "agent_id": "support",
            "session_id": "sess_f",
            "question": "Ship?",
            "status": "approved",
            "response": "Yes",
            "responded_by": "alice",
        },
    ],
    "references": [{"data": "quarter,revenue", "type": "TOOL_RESULT", "ttl": 60}],
}


def test_import_of_a_fixture(store, tmp_path):
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(FIXTURE))

    imported = ok_json(*store.args, "--json", "import", path)

    assert imported["sessions"] == ["sess_f"] and imported["requests"] == ["req_f", "req_g"]
    assert len(imported["references"]) == 1
    assert store.sql("hitl", "SELECT id, status FROM human_requests ORDER BY id") == [
        ("req_f", "pending"),
        ("req_g", "approved"),
    ]
    assert store.sql("references", "SELECT id FROM reference_store") == [(imported["references"][0],)]
    assert store.count("sessions", "messages") == 1


def test_import_of_a_fixture_from_stdin_reads_as_a_line(store):
    output = ok(store("import", "-", input=json.dumps({"references": [{"data": "x"}, {"data": "y"}]}))).stdout
    assert output == "Imported 0 sessions, 0 requests, 2 references.\n"


def test_a_bad_fixture_exits_4_and_writes_nothing(store):
    bad = {**FIXTURE, "references": [{"data": "x", "data_base64": "eA=="}]}

    result = fails(store("import", "-", input=json.dumps(bad)), 4)

    assert "references: 0: data: Give data" in result.stderr
    for domain, table in (("sessions", "sessions"), ("hitl", "human_requests"), ("references", "reference_store")):
        assert store.count(domain, table) == 0


def test_a_fixture_with_a_session_the_store_holds_exits_5_and_writes_nothing(store):
    fill(store)
    document = {**FIXTURE, "sessions": FIXTURE["sessions"] + [{"id": "sess_1"}]}

    assert "already exists" in fails(store("import", "-", input=json.dumps(document)), 5).stderr
    assert store.sql("sessions", "SELECT id FROM sessions") == [("sess_1",)]
    assert store.count("hitl", "human_requests") == 0 and store.count("references", "reference_store") == 0


# -- the installed script and the terminal ------------------------------------------------

SCRIPT = os.path.join(os.path.dirname(sys.executable), "loom-db")


def script(*args, **kwargs):
    env = {k: v for k, v in os.environ.items() if k != "LOOM_DATA_DIR"}
    return subprocess.run([SCRIPT, *map(str, args)], env=env, timeout=60, **kwargs)


def test_the_console_script(tmp_path):
    data = ("--data-dir", tmp_path / "data")
    assert script(*data, "init", capture_output=True).returncode == 0
    stats = script(*data, "--json", "stats", capture_output=True, text=True)
    assert json.loads(stats.stdout)["sessions"]["session_count"] == 0

    missing = script(*data, "export", "nope", capture_output=True, text=True)
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr.startswith("Error: session not found: nope") and "Traceback" not in missing.stderr


def test_a_progress_bar_on_stderr_only_when_stderr_is_a_terminal(tmp_path):
    data = ("--data-dir", tmp_path / "data")
    shown, drawn = on_a_terminal_stderr(*data, "demo", "--sessions", "30")
    assert shown.returncode == 0 and "demo" in drawn and "30/30" in drawn
    quiet = script(*data, "vacuum", capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""

    shown, drawn = on_a_terminal_stderr(*data, "vacuum")
    assert shown.returncode == 0 and "vacuum" in drawn and "4/4" in drawn and "database" in shown.stdout
    shown, drawn = on_a_terminal_stderr(*data, "backup", tmp_path / "backups")
    assert shown.returncode == 0 and "backup" in drawn and " kB" in drawn  # measured in bytes
    shown, drawn = on_a_terminal_stderr(*data, "dump", tmp_path / "dump")
    assert shown.returncode == 0 and "dump" in drawn and "4/4" in drawn

    session = json.loads(script(*data, "sessions", "list", "--limit", "1", "--json", capture_output=True).stdout)
    exported = tmp_path / "session.json"
    exported.write_text(script(*data, "export", session["sessions"][0]["id"], capture_output=True, text=True).stdout)
    shown, drawn = on_a_terminal_stderr(*data, "import", exported, "--as", "copied")
    assert shown.returncode == 0 and "import" in drawn and "6/6" in drawn  # rows: the session, 4 messages, 1 call


def on_a_terminal_stderr(*args) -> tuple[subprocess.CompletedProcess, str]:
    """loom-db run with its stderr on a pseudo-terminal: its result, and what it drew there."""
    leader, follower = pty.openpty()
    try:
        result = script(*args, stdout=subprocess.PIPE, stderr=follower, text=True)
        os.close(follower)
        drawn = b""
        with contextlib.suppress(OSError):  # EIO: the terminal has no writer left
            while chunk := os.read(leader, 1 << 16):
                drawn += chunk
    finally:
        os.close(leader)
    return result, drawn.decode("utf-8", "replace")


def test_migrate_reports_what_it_did_before_a_damaged_database_stopped_it(sqlite_store):
    sqlite_store.sql("sessions", "DELETE FROM schema_migration_sessions WHERE name = '0004_search_by_rowid'")
    (sqlite_store.data_dir / "hitl.db").write_bytes(b"this is no SQLite database " * 500)

    result = fails(sqlite_store("--json", "migrate"), 9)

    assert json.loads(result.stdout)["applied"] == {"sessions": ["0004_search_by_rowid"]}
    assert "hitl.db" in result.stderr


def test_a_reader_that_stops_early_ends_it_quietly(sqlite_store):
    with sqlite_store.storage() as storage:
        storage.references.store(os.urandom(512 * 1024))  # a dump far larger than a pipe holds
    child = subprocess.Popen(
        [SCRIPT, *map(str, sqlite_store.args), "dump"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout.readline() == b"-- sessions.db\n"
    child.stdout.close()  # as `| head -1` does
    assert child.wait(timeout=60) == 128 + signal.SIGPIPE  # as git's, under a shell's pipefail
    assert child.stderr.read() == b""


@pytest.mark.parametrize("stderr", ["pipe", "terminal"])  # on a terminal, a progress bar's thread runs too
def test_ctrl_c_exits_130_saying_so_and_leaves_whole_demo_sessions_only(store, stderr):
    leader, follower = pty.openpty() if stderr == "terminal" else (None, subprocess.PIPE)
    child = subprocess.Popen(
        [SCRIPT, *map(str, store.args), "demo", "--sessions", "10000"],
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while store.count("sessions", "sessions") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # until it is writing
        child.send_signal(signal.SIGINT)
        stdout, stderr_text = child.communicate(timeout=60)
    finally:
        if leader is not None:
            os.close(follower)
            os.close(leader)
    assert (child.returncode, stdout) == (130, "")
    assert stderr == "terminal" or stderr_text == "Interrupted.\n"

    added = store.count("sessions", "sessions")
    assert 3 <= added < 10000
    assert store.count("sessions", "messages") == 4 * added  # each with its four messages,
    assert store.count("sessions", "tool_executions") == added  # its tool execution,
    assert store.count("hitl", "human_requests") == added  # its request to a person
    assert store.count("references", "reference_store") == added  # and its reference


def test_migrate_status_prints_when_each_migration_ran_in_utc_wherever_it_runs(tmp_path):
    # playhouse.migrations records a naive local time: read back in the zone that wrote it, it is that moment.
    env = {**os.environ, "TZ": "EST+5"}  # POSIX: five hours behind UTC, with no zone database needed
    for command in ("init", "migrate status"):
        done = subprocess.run(
            [SCRIPT, "--data-dir", tmp_path / "data", *command.split()],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    applied = re.findall(r"applied (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", done.stdout)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert applied and all(abs(datetime.datetime.fromisoformat(a) - now).total_seconds() < 600 for a in applied)


def test_a_loose_data_directory_is_one_line_of_warning(tmp_path):
    data = tmp_path / "data"
    assert script("--data-dir", data, "init", capture_output=True).returncode == 0
    data.chmod(0o755)
    for command in ("init", "stats"):
        done = script("--data-dir", data, command, capture_output=True, text=True)
        assert done.returncode == 0
        assert done.stderr == "warning: data directory %s has mode 0755; others may read the store (chmod 700 %s)\n" % (
            data,
            data,
        )

"""A data directory written by the reference implementation is adopted without loss.

The fixture is built from the reference implementation's own DDL, with tables
of its own, FTS5 indexes kept by triggers, a column added by ALTER TABLE, and rows
written the way it writes them; then loom_models opens it.
"""

import glob
import json
import sqlite3

import pytest

from loom_models import backup, open_storage
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message

SESSIONS_DDL = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT, agent_id TEXT, parent_session_id TEXT, context_json TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, total_cost_usd REAL DEFAULT 0,
    total_tokens INTEGER DEFAULT 0, FOREIGN KEY (parent_session_id) REFERENCES sessions(id) ON DELETE SET NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, role TEXT NOT NULL,
    content TEXT, tool_calls_json TEXT, tool_use_id TEXT, tool_result_json TEXT, session_context TEXT DEFAULT 'direct',
    timestamp INTEGER NOT NULL, token_count INTEGER DEFAULT 0, cost_usd REAL DEFAULT 0,
    FOREIGN KEY (session_id) REFERENCES sessions(id) ON DELETE CASCADE);
ALTER TABLE messages ADD COLUMN agent_id TEXT;
CREATE TABLE tool_executions (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
    tool_name TEXT NOT NULL, input_json TEXT, result_json TEXT, error TEXT, execution_time_ms INTEGER,
    timestamp INTEGER NOT NULL, FOREIGN KEY (session_id) REFERENCES sessions(id) ON DELETE CASCADE);
CREATE TABLE memory_snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
    snapshot_type TEXT NOT NULL, content TEXT NOT NULL, token_count INTEGER DEFAULT 0, created_at INTEGER NOT NULL,
    FOREIGN KEY (session_id) REFERENCES sessions(id) ON DELETE CASCADE);
CREATE TABLE artifacts (id TEXT PRIMARY KEY, name TEXT, path TEXT, source TEXT, source_agent_id TEXT, purpose TEXT,
    content_type TEXT, size_bytes INTEGER, checksum TEXT, created_at INTEGER, updated_at INTEGER,
    last_accessed_at INTEGER, access_count INTEGER, tags TEXT, metadata_json TEXT, deleted_at INTEGER,
    session_id TEXT, FOREIGN KEY (session_id) REFERENCES sessions(id) ON DELETE CASCADE);
CREATE VIRTUAL TABLE messages_fts5 USING fts5(message_id UNINDEXED, session_id UNINDEXED, role UNINDEXED, content,
    timestamp UNINDEXED, tokenize = 'porter unicode61');
CREATE TRIGGER messages_fts5_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts5 (message_id, session_id, role, content, timestamp)
    VALUES (new.id, new.session_id, new.role, new.content, new.timestamp); END;
CREATE TRIGGER messages_fts5_update AFTER UPDATE ON messages BEGIN
    UPDATE messages_fts5 SET content = new.content WHERE message_id = old.id; END;
CREATE TRIGGER messages_fts5_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts5 WHERE message_id = old.id; END;
CREATE VIRTUAL TABLE artifacts_fts5 USING fts5(artifact_id UNINDEXED, name, purpose, tags);
CREATE TRIGGER artifacts_fts5_insert AFTER INSERT ON artifacts BEGIN
    INSERT INTO artifacts_fts5 (artifact_id, name, purpose, tags) VALUES (new.id, new.name, new.purpose, new.tags); END;
CREATE TRIGGER artifacts_fts5_delete AFTER DELETE ON artifacts BEGIN
    DELETE FROM artifacts_fts5 WHERE artifact_id = old.id; END;
CREATE INDEX idx_messages_session ON messages(session_id);
CREATE INDEX idx_tool_executions_session ON tool_executions(session_id);
CREATE INDEX idx_sessions_updated ON sessions(updated_at);
CREATE INDEX idx_snapshots_session ON memory_snapshots(session_id, created_at);
CREATE INDEX idx_messages_agent ON messages(agent_id);
CREATE INDEX idx_artifacts_session ON artifacts(session_id);
CREATE INDEX idx_artifacts_name ON artifacts(name);
CREATE INDEX idx_artifacts_source ON artifacts(source);
CREATE INDEX idx_artifacts_created ON artifacts(created_at);
CREATE INDEX idx_artifacts_deleted ON artifacts(deleted_at);
"""

HITL_DDL = """
CREATE TABLE human_requests (id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, session_id TEXT NOT NULL,
    question TEXT NOT NULL, context_json TEXT, request_type TEXT NOT NULL, priority TEXT NOT NULL,
    timeout_ms INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, status TEXT NOT NULL,
    response TEXT, response_data_json TEXT, responded_at INTEGER, responded_by TEXT);
CREATE INDEX idx_hr_status ON human_requests(status);
CREATE INDEX idx_hr_session ON human_requests(session_id);
CREATE INDEX idx_hr_agent ON human_requests(agent_id);
CREATE INDEX idx_hr_priority ON human_requests(priority);
CREATE INDEX idx_hr_created ON human_requests(created_at);
CREATE INDEX idx_hr_expires ON human_requests(expires_at);
"""

REFERENCES_DDL = """
CREATE TABLE reference_store (id TEXT PRIMARY KEY, type INTEGER NOT NULL, store INTEGER NOT NULL, data BLOB NOT NULL,
    ref_count INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL);
CREATE INDEX idx_expires_at ON reference_store(expires_at);
CREATE INDEX idx_ref_count ON reference_store(ref_count);
"""

NOW = 1790000000  # seconds; the reference writes whole seconds (hitl: milliseconds)
TOOL_CALLS = json.dumps([{"ID": "call_1", "Name": "search", "Input": {"q": "loom"}, "ThoughtSignature": ""}])
TOOL_RESULT = json.dumps({"Success": True, "Data": {"hits": 3}, "Error": None})


def write_reference_directory(directory):
    with sqlite3.connect(directory / "sessions.db") as db:
        db.execute("PRAGMA journal_mode = wal")
        db.execute("PRAGMA foreign_keys = 1")
        db.executescript(SESSIONS_DDL)
        db.execute(
            "INSERT INTO sessions VALUES ('coord', 'Coordinator', 'lead', NULL, 'null', ?, ?, 0.003, 30)",
            (NOW, NOW + 5),
        )
        db.execute(
            "INSERT INTO sessions VALUES ('child', NULL, 'worker', 'coord', ?, ?, ?, 0, 0)",
            (json.dumps({"task": "search"}), NOW, NOW),
        )
        db.executemany(
            "INSERT INTO messages (session_id, role, content, tool_calls_json, tool_use_id, tool_result_json,"
            " session_context, timestamp, token_count, cost_usd, agent_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                ("coord", "user", "Find the loom docs", None, None, None, "direct", NOW, 10, 0.001, "lead"),
                ("coord", "assistant", "", TOOL_CALLS, None, None, "coordinator", NOW + 1, 15, 0.0015, "lead"),
                ("coord", "tool", "3 hits", None, "call_1", TOOL_RESULT, "shared", NOW + 2, 5, 0.0005, "lead"),
            ],
        )
        db.execute(
            "INSERT INTO tool_executions (session_id, tool_name, input_json, result_json, error,"
            " execution_time_ms, timestamp) VALUES ('coord', 'search', '{\"q\":\"loom\"}', 'null', NULL, 42, ?)",
            (NOW + 1,),
        )
        db.execute(
            "INSERT INTO memory_snapshots (session_id, snapshot_type, content, token_count, created_at)"
            " VALUES ('coord', 'summary', 'They looked for docs.', 6, ?)",
            (NOW + 3,),
        )
        db.execute(
            "INSERT INTO artifacts (id, name, path, source, session_id, created_at, tags) VALUES"
            " ('art_1', 'docs.md', '/tmp/docs.md', 'tool', 'coord', ?, 'docs')",
            (NOW,),
        )
    with sqlite3.connect(directory / "hitl.db") as db:
        db.executescript(HITL_DDL)
        db.execute(
            "INSERT INTO human_requests VALUES ('req_ref', 'lead', 'coord', 'Publish?', 'null', 'approval',"
            " 'normal', 60000, ?, ?, 'approved', 'yes', '', ?, 'alice')",
            (NOW * 1000, NOW * 1000 + 60000, NOW * 1000 + 100),
        )
    with sqlite3.connect(directory / "references.db") as db:
        db.executescript(REFERENCES_DDL)
        db.execute(
            "INSERT INTO reference_store VALUES (?, 6, 2, ?, 2, ?, 0, 11)",
            ("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9", b"hello world", NOW),
        )


# Columns that loom_models adds beside the reference's (their values are ours).
OUR_COLUMNS = {"messages": {"item_json"}}


def _reference_columns(db, table):
    names = [name for (_, name, *_) in db.execute('PRAGMA table_info("%s")' % table)]
    return ", ".join('"%s"' % name for name in names if name not in OUR_COLUMNS.get(table, ()))


def snapshot(path):
    """Every table's rows (FTS shadow tables aside), and the names of every index and trigger."""
    with sqlite3.connect(path) as db:
        tables = [
            t
            for (t,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'schema_migration%' AND name NOT LIKE '%fts5_%'"
                " AND name NOT LIKE 'sqlite_%'"
            )
        ]
        selected = {t: 'SELECT %s FROM "%s"' % (_reference_columns(db, t), t) for t in tables}
        rows = {t: sorted(map(repr, db.execute(select))) for t, select in selected.items()}
        objects = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger')")}
    return rows, objects


@pytest.fixture
def reference_dir(tmp_path):
    directory = tmp_path / "loom-data"
    directory.mkdir(mode=0o700)
    write_reference_directory(directory)
    return directory


DATABASES = ("sessions.db", "hitl.db", "references.db")


def test_adoption_keeps_every_row_table_index_and_trigger(reference_dir):
    before = {name: snapshot(reference_dir / name) for name in DATABASES}

    with open_storage(reference_dir, gc_interval=0):
        pass

    for name in DATABASES:
        rows, objects = snapshot(reference_dir / name)
        assert rows == before[name][0], name
        assert objects >= before[name][1], name  # nothing dropped; our indexes added
    with sqlite3.connect(reference_dir / "sessions.db") as db:
        assert {"idx_messages_session_time", "idx_sessions_parent"} <= {
            n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        # Its own full-text table, content and all, and its triggers (0008 and 0009 convert only ours).
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master")}
        assert "messages_fts5_content" in names and not {"messages_fts5_source", "messages_fts5_indexed"} & names
        assert db.execute("SELECT name FROM schema_migration_sessions ORDER BY name").fetchall() == [
            ("0001_reference_schema",),
            ("0002_query_indexes",),
            ("0003_search",),
            ("0004_search_by_rowid",),
            ("0005_framework_items",),
            ("0006_counts",),
            ("0007_no_prefix_indexes",),
            ("0008_search_over_messages",),
            ("0009_index_in_batches",),
        ]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert len(glob.glob(str(reference_dir / "*.pre-*.bak"))) == 3  # each file was copied first


def test_adopted_rows_read_as_they_were_written(reference_dir):
    with open_storage(reference_dir, gc_interval=0) as storage:
        coord = storage.sessions.load_session("coord")
        assert (coord.total_tokens, coord.context) == (30, None)
        assert [m.session_context for m in coord.messages] == ["direct", "coordinator", "shared"]
        assert coord.messages[1].tool_calls[0]["Name"] == "search"
        assert coord.messages[2].tool_result["Data"] == {"hits": 3}
        assert storage.sessions.load_session("child").parent_session_id == "coord"
        assert storage.hitl.get("req_ref").priority == "normal"
        assert (
            storage.references.resolve("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9", verify=True)
            == b"hello world"
        )


def test_writes_keep_the_reference_tables_working(reference_dir):
    with open_storage(reference_dir, gc_interval=0) as storage:
        storage.sessions.save_message("coord", Message(role="user", content="Another question", token_count=4))
        storage.hitl.store(HumanRequest(agent_id="lead", session_id="coord", question="Again?"))
        assert storage.sessions.load_session("coord").total_tokens == 34

        with sqlite3.connect(reference_dir / "sessions.db") as db:  # the reference's FTS trigger ran
            assert db.execute("SELECT COUNT(*) FROM messages_fts5 WHERE messages_fts5 MATCH 'question'").fetchone() == (
                1,
            )

        assert storage.sessions.delete_session("coord") is True

    with sqlite3.connect(reference_dir / "sessions.db") as db:
        counts = db.execute(
            "SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM memory_snapshots),"
            " (SELECT COUNT(*) FROM artifacts), (SELECT COUNT(*) FROM messages_fts5),"
            " (SELECT parent_session_id FROM sessions WHERE id = 'child')"
        ).fetchone()
    assert counts == (0, 0, 0, 0, None)  # cascaded as the reference's own delete does


def test_an_adopted_store_dumps_and_loads_back(reference_dir, tmp_path):
    with open_storage(reference_dir, gc_interval=0) as storage:
        dumped = backup.dump_sql(storage.sessions.database, tmp_path / "sessions.sql")

    backup.load_sql(dumped, tmp_path / "loaded.db")

    assert snapshot(tmp_path / "loaded.db")[0] == snapshot(reference_dir / "sessions.db")[0]
    with sqlite3.connect(tmp_path / "loaded.db") as db:  # the FTS index came along, and works
        assert db.execute("SELECT COUNT(*) FROM messages_fts5 WHERE messages_fts5 MATCH 'docs'").fetchone() == (1,)

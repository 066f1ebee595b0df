"""The baseline: what a careful hand-written store does with the standard sqlite3 module.

    store = RawStore("/tmp/bench/raw")   # loom's migrations make its files, so schema and indexes match
    store.save_message("sess_1", {"role": "user", "content": "Hi", "token_count": 2})
    store.load_session("sess_1")         # {'id': 'sess_1', ..., 'messages': [{...}, ...]}

Every write is one committed transaction (BEGIN IMMEDIATE, as loom takes the
write lock up front), a read of two statements one snapshot (BEGIN), batches go
through executemany, and rows come back as dicts keyed by column, their JSON
columns decoded. Times stay the integers on disk:
seconds for sessions and references, milliseconds for hitl, as the reference implementation writes them.
The methods take the same plain values as the other stores of bench.py and do
the work loom's contract implies (totals, upserts, compare-and-set answers), so
a ratio to raw is the price of loom's validation, models and generality alone.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import sqlite3
import time

import loom_models
from loom_models.db import DEFAULT_PRAGMAS

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

# The same literal status and rank expression as loom's queries and migration
# 0002's partial indexes, so that SQLite picks the same plans for both stores.
_RANK = (
    "CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2"
    " WHEN 'normal' THEN 2 WHEN 'low' THEN 3 ELSE 4 END"
)
_LIST_PENDING = (
    "SELECT * FROM human_requests WHERE status = 'pending' AND expires_at + 0 > ?"
    " ORDER BY %s, created_at, id LIMIT ?" % _RANK
)
_RESPOND = (
    "UPDATE human_requests SET status = ?, response = ?, response_data_json = ?, responded_at = ?, responded_by = ?"
    " WHERE id = ? AND status = 'pending' AND expires_at > ? RETURNING *"
)
_EXPIRE = (
    "UPDATE human_requests SET status = 'expired', responded_at = ?, responded_by = 'system:expiry'"
    " WHERE status = 'pending' AND expires_at <= ?"
)
REQUEST_COLUMNS = (
    "id",
    "agent_id",
    "session_id",
    "question",
    "context_json",
    "request_type",
    "priority",
    "timeout_ms",
    "created_at",
    "expires_at",
    "status",
    "response",
    "response_data_json",
    "responded_at",
    "responded_by",
)
_INTO_REQUESTS = "INTO human_requests (%s) VALUES (%s)" % (
    ", ".join(REQUEST_COLUMNS),
    ", ".join(":" + column for column in REQUEST_COLUMNS),
)
_UPSERT_SESSION = (
    "INSERT INTO sessions (id, name, agent_id, parent_session_id, context_json, created_at, updated_at,"
    " total_cost_usd, total_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0)"
    " ON CONFLICT(id) DO UPDATE SET name = excluded.name, agent_id = excluded.agent_id,"
    " parent_session_id = excluded.parent_session_id, context_json = excluded.context_json,"
    " updated_at = excluded.updated_at RETURNING *"
)
_ADD_TO_TOTALS = (
    "UPDATE sessions SET total_tokens = total_tokens + ?, total_cost_usd = total_cost_usd + ?, updated_at = ?"
    " WHERE id = ?"
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (session_id, role, content, tool_calls_json, tool_use_id, tool_result_json,"
    " session_context, timestamp, token_count, cost_usd, agent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_STATS = (
    "SELECT (SELECT COUNT(*) FROM sessions), (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM tool_executions),"
    " (SELECT COALESCE(SUM(total_cost_usd), 0.0) FROM sessions), (SELECT COALESCE(SUM(total_tokens), 0) FROM sessions)"
)
_STORE_REFERENCE = (
    "INSERT INTO reference_store (id, type, store, data, ref_count, created_at, expires_at, size_bytes)"
    " VALUES (?, 0, 2, ?, 1, ?, 0, ?)"
    " ON CONFLICT(id) DO UPDATE SET ref_count = ref_count + 1, expires_at = CASE"
    " WHEN expires_at = 0 OR excluded.expires_at = 0 THEN 0 ELSE max(expires_at, excluded.expires_at) END"
    " RETURNING id, type, store, ref_count, created_at, expires_at, size_bytes"
)


class RawStore:
    """One connection per database file of a loom data directory, used by hand."""

    name = "raw"
    domains = ("sessions", "hitl", "references")

    def __init__(self, directory: str):
        loom_models.open_storage(directory, gc_interval=0).close()  # loom's migrations: the same schema
        self.directory = directory
        self._sessions = connect(self.path("sessions"))
        self._hitl = connect(self.path("hitl"))
        self._references = connect(self.path("references"))

    def path(self, domain: str) -> str:
        return os.path.join(self.directory, "%s.db" % domain)

    def close(self) -> None:
        for connection in (self._sessions, self._hitl, self._references):
            connection.close()

    # sessions

    def create_session(self, session_id: str, messages: list[dict]) -> None:
        self.save_session({"id": session_id})
        self.save_messages(session_id, messages)

    def save_session(self, session: dict) -> dict:
        now = int(time.time())
        values = (
            session["id"],
            session.get("name"),
            session.get("agent_id"),
            session.get("parent_session_id"),
            json.dumps(session.get("context")),
            now,
            now,
        )
        with _transaction(self._sessions):
            (row,) = _decoded(self._sessions.execute(_UPSERT_SESSION, values), ("context_json",))
        return row

    def save_message(self, session_id: str, message: dict) -> dict:
        now = int(time.time())
        with _transaction(self._sessions):
            self._add_to_totals(session_id, message.get("token_count", 0), message.get("cost_usd", 0.0), now)
            message_id = self._sessions.execute(_INSERT_MESSAGE, _message_row(session_id, message, now)).lastrowid
        return {**message, "id": message_id, "session_id": session_id, "timestamp": now}

    def save_messages(self, session_id: str, messages: list[dict]) -> list[dict]:
        now = int(time.time())
        rows = [_message_row(session_id, message, now) for message in messages]
        with _transaction(self._sessions):
            tokens = sum(message.get("token_count", 0) for message in messages)
            self._add_to_totals(session_id, tokens, sum(message.get("cost_usd", 0.0) for message in messages), now)
            self._sessions.executemany(_INSERT_MESSAGE, rows)
            # executemany leaves lastrowid unset; the ids are consecutive under the write lock.
            (last,) = self._sessions.execute("SELECT last_insert_rowid()").fetchone()
        first = last - len(rows) + 1
        return [
            {**message, "id": first + n, "session_id": session_id, "timestamp": now}
            for n, message in enumerate(messages)
        ]

    def load_session(self, session_id: str) -> dict:
        with _transaction(self._sessions, "BEGIN"):  # the session and its messages from one snapshot
            found = _decoded(
                self._sessions.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)), ("context_json",)
            )
            if not found:
                raise KeyError("session not found: %s" % session_id)
            messages = self._sessions.execute(
                "SELECT * FROM messages WHERE session_id = ? ORDER BY timestamp, id", (session_id,)
            )
            found[0]["messages"] = _decoded(messages, ("tool_calls_json", "tool_result_json"))
        return found[0]

    def load_messages(self, session_id: str, limit: int) -> list[dict]:
        latest = self._sessions.execute(
            "SELECT * FROM messages WHERE session_id = ? ORDER BY timestamp DESC, id DESC LIMIT ?", (session_id, limit)
        )
        return _decoded(latest, ("tool_calls_json", "tool_result_json"))[::-1]

    def delete_session(self, session_id: str) -> bool:
        with _transaction(self._sessions):  # foreign keys cascade to messages and tool executions
            return self._sessions.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

    def get_stats(self) -> dict:
        names = ("session_count", "message_count", "tool_execution_count", "total_cost_usd", "total_tokens")
        return dict(zip(names, self._sessions.execute(_STATS).fetchone(), strict=True))

    def count_messages(self, session_id: str) -> int:
        query = "SELECT COUNT(*) FROM messages WHERE session_id = ?"
        return self._sessions.execute(query, (session_id,)).fetchone()[0]

    def sessions_bytes(self) -> int:
        return file_bytes(self.path("sessions"))

    def _add_to_totals(self, session_id: str, tokens: int, cost: float, now: int) -> None:
        if not self._sessions.execute(_ADD_TO_TOTALS, (tokens, cost, now, session_id)).rowcount:
            raise KeyError("session not found: %s" % session_id)

    # hitl

    def fill_requests(self, rows: list[dict]) -> None:
        fill_requests(self.path("hitl"), rows)

    def store_request(self, request: dict) -> dict:
        created = _now_ms()
        row = {
            "id": request["id"],
            "agent_id": request["agent_id"],
            "session_id": request["session_id"],
            "question": request["question"],
            "context_json": json.dumps(request.get("context")),
            "request_type": request["request_type"],
            "priority": request["priority"],
            "timeout_ms": request["timeout_ms"],
            "created_at": created,
            "expires_at": created + request["timeout_ms"],
            "status": "pending",
            "response": "",
            "response_data_json": "",
            "responded_at": None,
            "responded_by": "",
        }
        with _transaction(self._hitl):
            inserted = self._hitl.execute("INSERT OR IGNORE " + _INTO_REQUESTS, row).rowcount
        if not inserted:
            raise KeyError("request already exists: %s" % request["id"])
        return {**row, "context_json": request.get("context"), "response_data_json": None}

    def list_pending(self, limit: int | None) -> list[dict]:
        rows = self._hitl.execute(_LIST_PENDING, (_now_ms(), -1 if limit is None else limit))
        return _decoded(rows, ("context_json", "response_data_json"))

    def respond_to_request(self, request_id: str, status: str, response: str, responded_by: str) -> dict:
        now = _now_ms()
        with _transaction(self._hitl):
            decided = self._hitl.execute(_RESPOND, (status, response, "", now, responded_by, request_id, now))
            rows = _decoded(decided, ("context_json", "response_data_json"))
        if not rows:
            raise KeyError("request not pending: %s" % request_id)
        return rows[0]

    def expire_overdue(self, now: datetime.datetime | None = None) -> int:
        moment = _now_ms() if now is None else (now - _EPOCH) // datetime.timedelta(milliseconds=1)
        with _transaction(self._hitl):
            return self._hitl.execute(_EXPIRE, (moment, moment)).rowcount

    # references

    def store_reference(self, data: bytes) -> dict:
        values = (hashlib.sha256(data).hexdigest(), data, int(time.time()), len(data))
        with _transaction(self._references):
            (row,) = _decoded(self._references.execute(_STORE_REFERENCE, values), ())
        return {**row, "data": data}

    def resolve(self, reference_id: str) -> bytes:
        query = "SELECT data, expires_at, ref_count FROM reference_store WHERE id = ?"
        found = self._references.execute(query, (reference_id,)).fetchone()
        if found is None or found[2] <= 0:
            raise KeyError("reference not found: %s" % reference_id)
        if found[1] and found[1] <= time.time():
            raise KeyError("reference expired: %s" % reference_id)
        return found[0]

    def retain(self, reference_id: str) -> int:
        query = (
            "UPDATE reference_store SET ref_count = ref_count + 1"
            " WHERE id = ? AND ref_count > 0 AND (expires_at = 0 OR expires_at > ?) RETURNING ref_count"
        )
        with _transaction(self._references):
            counts = self._references.execute(query, (reference_id, int(time.time()))).fetchall()
        if not counts:
            raise KeyError("reference not found or expired: %s" % reference_id)
        return counts[0][0]

    def release(self, reference_id: str) -> int:
        last = "DELETE FROM reference_store WHERE id = ? AND ref_count <= 1"
        query = "UPDATE reference_store SET ref_count = ref_count - 1 WHERE id = ? RETURNING ref_count"
        with _transaction(self._references):
            if self._references.execute(last, (reference_id,)).rowcount:
                return 0
            counts = self._references.execute(query, (reference_id,)).fetchall()
        if not counts:
            raise KeyError("reference not found: %s" % reference_id)
        return counts[0][0]


def connect(path: str) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit) with loom's pragmas."""
    connection = sqlite3.connect(path, isolation_level=None)
    for name, value in DEFAULT_PRAGMAS.items():
        connection.execute("PRAGMA %s = %s" % (name, value))
    return connection


def fill_requests(path: str, rows: list[dict]) -> None:
    """Bulk-load human_requests rows (a value for every column) in one transaction."""
    with contextlib.closing(connect(path)) as connection, _transaction(connection):
        connection.executemany("INSERT " + _INTO_REQUESTS, rows)


def file_bytes(path: str) -> int:
    """The bytes of a database file and its -wal, checkpointed first: what the data takes."""
    checkpoint(path)
    return os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0)


def checkpoint(path: str) -> None:
    """Move the whole -wal into the database file and empty it, so file sizes tell the data's size."""
    with contextlib.closing(connect(path)) as connection:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise RuntimeError("checkpoint of %s was blocked by a reader" % path)


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE"):
    connection.execute(begin)
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _decoded(cursor: sqlite3.Cursor, json_columns: tuple) -> list[dict]:
    """The rows as dicts, JSON columns decoded ('' and NULL: None), read to the end."""
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    for row in rows:
        for column in json_columns:
            row[column] = json.loads(row[column]) if row[column] else None
    return rows


def _message_row(session_id: str, message: dict, now: int) -> tuple:
    tool_calls, tool_result = message.get("tool_calls"), message.get("tool_result")
    return (
        session_id,
        message["role"],
        message.get("content", ""),
        None if tool_calls is None else json.dumps(tool_calls),
        message.get("tool_use_id"),
        None if tool_result is None else json.dumps(tool_result),
        message.get("session_context", "direct"),
        now,
        message.get("token_count", 0),
        message.get("cost_usd", 0.0),
        message.get("agent_id"),
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000

"""The store under test: loom_models through its public API, model objects in and model objects out.

    store = LoomStore("/tmp/bench/loom")   # or LoomStore(database_url=...): sessions, and requests to fill
    store.save_message("sess_1", {"role": "user", "content": "Hi", "token_count": 2})
    store.load_session("sess_1")           # a Session, its .messages Message objects

Its methods take the same plain values as RawStore's (_raw.py) and make loom's
model objects of them inside the call, so their cost is part of the timing.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
from urllib.parse import quote

import _raw

import loom_models
from loom_models.db import open_database
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session


class LoomStore:
    """loom_models through its public API: model objects in, model objects out."""

    domains = ("sessions", "hitl", "references")

    def __init__(self, directory: str | None = None, *, database_url: str | None = None):
        # No reference collector: its sweeps would land in some random call's time, and raw has none.
        self.storage = loom_models.open_storage(directory, database_url=database_url, gc_interval=0)
        self.directory = directory
        self.database_url = database_url
        self.name = "loom" if database_url is None else "loom-pg"
        if database_url is not None:
            # The main run's question for PostgreSQL is session latency beside SQLite;
            # --scale fills requests here too (fill_requests) for list_pending.
            self.domains = ("sessions",)

    def path(self, domain: str) -> str:
        return os.path.join(self.directory, "%s.db" % domain)

    def close(self) -> None:
        self.storage.close()

    def create_session(self, session_id: str, messages: list[dict]) -> None:
        self.save_session({"id": session_id})
        self.save_messages(session_id, messages)

    def save_session(self, session: dict) -> Session:
        return self.storage.sessions.save_session(Session(**session))

    def save_message(self, session_id: str, message: dict) -> Message:
        return self.storage.sessions.save_message(session_id, Message(**message))

    def save_messages(self, session_id: str, messages: list[dict]) -> list[Message]:
        return self.storage.sessions.save_messages(session_id, [Message(**message) for message in messages])

    def load_session(self, session_id: str) -> Session:
        return self.storage.sessions.load_session(session_id)

    def load_messages(self, session_id: str, limit: int) -> list[Message]:
        return self.storage.sessions.load_messages(session_id, limit=limit)

    def delete_session(self, session_id: str) -> bool:
        return self.storage.sessions.delete_session(session_id)

    def get_stats(self):
        return self.storage.sessions.get_stats()

    def count_messages(self, session_id: str) -> int:
        return len(self.storage.sessions.load_messages(session_id))

    def sessions_bytes(self) -> int:
        """The sessions domain's bytes: its file and -wal, or on PostgreSQL its tables with their indexes."""
        if self.database_url is None:
            return _raw.file_bytes(self.path("sessions"))
        (size,) = self.storage.sessions.database.execute_sql(_SESSIONS_BYTES).fetchone()
        return int(size)

    def fill_requests(self, rows: list[dict]) -> None:
        """Setup, not measured: the same rows as raw's, in one transaction on a connection of its own (as raw's)."""
        database = open_database(self.database_url or self.path("hitl"))
        with contextlib.closing(database), database.atomic():
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                _insert_requests(database, rows[start : start + _ROWS_PER_INSERT])

    def store_request(self, request: dict) -> HumanRequest:
        return self.storage.hitl.store(HumanRequest(**request))

    def list_pending(self, limit: int | None) -> list[HumanRequest]:
        return self.storage.hitl.list_pending(limit=limit)

    def respond_to_request(self, request_id: str, status: str, response: str, responded_by: str) -> HumanRequest:
        return self.storage.hitl.respond_to_request(request_id, status, response, responded_by=responded_by)

    def expire_overdue(self, now: datetime.datetime | None) -> int:
        return self.storage.hitl.expire_overdue(now)

    def store_reference(self, data: bytes):
        return self.storage.references.store(data)

    def resolve(self, reference_id: str) -> bytes:
        return self.storage.references.resolve(reference_id)

    def retain(self, reference_id: str) -> int:
        return self.storage.references.retain(reference_id)

    def release(self, reference_id: str) -> int:
        return self.storage.references.release(reference_id)


# pg_total_relation_size counts a table's indexes and TOAST too; session_counts is
# PostgreSQL's alone (migration 0006), the counts get_stats sums.
_SESSIONS_BYTES = (
    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
    " AND c.relname IN ('sessions', 'messages', 'session_counts')"
)
# Rows of one INSERT when filling requests: 15 values each, under SQLite's 32,766 variables.
_ROWS_PER_INSERT = 1_000


def _insert_requests(database, rows: list[dict]) -> None:
    """One multi-row INSERT: PostgreSQL takes a round trip per row of an executemany."""
    columns = _raw.REQUEST_COLUMNS
    row = "(%s)" % ", ".join([database.param] * len(columns))
    sql = "INSERT INTO human_requests (%s) VALUES %s" % (", ".join(columns), ", ".join([row] * len(rows)))
    database.execute_sql(sql, [values[column] for values in rows for column in columns])


@contextlib.contextmanager
def throwaway_schema(database_url: str):
    """A URL whose connections use a new schema of the PostgreSQL database; the schema is dropped after."""
    schema = "loom_bench_%d_%s" % (os.getpid(), secrets.token_hex(4))
    admin = open_database(database_url)
    admin.execute_sql("CREATE SCHEMA %s" % schema)
    try:
        separator = "&" if "?" in database_url else "?"
        yield "%s%soptions=%s" % (database_url, separator, quote("-csearch_path=%s" % schema))
    finally:
        admin.execute_sql("DROP SCHEMA %s CASCADE" % schema)
        admin.close()

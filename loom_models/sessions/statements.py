"""The statements of the sessions domain: built once per repository, run on every turn.

    sql = SessionStatements(repo.Session, repo.Message, repo.ToolExecution, repo.backend)   # a repository's models
    sql.session.models(id="sess_1")                   # [Session]
    sql.latest_messages.models(session="sess_1", limit=50)
    sql.search("refund", session_id=None, agent_id="billing").limit(20)

Each statement's parameters convert their values as their fields do
(statements.param), so callers pass datetimes, dicts and ids as they are.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

import peewee
from peewee import fn

from ..statements import Statement, param
from .models import Message, Session, ToolExecution

if TYPE_CHECKING:
    from ..backends import Backend

# get_stats's figures, in its order, as columns of PostgreSQL's session_counts.
COUNTED_COLUMNS = ("sessions", "messages", "tool_executions", "total_cost_usd", "total_tokens")
# The full-text table of messages' content, where the backend keeps one (SQLite's FTS5).
SEARCH_INDEX = "messages_fts5"
# Where SQLite files we created keep the last message the index has taken: the
# ones after it wait to be indexed in a batch (migration 0009_index_in_batches).
INDEX_MARK = "messages_fts5_indexed"
_WAITING = "SELECT 1 FROM messages WHERE id > (SELECT upto FROM messages_fts5_indexed) LIMIT 1"
_INDEX_WAITING = (
    "INSERT INTO messages_fts5 (rowid, message_id, session_id, role, content, timestamp)"
    " SELECT id, id, session_id, role, content, timestamp FROM messages"
    " WHERE id > (SELECT upto FROM messages_fts5_indexed)",
    "UPDATE messages_fts5_indexed SET upto = (SELECT MAX(id) FROM messages)"
    " WHERE (SELECT MAX(id) FROM messages) > upto",
)
# A search looks for words; anything else in a query is no syntax.
_WORD = re.compile(r"\w+")
# Words too common to tell messages apart: a question's "what is the" would make
# the search rank nearly every message. PostgreSQL's english configuration drops
# the same kind of words.
_STOPWORDS = frozenset(
    "a an and are as at be but by do does for from has have how i in is it of on or "
    "that the this to was what when where which who why will with you".split()
)


class SessionStatements:
    def __init__(self, S: type[Session], M: type[Message], T: type[ToolExecution], backend: Backend) -> None:
        self.S, self.M, self.T, self.backend = S, M, T, backend
        every = fn.COUNT(peewee.SQL("*"))
        self.session = Statement(S.select().where(S.id == param(S.id)))
        add_to_totals = (
            S.update(
                total_tokens=S.total_tokens + param("tokens"),
                total_cost_usd=S.total_cost_usd + param("cost"),
                updated_at=backend.greatest(S.updated_at, param(S.updated_at)),
            )
            .where(S.id == param(S.id))
            .returning(S.updated_at)
        )
        self.add_to_totals = Statement(add_to_totals)
        zero = peewee.SQL("0")
        self.reset_totals = Statement(
            S.update(total_tokens=zero, total_cost_usd=zero, updated_at=param(S.updated_at)).where(S.id == param(S.id))
        )
        self.delete_session = Statement(S.delete().where(S.id == param(S.id)))
        self.message = Statement(M.select().where(M.id == param(M.id), M.session == param(M.session)))
        self.set_usage = Statement(
            M.update(token_count=param(M.token_count), cost_usd=param(M.cost_usd)).where(M.id == param(M.id))
        )

        def summed(column: peewee.Field) -> peewee.Select:
            return M.select(fn.COALESCE(fn.SUM(column), zero)).where(M.session == S.id)

        self.recount_totals = Statement(
            S.update(
                total_tokens=summed(M.token_count), total_cost_usd=summed(M.cost_usd), updated_at=param(S.updated_at)
            ).where(S.id == param(S.id))
        )
        self.delete_message = Statement(M.delete().where(M.id == param(M.id)))
        self.delete_messages = Statement(M.delete().where(M.session == param(M.session)))
        self.chronological = (M.timestamp, M.id)  # the order of a conversation
        of_session = M.select().where(M.session == param(M.session))
        in_order = backend.index_order_preamble
        self.messages = Statement(of_session.order_by(M.timestamp, M.id), preamble=in_order)
        latest = of_session.order_by(M.timestamp.desc(), M.id.desc()).limit(param("limit"))
        self.latest_messages = Statement(latest, preamble=in_order)
        self.message_fields = [f for f in M._meta.sorted_fields if not f.primary_key]
        T_fields = [f for f in T._meta.sorted_fields if not f.primary_key]
        self.save_one_message = self._save_one_message(add_to_totals) if backend.name == "postgresql" else None
        self.insert_tool_execution = Statement(T.insert({f: param(f) for f in T_fields}).returning(T.id))
        self.stats = Statement(self._counted() if backend.name == "postgresql" else self._counting(every))
        # Cached per instance: a cache on the class would keep every repository's statements alive.
        self.save_session = functools.cache(self._save_session)
        self.insert_messages = functools.cache(self._insert_messages)

    def _counting(self, every: peewee.Node) -> peewee.Select:
        """get_stats's figures, counted: SQLite counts an index's entries fast enough."""
        S, M, T = self.S, self.M, self.T
        zero = peewee.SQL("0")
        columns = [S.select(every), M.select(every), T.select(every)]
        columns += [
            S.select(fn.COALESCE(fn.SUM(S.total_cost_usd), zero)),
            S.select(fn.COALESCE(fn.SUM(S.total_tokens), zero)),
        ]
        return peewee.Select(columns=columns).bind(S._meta.database)

    def _counted(self) -> peewee.Select:
        """get_stats's figures, as PostgreSQL keeps them in session_counts (migration 0006_counts)."""
        counts = peewee.Table("session_counts", COUNTED_COLUMNS)
        zero = peewee.SQL("0")
        columns = [fn.COALESCE(fn.SUM(getattr(counts, column)), zero) for column in COUNTED_COLUMNS]
        return counts.select(*columns).bind(self.S._meta.database)

    def _save_session(self, changed: frozenset) -> Statement:
        """The upsert of a session that, on an existing row, sets `changed` and updated_at."""
        S = self.S
        preserved = [S.updated_at, *(S._meta.fields[name] for name in sorted(changed))]
        query = S.insert({f: param(f) for f in S._meta.sorted_fields})
        query = query.on_conflict(conflict_target=[S.id], preserve=preserved)
        return Statement(query.returning(*S._meta.sorted_fields))

    def _insert_messages(self, count: int) -> Statement:
        """INSERT of `count` messages RETURNING their ids; values in `message_fields` order, row after row."""
        row = [param(field=field) for field in self.message_fields]
        return Statement(self.M.insert_many([row] * count, fields=self.message_fields).returning(self.M.id))

    def _save_one_message(self, add_to_totals: peewee.ModelUpdate) -> Statement:
        """A message and its session's totals in one statement, one round trip: PostgreSQL's data-modifying WITH.

        Takes add_to_totals's parameters and the message's fields by name; a message
        without a time takes the session's new update time. No session, no row.
        """
        M = self.M
        totals = add_to_totals.cte("totals")
        values = [
            fn.COALESCE(param(field), totals.c.updated_at) if field is M.timestamp else param(field)
            for field in self.message_fields
        ]
        query = M.insert_from(totals.select(*values), fields=self.message_fields)
        return Statement(query.with_cte(totals).returning(M.id, M.timestamp))

    def of_session(self, session_id: str) -> peewee.ModelSelect[Message]:
        return self.M.select().where(self.M.session == session_id)

    def message_values(self, session_id: str, rows: list[dict]) -> list:
        """The values of messages' rows for insert_messages, field after field, row after row."""
        return [
            session_id if field.name == "session" else row[field.name] for row in rows for field in self.message_fields
        ]

    def index_waiting(self) -> None:
        """Index the messages that wait past the full-text index's mark, if the file has one."""
        database = self.backend.database
        if self.backend.name != "sqlite" or INDEX_MARK not in database.get_tables():
            return
        if database.execute_sql(_WAITING).fetchone():
            with self.backend.write():
                for statement in _INDEX_WAITING:
                    database.execute_sql(statement)

    def search(self, text: str, session_id: str | None, agent_id: str | None) -> peewee.ModelSelect[Message] | None:
        """Messages whose content matches any word of `text`, best first, of a session or an agent's sessions.

        None when `text` has no word. Any text is a query: punctuation, quotes and operators are no syntax.
        """
        words = _WORD.findall(text)
        words = [word for word in words if word.lower() not in _STOPWORDS] or words
        if not words:
            return None
        S, M = self.S, self.M
        found: peewee.ModelSelect[Message] = M.select()
        if session_id is not None:
            found = found.where(M.session == session_id)
        if agent_id is not None:
            found = found.where(M.session.in_(S.select(S.id).where(S.agent_id == agent_id)))
        return self.backend.match(found, M.content, SEARCH_INDEX, words)


def row_value(fields: tuple, values: tuple) -> peewee.Tuple:
    """The row value `values`, each as its field's column stores it (for keyset pages)."""
    return peewee.Tuple(*(field.db_value(value) for field, value in zip(fields, values, strict=True)))

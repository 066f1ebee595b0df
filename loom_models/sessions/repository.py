"""SessionRepository: sessions, their messages with token and cost totals, tool executions.

    from loom_models import open_storage
    from loom_models.sessions import Message, Session

    with open_storage("./loom-data") as storage:
        sessions = storage.sessions
        sessions.save_session(Session(id="sess_1", agent_id="support", context={"user": "john"}))
        sessions.save_message("sess_1", Message(role="user", content="Hi", token_count=2))
        sessions.save_message("sess_1", Message(role="assistant", content="Hello!", token_count=3))
        session = sessions.load_session("sess_1")
        print(session.total_tokens, [m.content for m in session.messages])   # 5 ['Hi', 'Hello!']
        sessions.delete_session("sess_1")   # and its messages and tool executions

Totals belong to the store: each message adds its tokens and cost to its session
in the transaction that inserts it, so they stay exact with many writers.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import peewee
from peewee import Tuple, fn

from ..base import bind_models
from ..calls import repository_call
from ..columns import utc_now
from ..errors import ConflictError, ForeignKeyConstraintError, NotFoundError, ValidationError
from ..repository import Repository
from ..validation import check_id, check_limit, check_positive, cutoff_time, fields_set, input_of, load
from .models import Message, Session, SessionStats, ToolExecution
from .schemas import MessageSchema, SessionDocumentSchema, SessionSchema, ToolExecutionSchema, load_message
from .statements import SessionStatements, row_value

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

_SESSION = SessionSchema()
_DOCUMENT = SessionDocumentSchema()
_MESSAGE = MessageSchema()
_USAGE = MessageSchema(only=("token_count", "cost_usd"))
_TOOL_EXECUTION = ToolExecutionSchema()

# Rows per INSERT: well under every backend's limit on bound parameters.
_INSERT_BATCH = 500

# What save_session may change on an existing session.
_UPDATABLE = ("name", "agent_id", "parent_session_id", "context")
# What a child session sees of its parent's messages.
_SHARED = ("coordinator", "shared")


# How usage() sums messages: per UTC day, per agent, per session.
USAGE_GROUPS = ("day", "agent", "session")
_DAY_ONE = datetime.date(1970, 1, 1)
_DAY_SECONDS = 86400


@dataclasses.dataclass(frozen=True)
class Usage:
    """What usage() sums for one day (a date, UTC), agent (an id, or None) or session (an id)."""

    key: datetime.date | str | None
    tokens: int
    cost_usd: float
    messages: int


# What each call's result tells its span (calls.repository_call).
def _session_ids(session: Session) -> dict:
    return {"session_id": session.id, "agent_id": session.agent_id}


def _message_facts(message: Message) -> dict:
    return {"role": message.role, "token_count": message.token_count}


def _popped_facts(message: Message | None) -> dict:
    return {} if message is None else _message_facts(message)


class SessionRepository(Repository):
    domain = "sessions"
    file = "sessions.db"
    table = "sessions"
    span_prefix = "session_store"
    models = (Session, Message, ToolExecution)

    def __init__(self, database: peewee.Database, tracer: Tracer | None = None):
        super().__init__(database, tracer)
        self.Session, self.Message, self.ToolExecution = bind_models(database, self.models)
        self._sql = SessionStatements(self.Session, self.Message, self.ToolExecution, self.backend)
        self._lock_session = self.backend.row_lock(self.Session)

    @repository_call(tells=_session_ids)
    def save_session(self, session: Session | Mapping[str, Any]) -> Session:
        """Insert a session, or change on an existing one only the fields the caller set.

            repo.save_session(Session(id="sess_1", name="Support", agent_id="support"))
            repo.save_session(Session(id="sess_1", name="Renamed"))   # agent_id stays "support"
            repo.save_session({"id": "sess_1", "context": None})       # None clears a field

        The fields set are a model's (those given to it or assigned since; a
        session a repository returned has none) or a mapping's keys. Creation
        time and totals are the store's: an update never changes them.
        """
        values = load(_SESSION, input_of(session, _SESSION, "session"))
        changed = frozenset(fields_set(session)).intersection(_UPDATABLE)
        row = {**values, "updated_at": utc_now(), "total_cost_usd": 0.0, "total_tokens": 0}
        with self.backend.write():
            return self._sql.save_session(changed).models(**row)[0]

    @repository_call()
    def ids_starting(self, prefix: str, *, limit: int = 2) -> list[str]:
        """The session ids that start with `prefix`, in order, at most `limit`: an id told from its start.

        repo.ids_starting("sess_fd62")   # ['sess_fd62ed538a6a4a51a1c2c4a3b0f1d2e3']
        """
        return self._ids_starting(self.Session.id, prefix, limit)

    @repository_call(ids=("session_id",))
    def load_session(self, session_id: str, *, with_messages: bool = True) -> Session:
        """The session, with `.messages` in order unless `with_messages=False`.

        session = repo.load_session("sess_1")
        session.messages[-1].content
        """
        check_id(session_id, "session_id")
        with self.backend.snapshot():
            found = self._sql.session.models(id=session_id)
            if not found:
                raise NotFoundError("session not found: %s" % session_id)
            if with_messages:
                found[0].messages = self._sql.messages.models(session=session_id)
        return found[0]

    @repository_call(ids=("agent_id",))
    def list_sessions(
        self,
        *,
        agent_id: str | None = None,
        limit: int | None = 100,
        before: Session | str | None = None,
        updated_before: datetime.datetime | datetime.timedelta | None = None,
    ) -> list[Session]:
        """Sessions most recently updated first; `before` is the previous page's last one.

        page = repo.list_sessions(agent_id="support", limit=20)
        next_page = repo.list_sessions(agent_id="support", limit=20, before=page[-1])
        idle = repo.list_sessions(updated_before=timedelta(days=30), limit=None)   # what retention would delete
        """
        S = self.Session
        query = S.select().order_by(S.updated_at.desc(), S.id.desc()).limit(check_limit(limit))
        if agent_id is not None:
            query = query.where(S.agent_id == check_id(agent_id, "agent_id"))
        if updated_before is not None:
            query = query.where(S.updated_at < cutoff_time(updated_before))
        if before is not None:
            order = (S.updated_at, S.id)
            query = query.where(Tuple(*order) < row_value(order, self._session_position(before)))
        return list(query)

    @repository_call(ids=("session_id",), tells=_message_facts)
    def save_message(self, session_id: str, message: Message | Mapping[str, Any]) -> Message:
        """Insert a message and add its tokens and cost to the session's totals.

        saved = repo.save_message("sess_1", Message(role="user", content="Hi", token_count=2))
        saved.id
        """
        return self._save_messages(session_id, [message])[0]

    @repository_call(ids=("session_id",))
    def save_messages(self, session_id: str, messages: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
        """`save_message` for many (a list, a generator...), in one transaction: all of them or none.

        repo.save_messages("sess_1", (Message(role="user", content=text) for text in texts))
        """
        return self._save_messages(session_id, messages)

    def _save_messages(self, session_id: str, messages: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
        check_id(session_id, "session_id")
        given = [_message_input(session_id, m) for m in _each_message(messages)]
        rows = [load_message(values) for values in given]
        if not rows:
            return []
        if len(rows) == 1 and self._sql.save_one_message is not None and self.backend.commits_alone():
            return [self._save_one_message(session_id, given[0], rows[0])]
        M = self.Message
        ids: list[int] = []
        with self.backend.write():
            now = self._add_to_totals(session_id, rows)
            # Unless given a time, a message is of the session's clock, which
            # never goes back: another machine's clock behind ours, or a step
            # back, cannot put a message before those saved earlier.
            for asked, row in zip(given, rows, strict=True):
                if asked.get("timestamp") is None:
                    row["timestamp"] = now
            for start in range(0, len(rows), _INSERT_BATCH):
                batch = rows[start : start + _INSERT_BATCH]
                values = self._sql.message_values(session_id, batch)
                inserted = self._sql.insert_messages(len(batch)).rows(*values)
                ids.extend(i for (i,) in inserted)
        # Ids come from an increasing sequence in insertion order.
        return [M(id=i, session=session_id, **row) for i, row in zip(sorted(ids), rows, strict=True)]

    @repository_call(ids=("session_id",))
    def load_messages(
        self, session_id: str, *, limit: int | None = None, before_id: int | None = None
    ) -> list[Message]:
        """Messages in order; with `limit`, the latest `limit` before message `before_id`.

        latest = repo.load_messages("sess_1", limit=50)
        earlier = repo.load_messages("sess_1", limit=50, before_id=latest[0].id)
        """
        check_id(session_id, "session_id")
        if before_id is None:
            if limit is None:
                return self._sql.messages.models(session=session_id)
            return self._sql.latest_messages.models(session=session_id, limit=check_limit(limit))[::-1]
        order = self._sql.chronological
        query = self._sql.of_session(session_id)
        query = query.where(Tuple(*order) < row_value(order, self._message_position(session_id, before_id)))
        if limit is None:
            return list(query.order_by(*order))
        return list(query.order_by(*[f.desc() for f in order]).limit(check_limit(limit)))[::-1]

    def iter_messages(self, session_id: str, batch_size: int = 1000) -> Iterator[Message]:
        """All messages in order, read `batch_size` at a time; no lock is held between batches.

        for message in repo.iter_messages("sess_1"):
            index(message.content)
        """
        check_id(session_id, "session_id")
        check_positive(batch_size, "batch_size")

        def batches() -> Iterator[Message]:
            position = None
            while True:
                batch = self._messages_after(session_id, position, batch_size)
                yield from batch
                if len(batch) < batch_size:
                    return
                position = (batch[-1].timestamp, batch[-1].id)

        return batches()

    @repository_call(ids=("session_id",), tells=_popped_facts)
    def pop_message(self, session_id: str) -> Message | None:
        """Delete the session's newest message and take its tokens and cost off the totals; None if it has none.

        last = repo.pop_message("sess_1")   # an agent's undo
        """
        check_id(session_id, "session_id")
        with self.backend.write():
            self._lock_session(session_id)  # two pops take two messages
            newest = self._sql.latest_messages.models(session=session_id, limit=1)
            if not newest:
                return None
            self._sql.delete_message.execute(id=newest[0].id)
            # Summed again, not subtracted: a float subtracted back leaves dust (-8.7e-17 USD).
            self._sql.recount_totals.execute(id=session_id, updated_at=utc_now())
        return newest[0]

    @repository_call(ids=("session_id",))
    def clear_messages(self, session_id: str) -> int:
        """Delete every message of the session, its totals back to 0; the session and its tool executions stay.

        repo.clear_messages("sess_1")   # how many went
        """
        check_id(session_id, "session_id")
        with self.backend.write():
            self._lock_session(session_id)
            if not self._sql.reset_totals.execute(id=session_id, updated_at=utc_now()).rowcount:
                raise NotFoundError("session not found: %s" % session_id)
            return self._sql.delete_messages.execute(session=session_id).rowcount

    @repository_call(ids=("session_id",), tells=_message_facts)
    def add_usage(
        self, session_id: str, message_id: int | None = None, *, token_count: int = 0, cost_usd: float = 0.0
    ) -> Message:
        """Add tokens and cost to a saved message (by default the session's newest) and to the session's totals.

        repo.add_usage("sess_1", token_count=1_250, cost_usd=0.0031)   # a run's usage, known after its reply

        One transaction; returns the message as it now is. A message's own
        counts stay within a message's bounds (ValidationError beyond them).
        """
        check_id(session_id, "session_id")
        if message_id is not None:
            check_positive(message_id, "message_id")
        added = load(_USAGE, {"token_count": token_count, "cost_usd": cost_usd})
        with self.backend.write():
            self._lock_session(session_id)
            if message_id is None:
                found = self._sql.latest_messages.models(session=session_id, limit=1)
            else:
                found = self._sql.message.models(id=message_id, session=session_id)
            if not found:
                raise NotFoundError("message not found: %s in session %s" % (message_id or "any", session_id))
            message = found[0]
            usage = load(
                _USAGE,
                {
                    "token_count": message.token_count + added["token_count"],
                    "cost_usd": message.cost_usd + added["cost_usd"],
                },
            )
            self._sql.set_usage.execute(id=message.id, **usage)
            self._add_to_totals(session_id, [added])
        message.token_count, message.cost_usd = usage["token_count"], usage["cost_usd"]
        return message

    @repository_call(ids=("session_id",))
    def save_tool_execution(self, session_id: str, execution: ToolExecution | Mapping[str, Any]) -> ToolExecution:
        """Record a tool execution of the session.

        repo.save_tool_execution("sess_1", ToolExecution(tool_name="search", input={"q": "loom"}))
        """
        check_id(session_id, "session_id")
        values = load(_TOOL_EXECUTION, input_of(execution, _TOOL_EXECUTION, "execution"))
        T = self.ToolExecution
        with self.backend.write():
            ((execution_id,),) = self._sql.insert_tool_execution.rows(**values, session=session_id)
        return T(id=execution_id, session=session_id, **values)

    @repository_call(ids=("session_id",))
    def load_tool_executions(self, session_id: str) -> list[ToolExecution]:
        """The session's tool executions in order.

        [run.tool_name for run in repo.load_tool_executions("sess_1")]
        """
        T = self.ToolExecution
        query = T.select().where(T.session == check_id(session_id, "session_id"))
        return list(query.order_by(T.timestamp, T.id))

    @repository_call(ids=("session_id",))
    def delete_session(self, session_id: str) -> bool:
        """Delete a session with its messages and tool executions; False if absent.

        repo.delete_session("sess_1")   # True
        """
        check_id(session_id, "session_id")
        with self.backend.write():
            return self._sql.delete_session.execute(id=session_id).rowcount > 0

    @repository_call()
    def delete_sessions_older_than(self, cutoff: datetime.datetime | datetime.timedelta) -> int:
        """Delete the sessions not updated since `cutoff` (a datetime or a timedelta); how many went.

        repo.delete_sessions_older_than(timedelta(days=30))
        repo.list_sessions(updated_before=timedelta(days=30), limit=None)   # which would go
        """
        S = self.Session
        with self.backend.write():
            return S.delete().where(S.updated_at < cutoff_time(cutoff)).execute()

    @repository_call()
    def message_counts(self, session_ids: Iterable[str]) -> dict[str, int]:
        """How many messages each of these sessions has, in one statement (0 for none, or no such session).

        repo.message_counts(["sess_1", "sess_2"])   # {'sess_1': 12, 'sess_2': 0}
        """
        if isinstance(session_ids, str):
            raise ValidationError({"session_ids": ["Must be a list of session ids."]})
        ids = [check_id(session_id, "session_ids") for session_id in session_ids]
        M = self.Message
        query = M.select(M.session, fn.COUNT(M.id)).where(M.session.in_(ids)).group_by(M.session)
        found = dict(query.tuples())
        return {session_id: found.get(session_id, 0) for session_id in ids}

    @repository_call()
    def get_stats(self) -> SessionStats:
        """Counts and totals, read in one statement (one consistent snapshot).

        repo.get_stats().message_count
        """
        ((sessions, messages, executions, cost, tokens),) = self._sql.stats.rows()
        # PostgreSQL sums its counts as numeric (Decimal)
        return SessionStats(int(sessions), int(messages), int(executions), float(cost), int(tokens))

    @repository_call()
    def usage(self, *, by: str = "day", since: datetime.datetime | datetime.timedelta) -> list[Usage]:
        """Messages' tokens and cost since `since`, summed per UTC day (oldest first), or agent or session
        (costliest first).

        [(u.key, u.tokens, u.cost_usd) for u in repo.usage(by="agent", since=timedelta(days=30))]

        A message's agent is its session's; a day is a datetime.date, an agent None when the session has none.
        """
        S, M = self.Session, self.Message
        if by not in USAGE_GROUPS:
            raise ValidationError({"by": ["Must be one of %s, not %r." % (", ".join(USAGE_GROUPS), by)]})
        # Times are whole seconds since 1970 in UTC on every backend, divided as integers by
        # both: a day is plain arithmetic (toward zero: a message dated before 1970 would count
        # on the next day).
        day = M.timestamp / _DAY_SECONDS * _DAY_SECONDS
        key = {"day": day, "agent": S.agent_id, "session": M.session}[by]
        cost = fn.SUM(M.cost_usd)
        query = (
            M.select(key, fn.SUM(M.token_count), cost, fn.COUNT(peewee.SQL("*")))
            .join(S, on=(M.session == S.id))
            .where(M.timestamp >= cutoff_time(since))
            .group_by(key)
        )
        query = query.order_by(key) if by == "day" else query.order_by(cost.desc(), key)
        return [
            Usage(_DAY_ONE + datetime.timedelta(days=k // _DAY_SECONDS) if by == "day" else k, int(t), float(c), n)
            for k, t, c, n in query.tuples()
        ]

    @repository_call(ids=("agent_id",))
    def load_agent_sessions(self, agent_id: str) -> list[Session]:
        """Every session of an agent, most recently updated first.

        [s.id for s in repo.load_agent_sessions("researcher")]
        """
        return self.list_sessions(agent_id=check_id(agent_id, "agent_id"), limit=None)

    @repository_call(ids=("session_id",))
    def load_messages_from_parent(self, session_id: str) -> list[Message]:
        """What the parent session shared: its coordinator and shared messages, in order.

        repo.load_messages_from_parent("child_1")   # [] when the session has no parent
        """
        session = self.load_session(session_id, with_messages=False)
        if session.parent_session_id is None:
            return []
        M = self.Message
        query = self._sql.of_session(session.parent_session_id).where(M.session_context.in_(_SHARED))
        return list(query.order_by(*self._sql.chronological))

    @repository_call(ids=("agent_id",))
    def load_messages_for_agent(self, agent_id: str, limit: int | None = None) -> list[Message]:
        """An agent's messages and what its sessions' parents shared, in order, each once.

        repo.load_messages_for_agent("researcher", limit=50)   # the latest 50
        """
        S, M = self.Session, self.Message
        sessions = S.select(S.id, S.parent_session_id).where(S.agent_id == check_id(agent_id, "agent_id")).tuples()
        own, parents = set(), set()
        for session_id, parent_id in sessions:
            own.add(session_id)
            parents.add(parent_id)
        parents -= own | {None}
        # Ids, not subqueries: SQLite then looks each session's messages up by index.
        wanted = M.session.in_(own)
        if parents:
            wanted |= M.session.in_(parents) & M.session_context.in_(_SHARED)
        query = M.select().where(wanted)
        if limit is None:
            return list(query.order_by(*self._sql.chronological))
        latest = query.order_by(*[f.desc() for f in self._sql.chronological]).limit(check_limit(limit))
        return list(latest)[::-1]

    @repository_call(ids=("session_id", "agent_id"))
    def search_messages(
        self, query: str, *, session_id: str | None = None, agent_id: str | None = None, limit: int = 20
    ) -> list[Message]:
        """Messages matching any word of `query`, best match first (stemmed: "running" finds "run").

            repo.search_messages("what is SQL?", agent_id="researcher", limit=5)

        Any text is a valid query: its words are searched for, and punctuation,
        quotes and operators are not syntax. No word, no result.
        """
        if not isinstance(query, str):
            raise ValidationError({"query": ["Must be a string."]})
        check_positive(limit, "limit")
        for name, value in (("session_id", session_id), ("agent_id", agent_id)):
            if value is not None:
                check_id(value, name)
        found = self._sql.search(query, session_id, agent_id)
        if found is None:
            return []
        self._sql.index_waiting()  # so that the newest messages are found too
        return list(found.limit(limit))

    @repository_call(ids=("session_id",))
    def export_session(self, session_id: str) -> dict:
        """The session with its messages and tool executions, as JSON-ready values.

        json.dumps(repo.export_session("sess_1"))   # import_session reads it back
        """
        with self.backend.snapshot():  # the session, its messages and its runs as of one moment
            session = self.load_session(session_id)
            session.tool_executions = self.load_tool_executions(session_id)
        return _DOCUMENT.dump(session)

    @repository_call()
    def reclaim_counts(self) -> None:
        """Give the space of get_stats's folded counts back (PostgreSQL's session_counts); nothing on SQLite.

        repo.reclaim_counts()   # the storage's collector does, every gc_interval

        Every write adds a row there and every 128th folds them: without a VACUUM
        (autovacuum may be off) the table, and each get_stats, would only grow.
        """
        if self.backend.name == "postgresql":
            self.database.execute_sql("VACUUM session_counts")

    @repository_call(tells=_session_ids)
    def import_session(
        self,
        document: Mapping[str, Any],
        *,
        replace: bool = False,
        progress: Callable[[int], object] | None = None,
    ) -> Session:
        """Write an exported session back, its times as exported, in one transaction.

            repo.import_session(json.load(open("sess_1.json")))
            repo.import_session(document, replace=True)   # the stored one, and its messages, give way

        The store gives the messages and tool executions new ids, and the totals
        are the sum of the imported messages. An id the store holds already is a
        ConflictError, and then nothing is written, unless `replace`.
        `progress(rows)` is told the rows written as they are: the session, then
        its messages and tool executions a batch at a time.
        """
        session = load(_DOCUMENT, document)
        messages, executions = session.pop("messages"), session.pop("tool_executions")
        session["updated_at"] = session["updated_at"] or utc_now()
        session["total_tokens"] = sum(m["token_count"] for m in messages)
        session["total_cost_usd"] = math.fsum(m["cost_usd"] for m in messages)
        S = self.Session
        with self.backend.write():
            if replace:  # in this transaction: a failed import leaves the stored one as it was
                self._sql.delete_session.execute(id=session["id"])
            if not S.insert(**session).on_conflict_ignore().as_rowcount().execute():
                raise ConflictError("session already exists: %s" % session["id"])
            written = progress or (lambda rows: None)
            written(1)
            for model, rows in ((self.Message, messages), (self.ToolExecution, executions)):
                for start in range(0, len(rows), _INSERT_BATCH):
                    batch = [{**row, "session": session["id"]} for row in rows[start : start + _INSERT_BATCH]]
                    model.insert_many(batch).execute()
                    written(len(batch))
            return S.get(S.id == session["id"])

    def _add_to_totals(self, session_id: str, rows: list[dict]) -> datetime.datetime:
        """Add the rows' tokens and cost to the session's totals; its update time, now or later (never back)."""
        updated = self._sql.add_to_totals.rows(
            id=session_id,
            tokens=sum(row["token_count"] for row in rows),
            cost=sum(row["cost_usd"] for row in rows),
            updated_at=utc_now(),
        )
        if not updated:
            raise ForeignKeyConstraintError("session not found: %s" % session_id)
        return self.Session.updated_at.python_value(updated[0][0])

    def _save_one_message(self, session_id: str, asked: dict, row: dict) -> Message:
        """save_messages of one message in one round trip, where the backend has the statement for it."""
        clock = None if asked.get("timestamp") is None else row["timestamp"]
        saved = self._sql.save_one_message.rows(  # type: ignore[union-attr]
            **{**row, "timestamp": clock},
            session=session_id,
            id=session_id,
            tokens=row["token_count"],
            cost=row["cost_usd"],
            updated_at=utc_now(),
        )
        if not saved:
            raise ForeignKeyConstraintError("session not found: %s" % session_id)
        ((message_id, timestamp),) = saved
        if clock is None:
            row["timestamp"] = self.Message.timestamp.python_value(timestamp)
        return self.Message(id=message_id, session=session_id, **row)

    @repository_call(span=False)
    def _messages_after(self, session_id: str, position: tuple | None, batch_size: int) -> list[Message]:
        query = self._sql.of_session(session_id)
        if position is not None:
            query = query.where(Tuple(*self._sql.chronological) > row_value(self._sql.chronological, position))
        return list(query.order_by(*self._sql.chronological).limit(batch_size))

    def _message_position(self, session_id: str, message_id: int) -> tuple:
        M = self.Message
        check_positive(message_id, "before_id")
        found = M.select(M.timestamp, M.id).where(M.id == message_id, M.session == session_id).first()
        if found is None:
            raise NotFoundError("message not found: %s" % message_id)
        return (found.timestamp, found.id)

    def _session_position(self, before: Session | str) -> tuple:
        # A page's last session carries its position; a bare id is looked up.
        if isinstance(before, Session) and isinstance(before.updated_at, datetime.datetime):
            return (before.updated_at, check_id(before.id, "before"))
        session_id = check_id(before.id if isinstance(before, Session) else before, "before")
        found = self.Session.get_or_none(self.Session.id == session_id)
        if found is None:
            raise NotFoundError("session not found: %s" % session_id)
        return (found.updated_at, found.id)


def _each_message(messages: object) -> list:
    """The messages of an iterable; one message, a string or a non-iterable is refused."""
    if isinstance(messages, (str, bytes, Mapping, peewee.Model)) or not isinstance(messages, Iterable):
        raise ValidationError({"messages": ["Must be an iterable of messages, got %s." % type(messages).__name__]})
    return list(messages)


def _message_input(session_id: str, message: object) -> dict:
    """A message's loadable values; a Message of another session is refused, not moved."""
    owner = message.__data__.get("session") if isinstance(message, Message) else None
    if owner is not None and owner != session_id:
        raise ValidationError({"session": ["The message is of session %r, not %r." % (owner, session_id)]})
    return input_of(message, _MESSAGE, "message")

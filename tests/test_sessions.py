"""The SessionRepository contract, on whichever backend the `backend` fixture gives."""

import datetime
import json
import math

import pytest

from loom_models import DatabaseCorruptError, ForeignKeyConstraintError, NotFoundError, ValidationError
from loom_models.sessions import Message, MessageSchema, Session, SessionSchema, ToolExecution
from loom_models.sessions.schemas import MAX_MESSAGE_TOKENS

UTC = datetime.timezone.utc


def at(seconds: int) -> datetime.datetime:
    return datetime.datetime(2026, 1, 1, tzinfo=UTC) + datetime.timedelta(seconds=seconds)


def message_count(backend, session_id):
    return backend.sql("SELECT COUNT(*) FROM messages WHERE session_id = ?", session_id)[0][0]


def totals(backend, session_id):
    return backend.sql("SELECT total_tokens, total_cost_usd FROM sessions WHERE id = ?", session_id)[0]


# -- sessions ---------------------------------------------------------------------------


def test_save_session_returns_the_stored_row(sessions, backend):
    saved = sessions.save_session(Session(id="sess_1", name="Support", agent_id="a1", context={"user": "john"}))

    assert isinstance(saved, Session)
    assert (saved.id, saved.name, saved.agent_id, saved.context) == ("sess_1", "Support", "a1", {"user": "john"})
    assert (saved.total_tokens, saved.total_cost_usd) == (0, 0)
    assert saved.created_at.tzinfo is not None and saved.created_at.microsecond == 0
    row = backend.sql("SELECT name, agent_id, created_at, updated_at FROM sessions WHERE id = 'sess_1'")[0]
    assert row == ("Support", "a1", int(saved.created_at.timestamp()), int(saved.updated_at.timestamp()))


def test_save_session_accepts_a_mapping_and_generates_an_id(sessions):
    saved = sessions.save_session({"name": "no id given"})

    assert saved.id.startswith("sess_")
    assert sessions.load_session(saved.id).name == "no id given"


def test_save_session_again_updates_but_keeps_creation_time_and_totals(sessions, backend):
    sessions.save_session(Session(id="sess_1", name="first", created_at=at(0)))
    sessions.save_message("sess_1", Message(role="user", content="hi", token_count=5, cost_usd=0.25))
    loaded = sessions.load_session("sess_1", with_messages=False)

    loaded.name, loaded.context = "second", {"k": [1, 2]}
    loaded.total_tokens, loaded.total_cost_usd, loaded.created_at = 999, 99.0, at(500)
    saved = sessions.save_session(loaded)

    assert (saved.name, saved.context, saved.created_at) == ("second", {"k": [1, 2]}, at(0))
    assert (saved.total_tokens, saved.total_cost_usd) == (5, 0.25)
    assert totals(backend, "sess_1") == (5, 0.25)
    assert backend.sql("SELECT created_at FROM sessions")[0][0] == int(at(0).timestamp())


def test_save_session_changes_only_the_fields_the_caller_set(sessions, backend):
    sessions.save_session(Session(id="parent"))
    sessions.save_session(Session(id="s1", name="first", agent_id="a1", parent_session_id="parent", context={"k": 1}))

    renamed = sessions.save_session(Session(id="s1", name="renamed"))

    assert (renamed.name, renamed.agent_id, renamed.parent_session_id, renamed.context) == (
        "renamed",
        "a1",
        "parent",
        {"k": 1},
    )
    row = backend.sql("SELECT name, agent_id, parent_session_id, context_json FROM sessions WHERE id = 's1'")
    assert row == [("renamed", "a1", "parent", '{"k":1}')]
    assert [s.id for s in sessions.load_agent_sessions("a1")] == ["s1"]


def test_save_session_with_a_mapping_changes_its_keys_and_none_clears(sessions, backend):
    sessions.save_session({"id": "s1", "name": "first", "agent_id": "a1", "context": {"k": 1}})

    sessions.save_session({"id": "s1", "agent_id": "a2"})
    sessions.save_session({"id": "s1", "context": None})
    cleared = sessions.save_session(Session(id="s1", name=None))

    assert (cleared.name, cleared.agent_id, cleared.context) == (None, "a2", None)
    assert backend.sql("SELECT name, agent_id, context_json FROM sessions") == [(None, "a2", "null")]


def test_a_session_the_repository_returned_changes_only_what_is_assigned(sessions, backend):
    sessions.save_session(Session(id="s1", name="first", agent_id="a1"))
    backend.sql("UPDATE sessions SET agent_id = 'a9'")  # another writer, since the load below
    loaded = sessions.load_session("s1", with_messages=False)
    backend.sql("UPDATE sessions SET agent_id = 'a7'")

    sessions.save_session(loaded)
    assert backend.sql("SELECT name, agent_id FROM sessions") == [("first", "a7")]
    loaded.name = "second"
    saved = sessions.save_session(loaded)
    assert (saved.name, saved.agent_id) == ("second", "a7")
    assert sessions.list_sessions()[0].dirty_fields == [] and saved.dirty_fields == []


def test_a_partial_save_of_a_new_session_fills_the_defaults(sessions, backend):
    sessions.save_session(Session(id="new", agent_id="a1"))

    assert backend.sql("SELECT name, agent_id, context_json, total_tokens FROM sessions") == [(None, "a1", "null", 0)]


def test_load_session_with_and_without_messages(sessions):
    sessions.save_session(Session(id="sess_1"))
    sessions.save_messages("sess_1", [Message(role="user", content="a"), Message(role="assistant", content="b")])

    assert [m.content for m in sessions.load_session("sess_1").messages] == ["a", "b"]
    assert sessions.load_session("sess_1", with_messages=False).messages is None


def test_load_missing_session_is_not_found(sessions):
    with pytest.raises(NotFoundError, match="^session not found: nope$"):
        sessions.load_session("nope")


def test_list_sessions_most_recently_updated_first_with_agent_filter(sessions, backend):
    for i, agent in enumerate(["a", "b", "a", "b", "a"]):
        sessions.save_session(Session(id="s%d" % i, agent_id=agent))
    for i in range(5):  # distinct update times, s4 the most recent
        backend.sql("UPDATE sessions SET updated_at = ? WHERE id = ?", 1000 + i, "s%d" % i)

    assert [s.id for s in sessions.list_sessions()] == ["s4", "s3", "s2", "s1", "s0"]
    assert [s.id for s in sessions.list_sessions(agent_id="a")] == ["s4", "s2", "s0"]
    assert [s.id for s in sessions.list_sessions(limit=2)] == ["s4", "s3"]


def test_list_sessions_pages_by_keyset_without_gaps_or_repeats(sessions, backend):
    for i in range(7):
        sessions.save_session(Session(id="s%d" % i))
    backend.sql("UPDATE sessions SET updated_at = 1000")  # all tied: the id decides

    pages, before = [], None
    while True:
        page = sessions.list_sessions(limit=3, before=before)
        if not page:
            break
        pages.append([s.id for s in page])
        before = page[-1]
    assert pages == [["s6", "s5", "s4"], ["s3", "s2", "s1"], ["s0"]]
    assert [s.id for s in sessions.list_sessions(limit=3, before="s4")] == ["s3", "s2", "s1"]


@pytest.mark.parametrize("limit", [0, -1, 1.5, "10", True])
def test_list_sessions_rejects_bad_limits(sessions, limit):
    with pytest.raises(ValidationError) as error:
        sessions.list_sessions(limit=limit)
    assert "limit" in error.value.messages


def test_list_sessions_before_an_unknown_session_is_not_found(sessions):
    with pytest.raises(NotFoundError):
        sessions.list_sessions(before="missing")
    with pytest.raises(NotFoundError):
        sessions.list_sessions(before=Session(id="never_saved"))


# -- messages and totals --------------------------------------------------------------------


def test_save_message_adds_to_totals_and_bumps_updated_at(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    backend.sql("UPDATE sessions SET updated_at = 0")

    saved = sessions.save_message("sess_1", Message(role="user", content="hi", token_count=7, cost_usd=0.5))
    sessions.save_message("sess_1", Message(role="assistant", content="yo", token_count=3, cost_usd=0.25))

    assert isinstance(saved, Message) and saved.id is not None and saved.session_id == "sess_1"
    assert totals(backend, "sess_1") == (10, 0.75)
    assert backend.sql("SELECT updated_at FROM sessions")[0][0] > 0
    assert backend.sql("SELECT role, content, token_count FROM messages WHERE id = ?", saved.id) == [("user", "hi", 7)]


def test_save_message_to_a_missing_session_is_a_foreign_key_error(sessions, backend):
    with pytest.raises(ForeignKeyConstraintError, match="session not found: ghost"):
        sessions.save_message("ghost", Message(role="user", content="hi"))
    assert backend.sql("SELECT COUNT(*) FROM messages")[0][0] == 0


def test_save_message_with_its_own_time_to_a_missing_session_stores_nothing(sessions, backend):
    with pytest.raises(ForeignKeyConstraintError, match="session not found: ghost"):
        sessions.save_message("ghost", Message(role="user", content="hi", timestamp=at(5)))
    assert backend.sql("SELECT COUNT(*) FROM messages")[0][0] == 0


def test_save_message_in_a_callers_transaction_is_undone_with_it(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    with pytest.raises(RuntimeError, match="the caller's own failure"), sessions.database.atomic():
        sessions.save_message("sess_1", Message(role="user", content="hi", token_count=4))
        assert len(sessions.load_messages("sess_1")) == 1
        raise RuntimeError("the caller's own failure")
    assert message_count(backend, "sess_1") == 0 and totals(backend, "sess_1") == (0, 0)


def test_save_message_is_one_statement_on_postgresql(sessions, backend, monkeypatch):
    if backend.name != "postgres":
        pytest.skip("SQLite has no data-modifying WITH: its save_message is a write transaction")
    sessions.save_session(Session(id="sess_1"))
    sent = []
    execute = sessions.database.execute_sql
    monkeypatch.setattr(
        sessions.database, "execute_sql", lambda sql, *args, **kw: sent.append(sql) or execute(sql, *args, **kw)
    )

    saved = sessions.save_message("sess_1", Message(role="user", content="hi", token_count=4, cost_usd=0.5))
    given = sessions.save_message("sess_1", Message(role="user", content="then", timestamp=at(9)))

    assert len(sent) == 2 and all(sql.startswith('WITH "totals" AS (UPDATE "sessions"') for sql in sent)
    assert totals(backend, "sess_1") == (4, 0.5)
    stored = sessions.load_messages("sess_1")
    assert [(m.id, m.timestamp) for m in stored] == [(given.id, at(9)), (saved.id, saved.timestamp)]
    assert saved.timestamp == sessions.load_session("sess_1").updated_at  # the session's clock


def test_save_messages_is_all_or_nothing(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    batch = [Message(role="user", content="ok", token_count=1), Message(role="wizard", content="bad")]

    with pytest.raises(ValidationError) as error:
        sessions.save_messages("sess_1", batch)

    assert "role" in error.value.messages
    assert message_count(backend, "sess_1") == 0
    assert totals(backend, "sess_1") == (0, 0)


def test_save_messages_returns_ids_in_order_across_insert_batches(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    saved = sessions.save_messages("sess_1", [Message(role="user", content=str(i), token_count=1) for i in range(1203)])

    stored = dict(backend.sql("SELECT id, content FROM messages"))
    assert [stored[m.id] for m in saved] == [str(i) for i in range(1203)]
    assert totals(backend, "sess_1")[0] == 1203


def test_messages_are_ordered_by_timestamp_then_id(sessions):
    sessions.save_session(Session(id="sess_1"))
    for content, second in [("c", 30), ("a", 10), ("b1", 20), ("b2", 20)]:
        sessions.save_message("sess_1", Message(role="user", content=content, timestamp=at(second)))

    assert [m.content for m in sessions.load_messages("sess_1")] == ["a", "b1", "b2", "c"]
    assert [m.content for m in sessions.iter_messages("sess_1", batch_size=1)] == ["a", "b1", "b2", "c"]


def test_load_messages_pages_backwards_from_the_latest(sessions):
    sessions.save_session(Session(id="sess_1"))
    saved = sessions.save_messages(
        "sess_1", [Message(role="user", content=str(i), timestamp=at(i // 2)) for i in range(10)]
    )

    latest = sessions.load_messages("sess_1", limit=4)
    earlier = sessions.load_messages("sess_1", limit=4, before_id=latest[0].id)
    first = sessions.load_messages("sess_1", limit=4, before_id=earlier[0].id)

    assert [m.content for m in latest] == ["6", "7", "8", "9"]
    assert [m.content for m in earlier] == ["2", "3", "4", "5"]
    assert [m.content for m in first] == ["0", "1"]
    assert [m.id for m in sessions.load_messages("sess_1", before_id=saved[3].id)] == [m.id for m in saved[:3]]


def test_load_messages_before_an_unknown_message_is_not_found(sessions):
    sessions.save_session(Session(id="sess_1"))
    with pytest.raises(NotFoundError, match="message not found: 12345"):
        sessions.load_messages("sess_1", before_id=12345)


def test_iter_messages_reads_everything_in_batches(sessions):
    sessions.save_session(Session(id="sess_1"))
    sessions.save_messages("sess_1", [Message(role="user", content=str(i), timestamp=at(i % 3)) for i in range(25)])

    contents = [m.content for m in sessions.iter_messages("sess_1", batch_size=4)]

    assert sorted(contents, key=int) == [str(i) for i in range(25)]
    assert contents == [m.content for m in sessions.load_messages("sess_1")]


def test_iter_messages_checks_its_arguments_at_once(sessions):
    with pytest.raises(ValidationError):
        sessions.iter_messages("sess_1", batch_size=0)


def test_load_messages_of_a_session_without_any(sessions):
    assert sessions.load_messages("nobody") == []


def test_pop_message_removes_the_newest_and_takes_its_totals_off(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    sessions.save_messages(
        "sess_1",
        [
            Message(role="user", content="late", timestamp=at(5), token_count=1, cost_usd=0.25),
            Message(role="user", content="early", timestamp=at(1), token_count=2, cost_usd=0.5),
            Message(role="assistant", content="tie, later id", timestamp=at(5), token_count=4, cost_usd=1.0),
        ],
    )

    popped = sessions.pop_message("sess_1")

    assert (popped.content, popped.token_count, popped.session_id) == ("tie, later id", 4, "sess_1")
    assert [m.content for m in sessions.load_messages("sess_1")] == ["early", "late"]
    assert totals(backend, "sess_1") == (3, 0.75)
    assert sessions.pop_message("sess_1").content == "late"
    assert sessions.pop_message("sess_1").content == "early"
    assert sessions.pop_message("sess_1") is None
    assert totals(backend, "sess_1") == (0, 0)
    assert sessions.pop_message("nobody") is None


def test_a_clock_behind_the_sessions_cannot_put_a_message_before_earlier_ones(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    sessions.save_message("sess_1", Message(role="user", content="first"))
    ahead = int(datetime.datetime.now(UTC).timestamp()) + 3_600
    # A machine whose clock is an hour ahead saved the last message.
    backend.sql("UPDATE sessions SET updated_at = ?", ahead)
    backend.sql("UPDATE messages SET timestamp = ?", ahead)

    later = sessions.save_message("sess_1", Message(role="assistant", content="second"))
    given = sessions.save_message("sess_1", Message(role="user", content="given a time", timestamp=at(0)))

    assert later.timestamp == datetime.datetime.fromtimestamp(ahead, UTC)
    assert given.timestamp == at(0)  # a time given is kept
    assert [m.content for m in sessions.load_messages("sess_1")] == ["given a time", "first", "second"]
    assert sessions.pop_message("sess_1").content == "second"


def test_popping_every_message_leaves_totals_of_exactly_zero(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    sessions.save_messages("sess_1", [Message(role="user", cost_usd=cost) for cost in (0.028, 0.836, 0.433)])

    sessions.pop_message("sess_1")
    assert totals(backend, "sess_1") == (0, pytest.approx(0.864))
    sessions.pop_message("sess_1")
    sessions.pop_message("sess_1")

    assert totals(backend, "sess_1") == (0, 0.0)  # not the -8.7e-17 that subtracting leaves


def test_clear_messages_keeps_the_session_and_its_tool_executions(sessions, backend):
    sessions.save_session(Session(id="sess_1", name="kept", context={"user": "john"}))
    sessions.save_messages("sess_1", [Message(role="user", content=str(i), token_count=5) for i in range(3)])
    sessions.save_tool_execution("sess_1", ToolExecution(tool_name="search"))

    assert sessions.clear_messages("sess_1") == 3

    kept = sessions.load_session("sess_1")
    assert (kept.name, kept.context, kept.messages, kept.total_tokens) == ("kept", {"user": "john"}, [], 0)
    assert len(sessions.load_tool_executions("sess_1")) == 1
    assert sessions.clear_messages("sess_1") == 0
    with pytest.raises(NotFoundError):
        sessions.clear_messages("nobody")


def test_add_usage_charges_a_saved_message_and_its_session(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    first, reply = sessions.save_messages(
        "sess_1", [Message(role="user", content="q", token_count=2), Message(role="assistant", content="a")]
    )

    charged = sessions.add_usage("sess_1", reply.id, token_count=1_250, cost_usd=0.003)

    assert (charged.id, charged.token_count, charged.cost_usd) == (reply.id, 1_250, 0.003)
    assert totals(backend, "sess_1") == (1_252, 0.003)
    with pytest.raises(NotFoundError):
        sessions.add_usage("sess_2", reply.id, token_count=1)  # not a message of that session
    with pytest.raises(ValidationError):
        sessions.add_usage("sess_1", first.id, token_count=-5)
    assert totals(backend, "sess_1") == (1_252, 0.003)
    assert sessions.pop_message("sess_1").token_count == 1_250
    assert totals(backend, "sess_1") == (2, 0)


def test_add_usage_charges_the_newest_message_by_default_within_a_messages_bounds(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    with pytest.raises(NotFoundError):
        sessions.add_usage("sess_1", token_count=1)  # no message yet
    sessions.save_messages("sess_1", [Message(role="user", content="q"), Message(role="assistant", content="a")])

    assert sessions.add_usage("sess_1", token_count=MAX_MESSAGE_TOKENS - 1).content == "a"
    with pytest.raises(ValidationError) as error:
        sessions.add_usage("sess_1", token_count=2)  # past what one message may count

    assert "token_count" in error.value.messages
    assert totals(backend, "sess_1") == (MAX_MESSAGE_TOKENS - 1, 0)
    exported = sessions.export_session("sess_1")
    sessions.delete_session("sess_1")
    assert sessions.import_session(exported).total_tokens == MAX_MESSAGE_TOKENS - 1  # the store's own export loads


def test_a_framework_item_comes_back_verbatim(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "search", "arguments": '{"q": 1}'}

    sessions.save_message("sess_1", Message(role="assistant", item=item))

    assert sessions.load_messages("sess_1")[0].item == item
    assert json.loads(backend.sql("SELECT item_json FROM messages")[0][0]) == item
    assert sessions.export_session("sess_1")["messages"][0]["item"] == item


# -- tool executions -----------------------------------------------------------------------


def test_tool_executions_round_trip_in_order(sessions):
    sessions.save_session(Session(id="sess_1"))
    sessions.save_tool_execution(
        "sess_1", ToolExecution(tool_name="b", input={"q": 1}, result=[1, 2], execution_time_ms=12, timestamp=at(5))
    )
    sessions.save_tool_execution("sess_1", ToolExecution(tool_name="a", error="boom", timestamp=at(1)))

    runs = sessions.load_tool_executions("sess_1")

    assert [(r.tool_name, r.input, r.result, r.error) for r in runs] == [
        ("a", None, None, "boom"),
        ("b", {"q": 1}, [1, 2], None),
    ]
    assert runs[1].execution_time_ms == 12 and runs[1].timestamp == at(5)


def test_tool_execution_for_a_missing_session_is_a_foreign_key_error(sessions, backend):
    with pytest.raises(ForeignKeyConstraintError):
        sessions.save_tool_execution("ghost", ToolExecution(tool_name="x"))
    assert backend.sql("SELECT COUNT(*) FROM tool_executions")[0][0] == 0


# -- deleting ------------------------------------------------------------------------------


def test_delete_session_cascades_and_unlinks_children(sessions, backend):
    sessions.save_session(Session(id="parent"))
    sessions.save_session(Session(id="child", parent_session_id="parent"))
    sessions.save_message("parent", Message(role="user", content="hi"))
    sessions.save_tool_execution("parent", ToolExecution(tool_name="x"))

    assert sessions.delete_session("parent") is True
    assert sessions.delete_session("parent") is False

    assert message_count(backend, "parent") == 0
    assert backend.sql("SELECT COUNT(*) FROM tool_executions")[0][0] == 0
    assert backend.sql("SELECT id, parent_session_id FROM sessions") == [("child", None)]


def test_a_parent_must_exist(sessions):
    with pytest.raises(ForeignKeyConstraintError):
        sessions.save_session(Session(id="child", parent_session_id="missing"))


def test_delete_sessions_older_than(sessions, backend):
    for i in range(4):
        sessions.save_session(Session(id="s%d" % i))
        sessions.save_message("s%d" % i, Message(role="user"))
    backend.sql("UPDATE sessions SET updated_at = ?", int(at(0).timestamp()))
    backend.sql("UPDATE sessions SET updated_at = ? WHERE id IN ('s2', 's3')", int(at(100).timestamp()))

    assert [s.id for s in sessions.list_sessions(updated_before=at(50), limit=None)] == ["s1", "s0"]
    assert [s.id for s in sessions.list_sessions(updated_before=at(500), agent_id="nobody")] == []
    assert backend.sql("SELECT COUNT(*) FROM sessions") == [(4,)]
    assert sessions.delete_sessions_older_than(at(50)) == 2
    assert sessions.delete_sessions_older_than(datetime.timedelta(days=1)) == 2
    assert backend.sql("SELECT COUNT(*) FROM messages")[0][0] == 0


@pytest.mark.parametrize(
    "cutoff",
    ["yesterday", None, datetime.timedelta(days=-1), datetime.timedelta.max, datetime.datetime.max.replace(tzinfo=UTC)],
)
def test_delete_sessions_older_than_rejects_other_cutoffs(sessions, backend, cutoff):
    sessions.save_session(Session(id="s"))

    with pytest.raises(ValidationError) as error:
        sessions.delete_sessions_older_than(cutoff)

    assert "cutoff" in error.value.messages
    assert backend.sql("SELECT COUNT(*) FROM sessions")[0][0] == 1


# -- stats ---------------------------------------------------------------------------------


def test_get_stats(sessions):
    assert tuple(vars(sessions.get_stats()).values()) == (0, 0, 0, 0.0, 0)
    for sid in ("a", "b"):
        sessions.save_session(Session(id=sid))
        sessions.save_messages(sid, [Message(role="user", token_count=2, cost_usd=0.5)] * 3)
    sessions.save_tool_execution("a", ToolExecution(tool_name="t"))

    stats = sessions.get_stats()

    assert (stats.session_count, stats.message_count, stats.tool_execution_count) == (2, 6, 1)
    assert (stats.total_tokens, stats.total_cost_usd) == (12, 3.0)


# -- bad input -----------------------------------------------------------------------------

BAD_MESSAGES = [
    ({"role": "wizard"}, "role"),
    ({"role": "user", "token_count": -1}, "token_count"),
    ({"role": "user", "token_count": 2**31}, "token_count"),
    ({"role": "user", "cost_usd": 1e308}, "cost_usd"),
    ({"role": "user", "cost_usd": math.nan}, "cost_usd"),
    ({"role": "user", "cost_usd": -0.5}, "cost_usd"),
    ({"role": "user", "content": "nul \x00 inside"}, "content"),
    ({"role": "user", "content": "lone \ud800 surrogate"}, "content"),
    ({"role": "user", "tool_calls": [object()]}, "tool_calls"),
    ({"role": "user", "tool_result": {"x": math.inf}}, "tool_result"),
    ({"role": "user", "session_context": "global"}, "session_context"),
    ({"role": "user", "timestamp": "not a time"}, "timestamp"),
    (
        {
            "role": "user",
            "timestamp": datetime.datetime.max.replace(tzinfo=datetime.timezone(-datetime.timedelta(hours=14))),
        },
        "timestamp",
    ),
    ({"content": "no role"}, "role"),
    ({"role": "user", "colour": "blue"}, "colour"),
]


@pytest.mark.parametrize("message, field", BAD_MESSAGES)
def test_bad_messages_are_rejected_and_nothing_is_written(sessions, backend, message, field):
    sessions.save_session(Session(id="sess_1"))

    with pytest.raises(ValidationError) as error:
        sessions.save_message("sess_1", message)

    assert field in error.value.messages
    assert message_count(backend, "sess_1") == 0
    assert totals(backend, "sess_1") == (0, 0)


@pytest.mark.parametrize(
    "session, field",
    [
        ({"id": "s", "context": {"x": {1, 2}}}, "context"),
        ({"id": "s", "context": ["not", "a", "map"]}, "context"),
        ({"id": ""}, "id"),
        ({"id": "s", "parent_session_id": "s"}, "parent_session_id"),
        ({"id": "s", "total_tokens": 5}, "total_tokens"),
    ],
)
def test_bad_sessions_are_rejected(sessions, backend, session, field):
    with pytest.raises(ValidationError) as error:
        sessions.save_session(session)
    assert field in error.value.messages
    assert backend.sql("SELECT COUNT(*) FROM sessions")[0][0] == 0


@pytest.mark.parametrize("not_a_session", [None, 42, "sess_1", ["id", "x"]])
def test_save_session_rejects_what_is_not_a_session(sessions, not_a_session):
    with pytest.raises(ValidationError):
        sessions.save_session(not_a_session)


@pytest.mark.parametrize("session_id", [None, "", 5, "a\x00b", "lone \ud800", "x" * 256])
@pytest.mark.parametrize(
    "call",
    [
        lambda sessions, sid: sessions.load_session(sid),
        lambda sessions, sid: sessions.save_message(sid, Message(role="user")),
        lambda sessions, sid: sessions.load_messages(sid),
        lambda sessions, sid: sessions.iter_messages(sid),
        lambda sessions, sid: sessions.load_tool_executions(sid),
        lambda sessions, sid: sessions.delete_session(sid),
    ],
)
def test_bad_session_ids_are_validation_errors(sessions, session_id, call):
    with pytest.raises(ValidationError):
        call(sessions, session_id)


@pytest.mark.parametrize("bad_id", ["", 5, "a\x00b", "lone \ud800", "x" * 256])
def test_bad_ids_as_list_filters_are_validation_errors(sessions, bad_id):
    with pytest.raises(ValidationError):
        sessions.list_sessions(agent_id=bad_id)
    with pytest.raises(ValidationError):
        sessions.list_sessions(before=bad_id)


@pytest.mark.parametrize("before_id", ["1", 1.0, 0, -5, 2**70, True])
def test_bad_message_ids_are_validation_errors(sessions, before_id):
    with pytest.raises(ValidationError) as error:
        sessions.load_messages("sess_1", before_id=before_id)
    assert "before_id" in error.value.messages


@pytest.mark.parametrize("messages", [None, 5, Message(role="user"), "user", b"user", {"role": "user"}])
def test_save_messages_needs_an_iterable_of_messages(sessions, messages, backend):
    sessions.save_session(Session(id="sess_1"))
    with pytest.raises(ValidationError) as error:
        sessions.save_messages("sess_1", messages)
    assert "messages" in error.value.messages
    assert message_count(backend, "sess_1") == 0


def test_save_messages_takes_any_iterable(sessions):
    sessions.save_session(Session(id="sess_1"))

    saved = sessions.save_messages("sess_1", (Message(role="user", content=str(i)) for i in range(3)))
    sessions.save_messages("sess_1", {"three": Message(role="user", content="3")}.values())

    assert [m.content for m in saved] == ["0", "1", "2"]
    assert [m.content for m in sessions.load_messages("sess_1")] == ["0", "1", "2", "3"]


def test_counts_as_sdks_hand_them_over(sessions, backend):
    sessions.save_session(Session(id="sess_1"))

    saved = sessions.save_messages(
        "sess_1",
        [
            {"role": "user", "content": None, "token_count": None, "cost_usd": None},
            Message(role="assistant", content="ok", token_count=7.0, cost_usd=0.5),
        ],
    )

    assert [(m.content, m.token_count, m.cost_usd) for m in saved] == [("", 0, 0.0), ("ok", 7, 0.5)]
    assert type(saved[1].token_count) is int
    assert totals(backend, "sess_1") == (7, 0.5)


@pytest.mark.parametrize("token_count", [7.5, float("inf"), float("nan"), True, "7"])
def test_a_token_count_with_a_fraction_or_of_another_kind_is_refused(sessions, token_count, backend):
    sessions.save_session(Session(id="sess_1"))
    with pytest.raises(ValidationError) as error:
        sessions.save_message("sess_1", Message(role="user", token_count=token_count))
    assert "token_count" in error.value.messages
    assert totals(backend, "sess_1") == (0, 0)


def test_a_message_of_another_session_is_refused_not_moved(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    sessions.save_session(Session(id="sess_2"))
    theirs = sessions.save_message("sess_2", Message(role="user", content="mine", token_count=3))

    with pytest.raises(ValidationError, match="sess_2") as error:
        sessions.save_messages("sess_1", [Message(role="user", content="fine"), theirs])

    assert "session" in error.value.messages
    assert (message_count(backend, "sess_1"), message_count(backend, "sess_2")) == (0, 1)
    assert totals(backend, "sess_2") == (3, 0)
    # A message of the same session, saved again, is a copy of it.
    assert sessions.save_message("sess_2", theirs).content == "mine"


# -- what lands on disk --------------------------------------------------------------------


def test_rows_follow_the_reference_conventions(sessions, backend):
    sessions.save_session(Session(id="sess_1"))  # no context
    sessions.save_message(
        "sess_1", Message(role="user", content=None, timestamp=at(7) + datetime.timedelta(microseconds=999))
    )
    sessions.save_tool_execution("sess_1", ToolExecution(tool_name="t"))

    assert backend.sql("SELECT context_json FROM sessions") == [("null",)]
    assert backend.sql("SELECT content, tool_calls_json, tool_result_json, timestamp FROM messages") == [
        ("", None, None, int(at(7).timestamp()))
    ]
    assert backend.sql("SELECT input_json, result_json, error FROM tool_executions") == [("null", "null", None)]


def test_rows_written_by_the_reference_implementation_are_read(sessions, backend):
    backend.sql(
        "INSERT INTO sessions (id, name, agent_id, parent_session_id, context_json, created_at, updated_at,"
        " total_cost_usd, total_tokens) VALUES ('ref', NULL, NULL, NULL, 'null', 1767225600, 1767225601, 0.5, 12)"
    )
    backend.sql(
        "INSERT INTO messages (session_id, role, content, tool_calls_json, session_context, timestamp, token_count,"
        " cost_usd) VALUES ('ref', 'assistant', '', ?, 'coordinator', 1767225601, 12, 0.5)",
        json.dumps([{"ID": "t1", "Name": "search", "Input": {"q": "x"}, "ThoughtSignature": ""}]),
    )

    session = sessions.load_session("ref")

    assert session.context is None and session.created_at == at(0) and session.total_tokens == 12
    (message,) = session.messages
    assert message.tool_calls == [{"ID": "t1", "Name": "search", "Input": {"q": "x"}, "ThoughtSignature": ""}]
    assert (message.session_context, message.timestamp) == ("coordinator", at(1))


def test_returned_objects_match_a_reload(sessions):
    sessions.save_session(Session(id="sess_1", context={"t": (1, 2)}))
    saved = sessions.save_message(
        "sess_1",
        Message(
            role="tool",
            content="r",
            tool_calls=[{"ID": 1}],
            tool_use_id="t1",
            tool_result={"ok": True},
            agent_id="a",
            token_count=3,
            cost_usd=0.125,
            timestamp=at(3) + datetime.timedelta(milliseconds=600),
        ),
    )

    (loaded,) = sessions.load_messages("sess_1")

    assert saved.__data__ == loaded.__data__
    assert sessions.load_session("sess_1").context == {"t": [1, 2]}


# -- models and schemas --------------------------------------------------------------------


def test_models_are_built_without_a_database():
    session = Session(id="sess_abc123", context={"user": "john"})
    message = Message(role="user", content="hi")

    assert session.context == {"user": "john"} and session.messages is None
    assert message.content == "hi"


def test_schemas_dump_json(sessions):
    sessions.save_session(Session(id="sess_1", context={"a": 1}))
    sessions.save_message("sess_1", Message(role="user", content="hi", timestamp=at(1)))

    dumped = json.loads(json.dumps(SessionSchema().dump(sessions.load_session("sess_1"))))

    assert dumped["id"] == "sess_1" and dumped["context"] == {"a": 1}
    assert dumped["messages"][0]["content"] == "hi"
    assert dumped["messages"][0]["session_id"] == "sess_1"
    assert dumped["messages"][0]["timestamp"] == "2026-01-01T00:00:01+00:00"
    assert MessageSchema().load({"role": "user", "timestamp": "2026-01-01T00:00:01Z"})["timestamp"] == at(1)


def test_a_time_that_is_no_time_on_disk_is_corruption(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    backend.sql("UPDATE sessions SET created_at = ?", 10**16)  # milliseconds where seconds belong

    with pytest.raises(DatabaseCorruptError, match="not a time in sessions.created_at"):
        sessions.load_session("sess_1")


def test_json_that_is_not_json_on_disk_is_corruption_not_garbage(sessions, backend):
    sessions.save_session(Session(id="sess_1"))
    backend.sql("UPDATE sessions SET context_json = '{broken'")

    with pytest.raises(DatabaseCorruptError, match="not JSON in sessions.context_json"):
        sessions.load_session("sess_1")


def test_message_counts_of_many_sessions_in_one_read(sessions):
    for session_id, count in (("sess_a", 3), ("sess_b", 1), ("sess_empty", 0)):
        sessions.save_session(Session(id=session_id))
        sessions.save_messages(session_id, [Message(role="user", content="m%d" % i) for i in range(count)])

    assert sessions.message_counts(["sess_a", "sess_b", "sess_empty", "sess_missing"]) == {
        "sess_a": 3,
        "sess_b": 1,
        "sess_empty": 0,
        "sess_missing": 0,
    }
    assert sessions.message_counts([]) == {}
    with pytest.raises(ValidationError):
        sessions.message_counts("sess_a")


# -- ids by their start ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "found"),
    [
        ("sess_ab", ["sess_ab", "sess_abc1", "sess_abc2"]),  # the id itself sorts first
        ("sess_abc", ["sess_abc1", "sess_abc2"]),
        ("sess_abc2", ["sess_abc2"]),
        ("SESS_AB", []),  # compared exactly, not as SQLite's LIKE would
        ("sess_a%", []),  # neither is a wildcard
        ("sess__", []),
        ("nothing", []),
    ],
)
def test_ids_starting_finds_ids_by_their_exact_start(sessions, given, found):
    for session_id in ("sess_abc2", "sess_ab", "sess_abc1", "sess_b"):
        sessions.save_session(Session(id=session_id))
    assert sessions.ids_starting(given, limit=10) == found
    assert sessions.ids_starting(given) == found[:2]


@pytest.mark.parametrize("bad", [("",), ("x" * 256,), ("sess", 0), (None,)])
def test_ids_starting_refuses_what_is_no_id_or_no_limit(sessions, bad):
    with pytest.raises(ValidationError):
        sessions.ids_starting(bad[0], limit=bad[1] if len(bad) > 1 else 2)

"""SessionRepository.export_session and import_session, on the suite's backend."""

import datetime
import json

import peewee
import pytest

from loom_models import ConflictError, LoomStorageError, NotFoundError, ValidationError, open_storage
from loom_models.documents import load_document
from loom_models.sessions import Message, Session, SessionDocumentSchema, SessionRepository, ToolExecution

UTC = datetime.timezone.utc


def at(seconds: int) -> datetime.datetime:
    return datetime.datetime(2026, 1, 1, tzinfo=UTC) + datetime.timedelta(seconds=seconds)


def without_ids(document: dict) -> dict:
    rows = {
        name: [{k: v for k, v in row.items() if k != "id"} for row in document[name]]
        for name in ("messages", "tool_executions")
    }
    return {**document, **rows}


@pytest.fixture
def exported(sessions, backend):
    """An exported session with messages (one tie in time) and tool executions, as JSON text would give it."""
    sessions.save_session(
        Session(id="sess_1", name="Support", agent_id="a1", context={"user": "john"}, created_at=at(0))
    )
    sessions.save_messages(
        "sess_1",
        [
            Message(role="user", content="Where is my order?", timestamp=at(10), token_count=7, cost_usd=0.1),
            Message(
                role="assistant",
                content="On its way.",
                timestamp=at(20),
                token_count=5,
                cost_usd=0.2,
                tool_calls=[{"name": "lookup"}],
                session_context="coordinator",
                agent_id="a1",
            ),
            Message(role="tool", content="", timestamp=at(20), tool_use_id="t1", tool_result={"status": "shipped"}),
        ],
    )
    sessions.save_tool_execution(
        "sess_1",
        ToolExecution(
            tool_name="lookup",
            input={"order": 42},
            result=None,
            error="timeout",
            execution_time_ms=1500,
            timestamp=at(15),
        ),
    )
    backend.sql("UPDATE sessions SET updated_at = ? WHERE id = 'sess_1'", int(at(30).timestamp()))
    return json.loads(json.dumps(sessions.export_session("sess_1")))


@pytest.fixture
def other(tmp_path):
    with SessionRepository.open(tmp_path / "other.db") as repository:
        yield repository


def test_export_holds_the_session_its_messages_and_tool_executions(exported):
    assert exported["id"] == "sess_1" and exported["updated_at"] == at(30).isoformat()
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant", "tool"]
    assert exported["tool_executions"][0]["error"] == "timeout"
    assert (exported["total_tokens"], exported["total_cost_usd"]) == (12, pytest.approx(0.3))


def test_round_trip_into_an_empty_store_is_exact_but_for_row_ids(exported, other):
    imported = other.import_session(exported)

    assert (imported.id, imported.created_at, imported.updated_at) == ("sess_1", at(0), at(30))
    assert without_ids(other.export_session("sess_1")) == without_ids(exported)


def test_round_trip_on_the_suite_backend(exported, sessions, backend):
    sessions.delete_session("sess_1")
    sessions.import_session(exported)

    assert without_ids(sessions.export_session("sess_1")) == without_ids(exported)
    assert backend.sql("SELECT created_at, updated_at FROM sessions") == [
        (int(at(0).timestamp()), int(at(30).timestamp()))
    ]
    assert backend.sql("SELECT timestamp FROM messages ORDER BY id") == [
        (int(at(s).timestamp()),) for s in (10, 20, 20)
    ]


def test_the_target_store_assigns_message_and_execution_ids(exported, other):
    other.save_session(Session(id="sess_0"))
    other.save_messages("sess_0", [Message(role="user", content=str(i)) for i in range(5)])
    other.import_session(exported)

    ids = [m.id for m in other.load_messages("sess_1")]
    assert ids == sorted(ids) and min(ids) > 5
    assert [m.content for m in other.load_messages("sess_1")] == [m["content"] for m in exported["messages"]]


def test_totals_are_the_sum_of_the_imported_messages(exported, sessions, backend):
    sessions.delete_session("sess_1")
    sessions.import_session({**exported, "total_tokens": 999, "total_cost_usd": 99.0})

    tokens, cost = backend.sql("SELECT total_tokens, total_cost_usd FROM sessions WHERE id = 'sess_1'")[0]
    assert (tokens, cost) == (12, pytest.approx(0.3))


def test_an_existing_session_id_is_a_conflict_and_writes_nothing(exported, sessions, backend):
    with pytest.raises(ConflictError, match="^session already exists: sess_1$"):
        sessions.import_session(exported)
    assert backend.sql("SELECT COUNT(*) FROM messages")[0][0] == 3


def test_invalid_input_names_the_row_and_writes_nothing(exported, other):
    bad = {**exported, "messages": exported["messages"] + [{"role": "robot"}]}
    with pytest.raises(ValidationError) as raised:
        other.import_session(bad)
    assert raised.value.messages == {"messages": {3: {"role": ["Must be one of: user, assistant, tool, system."]}}}

    for document in (
        [exported],
        {**exported, "updated_at": "yesterday"},
        {**exported, "unknown": 1},
        {**exported, "tool_executions": {"not": "a list"}},
    ):
        with pytest.raises(ValidationError):
            other.import_session(document)
    assert other.get_stats().session_count == 0


def test_a_failure_part_way_leaves_nothing(exported, other, monkeypatch):
    def broken(*args, **kwargs):
        raise peewee.OperationalError("disk I/O error")

    monkeypatch.setattr(other.ToolExecution, "insert_many", broken)
    with pytest.raises(LoomStorageError, match="disk I/O error"):
        other.import_session(exported)
    assert (other.get_stats().session_count, other.get_stats().message_count) == (0, 0)


def test_a_session_larger_than_one_insert_batch(sessions, other):
    sessions.save_session(Session(id="big"))
    sessions.save_messages("big", [Message(role="user", content=str(i), timestamp=at(i // 7)) for i in range(1234)])

    other.import_session(sessions.export_session("big"))

    assert [m.content for m in other.load_messages("big")] == [str(i) for i in range(1234)]


def test_export_of_a_missing_session_is_not_found(sessions):
    with pytest.raises(NotFoundError, match="^session not found: nope$"):
        sessions.export_session("nope")


def test_an_exported_session_is_a_session_of_a_document_and_one_schema_reads_both(exported, tmp_path):
    with open_storage(tmp_path / "data", gc_interval=0) as storage:
        loaded = load_document(storage, {"sessions": [exported]})
        again = storage.sessions.export_session("sess_1")

    assert [s.id for s in loaded.sessions] == ["sess_1"]
    assert without_ids(again) == without_ids(exported)
    assert SessionDocumentSchema().load(exported)["messages"][0]["content"] == "Where is my order?"

"""Whatever a caller passes, a repository call succeeds or raises a LoomStorageError:
never a raw driver, encoding or arithmetic error, and never a partial write."""

import datetime

import pytest
from conftest import anything
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loom_models import LoomStorageError, ValidationError
from loom_models.sessions import Message, Session

MESSAGE_FIELDS = [
    "role",
    "content",
    "tool_calls",
    "tool_use_id",
    "tool_result",
    "session_context",
    "agent_id",
    "timestamp",
    "token_count",
    "cost_usd",
]
SESSION_FIELDS = ["id", "name", "agent_id", "parent_session_id", "context", "created_at"]


def records(fields):
    return st.dictionaries(st.sampled_from(fields), anything, max_size=len(fields))


hostile = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def seeded(sessions):
    return sessions


def seed(sessions):
    """One session with one message, afresh: a fixture runs once for all of a test's examples."""
    sessions.delete_session("sess_1")
    sessions.save_session(Session(id="sess_1"))
    sessions.save_message("sess_1", Message(role="user", content="seed", token_count=1))


def only_storage_errors(call):
    try:
        return call()
    except LoomStorageError:
        return None


def unchanged(backend):
    return backend.sql("SELECT COUNT(*) FROM messages")[0][0] == 1 and backend.sql(
        "SELECT total_tokens FROM sessions WHERE id = 'sess_1'"
    ) == [(1,)]


@hostile
@given(message=records(MESSAGE_FIELDS))
@example(message={"role": "user", "content": "x" * 10_000_000})  # 10 MB round-trips
@example(message={"role": "user", "content": "'); DROP TABLE messages; --"})
@example(message={"role": "user", "token_count": 10**30, "cost_usd": float("-inf")})
def test_save_message(seeded, backend, message):
    seed(seeded)
    saved = only_storage_errors(lambda: seeded.save_message("sess_1", message))
    if saved is None:
        assert unchanged(backend)
    else:
        (reloaded,) = [m for m in seeded.load_messages("sess_1") if m.id == saved.id]
        assert reloaded.__data__ == saved.__data__


def test_json_nested_too_deep_to_encode_is_refused(seeded, backend):
    seed(seeded)
    deep = []
    for _ in range(100_000):
        deep = [deep]

    with pytest.raises(ValidationError) as error:
        seeded.save_message("sess_1", {"role": "user", "tool_calls": deep})

    assert "tool_calls" in error.value.messages
    assert unchanged(backend)


@hostile
@given(session=records(SESSION_FIELDS))
def test_save_session(seeded, session):
    saved = only_storage_errors(lambda: seeded.save_session(session))
    if saved is not None:
        assert seeded.load_session(saved.id, with_messages=False).__data__ == saved.__data__


@hostile
@given(value=anything)
def test_every_argument_of_the_read_and_delete_calls(seeded, backend, value):
    seed(seeded)
    calls = [
        lambda: seeded.load_session(value),
        lambda: seeded.load_session("sess_1", with_messages=value),
        lambda: seeded.list_sessions(agent_id=value),
        lambda: seeded.list_sessions(limit=value),
        lambda: seeded.list_sessions(before=value),
        lambda: seeded.load_messages(value),
        lambda: seeded.load_messages("sess_1", limit=value),
        lambda: seeded.load_messages("sess_1", before_id=value),
        lambda: list(seeded.iter_messages("sess_1", batch_size=value)),
        lambda: seeded.load_tool_executions(value),
        lambda: seeded.save_messages("sess_1", value),
        lambda: seeded.save_tool_execution("sess_1", value),
        lambda: seeded.delete_sessions_older_than(value),
    ]
    for call in calls:
        only_storage_errors(call)
    if not isinstance(value, (datetime.timedelta, datetime.datetime)):
        assert unchanged(backend)
    only_storage_errors(lambda: seeded.delete_session(value))


REQUEST_FIELDS = [
    "id",
    "agent_id",
    "session_id",
    "question",
    "context",
    "request_type",
    "priority",
    "timeout_ms",
    "created_at",
    "status",
]


@hostile
@given(values=records(REQUEST_FIELDS))
@example(values={"agent_id": "a", "session_id": "s", "question": "q", "created_at": "9999-12-31T23:59:59"})
@example(values={"agent_id": "a", "session_id": "s", "question": "q", "timeout_ms": 10**400})
def test_store_a_request(hitl, values):
    stored = only_storage_errors(lambda: hitl.store(values))
    if stored is not None:
        assert hitl.get(stored.id).__data__ == stored.__data__
        hitl.delete_older_than(datetime.timedelta(0))


@hostile
@given(value=anything)
@example(value=10**400)
@example(value=1e12)
@example(value=datetime.datetime.min.replace(tzinfo=datetime.timezone(datetime.timedelta(hours=5))))
@example(value=datetime.datetime.max.replace(tzinfo=datetime.timezone(-datetime.timedelta(hours=5))))
def test_every_argument_of_the_hitl_calls(hitl, backend, value):
    if not backend.sql("SELECT 1 FROM human_requests WHERE id = 'req_1'"):
        hitl.store({"id": "req_1", "agent_id": "a", "session_id": "s", "question": "q"})
        hitl.store({"id": "req_done", "agent_id": "a", "session_id": "s", "question": "q"})
        hitl.respond_to_request("req_done", "approved", "", "x")  # waiting on it returns at once
    calls = [
        lambda: hitl.get(value),
        lambda: hitl.list_pending(agent_id=value),
        lambda: hitl.list_pending(session_id=value),
        lambda: hitl.list_pending(limit=value),
        lambda: hitl.list_by_session(value),
        lambda: hitl.respond_to_request(value, "approved", "", "x"),
        lambda: hitl.respond_to_request("req_1", value, "", "x"),
        lambda: hitl.respond_to_request("req_1", "approved", value, "x"),
        lambda: hitl.respond_to_request("req_1", "approved", "", value),
        lambda: hitl.respond_to_request("req_1", "approved", "", "x", response_data=value),
        lambda: hitl.expire_overdue(value),
        lambda: hitl.wait_for_response("req_done", timeout=value),
        lambda: hitl.wait_for_response("req_done", poll_interval=value),
        lambda: hitl.delete_older_than(value),
    ]
    for call in calls:
        only_storage_errors(call)


@hostile
@given(data=anything, type_=anything, ttl=anything)
def test_store_a_reference(references, backend, data, type_, ttl):
    stored = only_storage_errors(lambda: references.store(data, type=type_, ttl=ttl))
    if stored is None:
        assert backend.sql("SELECT COUNT(*) FROM reference_store") == [(0,)]
    else:
        assert references.resolve(stored.id, verify=True) == stored.data
        assert references.release(stored.id) == 0


@hostile
@given(value=anything)
def test_every_argument_of_the_reference_calls(references, value):
    calls = [
        lambda: references.resolve(value),
        lambda: references.resolve(value, verify=True),
        lambda: references.retain(value),
        lambda: references.release(value),
        lambda: references.get(value),
        lambda: references.list(limit=value),
        lambda: references.collect_garbage(now=value),
    ]
    for call in calls:
        only_storage_errors(call)


@hostile
@given(
    document=st.dictionaries(
        st.sampled_from([*SESSION_FIELDS, "messages", "tool_executions", "updated_at"]), anything, max_size=6
    )
)
def test_import_and_export_a_session(seeded, backend, document):
    seed(seeded)
    imported = only_storage_errors(lambda: seeded.import_session(document))
    if imported is not None:
        exported = seeded.export_session(imported.id)
        assert exported["id"] == imported.id
        seeded.delete_session(imported.id)
    assert unchanged(backend)
    only_storage_errors(lambda: seeded.export_session(document.get("id")))

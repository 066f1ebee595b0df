"""The factories of loom_models.testing: built without a database, created through a store.

`loom_storage` is the pytest plugin's store (the package's pytest11 entry point),
on the suite's backend. What create() wrote is checked through raw SQL.
"""

import datetime
import hashlib
import json

import pytest

from loom_models.hitl import HumanRequest
from loom_models.hitl.models import EXPIRED_BY, PRIORITIES
from loom_models.references import Reference, ReferenceType
from loom_models.sessions import Message, Session, ToolExecution
from loom_models.testing import (
    HumanRequestFactory,
    MessageFactory,
    ReferenceFactory,
    SessionFactory,
    ToolExecutionFactory,
    bind,
)

UTC = datetime.timezone.utc
FACTORIES = (SessionFactory, MessageFactory, ToolExecutionFactory, HumanRequestFactory, ReferenceFactory)


def sql(storage, domain: str, query: str, *params) -> list[tuple]:
    """Raw SQL on one domain's database, written with ? placeholders."""
    database = getattr(storage, domain).database
    return list(database.execute_sql(query.replace("?", database.param), params).fetchall())


def count(storage, domain: str, table: str) -> int:
    return sql(storage, domain, "SELECT COUNT(*) FROM %s" % table)[0][0]


# -- build: no database ---------------------------------------------------------------------


def test_build_makes_model_instances_without_a_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a store opened by mistake would appear here
    built = [factory.build() for factory in FACTORIES]

    assert [type(obj) for obj in built] == [Session, Message, ToolExecution, HumanRequest, Reference]
    assert list(tmp_path.iterdir()) == []


def test_built_objects_hold_realistic_values():
    session = SessionFactory.build()
    assert session.id.startswith("sess_") and session.name and session.context["user"]
    message = MessageFactory.build(role="assistant")
    assert message.content and message.token_count > 0 and message.cost_usd > 0
    assert message.agent_id == message.session.agent_id  # the session it was built with
    request = HumanRequestFactory.build()
    assert request.question.endswith("?") and request.priority in PRIORITIES and request.status == "pending"
    assert request.expires_at == request.created_at + datetime.timedelta(milliseconds=request.timeout_ms)


def test_two_builds_differ():
    first, second = SessionFactory.build_batch(2)
    assert first.id != second.id


def test_build_of_a_session_with_messages_adds_up_their_totals():
    session = SessionFactory.build(messages=3)

    assert len(session.messages) == 3 and all(m.session is session for m in session.messages)
    assert session.total_tokens == sum(m.token_count for m in session.messages) > 0


def test_a_built_session_cannot_hold_tool_executions():
    with pytest.raises(TypeError, match="create"):
        SessionFactory.build(tool_executions=1)


def test_a_built_reference_is_addressed_by_its_bytes():
    reference = ReferenceFactory.build(expiring=True)

    assert reference.id == hashlib.sha256(reference.data).hexdigest()
    assert reference.size_bytes == len(reference.data) > 0 and reference.type in list(ReferenceType)
    assert reference.expires_at - reference.created_at == datetime.timedelta(hours=1)
    assert ReferenceFactory.build().expires_at is None


# -- create: through a store's repositories -------------------------------------------------


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_create_without_a_storage_fails_and_names_the_factory(factory):
    with pytest.raises(TypeError, match=r"%s\.create\(\) needs storage=" % factory.__name__):
        factory.create()
    with pytest.raises(TypeError, match="needs storage="):
        factory()  # factory_boy's default strategy is create


def test_create_a_session_with_messages_and_tool_executions(loom_storage):
    session = SessionFactory.create(storage=loom_storage, messages=3, tool_executions=2)

    assert [m.content for m in session.messages] == [
        content for (content,) in sql(loom_storage, "sessions", "SELECT content FROM messages ORDER BY id")
    ]
    ((tokens, cost),) = sql(loom_storage, "sessions", "SELECT total_tokens, total_cost_usd FROM sessions")
    assert session.total_tokens == tokens == sum(m.token_count for m in session.messages) > 0
    assert session.total_cost_usd == pytest.approx(cost)
    assert sql(loom_storage, "sessions", "SELECT session_id FROM tool_executions") == [(session.id,)] * 2


def test_a_created_session_keeps_the_values_given(loom_storage):
    session = SessionFactory.create(storage=loom_storage, id="sess_given", agent_id="billing", context={"k": 1})

    assert (session.id, session.agent_id, session.context) == ("sess_given", "billing", {"k": 1})
    assert sql(loom_storage, "sessions", "SELECT id, agent_id FROM sessions") == [("sess_given", "billing")]


def test_a_message_gets_a_session_of_its_own_unless_given_one(loom_storage):
    alone = MessageFactory.create(storage=loom_storage)
    session = SessionFactory.create(storage=loom_storage)
    first, second = MessageFactory.create_batch(2, storage=loom_storage, session=session)

    assert alone.id and first.id < second.id
    assert count(loom_storage, "sessions", "sessions") == 2
    rows = sql(
        loom_storage, "sessions", "SELECT id, session_id FROM messages WHERE session_id = ? ORDER BY id", session.id
    )
    assert rows == [(first.id, session.id), (second.id, session.id)]


def test_a_failed_tool_execution(loom_storage):
    session = SessionFactory.create(storage=loom_storage)
    run = ToolExecutionFactory.create(storage=loom_storage, session=session, failed=True)

    assert run.id and run.error and run.result is None
    assert sql(loom_storage, "sessions", "SELECT session_id, error FROM tool_executions") == [(session.id, run.error)]


@pytest.mark.parametrize(
    ("trait", "status", "request_type"),
    [
        ({}, "pending", "approval"),
        ({"approved": True}, "approved", "approval"),
        ({"rejected": True}, "rejected", "approval"),
        ({"answered": True}, "responded", "input"),
        ({"expired": True}, "expired", "approval"),
    ],
)
def test_request_traits_are_stored_in_their_state(loom_storage, trait, status, request_type):
    session = SessionFactory.create(storage=loom_storage)
    request = HumanRequestFactory.create(storage=loom_storage, session=session, **trait)

    assert (request.status, request.session_id) == (status, session.id)
    stored = sql(loom_storage, "hitl", "SELECT status, request_type, responded_by, session_id FROM human_requests")
    assert stored == [(status, request_type, request.responded_by, session.id)]
    assert bool(request.responded_by) == (status != "pending")
    if status == "expired":
        assert request.responded_by == EXPIRED_BY
    assert [r.id for r in loom_storage.hitl.list_pending()] == ([request.id] if status == "pending" else [])


def test_an_answered_request_keeps_its_answer(loom_storage):
    request = HumanRequestFactory.create(storage=loom_storage, answered=True, response_data={"choice": "b"})

    assert request.response_data == {"choice": "b"}
    ((stored,),) = sql(loom_storage, "hitl", "SELECT response_data_json FROM human_requests")
    assert json.loads(stored) == {"choice": "b"}


def test_create_a_reference_stores_its_bytes(loom_storage):
    reference = ReferenceFactory.create(storage=loom_storage, data=b"a large result", expiring=True)

    assert reference.id == hashlib.sha256(b"a large result").hexdigest()
    assert loom_storage.references.resolve(reference.id) == b"a large result"
    ((expires_at, created_at),) = sql(loom_storage, "references", "SELECT expires_at, created_at FROM reference_store")
    assert 3600 <= expires_at - created_at <= 3601  # whole seconds, the expiry rounded up
    assert ReferenceFactory.create(storage=loom_storage, data=b"a large result").ref_count == 2


def test_bind_makes_create_write_to_one_storage(loom_storage, tmp_path):
    from loom_models import open_storage

    Messages = bind(MessageFactory, loom_storage)
    message = Messages.create(content="bound")

    assert sql(loom_storage, "sessions", "SELECT id, content FROM messages") == [(message.id, "bound")]
    assert issubclass(Messages, MessageFactory) and MessageFactory.storage is None
    with open_storage(tmp_path / "other", gc_interval=0) as other:
        Messages.create(storage=other)  # an explicit storage wins
        assert count(other, "sessions", "messages") == 1
    assert count(loom_storage, "sessions", "messages") == 1

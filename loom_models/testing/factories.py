"""factory_boy factories for every model: realistic data, built in memory or written to a store.

    from loom_models.testing.factories import MessageFactory, SessionFactory, bind

    SessionFactory.build()                                  # a Session; no database needed
    session = SessionFactory.create(storage=storage, messages=3, tool_executions=1)
    MessageFactory.create(storage=storage, session=session, role="user", content="Hi")
    HumanRequestFactory.create(storage=storage, session=session, approved=True)
    ReferenceFactory.create(storage=storage, data=b"a large result", expiring=True)

    Sessions = bind(SessionFactory, storage)                # create() writes to storage
    Sessions.create(messages=2)

`create()` writes through the repositories of `storage` and returns what they
return; without a storage it raises TypeError rather than quietly build. A message
or tool execution belongs to `session=<Session>`, made by SessionFactory when not
given. Traits: HumanRequestFactory `approved`, `rejected`, `answered` (an input
request with its answer), `expired`; ToolExecutionFactory `failed`;
ReferenceFactory `expiring` (a time to live of an hour).
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import factory

from ..columns import utc_now
from ..documents import store_request
from ..hitl import HumanRequest
from ..hitl.models import EXPIRED_BY, PRIORITIES
from ..hitl.schemas import new_request_id
from ..references import Reference, ReferenceType
from ..references.models import SQLITE_STORE
from ..sessions import Message, Session, ToolExecution
from ..sessions.schemas import new_session_id
from ..storage import Storage

# A reference's time to live: seconds or a timedelta; None: never expires.
_TTL = float | datetime.timedelta | None

AGENTS = ("support", "billing", "research", "triage")
TOOLS = ("search_orders", "lookup_customer", "send_email", "read_document", "run_sql")


def bind(factory_class: type[_StoredFactory], storage: Storage) -> type[_StoredFactory]:
    """A subclass of `factory_class` whose create() writes to `storage` unless told otherwise.

    Sessions = bind(SessionFactory, storage)
    Sessions.create(messages=2)
    """
    return type(factory_class.__name__, (factory_class,), {"storage": storage})


class _StoredFactory(factory.Factory):
    """A factory whose objects are written by a store's repositories, never by the model."""

    # The store create() writes to; not a field of the model.
    storage: Storage | None = None

    @classmethod
    def _generate(cls, strategy: str, params: dict) -> Any:
        # Checked first: a message's session would otherwise fail in SessionFactory's name.
        if strategy == factory.CREATE_STRATEGY and params.get("storage", cls.storage) is None:
            raise TypeError("%s.create() needs storage=<Storage> to write to (build() needs none)" % cls.__name__)
        return super()._generate(strategy, params)

    @classmethod
    def _build(cls, model_class: type, storage: Storage | None = None, **kwargs: Any) -> Any:
        return model_class(**kwargs)


class SessionFactory(_StoredFactory):
    class Meta:
        model = Session

    id = factory.LazyFunction(new_session_id)
    name = factory.Faker("catch_phrase")
    agent_id = factory.Faker("random_element", elements=AGENTS)
    context = factory.Dict({"user": factory.Faker("user_name"), "locale": factory.Faker("locale")})
    created_at = factory.LazyFunction(utc_now)
    updated_at = factory.SelfAttribute("created_at")
    total_cost_usd = 0.0
    total_tokens = 0
    # How many messages and tool executions to add to the session.
    messages = 0
    tool_executions = 0

    @classmethod
    def _build(
        cls,
        model_class: type,
        storage: Storage | None = None,
        messages: int = 0,
        tool_executions: int = 0,
        **kwargs: Any,
    ) -> Session:
        if tool_executions:
            raise TypeError("SessionFactory.build() has nowhere to keep tool executions: create() stores them")
        session = model_class(**kwargs)
        session.messages = MessageFactory.build_batch(messages, session=session)
        session.total_tokens = sum(message.token_count for message in session.messages)
        session.total_cost_usd = sum(message.cost_usd for message in session.messages)
        return session

    @classmethod
    def _create(
        cls, model_class: type, storage: Storage, messages: int = 0, tool_executions: int = 0, **kwargs: Any
    ) -> Session:
        sessions = storage.sessions
        session = sessions.save_session(model_class(**kwargs))
        sessions.save_messages(session.id, MessageFactory.build_batch(messages, session=session))
        for execution in ToolExecutionFactory.build_batch(tool_executions, session=session):
            sessions.save_tool_execution(session.id, execution)
        # Read back: the totals and updated_at are the store's once messages are in.
        return sessions.load_session(session.id)


class MessageFactory(_StoredFactory):
    class Meta:
        model = Message

    session = factory.SubFactory(SessionFactory, storage=factory.SelfAttribute("..storage"))
    # A conversation: users and assistants take turns.
    role = factory.Iterator(("user", "assistant"))
    content = factory.Faker("sentence", nb_words=14)
    session_context = "direct"
    agent_id = factory.LazyAttribute(lambda o: o.session.agent_id if o.role == "assistant" else None)
    timestamp = factory.LazyFunction(utc_now)
    # About four tokens for every three words; only the model's answers cost.
    token_count = factory.LazyAttribute(lambda o: len(o.content.split()) * 4 // 3)
    cost_usd = factory.LazyAttribute(lambda o: o.token_count * 15e-6 if o.role == "assistant" else 0.0)

    @classmethod
    def _create(cls, model_class: type, storage: Storage, session: Session, **kwargs: Any) -> Message:
        return storage.sessions.save_message(session.id, model_class(**kwargs))


class ToolExecutionFactory(_StoredFactory):
    class Meta:
        model = ToolExecution

    class Params:
        failed = factory.Trait(result=None, error=factory.Faker("sentence", nb_words=6))

    session = factory.SubFactory(SessionFactory, storage=factory.SelfAttribute("..storage"))
    tool_name = factory.Faker("random_element", elements=TOOLS)
    input = factory.Dict({"query": factory.Faker("sentence", nb_words=4)})
    result = factory.Dict({"status": "ok", "matches": factory.Faker("pyint", max_value=50)})
    error = None
    execution_time_ms = factory.Faker("pyint", min_value=5, max_value=2500)
    timestamp = factory.LazyFunction(utc_now)

    @classmethod
    def _create(cls, model_class: type, storage: Storage, session: Session, **kwargs: Any) -> ToolExecution:
        return storage.sessions.save_tool_execution(session.id, model_class(**kwargs))


def _answered_now(status: str, **more: Any) -> factory.Trait:
    """A trait of a request a person has just answered with `status`."""
    return factory.Trait(
        status=status,
        response=factory.Faker("sentence", nb_words=4),
        responded_by=factory.Faker("user_name"),
        responded_at=factory.LazyFunction(utc_now),
        **more,
    )


class HumanRequestFactory(_StoredFactory):
    class Meta:
        model = HumanRequest

    class Params:
        # The session the request belongs to; a made-up session id without one.
        session = None
        sentence = factory.Faker("sentence", nb_words=7)
        approved = _answered_now("approved")
        rejected = _answered_now("rejected")
        # An input request with its answer.
        answered = _answered_now(
            "responded", request_type="input", response_data=factory.Dict({"value": factory.Faker("word")})
        )
        # Filed an hour ago with a minute to answer.
        expired = factory.Trait(
            created_at=factory.LazyFunction(lambda: utc_now() - datetime.timedelta(hours=1)),
            timeout_ms=60_000,
            status="expired",
            responded_by=EXPIRED_BY,
            responded_at=factory.SelfAttribute("expires_at"),
        )

    id = factory.LazyFunction(new_request_id)
    agent_id = factory.Faker("random_element", elements=AGENTS)
    session_id = factory.LazyAttribute(lambda o: new_session_id() if o.session is None else o.session.id)
    question = factory.LazyAttribute(lambda o: o.sentence.rstrip(".") + "?")
    context = factory.Dict({"reason": factory.Faker("sentence", nb_words=8)})
    request_type = "approval"
    priority = factory.Faker("random_element", elements=PRIORITIES)
    timeout_ms = factory.Faker("random_element", elements=(5 * 60_000, 3_600_000, 24 * 3_600_000))
    created_at = factory.LazyFunction(utc_now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + datetime.timedelta(milliseconds=o.timeout_ms))
    status = "pending"
    response = ""
    response_data = None
    responded_at = None
    responded_by = ""

    @classmethod
    def _create(cls, model_class: type, storage: Storage, **kwargs: Any) -> HumanRequest:
        answer = {name: kwargs[name] for name in ("response", "responded_by", "response_data")}
        return store_request(storage.hitl, model_class(**kwargs), kwargs["status"], **answer)


class ReferenceFactory(_StoredFactory):
    class Meta:
        model = Reference

    class Params:
        expiring = factory.Trait(ttl=3600)

    data = factory.Faker("binary", length=512)
    type = factory.Faker("random_element", elements=list(ReferenceType))
    ttl = None

    # Its declarations are store()'s arguments, not the model's fields.
    @classmethod
    def _build(  # type: ignore[override]
        cls, model_class: Any, data: bytes, type: ReferenceType, ttl: _TTL, storage: Storage | None
    ) -> Reference:
        now = utc_now()
        if ttl is not None and not isinstance(ttl, datetime.timedelta):
            ttl = datetime.timedelta(seconds=ttl)
        return model_class(
            id=hashlib.sha256(data).hexdigest(),
            type=type,
            store=SQLITE_STORE,
            data=data,
            ref_count=1,
            created_at=now,
            expires_at=None if ttl is None else now + ttl,
            size_bytes=len(data),
        )

    @classmethod
    def _create(cls, model_class: Any, data: bytes, type: ReferenceType, ttl: _TTL, storage: Storage) -> Reference:
        return storage.references.store(data, type=type, ttl=ttl)

"""Marshmallow schemas of the sessions domain: input validation and JSON.

    SessionSchema().load({"id": "sess_1", "context": {"user": "john"}})   # checked values
    MessageSchema().dump(message)   # {'id': 1, 'session_id': 'sess_1', 'role': 'user', ...}

Loading fills the defaults and normalises values to what the database will give
back (times in whole seconds, UTC). Dump-only fields are the store's own.
"""

import uuid
from collections.abc import Mapping
from typing import Any

import marshmallow
from marshmallow import fields, validate

from ..columns import utc_now
from ..validation import (
    FieldwiseLoader,
    JSONObject,
    JSONValue,
    Text,
    UnixTime,
    amount,
    count,
    generated_id_if_none,
    id_text,
    loadable,
)
from .models import ROLES, SESSION_CONTEXTS

# Bounds on one message that keep a session's totals exact in 64 bits and finite.
MAX_MESSAGE_TOKENS = 2**31 - 1
MAX_MESSAGE_COST_USD = 1e9
# A message's fields for which None means "the default": '' content, no tokens, no cost.
_NONE_IS_DEFAULT = frozenset({"content", "token_count", "cost_usd"})


def new_session_id() -> str:
    return "sess_" + uuid.uuid4().hex


class SessionSchema(marshmallow.Schema):
    id = id_text(load_default=new_session_id)
    name = Text(allow_none=True, load_default=None)
    agent_id = id_text(allow_none=True, load_default=None)
    parent_session_id = id_text(allow_none=True, load_default=None)
    context = JSONObject(allow_none=True, load_default=None)
    created_at = UnixTime(load_default=utc_now)
    updated_at = UnixTime(dump_only=True)
    total_cost_usd = fields.Float(dump_only=True)
    total_tokens = fields.Integer(dump_only=True)
    messages = fields.List(fields.Nested(lambda: MessageSchema()), dump_only=True)

    @marshmallow.pre_load
    def _generated_id(self, data: dict, **kwargs: Any) -> dict:
        return generated_id_if_none(data)

    @marshmallow.validates_schema
    def _not_own_parent(self, data: dict, **kwargs: Any) -> None:
        if data.get("parent_session_id") is not None and data["parent_session_id"] == data.get("id"):
            raise marshmallow.ValidationError("A session cannot be its own parent.", "parent_session_id")


class MessageSchema(marshmallow.Schema):
    id = fields.Integer(dump_only=True)
    session_id = fields.String(dump_only=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    content = Text(load_default="")
    tool_calls = JSONValue(allow_none=True, load_default=None)
    tool_use_id = id_text(allow_none=True, load_default=None)
    tool_result = JSONValue(allow_none=True, load_default=None)
    session_context = fields.String(load_default="direct", validate=validate.OneOf(SESSION_CONTEXTS))
    agent_id = id_text(allow_none=True, load_default=None)
    timestamp = UnixTime(load_default=utc_now)
    token_count = count(MAX_MESSAGE_TOKENS, load_default=0)
    cost_usd = amount(MAX_MESSAGE_COST_USD, load_default=0.0)
    # The item an agent framework handed over, kept verbatim (integrations/).
    item = JSONObject(allow_none=True, load_default=None)

    @marshmallow.pre_load
    def _none_as_default(self, data: Any, **kwargs: Any) -> Any:
        return without_none_defaults(data) if isinstance(data, Mapping) else data


def without_none_defaults(data: Mapping) -> Mapping:
    """A message's values without the Nones that mean a default ('' content, no tokens, no cost).

    The reference reader scans content into a string: never NULL. And SDKs hand
    over None for what they did not count.
    """
    defaulted = [name for name in _NONE_IS_DEFAULT if name in data and data[name] is None]
    return {k: v for k, v in data.items() if k not in defaulted} if defaulted else data


# load(MessageSchema(), values), faster: what save_messages checks each message with.
load_message = FieldwiseLoader(MessageSchema(), prepare=without_none_defaults)


class ToolExecutionSchema(marshmallow.Schema):
    id = fields.Integer(dump_only=True)
    session_id = fields.String(dump_only=True)
    tool_name = Text(required=True, validate=validate.Length(1, 255))
    input = JSONValue(allow_none=True, load_default=None)
    result = JSONValue(allow_none=True, load_default=None)
    error = Text(allow_none=True, load_default=None)
    execution_time_ms = count(allow_none=True, load_default=None)
    timestamp = UnixTime(load_default=utc_now)


class SessionDocumentSchema(SessionSchema):
    """A session with its messages and tool executions: what export_session writes and import_session reads.

        document = SessionDocumentSchema().dump(session)   # session.messages and .tool_executions set
        values = SessionDocumentSchema().load(document)    # the session's values, its "messages", "tool_executions"

    On load, what the store assigns (row ids, the totals) is dropped rather than
    refused: an export carries it, and the importing store assigns its own.
    """

    updated_at = UnixTime(allow_none=True, load_default=None)  # kept from the export
    messages = fields.List(fields.Nested(MessageSchema), load_default=list)
    tool_executions = fields.List(fields.Nested(ToolExecutionSchema), load_default=list)

    @marshmallow.pre_load
    def _without_store_fields(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # marshmallow says what it is not
        data = loadable(self, data)
        for name in ("messages", "tool_executions"):
            rows, schema = data.get(name), self.fields[name].inner.schema  # type: ignore[attr-defined]
            if isinstance(rows, list):
                data[name] = [loadable(schema, row) if isinstance(row, Mapping) else row for row in rows]
        return data

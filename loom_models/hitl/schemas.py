"""Marshmallow schemas of the hitl domain: a new request, an answer, and JSON.

    HumanRequestSchema().load({"agent_id": "a", "session_id": "s", "question": "Deploy?"})
    ResponseSchema().load({"status": "approved", "responded_by": "alice"})
    HumanRequestSchema().dump(request)   # JSON-ready, times in ISO 8601

What the store decides (status, expiry, the answer) is dump-only in a request.
"""

import datetime
import uuid
from collections.abc import Mapping
from typing import Any

import marshmallow
from marshmallow import fields, validate

from ..columns import utc_now
from ..errors import ValidationError
from ..validation import JSONValue, Text, UnixTime, count, generated_id_if_none, id_text
from .models import ANSWERS, PRIORITIES, REQUEST_TYPES

# At most a century: the deadline must stay a date that both backends can store.
MAX_TIMEOUT_MS = 100 * 365 * 24 * 3600 * 1000
DEFAULT_TIMEOUT_MS = 5 * 60 * 1000


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


def _not_reserved(name: str) -> None:
    # "system:expiry" and its kin name the store itself in the audit trail.
    if name.startswith("system:"):
        raise marshmallow.ValidationError("Names starting with 'system:' are the store's own.")


def _not_blank(text: str) -> None:
    if not text.strip():
        raise marshmallow.ValidationError("Must not be empty.")


class HumanRequestSchema(marshmallow.Schema):
    id = id_text(load_default=new_request_id)
    agent_id = id_text(required=True)
    session_id = id_text(required=True)
    question = Text(required=True, validate=_not_blank)
    context = JSONValue(allow_none=True, load_default=None)
    request_type = fields.String(load_default="approval", validate=validate.OneOf(REQUEST_TYPES))
    priority = fields.String(load_default="medium", validate=validate.OneOf(PRIORITIES))
    timeout_ms = count(MAX_TIMEOUT_MS, minimum=1, load_default=DEFAULT_TIMEOUT_MS)
    created_at = UnixTime(resolution=1000, load_default=utc_now)
    expires_at = UnixTime(resolution=1000, dump_only=True)
    status = fields.String(dump_only=True)
    response = fields.String(dump_only=True)
    response_data = fields.Raw(dump_only=True)
    responded_at = UnixTime(resolution=1000, dump_only=True)
    responded_by = fields.String(dump_only=True)

    @marshmallow.pre_load
    def _generated_id(self, data: dict, **kwargs: Any) -> dict:
        return generated_id_if_none(data)

    @marshmallow.post_load
    def _deadline(self, data: dict, **kwargs: Any) -> dict:
        try:
            data["expires_at"] = data["created_at"] + datetime.timedelta(milliseconds=data["timeout_ms"])
        except OverflowError:
            raise marshmallow.ValidationError("The deadline falls after the year 9999.", "timeout_ms") from None
        return data


class ResponseSchema(marshmallow.Schema):
    """A person's answer to a request."""

    status = fields.String(required=True, validate=validate.OneOf(sorted({s for a in ANSWERS.values() for s in a})))
    response = Text(load_default="")
    responded_by = id_text(_not_reserved, required=True)
    response_data = JSONValue(allow_none=True, load_default=None)

    @marshmallow.pre_load
    def _empty_response(self, data: Any, **kwargs: Any) -> Any:
        # The reference reader scans the response into a string: never NULL.
        if isinstance(data, Mapping) and data.get("response", "") is None:
            data = {**data, "response": ""}
        return data  # not a mapping: marshmallow says what it is not


def wrong_answer(request_type: str) -> ValidationError:
    """The error of an answer that a request of `request_type` does not take."""
    answers = " or ".join(ANSWERS[request_type])
    return ValidationError({"status": ["A %s request is answered with %s." % (request_type, answers)]})

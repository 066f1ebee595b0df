"""Marshmallow schemas of the references domain: what `store` accepts, and JSON.

StoreSchema().load({"data": b"...", "type": ReferenceType.TOOL_RESULT, "ttl": 3600})
ReferenceSchema().dump(reference)   # metadata only: the bytes stay out of JSON
"""

import datetime
from collections.abc import Mapping
from typing import Any

import marshmallow
from marshmallow import fields

from ..validation import FieldwiseLoader, UnixTime
from .models import ReferenceType

# The longest time to live: its expiry must stay a date both backends can store.
MAX_TTL = datetime.timedelta(days=365 * 100)


class Bytes(fields.Field):
    """Non-empty bytes; bytearray and memoryview are taken as bytes. Never str."""

    default_error_messages = {"invalid": "Must be bytes (or bytearray, memoryview).", "empty": "Must not be empty."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise self.make_error("invalid")
        try:
            content = value if isinstance(value, bytes) else bytes(value)
        except ValueError:  # a released memoryview
            raise self.make_error("invalid") from None
        if not content:
            raise self.make_error("empty")
        return content


class TimeToLive(fields.Field):
    """None (never expires), or a positive timedelta or number of seconds."""

    default_error_messages = {"invalid": "Must be None, or a positive number of seconds or timedelta up to 100 years."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= MAX_TTL.total_seconds():
            value = datetime.timedelta(seconds=value)
        if not isinstance(value, datetime.timedelta) or not datetime.timedelta(0) < value <= MAX_TTL:
            raise self.make_error("invalid")
        return value


class StoreSchema(marshmallow.Schema):
    data = Bytes(required=True)
    type = fields.Enum(ReferenceType, by_value=True, load_default=ReferenceType.UNSPECIFIED)
    ttl = TimeToLive(allow_none=True, load_default=None)


# load(StoreSchema(), values), faster: what store checks its arguments with.
load_store = FieldwiseLoader(StoreSchema())


class ReferenceSchema(marshmallow.Schema):
    id = fields.String()
    type = fields.Integer()
    store = fields.Integer()
    ref_count = fields.Integer()
    created_at = UnixTime()
    expires_at = UnixTime(allow_none=True)
    size_bytes = fields.Integer()

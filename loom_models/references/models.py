"""Content addressed by its SHA-256, stored once, reference counted, with an expiry.

    Reference(id=hashlib.sha256(data).hexdigest(), type=ReferenceType.TOOL_RESULT, data=data)

The columns are those of the reference implementation's `reference_store` (the
Go Loom platform's, whose files loom_models reads and writes): times in INTEGER
seconds, `expires_at` 0 for never.
"""

import enum
from typing import Any

import peewee

from ..base import BaseModel
from ..columns import UnixTimeField

# The reference implementation's code for the SQLite store; it is the only
# kind of store that writes this table.
SQLITE_STORE = 2


class ReferenceType(enum.IntEnum):
    UNSPECIFIED = 0
    SESSION_STATE = 1
    WORKFLOW_CONTEXT = 2
    COLLABORATION_STATE = 3
    LARGE_PAYLOAD = 4
    PATTERN_DATA = 5
    TOOL_RESULT = 6
    OBSERVABILITY_TRACE = 7


class ReferenceTypeField(peewee.IntegerField):
    """A ReferenceType; a number the enum does not know is read as the plain int."""

    def python_value(self, value: Any) -> Any:
        try:
            return ReferenceType(value)
        except ValueError:
            return value


class Reference(BaseModel):
    id = peewee.TextField(primary_key=True)
    type = ReferenceTypeField()
    store = peewee.IntegerField()
    data = peewee.BlobField()
    ref_count = peewee.BigIntegerField()
    created_at = UnixTimeField()
    expires_at = UnixTimeField(none_as=0)  # None: never
    size_bytes = peewee.BigIntegerField()

    def __repr__(self) -> str:
        values = self.__data__
        facts = [(values.get("id") or "(new)")[:12]]  # a SHA-256: its start tells it apart
        if values.get("size_bytes") is not None:
            facts.append("%d bytes" % values["size_bytes"])
        if values.get("ref_count") is not None:
            facts.append("%d refs" % values["ref_count"])
        return "<Reference %s>" % " ".join(facts)

    class Meta:
        table_name = "reference_store"

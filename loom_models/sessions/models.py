"""Sessions, their messages and tool executions: plain peewee models.

    session = Session(id="sess_abc123", name="Support", context={"user": "john"})
    message = Message(role="user", content="Where is my order?", token_count=7)
    run = ToolExecution(tool_name="lookup_order", input={"order": 42}, result={"status": "shipped"})

They need no database to be built; a SessionRepository stores and returns them.
The columns are those of the reference implementation (the Go Loom platform,
whose files loom_models reads and writes): times in INTEGER seconds, JSON values
in `*_json` columns.
"""

import dataclasses

import peewee

from ..base import BaseModel, shown
from ..columns import JSONField, UnixTimeField

ROLES = ("user", "assistant", "tool", "system")
SESSION_CONTEXTS = ("direct", "coordinator", "shared")


class Session(BaseModel):
    id = peewee.TextField(primary_key=True)
    name = peewee.TextField(null=True)
    agent_id = peewee.TextField(null=True)
    parent_session_id = peewee.TextField(null=True)
    context = JSONField(column_name="context_json", none_as="null")
    created_at = UnixTimeField()
    updated_at = UnixTimeField()
    total_cost_usd = peewee.DoubleField()
    total_tokens = peewee.BigIntegerField()

    # Set by SessionRepository.load_session: the messages in order, or None when
    # they were not loaded; and by export_session: its tool executions.
    messages: list | None = None
    tool_executions: list | None = None

    def _facts(self) -> list[str]:
        return [self.__data__.get("agent_id") or "", shown(self.__data__.get("name"))]

    class Meta:
        table_name = "sessions"


class Message(BaseModel):
    id = peewee.AutoField()
    # backref="+": `Session.messages` is the loaded list above, not a query.
    session = peewee.ForeignKeyField(Session, column_name="session_id", on_delete="CASCADE", backref="+")
    role = peewee.TextField()
    content = peewee.TextField()
    tool_calls = JSONField(column_name="tool_calls_json")
    tool_use_id = peewee.TextField(null=True)
    tool_result = JSONField(column_name="tool_result_json")
    session_context = peewee.TextField()
    timestamp = UnixTimeField()
    token_count = peewee.BigIntegerField()
    cost_usd = peewee.DoubleField()
    agent_id = peewee.TextField(null=True)
    # The item an agent framework handed over, verbatim (integrations/); our own column.
    item = JSONField(column_name="item_json")

    def _facts(self) -> list[str]:
        return [self.__data__.get("role") or "", shown(self.__data__.get("content"))]

    class Meta:
        table_name = "messages"


class ToolExecution(BaseModel):
    id = peewee.AutoField()
    session = peewee.ForeignKeyField(Session, column_name="session_id", on_delete="CASCADE", backref="+")
    tool_name = peewee.TextField()
    input = JSONField(column_name="input_json", none_as="null")
    result = JSONField(column_name="result_json", none_as="null")
    error = peewee.TextField(null=True)
    execution_time_ms = peewee.BigIntegerField(null=True)
    timestamp = UnixTimeField()

    def _facts(self) -> list[str]:
        return [self.__data__.get("tool_name") or "", "failed" if self.__data__.get("error") else ""]

    class Meta:
        table_name = "tool_executions"


@dataclasses.dataclass(frozen=True)
class SessionStats:
    """SessionRepository.get_stats(): counts and totals of the whole store."""

    session_count: int
    message_count: int
    tool_execution_count: int
    total_cost_usd: float
    total_tokens: int

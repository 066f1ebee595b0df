"""Human-in-the-loop requests: an agent asks, a person approves, rejects or answers.

    request = HumanRequest(agent_id="billing", session_id="sess_1",
                           question="Refund 120 EUR to order 42?", priority="high", timeout_ms=60_000)

The columns are those of the reference implementation's `human_requests` (the Go
Loom platform's, whose files loom_models reads and writes): times in INTEGER
milliseconds, and `response`, `responded_by` and `response_data_json` as '' until
the request is answered.
"""

import peewee

from ..base import BaseModel, shown
from ..columns import JSONField, UnixTimeField

REQUEST_TYPES = ("approval", "input", "selection")
PRIORITIES = ("low", "medium", "high", "critical")
STATUSES = ("pending", "approved", "rejected", "responded", "expired")

# The statuses that answer each request type; any other type on disk (the
# reference also wrote 'decision' and 'review') takes any answer.
ANSWERS = {"approval": ("approved", "rejected"), "input": ("responded",), "selection": ("responded",)}

EXPIRED_BY = "system:expiry"


class HumanRequest(BaseModel):
    id = peewee.TextField(primary_key=True)
    agent_id = peewee.TextField()
    session_id = peewee.TextField()
    question = peewee.TextField()
    context = JSONField(column_name="context_json", none_as="null")
    request_type = peewee.TextField()
    priority = peewee.TextField()
    timeout_ms = peewee.BigIntegerField()
    created_at = UnixTimeField(resolution=1000)
    expires_at = UnixTimeField(resolution=1000)
    status = peewee.TextField()
    response = peewee.TextField()
    response_data = JSONField(column_name="response_data_json", none_as="")
    responded_at = UnixTimeField(resolution=1000, null=True)
    responded_by = peewee.TextField()

    def _facts(self) -> list[str]:
        values = self.__data__
        return [values.get("status") or "", values.get("priority") or "", shown(values.get("question"))]

    class Meta:
        table_name = "human_requests"

"""The statements of the hitl domain, and the SQL its indexes are made for.

    sql = HumanRequestStatements(hitl.HumanRequest, hitl.backend)   # a repository's bound model
    sql.store.execute(**request_values)
    sql.answer["approved"].models(id="req_1", status="approved", now=utc_now(), ...)
    sql.pending(("now", "agent_id", "limit")).models(now=utc_now(), agent_id="billing", limit=50)

Each statement's parameters convert their values as their fields do
(statements.param): callers pass datetimes and JSON values as they are.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import peewee
from peewee import SQL, fn

from ..statements import Statement, param
from .models import ANSWERS, HumanRequest

if TYPE_CHECKING:
    from ..backends import Backend

# Written exactly as the partial indexes of migration 0002 are, so that SQLite
# uses them: the status as a literal, the rank as the same expression.
PENDING = SQL("status = 'pending'")
RANK = SQL(
    "CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2"
    " WHEN 'normal' THEN 2 WHEN 'low' THEN 3 ELSE 4 END"
)
# Written exactly as the partial index of migration 0003 is, for the same reason.
DECIDED = SQL("status <> 'pending'")


def decided_at() -> peewee.Function:
    """When a decided request was decided, as migration 0003 indexes it."""
    return fn.COALESCE(SQL("responded_at"), SQL("created_at"))


class HumanRequestStatements:
    def __init__(self, H: type[HumanRequest], backend: Backend) -> None:
        self.H, self.backend = H, backend
        now = param(H.expires_at, "now")  # a moment: every time column has the same unit
        expire = H.update(status=SQL("'expired'"), responded_at=now, responded_by=param(H.responded_by, "by"))
        expire = expire.where(PENDING)
        self.store = Statement(H.insert({f: param(f) for f in H._meta.sorted_fields}).on_conflict_ignore())
        # One per answer: the request types it may not answer are literals.
        self.answer = {status: self._answer(status) for answers in ANSWERS.values() for status in answers}
        self.expire_due = Statement(expire.where(H.expires_at <= now))
        self.expire_one = Statement(expire.where(H.id == param(H.id), H.expires_at <= now))
        cancel = expire.where(H.id == param(H.id), H.expires_at > now)
        self.cancel = Statement(cancel.returning(*H._meta.sorted_fields))
        # Cached per instance: a cache on the class would keep every repository's statements alive.
        self.pending = functools.cache(self._pending)

    def _answer(self, status: str) -> Statement:
        H = self.H
        answer = {name: param(H._meta.fields[name]) for name in ("status", "response", "responded_by", "response_data")}
        # Types a status may not answer; unknown types on disk take any answer.
        refused = [SQL("'%s'" % kind) for kind, answers in ANSWERS.items() if status not in answers]
        now = param(H.responded_at, "now")
        query = H.update(**answer, responded_at=now).where(
            H.id == param(H.id), PENDING, H.expires_at > now, H.request_type.not_in(refused)
        )
        return Statement(query.returning(*H._meta.sorted_fields))

    def _pending(self, names: tuple) -> Statement:
        """list_pending's statement for the values `names` ("now", and any of agent_id, session_id, limit)."""
        H = self.H
        # "+ 0" keeps SQLite off the expiry index, which would need a sort:
        # the pending index walks the requests in the order asked for.
        query = H.select().where(PENDING, (H.expires_at + SQL("0")) > param(H.expires_at, "now"))
        for name in ("agent_id", "session_id"):
            if name in names:
                query = query.where(H._meta.fields[name] == param(H._meta.fields[name]))
        query = query.order_by(RANK, H.created_at, H.id)
        query = query.limit(param("limit")) if "limit" in names else query
        return Statement(query, preamble=self.backend.index_order_preamble)

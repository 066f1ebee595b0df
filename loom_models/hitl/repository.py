"""HumanRequestRepository: requests that wait for a person, decided exactly once.

    from loom_models import open_storage
    from loom_models.hitl import HumanRequest

    with open_storage("./loom-data") as storage:
        hitl = storage.hitl
        request = hitl.store(HumanRequest(agent_id="billing", session_id="sess_1",
                                          question="Refund 120 EUR?", priority="high", timeout_ms=60_000))
        # ... in a web UI, a CLI or a chat bot, in another process:
        hitl.respond_to_request(request.id, "approved", "Go ahead", responded_by="alice")
        # ... back in the agent:
        decided = hitl.wait_for_response(request.id)
        print(decided.status, decided.responded_by)   # approved alice

An answer is one compare-and-set: of several racing responders exactly one wins,
and nothing is approved after its deadline.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import peewee
from peewee import SQL, Case, fn

from ..base import bind_models
from ..calls import repository_call
from ..columns import utc_now
from ..errors import (
    ConflictError,
    LoomStorageError,
    NotFoundError,
    RequestExpiredError,
    ValidationError,
)
from ..repository import Repository
from ..statements import Statement
from ..validation import MAX_INT64, check_id, check_limit, check_seconds, check_time, cutoff_time, input_of, load
from .models import EXPIRED_BY, PRIORITIES, STATUSES, HumanRequest
from .schemas import HumanRequestSchema, ResponseSchema, wrong_answer
from .statements import DECIDED, PENDING, RANK, HumanRequestStatements, decided_at

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

_REQUEST = HumanRequestSchema()
_RESPONSE = ResponseSchema()

# The longest pause between two looks at a request that is being waited for.
MAX_POLL_INTERVAL = 3600.0


# What each call's result tells its span (calls.repository_call).
def _request_ids(request: HumanRequest) -> dict:
    return {"request_id": request.id, "agent_id": request.agent_id, "session_id": request.session_id}


def _status(request: HumanRequest) -> dict:
    return {"status": request.status}


class HumanRequestRepository(Repository):
    domain = "hitl"
    file = "hitl.db"
    table = "human_requests"
    span_prefix = "hitl_store"
    models = (HumanRequest,)

    def __init__(self, database: peewee.Database, tracer: Tracer | None = None):
        super().__init__(database, tracer)
        (self.HumanRequest,) = bind_models(database, self.models)
        self._sql = HumanRequestStatements(self.HumanRequest, self.backend)
        self._lock_request = self.backend.row_lock(self.HumanRequest)

    @repository_call(tells=_request_ids)
    def store(self, request: HumanRequest | Mapping[str, Any]) -> HumanRequest:
        """File a pending request; it expires `timeout_ms` after `created_at`.

        request = hitl.store(HumanRequest(agent_id="a", session_id="s", question="Deploy?"))
        """
        values = load(_REQUEST, input_of(request, _REQUEST, "request"))
        row = {
            **values,
            "status": "pending",
            "response": "",
            "response_data": None,
            "responded_at": None,
            "responded_by": "",
        }
        with self.backend.write():
            inserted = self._sql.store.execute(**row).rowcount
        if not inserted:
            raise ConflictError("request already exists: %s" % row["id"])
        return self.HumanRequest(**row)

    @repository_call(ids=("request_id",))
    def get(self, request_id: str) -> HumanRequest:
        """The request, whatever its status.

        hitl.get("req_1").status
        """
        H = self.HumanRequest
        found = H.get_or_none(H.id == check_id(request_id, "request_id"))
        if found is None:
            raise NotFoundError("request not found: %s" % request_id)
        return found

    @repository_call()
    def ids_starting(self, prefix: str, *, limit: int = 2) -> list[str]:
        """The ids that start with `prefix`, in order, at most `limit`: an id told from its start, as git's.

        hitl.ids_starting("req_0bc2")   # ['req_0bc286e6a5c4464e8161ef6e3b1c2a6a']

        """
        return self._ids_starting(self.HumanRequest.id, prefix, limit)

    @repository_call(ids=("agent_id", "session_id"))
    def list_pending(
        self, *, agent_id: str | None = None, session_id: str | None = None, limit: int | None = None
    ) -> list[HumanRequest]:
        """Pending requests not yet past their deadline: critical first, then oldest first.

        for request in hitl.list_pending(agent_id="billing", limit=50): ...
        """
        values: dict[str, Any] = {"now": utc_now()}
        if agent_id is not None:
            values["agent_id"] = check_id(agent_id, "agent_id")
        if session_id is not None:
            values["session_id"] = check_id(session_id, "session_id")
        if limit is not None:
            values["limit"] = check_limit(limit)
        return self._sql.pending(tuple(values)).models(**values)

    @repository_call(ids=("agent_id",))
    def list_requests(
        self, *, status: str | None = None, agent_id: str | None = None, limit: int | None = None
    ) -> tuple[list[HumanRequest], int]:
        """A page of requests as a person reads them, and how many there are in all.

            page, total = hitl.list_requests(status="approved", agent_id="billing", limit=20)

        The pending ones first, as list_pending orders them; then the decided
        ones, the latest decided first. A pending request past its deadline is
        expired, as get_stats counts it.
        """
        H = self.HumanRequest
        now = utc_now()
        live = (H.status == "pending") & (H.expires_at > now)
        overdue = (H.status == "pending") & (H.expires_at <= now)
        query = H.select()
        if status is not None:
            query = query.where(_status_is(H, status, live, overdue))
        if agent_id is not None:
            query = query.where(H.agent_id == check_id(agent_id, "agent_id"))
        decided = Case(None, [(overdue, H.expires_at)], decided_at())
        order = (Case(None, [(live, 0)], 1), Case(None, [(live, RANK)], 0), Case(None, [(live, H.created_at)], 0))
        with self.backend.snapshot():  # the page and the total from one moment
            page = list(query.order_by(*order, decided.desc(), H.id).limit(check_limit(limit)))
            return page, query.count()

    @repository_call(ids=("session_id",))
    def list_by_session(self, session_id: str) -> list[HumanRequest]:
        """Every request of a session, whatever its status, newest first.

        [r.status for r in hitl.list_by_session("sess_1")]
        """
        H = self.HumanRequest
        query = H.select().where(H.session_id == check_id(session_id, "session_id"))
        return list(query.order_by(H.created_at.desc(), H.id.desc()))

    @repository_call(ids=("request_id",), tells=_status)
    def respond_to_request(
        self, request_id: str, status: str, response: str, responded_by: str, response_data: Any = None
    ) -> HumanRequest:
        """Decide a pending request: approved or rejected (approval), responded (input, selection).

            hitl.respond_to_request("req_1", "rejected", "Not today", responded_by="alice")

        ConflictError names the status of a request decided already; past its
        deadline the request becomes expired and RequestExpiredError is raised.
        """
        check_id(request_id, "request_id")
        answer = load(
            _RESPONSE,
            {"status": status, "response": response, "responded_by": responded_by, "response_data": response_data},
        )
        with self.backend.write():
            self._lock_request(request_id)
            now = utc_now()  # once the lock is ours: waiting for it must not stretch the deadline
            decided = self._sql.answer[answer["status"]].models(**answer, id=request_id, now=now)
            if not decided:
                refusal = self._expire_if_overdue(request_id, now) or self._refusal(request_id)
        if not decided:
            raise refusal  # after the commit, which keeps an expiry just recorded
        return decided[0]

    @repository_call(ids=("request_id",), tells=_status)
    def cancel(self, request_id: str, cancelled_by: str) -> HumanRequest:
        """Withdraw a pending request (its agent stopped waiting): it becomes expired, by `cancelled_by`.

            hitl.cancel("req_1", cancelled_by="agent:billing")

        ConflictError names the status of a request decided already; one past
        its deadline is expired already (RequestExpiredError).
        """
        check_id(request_id, "request_id")
        check_id(cancelled_by, "cancelled_by")
        with self.backend.write():
            self._lock_request(request_id)
            now = utc_now()
            cancelled = self._sql.cancel.models(id=request_id, by=cancelled_by, now=now)
            if not cancelled:
                refusal = self._expire_if_overdue(request_id, now) or self._refusal(request_id)
        if not cancelled:
            raise refusal
        return cancelled[0]

    @repository_call()
    def expire_overdue(self, now: datetime.datetime | None = None) -> int:
        """Mark every pending request past its deadline (at `now`) expired; return how many.

        hitl.expire_overdue()   # a sweep; list_pending never needs one
        """
        moment = utc_now() if now is None else check_time(now, "now")
        with self.backend.write():
            return self._expire(self._sql.expire_due, moment)

    @repository_call(ids=("request_id",), tells=_status)
    def wait_for_response(
        self, request_id: str, timeout: float | None = None, poll_interval: float = 0.5
    ) -> HumanRequest:
        """Block until the request is decided, looking every `poll_interval` seconds.

            decided = hitl.wait_for_response("req_1", timeout=30)

        At the request's deadline it is marked expired and returned so. With a
        `timeout` (seconds), give up waiting then and return it as it is.
        """
        give_up = waiting_until(timeout, poll_interval)
        while True:
            request, pause = self._poll_response(request_id, give_up, poll_interval)
            if pause is None:
                return request
            time.sleep(pause)

    @repository_call(span=False)
    def _poll_response(
        self, request_id: str, give_up: float | None, poll_interval: float
    ) -> tuple[HumanRequest, float | None]:
        """One look of wait_for_response: (the request, None) when the wait is over, else (it, seconds to pause).

        `give_up` is a time.monotonic() (waiting_until), or None for no timeout;
        loom_models.aio waits with it without holding a thread.
        """
        request = self.get(request_id)
        if request.status != "pending":
            return request, None
        until_deadline = (request.expires_at - utc_now()).total_seconds()
        if until_deadline <= 0:
            with self.backend.write():
                self._expire_if_overdue(request_id, utc_now())
            return self.get(request_id), None
        pause = min(poll_interval, until_deadline)
        if give_up is not None:
            if time.monotonic() >= give_up:
                return request, None
            pause = min(pause, give_up - time.monotonic())
        return request, max(pause, 0)

    @repository_call()
    def delete_older_than(self, cutoff: datetime.datetime | datetime.timedelta) -> int:
        """Purge requests decided before `cutoff` (a datetime or timedelta); never a pending one.

            hitl.delete_older_than(timedelta(days=90))       # how many went
            hitl.list_decided_before(timedelta(days=90))     # which would go

        A request is as old as its decision: one filed long ago and answered
        today is today's audit record. (A decided row of the reference
        implementation without a decision time is as old as its creation.)
        """
        H = self.HumanRequest
        with self.backend.write():
            return H.delete().where(DECIDED, decided_at() < self._cutoff(cutoff)).execute()

    @repository_call()
    def list_decided_before(
        self, cutoff: datetime.datetime | datetime.timedelta, *, limit: int | None = None
    ) -> list[HumanRequest]:
        """The requests decided before `cutoff`, the earliest decided first: what delete_older_than would purge.

        [r.id for r in hitl.list_decided_before(timedelta(days=90), limit=20)]
        """
        H = self.HumanRequest
        query = H.select().where(DECIDED, decided_at() < self._cutoff(cutoff))
        return list(query.order_by(decided_at(), H.id).limit(check_limit(limit)))

    def _cutoff(self, cutoff: datetime.datetime | datetime.timedelta) -> int:
        return self.HumanRequest.created_at.db_value(cutoff_time(cutoff))

    @repository_call()
    def get_stats(self) -> dict[str, int]:
        """Requests per status, counting a pending request past its deadline as expired.

        hitl.get_stats()   # {'pending': 2, 'approved': 5, 'rejected': 1, 'responded': 0, 'expired': 3}
        """
        H = self.HumanRequest
        with self.backend.snapshot():  # both counts from one moment; each read from an index alone
            counts = dict(H.select(H.status, fn.COUNT(SQL("*"))).group_by(H.status).tuples())
            overdue = H.select(fn.COUNT(SQL("*"))).where(PENDING, H.expires_at <= utc_now()).scalar()
        counts = {**dict.fromkeys(STATUSES, 0), **counts}
        counts["pending"] -= overdue
        counts["expired"] += overdue
        return counts

    @repository_call()
    def pending_by_priority(self) -> dict[str, int]:
        """The requests list_pending() would give, counted by priority, the most urgent first.

        hitl.pending_by_priority()   # {'critical': 1, 'high': 0, 'medium': 4, 'low': 2}
        """
        H = self.HumanRequest
        live = H.select(H.priority, fn.COUNT(SQL("*"))).where(PENDING, H.expires_at > utc_now())
        counts = dict(live.group_by(H.priority).tuples())
        return {priority: counts.get(priority, 0) for priority in reversed(PRIORITIES)}

    def _expire_if_overdue(self, request_id: str, now: datetime.datetime) -> RequestExpiredError | None:
        """Expire the request if it is pending past its deadline; the error to report then."""
        if self._expire(self._sql.expire_one, now, id=request_id):
            return RequestExpiredError("request expired: %s" % request_id)
        return None

    def _refusal(self, request_id: str) -> LoomStorageError:
        """Why a pending, unexpired answer could not be recorded."""
        request = self.HumanRequest.get_or_none(self.HumanRequest.id == request_id)
        if request is None:
            return NotFoundError("request not found: %s" % request_id)
        if request.status == "expired":
            return RequestExpiredError("request expired: %s" % request_id)
        if request.status != "pending":
            return ConflictError("request %s is already %s" % (request_id, request.status))
        return wrong_answer(request.request_type)

    def _expire(self, statement: Statement, now: datetime.datetime, **values: str) -> int:
        return statement.execute(now=now, by=EXPIRED_BY, **values).rowcount


def _status_is(
    H: type[HumanRequest], status: str, live: peewee.Expression, overdue: peewee.Expression
) -> peewee.Expression:
    """The condition of list_requests(status=...): pending ones before, expired ones after their deadline."""
    if status not in STATUSES:
        raise ValidationError({"status": ["Must be one of: %s." % ", ".join(STATUSES)]})
    if status == "pending":
        return live
    return (H.status == status) | overdue if status == "expired" else H.status == status


def waiting_until(timeout: float | None, poll_interval: float) -> float | None:
    """When a wait_for_response of `timeout` seconds begun now gives up (time.monotonic()), None for never.

    Checks both arguments.
    """
    check_seconds(poll_interval, "poll_interval", maximum=MAX_POLL_INTERVAL)
    if timeout is None:
        return None
    return time.monotonic() + check_seconds(timeout, "timeout", maximum=MAX_INT64, allow_zero=True)

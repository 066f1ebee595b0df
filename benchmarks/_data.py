"""What the workloads work on: how much of everything (the plans), and the values every store is given.

    plan = QUICK              # or FULL: iterations per kind of operation, and the data's size
    message(3)                # {'role': 'assistant', 'content': '...', 'token_count': 60, ...}
    payload(KB, 7)            # 1 KB of bytes, distinct for each second argument

The values are plain dicts and bytes, the same for every store and never changed
by one; making a store's own objects of them is part of each timed call.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random

KB, MB = 2**10, 2**20
LARGE = 50 * MB  # the reference whose peak memory is reported

BATCH = 100  # messages per save_messages call
SESSION_SIZE = 100  # messages of a session that load_session and delete_session handle
LONG_SESSION_SIZE = 1_000  # messages of the session load_messages reads the latest of
LATEST = 100
PAGE = 50  # requests per list_pending page

# Session ids of the sessions workload.
WRITE_ONE, WRITE_BATCH, LOAD, LONG = "sess_write_one", "sess_write_batch", "sess_load", "sess_long"
NEW, DELETE, SCALE = "sess_new_%06d", "sess_delete_%06d", "sess_scale_%06d"
PRIORITIES = ("critical", "high", "medium", "low")


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much of everything: iterations per kind of operation, and the data's size."""

    calls: int  # sub-millisecond operations
    slow_calls: int  # operations of milliseconds: batches, stats, sweeps
    large_calls: int  # 1 MB references, the whole pending list
    delete_calls: int  # delete_session: each needs a session of its own, made up front
    requests: int  # hitl rows, of which `pending` are pending
    pending: int
    due_per_sweep: int  # requests each "some due" expire_overdue call expires
    scale_sessions: int  # --scale: sessions of BATCH messages
    scale_loads: int  # --scale: random sessions loaded
    memory: bool  # the 50 MB reference figures


FULL = Plan(
    calls=1_000,
    slow_calls=200,
    large_calls=50,
    delete_calls=200,
    requests=100_000,
    pending=10_000,
    due_per_sweep=10,
    scale_sessions=10_000,
    scale_loads=1_000,
    memory=True,
)
QUICK = Plan(
    calls=20,
    slow_calls=10,
    large_calls=5,
    delete_calls=5,
    requests=1_000,
    pending=100,
    due_per_sweep=2,
    scale_sessions=200,
    scale_loads=50,
    memory=False,
)


# Sessions and messages.

VOCABULARY = (
    "order refund shipping invoice customer account password delivery status tracking warehouse payment card "
    "address return exchange discount coupon subscription renewal cancel upgrade plan billing receipt tax "
    "parcel courier delay weekend support agent ticket priority issue resolved thanks please could would"
).split()


@functools.cache
def message(n: int) -> dict:
    """The n-th message of a conversation: a question or an answer, some answers with a tool call."""
    content = " ".join(random.Random(n).choices(VOCABULARY, k=40))
    if n % 2 == 0:
        return {"role": "user", "content": content, "token_count": 40, "cost_usd": 0.0}
    answer = {"role": "assistant", "content": content, "token_count": 60, "cost_usd": 0.0004}
    if n % 10 == 1:
        answer["tool_calls"] = [
            {"ID": "call_%d" % n, "Name": "lookup_order", "Input": {"order": n}, "ThoughtSignature": ""}
        ]
    return answer


def messages(count: int, start: int = 0) -> list[dict]:
    # A thousand distinct messages, repeated: enough variety, and cheap to make.
    return [message((start + n) % 1_000) for n in range(count)]


def session(session_id: str) -> dict:
    context = {"user": "john", "channel": "web"}
    return {"id": session_id, "name": "Order support", "agent_id": "support", "context": context}


# Human requests.


def request(i: int) -> dict:
    """A new request, as a caller of store() gives it."""
    return {
        "id": "req_new_%06d" % i,
        "agent_id": "billing",
        "session_id": "sess_%03d" % (i % 100),
        "question": "Refund 120 EUR to order %d?" % i,
        "context": {"order": i, "amount_eur": 120},
        "request_type": "approval",
        "priority": PRIORITIES[i % 4],
        "timeout_ms": 300_000,
    }


def pending_id(j: int) -> str:
    return "req_pending_%06d" % j


def request_rows(plan: Plan, now: int, deadlines: int) -> list[dict]:
    """Rows as the store writes them: pending ones, and decided ones from two days ago and before."""
    rows = []
    for j in range(plan.pending):
        created = now - (plan.pending - j) * 1000
        rows.append(_request_row(pending_id(j), j, created, deadlines + j * 1000, "pending"))
    for k in range(plan.requests - plan.pending):
        created = now - 2 * 86_400_000 - k * 1000
        status = ("approved", "rejected", "responded", "expired")[k % 4]
        rows.append(_request_row("req_done_%06d" % k, k, created, created + 300_000, status))
    return rows


def _request_row(request_id: str, n: int, created: int, expires: int, status: str) -> dict:
    decided = status != "pending"
    return {
        "id": request_id,
        "agent_id": "agent_%d" % (n % 10),
        "session_id": "sess_%03d" % (n % 1_000),
        "question": "Refund order %d?" % n,
        "context_json": json.dumps({"order": n}),
        "request_type": "input" if status == "responded" else "approval",
        "priority": PRIORITIES[n % 4],
        "timeout_ms": expires - created,
        "created_at": created,
        "expires_at": expires,
        "status": status,
        "response": "done" if decided else "",
        "response_data_json": "",
        "responded_at": created + 1000 if decided else None,
        "responded_by": ("system:expiry" if status == "expired" else "alice") if decided else "",
    }


# References.


@functools.cache
def _block(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def payload(size: int, i: int) -> bytes:
    """Distinct bytes for each i, so that every first store is a real insert."""
    return i.to_bytes(8, "big") + _block(size)[8:]

"""The operations timed: per domain, what each store gets before the timing, the calls, and their checks.

    for workload in workloads(QUICK):
        workload.prepare(store)                   # untimed: the sessions and requests the calls need
        for operation in workload.operations():   # a store method, its arguments of iteration i, checks
            ...

An Operation names a method that every store (RawStore, LoomStore, the peers)
has with the same signature; a store without it sits the operation out. Results
are checked (counts, ids, hashes), so a broken store cannot look fast: a check
raises WrongResult. The harness (_harness.py) does the timing.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from _data import (
    BATCH,
    DELETE,
    KB,
    LARGE,
    LATEST,
    LOAD,
    LONG,
    LONG_SESSION_SIZE,
    MB,
    NEW,
    PAGE,
    SCALE,
    SESSION_SIZE,
    WRITE_BATCH,
    WRITE_ONE,
    Plan,
    message,
    messages,
    payload,
    pending_id,
    request,
    request_rows,
    session,
)

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class WrongResult(Exception):
    """A result that is not what the operation must give."""


@dataclasses.dataclass(frozen=True)
class Operation:
    """One store method, called `calls` times per store (after `warmup` discarded calls)."""

    name: str
    method: str
    calls: int
    arguments: Callable[[int], tuple]  # of iteration i; prepared outside the timing
    check: Callable[[Any, tuple], None] | None = None  # of each result, given the arguments
    verify: Callable[[Any, int], None] | None = None  # of each store, given the iterations, after them all
    rows: int = 1  # rows per call: more adds a "(per row)" figure
    warmup: int | None = None  # a tenth of `calls` unless given

    @property
    def discarded(self) -> int:
        return _warmup(self.calls) if self.warmup is None else self.warmup

    @property
    def iterations(self) -> int:
        return self.discarded + self.calls


def _warmup(calls: int) -> int:
    return max(2, calls // 10)


def _iterations(calls: int) -> int:
    return calls + _warmup(calls)


def _equal(actual, expected, what: str) -> None:
    if actual != expected:
        raise WrongResult("%s: expected %r, got %r" % (what, expected, actual))


def _field(result, name: str):
    """A field of a store's result: loom returns model objects, raw returns dicts."""
    return result[name] if isinstance(result, dict) else getattr(result, name)


def _loaded_messages(result) -> list:
    """The messages of a loaded session: loom's `.messages`, raw's "messages", a peer's whole list."""
    if isinstance(result, list):
        return result
    return _field(result, "messages")


def workloads(plan: Plan) -> list:
    """Every workload of a run, in the order they run."""
    return [
        SessionsWorkload(plan),
        HitlWorkload(plan),
        ReferencesWorkload(KB, plan.calls),
        ReferencesWorkload(MB, plan.large_calls),
    ]


class SessionsWorkload:
    domain = "sessions"

    def __init__(self, plan: Plan):
        self.plan = plan
        self.deletes = _iterations(plan.delete_calls)

    def prepare(self, store) -> None:
        store.create_session(WRITE_ONE, [])
        store.create_session(WRITE_BATCH, [])
        store.create_session(LOAD, messages(SESSION_SIZE))
        store.create_session(LONG, messages(LONG_SESSION_SIZE))
        if hasattr(store, "delete_session"):  # enough sessions up front for every delete to be a real one
            for i in range(self.deletes):
                store.create_session(DELETE % i, messages(SESSION_SIZE, start=i))

    def operations(self) -> list[Operation]:
        calls, slow_calls = self.plan.calls, self.plan.slow_calls
        # Every message in the file when get_stats runs: before the deletes.
        in_file = (
            SESSION_SIZE
            + LONG_SESSION_SIZE
            + self.deletes * SESSION_SIZE
            + _iterations(calls)
            + _iterations(slow_calls) * BATCH
        )
        return [
            Operation(
                "save_session (insert)",
                "save_session",
                calls,
                lambda i: (session(NEW % i),),
                check=lambda result, args: _equal(_field(result, "id"), args[0]["id"], "session id"),
            ),
            # The same ids again: the sessions the inserts made.
            Operation(
                "save_session (upsert)",
                "save_session",
                calls,
                lambda i: (session(NEW % i),),
                check=lambda result, args: _equal(_field(result, "id"), args[0]["id"], "session id"),
            ),
            Operation(
                "save_message",
                "save_message",
                calls,
                lambda i: (WRITE_ONE, message(i % 1_000)),
                verify=lambda store, n: _equal(store.count_messages(WRITE_ONE), n, "messages saved"),
            ),
            Operation(
                "save_messages",
                "save_messages",
                slow_calls,
                lambda i: (WRITE_BATCH, messages(BATCH, i)),
                rows=BATCH,
                verify=lambda store, n: _equal(store.count_messages(WRITE_BATCH), n * BATCH, "messages saved"),
            ),
            Operation(
                "load_session (%d messages)" % SESSION_SIZE,
                "load_session",
                calls,
                lambda i: (LOAD,),
                check=lambda result, _: _equal(len(_loaded_messages(result)), SESSION_SIZE, "messages"),
            ),
            Operation(
                "load_messages (latest %d of %s)" % (LATEST, f"{LONG_SESSION_SIZE:,}"),
                "load_messages",
                calls,
                lambda i: (LONG, LATEST),
                check=lambda result, _: _equal(len(result), LATEST, "messages"),
            ),
            Operation(
                "get_stats",
                "get_stats",
                slow_calls,
                lambda i: (),
                check=lambda result, _: _equal(_field(result, "message_count"), in_file, "message_count"),
            ),
            # Named with the file's message count: the full-text index has a row for each.
            Operation(
                "delete_session (%d of %s messages)" % (SESSION_SIZE, f"{in_file:,}"),
                "delete_session",
                self.plan.delete_calls,
                lambda i: (DELETE % i,),
                check=lambda result, _: _equal(result, True, "deleted"),
            ),
        ]


class HitlWorkload:
    """`requests` requests, `pending` of them pending with deadlines a day or more away.

    Pending request j expires at `deadlines + j` seconds: respond_to_request answers
    them from the last one down, and each "some due" sweep passes a `now` that
    takes `due_per_sweep` more from the first one up, so the two never meet.
    """

    domain = "hitl"

    def __init__(self, plan: Plan):
        self.plan = plan
        now = time.time_ns() // 1_000_000
        self.deadlines = now + 86_400_000
        self.rows = request_rows(plan, now, self.deadlines)  # made once: every store gets the same rows
        answered = _iterations(plan.calls) + _iterations(plan.slow_calls) * plan.due_per_sweep
        if answered > plan.pending:
            raise ValueError("plan: %d pending requests, too few for %d answers and sweeps" % (plan.pending, answered))

    def prepare(self, store) -> None:
        store.fill_requests(self.rows)

    def operations(self) -> list[Operation]:
        plan, pending = self.plan, self.plan.pending
        return [
            Operation(
                "list_pending (limit %d)" % PAGE,
                "list_pending",
                plan.calls,
                lambda i: (PAGE,),
                check=lambda result, _: _equal(len(result), PAGE, "requests"),
            ),
            Operation(
                "list_pending (all %s)" % f"{pending:,}",
                "list_pending",
                plan.large_calls,
                lambda i: (None,),
                check=lambda result, _: _equal(len(result), pending, "requests"),
            ),
            Operation(
                "respond_to_request",
                "respond_to_request",
                plan.calls,
                lambda i: (pending_id(pending - 1 - i), "approved", "Go ahead", "alice"),
                check=lambda result, _: _equal(_field(result, "status"), "approved", "status"),
            ),
            Operation(
                "expire_overdue (none due)",
                "expire_overdue",
                plan.calls,
                lambda i: (None,),
                check=lambda result, _: _equal(result, 0, "expired"),
            ),
            Operation(
                "expire_overdue (%d due)" % plan.due_per_sweep,
                "expire_overdue",
                plan.slow_calls,
                lambda i: (self._sweep_time(i),),
                check=lambda result, _: _equal(result, plan.due_per_sweep, "expired"),
            ),
            # Last: its new requests fall due before the sweeps' `now`.
            Operation(
                "store (request)",
                "store_request",
                plan.calls,
                lambda i: (request(i),),
                check=lambda result, _: _equal(_field(result, "status"), "pending", "status"),
            ),
        ]

    def _sweep_time(self, i: int) -> datetime.datetime:
        """The moment at which pending requests 0 .. (i + 1) * due_per_sweep - 1 are overdue."""
        last_due = (i + 1) * self.plan.due_per_sweep - 1
        return EPOCH + datetime.timedelta(milliseconds=self.deadlines + last_due * 1000)


class ReferencesWorkload:
    """Distinct payloads of one size: store each, store it again, resolve, retain and release it."""

    domain = "references"

    def __init__(self, size: int, calls: int):
        self.size, self.calls = size, calls

    def prepare(self, store) -> None:
        pass  # the first store of each payload is the first operation

    def operations(self) -> list[Operation]:
        label = "%d KB" % (self.size // KB) if self.size < MB else "%d MB" % (self.size // MB)
        data = functools.partial(payload, self.size)

        def reference_id(i):
            return (hashlib.sha256(data(i)).hexdigest(),)

        def counts(expected):
            return lambda result, _: _equal(_field(result, "ref_count"), expected, "ref_count")

        def returns(expected):
            return lambda result, _: _equal(result, expected, "count")

        def hashes_to_id(result, args):
            _equal(hashlib.sha256(result).hexdigest(), args[0], "SHA-256 of the bytes resolved")

        return [
            Operation(
                "references store %s (new)" % label,
                "store_reference",
                self.calls,
                lambda i: (data(i),),
                check=counts(1),
            ),
            Operation(
                "references store %s (again)" % label,
                "store_reference",
                self.calls,
                lambda i: (data(i),),
                check=counts(2),
            ),
            Operation("references resolve %s" % label, "resolve", self.calls, reference_id, check=hashes_to_id),
            Operation("references retain %s" % label, "retain", self.calls, reference_id, check=returns(3)),
            Operation("references release %s" % label, "release", self.calls, reference_id, check=returns(2)),
        ]


class ScaleWorkload:
    """--scale: `scale_sessions` sessions of BATCH messages, and the plan's requests for list_pending.

    Over a random sample of the sessions: load each, read its latest LATEST
    messages, count them all (get_stats), then add a message to each; the
    writes last, so the reads see the sessions as they were written.
    """

    def __init__(self, plan: Plan):
        self.plan = plan
        self.sessions = plan.scale_sessions
        self.messages = plan.scale_sessions * BATCH
        self.sample = random.Random(0).sample(range(plan.scale_sessions), plan.scale_loads)
        now = time.time_ns() // 1_000_000
        self.requests = request_rows(plan, now, now + 86_400_000)  # pending ones due a day from now

    def writes(self) -> Iterator[tuple[dict, list[dict]]]:
        """Each session and its messages, for save_session and save_messages."""
        for s in range(self.sessions):
            yield session(SCALE % s), messages(BATCH, s)

    def _sampled(self, i: int) -> str:
        return SCALE % self.sample[i % len(self.sample)]

    def operations(self) -> list[Operation]:
        """The sessions' calls, each named by its figures' key."""
        loads = len(self.sample)
        return [
            Operation(
                "load_session",
                "load_session",
                loads,
                lambda i: (self._sampled(i),),
                warmup=loads,  # a first pass over the same sessions: warm
                check=lambda result, _: _equal(len(_loaded_messages(result)), BATCH, "messages"),
            ),
            Operation(
                "latest_%d" % LATEST,
                "load_messages",
                loads,
                lambda i: (self._sampled(i), LATEST),
                check=lambda result, _: _equal(len(result), LATEST, "messages"),
            ),
            Operation(
                "get_stats",
                "get_stats",
                5,
                lambda i: (),
                warmup=1,
                check=lambda result, _: _equal(_field(result, "message_count"), self.messages, "message_count"),
            ),
            Operation(
                "save_message",
                "save_message",
                loads,
                lambda i: (self._sampled(i), message(i % 1_000)),
                verify=lambda store, n: _equal(
                    _field(store.get_stats(), "message_count"), self.messages + n, "message_count"
                ),
            ),
        ]

    def fill_requests(self, store) -> None:
        store.fill_requests(self.requests)

    def request_operations(self) -> list[Operation]:
        """list_pending's first page, once fill_requests has given a store the plan's requests."""
        return [
            Operation(
                "list_pending",
                "list_pending",
                self.plan.scale_loads,
                lambda i: (PAGE,),
                check=lambda result, _: _equal(len(result), PAGE, "requests"),
            )
        ]


# The 50 MB reference, for the harness's memory figures: it runs each operation in a process of its own.
# Only large_setup and a store make the payload, so the peak before a resolve or a retain (a high-water
# mark) holds no copy of it.

LARGE_OPERATIONS = ("store", "resolve", "retain")  # resolve and retain: of the reference large_setup stored


def large_setup(store) -> str:
    """Stores the 50 MB payload; its reference id."""
    return _field(store.store_reference(payload(LARGE, 0)), "id")


def large_call(store, operation: str, reference_id: str) -> Callable[[], Any]:
    """The operation's call, ready to time."""
    if operation == "store":
        return functools.partial(store.store_reference, payload(LARGE, 0))  # a caller holds its payload already
    return functools.partial(getattr(store, operation), reference_id)


def check_large(operation: str, result) -> None:
    if operation == "store":
        _equal(_field(result, "size_bytes"), LARGE, "size_bytes")
    elif operation == "resolve":
        _equal(len(result), LARGE, "bytes resolved")
    else:
        _equal(result, 2, "count")

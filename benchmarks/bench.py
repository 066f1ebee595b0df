"""How fast loom_models is beside stdlib sqlite3 and peer libraries, on the same data.

    pip install -e ".[bench]"       # optional: the peers, and pyinstrument to profile a slow spot
    python benchmarks/bench.py                      # full: 3 runs
    python benchmarks/bench.py --quick              # tiny counts and data: does it work? (CI)
    python benchmarks/bench.py --scale              # and 1,000,000 messages: loads, stats, bytes on disk
    python benchmarks/bench.py --database-url postgresql://postgres@127.0.0.1:5432/test   # loom on PostgreSQL too
    python benchmarks/bench.py --runs 5 --json figures.json

The stores, each on its own files in a temporary directory made for the run:
- raw: stdlib sqlite3 as a careful hand-written store uses it (_raw.py), on files
  made by loom's migrations and with loom's pragmas: the baseline of every ratio;
- loom: loom_models through its public API, model objects in and out;
- loom-pg (with --database-url): loom on PostgreSQL, in a throw-away schema, for
  the sessions operations;
- openai-agents and langchain-community chat histories (_peers.py), when they are
  installed, for the operations they have.

Every operation runs its iterations interleaved (each iteration calls every store
once, the first store rotating) and discards the first tenth as warm-up. Inputs
are plain values prepared outside the timing; making a store's own objects of
them (a loom Message, a LangChain HumanMessage) is part of the timed call. Results
are checked (counts, ids, hashes), so a broken store cannot look fast: a wrong
result or an error ends the run with a non-zero exit. Speed is only reported,
never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import _peers
import _raw

import loom_models
from loom_models.db import open_database
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session

HERE = os.path.dirname(os.path.abspath(__file__))
UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
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


class BenchmarkFailure(Exception):
    """An operation raised, or returned a wrong result: the figures cannot be trusted."""


class WrongResult(Exception):
    """A result that is not what the operation must give."""


class LoomStore:
    """loom_models through its public API: model objects in, model objects out."""

    domains = ("sessions", "hitl", "references")

    def __init__(self, directory: str | None = None, *, database_url: str | None = None):
        # No reference collector: its sweeps would land in some random call's time, and raw has none.
        self.storage = loom_models.open_storage(directory, database_url=database_url, gc_interval=0)
        self.directory = directory
        self.name = "loom" if database_url is None else "loom-pg"
        if database_url is not None:
            # Filling hitl and references would need a PostgreSQL bulk loader; the
            # question for PostgreSQL is session latency beside SQLite.
            self.domains = ("sessions",)

    def path(self, domain: str) -> str:
        return os.path.join(self.directory, "%s.db" % domain)

    def close(self) -> None:
        self.storage.close()

    def create_session(self, session_id: str, messages: list[dict]) -> None:
        self.save_session({"id": session_id})
        self.save_messages(session_id, messages)

    def save_session(self, session: dict) -> Session:
        return self.storage.sessions.save_session(Session(**session))

    def save_message(self, session_id: str, message: dict) -> Message:
        return self.storage.sessions.save_message(session_id, Message(**message))

    def save_messages(self, session_id: str, messages: list[dict]) -> list[Message]:
        return self.storage.sessions.save_messages(session_id, [Message(**message) for message in messages])

    def load_session(self, session_id: str) -> Session:
        return self.storage.sessions.load_session(session_id)

    def load_messages(self, session_id: str, limit: int) -> list[Message]:
        return self.storage.sessions.load_messages(session_id, limit=limit)

    def delete_session(self, session_id: str) -> bool:
        return self.storage.sessions.delete_session(session_id)

    def get_stats(self):
        return self.storage.sessions.get_stats()

    def count_messages(self, session_id: str) -> int:
        return len(self.storage.sessions.load_messages(session_id))

    def fill_requests(self, rows: list[dict]) -> None:
        _raw.fill_requests(self.path("hitl"), rows)  # setup, not measured: the same rows as raw's

    def store_request(self, request: dict) -> HumanRequest:
        return self.storage.hitl.store(HumanRequest(**request))

    def list_pending(self, limit: int | None) -> list[HumanRequest]:
        return self.storage.hitl.list_pending(limit=limit)

    def respond_to_request(self, request_id: str, status: str, response: str, responded_by: str) -> HumanRequest:
        return self.storage.hitl.respond_to_request(request_id, status, response, responded_by=responded_by)

    def expire_overdue(self, now: datetime.datetime | None) -> int:
        return self.storage.hitl.expire_overdue(now)

    def store_reference(self, data: bytes):
        return self.storage.references.store(data)

    def resolve(self, reference_id: str) -> bytes:
        return self.storage.references.resolve(reference_id)

    def retain(self, reference_id: str) -> int:
        return self.storage.references.retain(reference_id)

    def release(self, reference_id: str) -> int:
        return self.storage.references.release(reference_id)


SQLITE_STORES = {"raw": _raw.RawStore, "loom": LoomStore}


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


# Data. Every store gets the same values; they are plain dicts, never changed by a store.

VOCABULARY = (
    "order refund shipping invoice customer account password delivery status tracking warehouse payment card "
    "address return exchange discount coupon subscription renewal cancel upgrade plan billing receipt tax "
    "parcel courier delay weekend support agent ticket priority issue resolved thanks please could would"
).split()


@functools.cache
def _message(n: int) -> dict:
    """The n-th message of a conversation: a question or an answer, some answers with a tool call."""
    content = " ".join(random.Random(n).choices(VOCABULARY, k=40))
    if n % 2 == 0:
        return {"role": "user", "content": content, "token_count": 40, "cost_usd": 0.0}
    message = {"role": "assistant", "content": content, "token_count": 60, "cost_usd": 0.0004}
    if n % 10 == 1:
        message["tool_calls"] = [
            {"ID": "call_%d" % n, "Name": "lookup_order", "Input": {"order": n}, "ThoughtSignature": ""}
        ]
    return message


def _messages(count: int, start: int = 0) -> list[dict]:
    # A thousand distinct messages, repeated: enough variety, and cheap to make.
    return [_message((start + n) % 1_000) for n in range(count)]


def _session(session_id: str) -> dict:
    context = {"user": "john", "channel": "web"}
    return {"id": session_id, "name": "Order support", "agent_id": "support", "context": context}


def _request(i: int) -> dict:
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


@functools.cache
def _block(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _payload(size: int, i: int) -> bytes:
    """Distinct bytes for each i, so that every first store is a real insert."""
    return i.to_bytes(8, "big") + _block(size)[8:]


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


# Workloads: per domain, what each store gets before the timing, and the operations timed.


class SessionsWorkload:
    domain = "sessions"

    def __init__(self, plan: Plan):
        self.plan = plan
        self.deletes = _iterations(plan.delete_calls)

    def prepare(self, store) -> None:
        store.create_session(WRITE_ONE, [])
        store.create_session(WRITE_BATCH, [])
        store.create_session(LOAD, _messages(SESSION_SIZE))
        store.create_session(LONG, _messages(LONG_SESSION_SIZE))
        if hasattr(store, "delete_session"):  # enough sessions up front for every delete to be a real one
            for i in range(self.deletes):
                store.create_session(DELETE % i, _messages(SESSION_SIZE, start=i))

    def operations(self) -> list[Operation]:
        calls, slow_calls = self.plan.calls, self.plan.slow_calls
        # Every message in the file when get_stats runs: before the deletes.
        messages = (
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
                lambda i: (_session(NEW % i),),
                check=lambda result, args: _equal(_field(result, "id"), args[0]["id"], "session id"),
            ),
            # The same ids again: the sessions the inserts made.
            Operation(
                "save_session (upsert)",
                "save_session",
                calls,
                lambda i: (_session(NEW % i),),
                check=lambda result, args: _equal(_field(result, "id"), args[0]["id"], "session id"),
            ),
            Operation(
                "save_message",
                "save_message",
                calls,
                lambda i: (WRITE_ONE, _message(i % 1_000)),
                verify=lambda store, n: _equal(store.count_messages(WRITE_ONE), n, "messages saved"),
            ),
            Operation(
                "save_messages",
                "save_messages",
                slow_calls,
                lambda i: (WRITE_BATCH, _messages(BATCH, i)),
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
                check=lambda result, _: _equal(_field(result, "message_count"), messages, "message_count"),
            ),
            # Named with the file's message count: the full-text index has a row for each.
            Operation(
                "delete_session (%d of %s messages)" % (SESSION_SIZE, f"{messages:,}"),
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
        self.rows = _request_rows(plan, now, self.deadlines)  # made once: every store gets the same rows
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
                lambda i: (_pending_id(pending - 1 - i), "approved", "Go ahead", "alice"),
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
                lambda i: (_request(i),),
                check=lambda result, _: _equal(_field(result, "status"), "pending", "status"),
            ),
        ]

    def _sweep_time(self, i: int) -> datetime.datetime:
        """The moment at which pending requests 0 .. (i + 1) * due_per_sweep - 1 are overdue."""
        last_due = (i + 1) * self.plan.due_per_sweep - 1
        return EPOCH + datetime.timedelta(milliseconds=self.deadlines + last_due * 1000)


def _pending_id(j: int) -> str:
    return "req_pending_%06d" % j


def _request_rows(plan: Plan, now: int, deadlines: int) -> list[dict]:
    """Rows as the store writes them: pending ones, and decided ones from two days ago and before."""
    rows = []
    for j in range(plan.pending):
        created = now - (plan.pending - j) * 1000
        rows.append(_request_row(_pending_id(j), j, created, deadlines + j * 1000, "pending"))
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


class ReferencesWorkload:
    """Distinct payloads of one size: store each, store it again, resolve, retain and release it."""

    domain = "references"

    def __init__(self, size: int, calls: int):
        self.size, self.calls = size, calls

    def prepare(self, store) -> None:
        pass  # the first store of each payload is the first operation

    def operations(self) -> list[Operation]:
        label = "%d KB" % (self.size // KB) if self.size < MB else "%d MB" % (self.size // MB)
        payload = functools.partial(_payload, self.size)

        def reference_id(i):
            return (hashlib.sha256(payload(i)).hexdigest(),)

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
                lambda i: (payload(i),),
                check=counts(1),
            ),
            Operation(
                "references store %s (again)" % label,
                "store_reference",
                self.calls,
                lambda i: (payload(i),),
                check=counts(2),
            ),
            Operation("references resolve %s" % label, "resolve", self.calls, reference_id, check=hashes_to_id),
            Operation("references retain %s" % label, "retain", self.calls, reference_id, check=returns(3)),
            Operation("references release %s" % label, "release", self.calls, reference_id, check=returns(2)),
        ]


def _workloads(plan: Plan) -> list:
    return [
        SessionsWorkload(plan),
        HitlWorkload(plan),
        ReferencesWorkload(KB, plan.calls),
        ReferencesWorkload(MB, plan.large_calls),
    ]


# Timing.


@dataclasses.dataclass(frozen=True)
class Figure:
    operation: str
    store: str
    p50_ms: float
    p99_ms: float
    ops_per_s: float  # calls (or rows) per second of time spent in the calls
    ratio_to_raw: float | None  # P50 over raw's P50 in the same run
    calls: int

    @classmethod
    def of(cls, operation: str, store: str, samples: list, baseline_p50: float | None) -> Figure:
        ordered = sorted(samples)
        p50 = _percentile(ordered, 0.50)
        ratio = None if baseline_p50 is None else p50 / baseline_p50
        return cls(
            operation,
            store,
            p50 / 1e6,
            _percentile(ordered, 0.99) / 1e6,
            len(ordered) * 1e9 / sum(ordered),
            ratio,
            len(ordered),
        )


def _percentile(ordered: list, q: float) -> float:
    """Nearest rank: a value that was measured, never an interpolation."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def measure(operation: Operation, stores: list) -> dict[str, list[int]]:
    """Nanoseconds of each measured call, per store; every iteration calls every store once."""
    samples = {store.name: [] for store in stores}
    for i in range(operation.iterations):
        arguments = operation.arguments(i)
        # The first store rotates: none always runs right after another's write or read.
        for store in stores[i % len(stores) :] + stores[: i % len(stores)]:
            elapsed = _timed_call(operation, store, arguments)
            if i >= operation.discarded:
                samples[store.name].append(elapsed)
    if operation.verify is not None:
        for store in stores:
            with _blamed(operation, store):
                operation.verify(store, operation.iterations)
    return samples


def _timed_call(operation: Operation, store, arguments: tuple) -> int:
    method = getattr(store, operation.method)
    with _blamed(operation, store):
        started = time.perf_counter_ns()
        result = method(*arguments)
        elapsed = time.perf_counter_ns() - started
        if operation.check is not None:
            operation.check(result, arguments)
    return elapsed


@contextlib.contextmanager
def _blamed(operation: Operation, store):
    try:
        yield
    except Exception as error:
        failure = "%s on %s: %s: %s" % (operation.name, store.name, type(error).__name__, error)
        raise BenchmarkFailure(failure) from error


def figures_of(operation: Operation, samples: dict[str, list[int]]) -> list[Figure]:
    figures = _figures(operation.name, samples)
    if operation.rows > 1:
        per_row = {store: [t / operation.rows for t in ns] for store, ns in samples.items()}
        figures += _figures("%s (per row)" % operation.name, per_row)
    return figures


def _figures(name: str, samples: dict[str, list]) -> list[Figure]:
    baseline = _percentile(sorted(samples["raw"]), 0.50) if "raw" in samples else None
    return [Figure.of(name, store, ns, baseline) for store, ns in samples.items()]


def run_once(plan: Plan, peers: list, database_url: str | None) -> list[Figure]:
    """Every workload on fresh stores in a new temporary directory; the figures of each operation."""
    with tempfile.TemporaryDirectory(prefix="loom-bench-") as directory, contextlib.ExitStack() as stack:
        stores = _open_stores(directory, peers, database_url, stack)
        figures = []
        for workload in _workloads(plan):
            taking_part = [store for store in stores if workload.domain in store.domains]
            for store in taking_part:
                workload.prepare(store)
            for operation in workload.operations():
                able = [store for store in taking_part if hasattr(store, operation.method)]
                figures += figures_of(operation, measure(operation, able))
        return figures


def _open_stores(directory: str, peers: list, database_url: str | None, stack: contextlib.ExitStack) -> list:
    """raw first (the baseline), then loom, loom-pg and the peers; each closed when `stack` ends."""
    makers = [lambda: _raw.RawStore(os.path.join(directory, "raw")), lambda: LoomStore(os.path.join(directory, "loom"))]
    if database_url:
        makers.append(lambda: LoomStore(database_url=stack.enter_context(_throwaway_schema(database_url))))
    makers += [functools.partial(peer, directory) for peer in peers]
    stores = []
    for make in makers:
        stores.append(make())
        stack.callback(stores[-1].close)  # before the schema is dropped: contexts end last in, first out
    return stores


@contextlib.contextmanager
def _throwaway_schema(database_url: str):
    """A URL whose connections use a new schema of the PostgreSQL database; the schema is dropped after."""
    schema = "loom_bench_%d_%s" % (os.getpid(), secrets.token_hex(4))
    admin = open_database(database_url)
    admin.execute_sql("CREATE SCHEMA %s" % schema)
    try:
        separator = "&" if "?" in database_url else "?"
        yield "%s%soptions=%s" % (database_url, separator, quote("-csearch_path=%s" % schema))
    finally:
        admin.execute_sql("DROP SCHEMA %s CASCADE" % schema)
        admin.close()


def across_runs(runs: list[list[Figure]]) -> list[dict]:
    """Per operation and store: the median over runs of each figure, and every run's P50."""
    grouped: dict = {}
    for figures in runs:
        for figure in figures:
            grouped.setdefault((figure.operation, figure.store), []).append(figure)
    summary = []
    for (operation, store), figures in grouped.items():
        ratios = [f.ratio_to_raw for f in figures if f.ratio_to_raw is not None]
        summary.append(
            {
                "operation": operation,
                "store": store,
                "p50_ms": statistics.median(f.p50_ms for f in figures),
                "p99_ms": statistics.median(f.p99_ms for f in figures),
                "ops_per_s": statistics.median(f.ops_per_s for f in figures),
                "ratio_to_raw": statistics.median(ratios) if ratios else None,
                "p50_ms_per_run": [f.p50_ms for f in figures],
            }
        )
    return summary


# The 50 MB reference: each operation in a process of its own, so each peak is that operation's.

_MEMORY_CHILD = "import sys; sys.path.insert(0, sys.argv[1]); import bench; bench.memory_child(*sys.argv[2:])"


def memory_figures() -> list[dict]:
    figures = []
    for store in SQLITE_STORES:
        for operation in ("store", "resolve", "retain"):
            with tempfile.TemporaryDirectory(prefix="loom-bench-memory-") as directory:
                reference_id = _child(store, directory, "setup")["id"] if operation != "store" else ""
                measured = _child(store, directory, operation, reference_id)
                figures.append({"store": store, "operation": operation, **measured})
    return figures


def _child(store: str, directory: str, operation: str, reference_id: str = "") -> dict:
    command = [sys.executable, "-c", _MEMORY_CHILD, HERE, store, directory, operation, reference_id]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode:
        raise BenchmarkFailure("50 MB %s on %s failed:\n%s" % (operation, store, finished.stderr))
    return json.loads(finished.stdout)


def memory_child(store_name: str, directory: str, operation: str, reference_id: str = "") -> None:
    """In a child process: one operation on the 50 MB reference; print its peak memory and time as JSON.

    Only `setup` and `store` make the payload, so the peak before a resolve or a
    retain (a high-water mark) holds no copy of it.
    """
    store = SQLITE_STORES[store_name](directory)
    if operation == "setup":
        print(json.dumps({"id": _field(store.store_reference(_payload(LARGE, 0)), "id")}))
        store.close()
        return
    if operation == "store":
        call = functools.partial(store.store_reference, _payload(LARGE, 0))  # a caller holds its payload already
    else:
        call = functools.partial(getattr(store, operation), reference_id)
    before = _peak_rss()
    started = time.perf_counter_ns()
    result = call()
    elapsed = time.perf_counter_ns() - started
    peak = _peak_rss() - before
    if operation == "store":
        _equal(_field(result, "size_bytes"), LARGE, "size_bytes")
    elif operation == "resolve":
        _equal(len(result), LARGE, "bytes resolved")
    else:
        _equal(result, 2, "count")
    store.close()
    print(json.dumps({"peak_bytes": peak, "ms": elapsed / 1e6}))


def _peak_rss() -> int:
    """This process's peak resident set, in bytes.

    Not ru_maxrss: Linux carries it across exec, so a child of a big parent
    starts at the parent's peak. VmHWM belongs to the process image alone.
    """
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024  # kB


# --scale: a million messages.


def run_scale(plan: Plan) -> list[dict]:
    """Per SQLite store: write the sessions through its API, then load random ones, count, measure the file."""
    with tempfile.TemporaryDirectory(prefix="loom-bench-scale-") as directory, contextlib.ExitStack() as stack:
        stores = []
        for name, store_class in SQLITE_STORES.items():
            stores.append(store_class(os.path.join(directory, name)))
            stack.callback(stores[-1].close)
        written = {store.name: _write_scale(store, plan.scale_sessions) for store in stores}
        sample = random.Random(0).sample(range(plan.scale_sessions), plan.scale_loads)
        messages = plan.scale_sessions * BATCH
        loads = Operation(
            "load_session",
            "load_session",
            len(sample),
            lambda i: (SCALE % sample[i % len(sample)],),
            warmup=len(sample),  # a first pass over the same sessions: warm
            check=lambda result, _: _equal(len(_loaded_messages(result)), BATCH, "messages"),
        )
        stats = Operation(
            "get_stats",
            "get_stats",
            5,
            lambda i: (),
            warmup=1,
            check=lambda result, _: _equal(_field(result, "message_count"), messages, "message_count"),
        )
        load_figures = {f.store: f for f in _figures(loads.name, measure(loads, stores))}
        stats_figures = {f.store: f for f in _figures(stats.name, measure(stats, stores))}
        return [
            _scale_figures(store, written[store.name], messages, load_figures[store.name], stats_figures[store.name])
            for store in stores
        ]


def _write_scale(store, sessions: int) -> float:
    """Seconds spent in save_session and save_messages for `sessions` sessions of BATCH messages."""
    spent = 0
    for s in range(sessions):
        session, batch = _session(SCALE % s), _messages(BATCH, s)
        started = time.perf_counter_ns()
        store.save_session(session)
        store.save_messages(session["id"], batch)
        spent += time.perf_counter_ns() - started
    return spent / 1e9


def _scale_figures(store, write_s: float, messages: int, load: Figure, stats: Figure) -> dict:
    path = store.path("sessions")
    _raw.checkpoint(path)
    size = os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0)
    return {
        "store": store.name,
        "messages": messages,
        "write_s": write_s,
        "load_session_p50_ms": load.p50_ms,
        "load_session_p99_ms": load.p99_ms,
        "get_stats_ms": stats.p50_ms,
        "bytes_per_message": size / messages,
    }


# Output.


def environment(peers: list) -> dict:
    versions = {name: importlib.metadata.version(name) for name in ("loom-models", "peewee", "marshmallow")}
    return {
        "date": datetime.datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        **versions,
        **{peer.name: _peers.version(peer) for peer in peers},
        "cpus": os.cpu_count(),
    }


def print_header(env: dict, mode: str, runs: int, notes: list[str]) -> None:
    print("loom_models benchmark, %s (%s mode, %d run%s)" % (env["date"], mode, runs, "" if runs == 1 else "s"))
    print(", ".join("%s %s" % (name, value) for name, value in env.items() if name != "date"))
    for note in notes:
        print("note: %s" % note)
    print()


def print_table(summary: list[dict], runs: int) -> None:
    width = max(len(row["operation"]) for row in summary)
    header = "%-*s %-20s %9s %9s %11s %8s" % (width, "operation", "store", "P50 ms", "P99 ms", "ops/s", "P50/raw")
    print(header + ("  P50 ms per run" if runs > 1 else ""))
    previous = None
    for row in summary:
        name = row["operation"] if row["operation"] != previous else ""
        previous = row["operation"]
        ratio = "%8.2f" % row["ratio_to_raw"] if row["ratio_to_raw"] is not None else "%8s" % "-"
        line = "%-*s %-20s %9.3f %9.3f %11s %s" % (
            width,
            name,
            row["store"],
            row["p50_ms"],
            row["p99_ms"],
            f"{row['ops_per_s']:,.0f}",
            ratio,
        )
        if runs > 1:
            line += "  " + " ".join("%.3f" % p50 for p50 in row["p50_ms_per_run"])
        print(line)
    print(
        "P50/raw: the P50 over raw sqlite3's P50 in the same run%s."
        % ("; each figure is the median over the runs" if runs > 1 else "")
    )
    print('ops/s: calls per second of time spent in the calls (rows per second on "per row" lines).')
    print()


def print_memory(figures: list[dict]) -> None:
    print("references, one %d MB payload: peak resident memory above the process before the call" % (LARGE // MB))
    print("(it includes SQLite's page cache and mapped pages), in MB and in copies of the payload; and time")
    for figure in figures:
        peak = figure["peak_bytes"]
        print(
            "  %-8s %-6s peak +%5.0f MB (%.1f copies) %9.1f ms"
            % (figure["operation"], figure["store"], peak / MB, peak / LARGE, figure["ms"])
        )
    print()


def print_scale(figures: list[dict], plan: Plan) -> None:
    print(
        "scale: %s sessions x %d messages = %s messages per store, written with save_session + save_messages"
        % (f"{plan.scale_sessions:,}", BATCH, f"{plan.scale_sessions * BATCH:,}")
    )
    print(
        "  %-6s %9s %11s %16s %16s %13s %14s"
        % ("store", "write s", "messages/s", "load_session P50", "load_session P99", "get_stats ms", "bytes/message")
    )
    for f in figures:
        print(
            "  %-6s %9.1f %11s %13.3f ms %13.3f ms %13.3f %14.0f"
            % (
                f["store"],
                f["write_s"],
                f"{f['messages'] / f['write_s']:,.0f}",
                f["load_session_p50_ms"],
                f["load_session_p99_ms"],
                f["get_stats_ms"],
                f["bytes_per_message"],
            )
        )
    print("  (load_session: %s random sessions, after a warm pass over them)" % f"{plan.scale_loads:,}")
    print()


def _progress(message: str) -> None:
    sys.stdout.flush()  # the report so far first, when both go to one terminal or file
    print(message, file=sys.stderr, flush=True)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of 1 or more: %r" % text)
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts and data, one run: checks that it works")
    parser.add_argument("--scale", action="store_true", help="also write 1,000,000 messages and time reads over them")
    parser.add_argument("--runs", type=_positive, help="repeat the whole measurement N times (3; 1 with --quick)")
    parser.add_argument("--database-url", help="also run loom's sessions operations on this PostgreSQL database")
    parser.add_argument("--json", metavar="PATH", help="write every run's figures to PATH")
    return parser


def main(argv=None) -> None:
    args = _parser().parse_args(argv)
    plan, mode = (QUICK, "quick") if args.quick else (FULL, "full")
    runs = args.runs or (1 if args.quick else 3)
    peers, notes = _peers.available()
    env = environment(peers)
    print_header(env, mode, runs, notes)
    started = time.monotonic()
    every_run = []
    for run in range(runs):
        every_run.append(run_once(plan, peers, args.database_url))
        _progress("run %d of %d done after %.0f s" % (run + 1, runs, time.monotonic() - started))
    summary = across_runs(every_run)
    print_table(summary, runs)
    memory = memory_figures() if plan.memory else []
    if memory:
        print_memory(memory)
    scale = run_scale(plan) if args.scale else []
    if scale:
        print_scale(scale, plan)
    print("wall time %.0f s" % (time.monotonic() - started))
    if args.json:
        document = {
            "environment": env,
            "mode": mode,
            "plan": dataclasses.asdict(plan),
            "runs": [[dataclasses.asdict(f) for f in figures] for figures in every_run],
            "summary": summary,
            "references_50mb": memory,
            "scale": scale,
        }
        with open(args.json, "w") as out:
            json.dump(document, out, indent=1)


if __name__ == "__main__":
    main()

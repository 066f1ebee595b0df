"""Load: 4 processes x 4 threads mixing every write and read of all three domains on one store.

Each thread writes only its own sessions, requests and references (and holds on
a pool of contents shared by all), keeps what it expects them to be, checks its
reads against that while the others write, and reports it all at the end; the
parent then checks the store against the reports through raw SQL. `pytest -s`
shows the throughput and the slowest call.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import multiprocessing
import pathlib
import queue
import random
import sqlite3
import threading
import time
import traceback
from datetime import timedelta

import pytest

from loom_models import open_storage
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session, ToolExecution

DURATION = 30  # seconds of load
PROCESSES = 4
THREADS = 4
SEED = 1618
SHARED_CONTENTS = [b"shared content %d " % i * 50 for i in range(8)]  # every thread stores these too


class _Worker:
    """One thread's writes and reads, and what it expects the store to hold of its own."""

    def __init__(self, storage, name: str, rng: random.Random):
        self.storage, self.name, self.rng = storage, name, rng
        self.sessions: dict = {}  # id -> {"messages": {id: tokens}, "cost": eighths, "executions": n}
        self.deleted: list = []
        self.requests: dict = {}  # id -> (status, request_type)
        self.holds: collections.Counter = collections.Counter()  # reference id -> references this thread holds
        self.contents: dict = {}
        self.writes = self.reads = 0
        self.errors: list = []
        self._serial = 0
        self.slowest = [0.0, ""]  # seconds, operation
        self.writers = [
            (self.save_session, 3), (self.save_message, 10), (self.save_messages, 4), (self.save_tool_execution, 3),
            (self.import_session, 1), (self.delete_session, 1), (self.delete_sessions_older_than, 1),
            (self.store_request, 6), (self.respond_to_request, 4), (self.expire_overdue, 1), (self.delete_requests, 1),
            (self.store_reference, 6), (self.retain, 3), (self.release, 3), (self.collect_garbage, 1),
        ]  # fmt: skip
        self.readers = [
            self.load_session, self.list_sessions, self.load_messages, self.iter_messages, self.load_tool_executions,
            self.session_stats, self.export_session, self.get_request, self.list_pending,
            self.list_by_session, self.wait_for_response, self.request_stats, self.resolve, self.get_reference,
            self.list_references, self.reference_stats,
        ]  # fmt: skip

    def run(self, deadline: float) -> None:
        operations, weights = zip(*self.writers, strict=True)
        for _ in range(3):  # sessions of its own to work on from the start
            self.save_session()
            self.writes += 1
        while time.monotonic() < deadline:
            if self.rng.random() < 0.5:
                operation, counter = self.rng.choices(operations, weights)[0], "writes"
            else:
                operation, counter = self.rng.choice(self.readers), "reads"
            try:
                began = time.monotonic()
                operation()
                setattr(self, counter, getattr(self, counter) + 1)
                self.slowest = max(self.slowest, [time.monotonic() - began, operation.__name__])
            except Exception:
                self.errors.append("%s: %s" % (operation.__name__, traceback.format_exc()))
                if len(self.errors) > 20:
                    return

    def report(self) -> dict:
        return {
            "sessions": self.sessions,
            "deleted": self.deleted,
            "requests": {i: status for i, (status, _) in self.requests.items()},
            "holds": {i: n for i, n in self.holds.items() if n},
            "writes": self.writes,
            "reads": self.reads,
            "errors": self.errors,
            "slowest": self.slowest,
        }

    def _next(self, kind: str) -> str:
        self._serial += 1
        return "%s-%s%d" % (self.name, kind, self._serial)

    def _own_session(self) -> str:
        return self.rng.choice(sorted(self.sessions))

    def _message(self) -> Message:
        # Costs in eighths add up exactly in binary floating point, in any order.
        return Message(role=self.rng.choice(["user", "assistant"]), content="hello " * self.rng.randint(1, 80),
                       token_count=self.rng.randint(0, 500), cost_usd=self.rng.randint(0, 16) / 8)  # fmt: skip

    def _saved(self, session_id: str, messages) -> None:
        expected = self.sessions[session_id]
        for message in messages:
            expected["messages"][message.id] = message.token_count
            expected["cost"] += round(message.cost_usd * 8)

    # -- sessions: writes

    def save_session(self) -> None:
        if len(self.sessions) < 3 or self.rng.random() < 0.3:
            session_id = self._next("s")
            self.storage.sessions.save_session(Session(id=session_id, agent_id=self.name, context={"n": 1}))
            self.sessions[session_id] = {"messages": {}, "cost": 0, "executions": 0}
        else:  # an update: the totals stay the store's
            self.storage.sessions.save_session(Session(id=self._own_session(), agent_id=self.name, name="renamed"))

    def save_message(self) -> None:
        session_id = self._own_session()
        self._saved(session_id, [self.storage.sessions.save_message(session_id, self._message())])

    def save_messages(self) -> None:
        session_id = self._own_session()
        batch = [self._message() for _ in range(self.rng.randint(2, 6))]
        self._saved(session_id, self.storage.sessions.save_messages(session_id, batch))

    def save_tool_execution(self) -> None:
        session_id = self._own_session()
        run = ToolExecution(tool_name="lookup", input={"q": session_id}, result={"ok": True}, execution_time_ms=3)
        self.storage.sessions.save_tool_execution(session_id, run)
        self.sessions[session_id]["executions"] += 1

    def import_session(self) -> None:
        document = self.storage.sessions.export_session(self._own_session())
        session_id = self._next("imported")
        self.storage.sessions.import_session({**document, "id": session_id})
        imported = self.storage.sessions.load_messages(session_id)
        self.sessions[session_id] = {"messages": {}, "cost": 0, "executions": len(document["tool_executions"])}
        self._saved(session_id, imported)

    def delete_session(self) -> None:
        if len(self.sessions) <= 3:
            return
        session_id = self._own_session()
        assert self.storage.sessions.delete_session(session_id) is True
        del self.sessions[session_id]
        self.deleted.append(session_id)

    def delete_sessions_older_than(self) -> None:
        assert self.storage.sessions.delete_sessions_older_than(timedelta(days=3650)) == 0

    # -- sessions: reads

    def load_session(self) -> None:
        session_id = self._own_session()
        session = self.storage.sessions.load_session(session_id)
        expected = self.sessions[session_id]
        assert {m.id: m.token_count for m in session.messages} == expected["messages"], session_id
        assert session.total_tokens == sum(expected["messages"].values()), session_id
        assert round(session.total_cost_usd * 8) == expected["cost"], session_id

    def list_sessions(self) -> None:
        listed = self.storage.sessions.list_sessions(agent_id=self.name, limit=None)
        assert {s.id for s in listed} == set(self.sessions)

    def load_messages(self) -> None:
        session_id = self._own_session()
        latest = self.storage.sessions.load_messages(session_id, limit=5)
        assert {m.id for m in latest} <= set(self.sessions[session_id]["messages"])
        assert len(latest) == min(5, len(self.sessions[session_id]["messages"]))

    def iter_messages(self) -> None:
        session_id = self._own_session()
        ids = [m.id for m in self.storage.sessions.iter_messages(session_id, batch_size=7)]
        assert sorted(ids) == sorted(self.sessions[session_id]["messages"]) and len(set(ids)) == len(ids)

    def load_tool_executions(self) -> None:
        session_id = self._own_session()
        assert len(self.storage.sessions.load_tool_executions(session_id)) == self.sessions[session_id]["executions"]

    def session_stats(self) -> None:
        stats = self.storage.sessions.get_stats()
        assert stats.session_count >= len(self.sessions)

    def export_session(self) -> None:
        session_id = self._own_session()
        document = self.storage.sessions.export_session(session_id)
        assert len(document["messages"]) == len(self.sessions[session_id]["messages"])

    # -- hitl

    def store_request(self) -> None:
        request_type = self.rng.choice(["approval", "input", "selection"])
        request = self.storage.hitl.store(
            HumanRequest(id=self._next("r"), agent_id=self.name, session_id=self._own_session(), question="Go on?",
                         request_type=request_type, priority=self.rng.choice(["low", "medium", "high", "critical"]),
                         timeout_ms=3_600_000)
        )  # fmt: skip
        self.requests[request.id] = ("pending", request_type)

    def respond_to_request(self) -> None:
        pending = sorted(i for i, (status, _) in self.requests.items() if status == "pending")
        if not pending:
            return
        request_id = self.rng.choice(pending)
        answers = ["approved", "rejected"] if self.requests[request_id][1] == "approval" else ["responded"]
        status = self.rng.choice(answers)
        decided = self.storage.hitl.respond_to_request(request_id, status, "ok", responded_by="load", response_data=[1])
        assert decided.status == status
        self.requests[request_id] = (status, self.requests[request_id][1])

    def expire_overdue(self) -> None:
        assert self.storage.hitl.expire_overdue() == 0  # nothing is due within the hour

    def delete_requests(self) -> None:
        assert self.storage.hitl.delete_older_than(timedelta(days=3650)) == 0

    def get_request(self) -> None:
        if self.requests:
            request_id = self.rng.choice(sorted(self.requests))
            assert self.storage.hitl.get(request_id).status == self.requests[request_id][0]

    def list_pending(self) -> None:
        pending = self.storage.hitl.list_pending(agent_id=self.name, limit=None)
        assert {r.id for r in pending} == {i for i, (status, _) in self.requests.items() if status == "pending"}

    def list_by_session(self) -> None:
        self.storage.hitl.list_by_session(self._own_session())

    def wait_for_response(self) -> None:
        if self.requests:
            request_id = self.rng.choice(sorted(self.requests))
            assert self.storage.hitl.wait_for_response(request_id, timeout=0).status == self.requests[request_id][0]

    def request_stats(self) -> None:
        assert sum(self.storage.hitl.get_stats().values()) >= len(self.requests)

    # -- references

    def store_reference(self) -> None:
        if self.rng.random() < 0.3:
            content = self.rng.choice(SHARED_CONTENTS)
        else:
            content = self._next("c").encode() * self.rng.randint(1, 2000)  # up to a few pages
        reference = self.storage.references.store(content)
        self.contents[reference.id] = content
        self.holds[reference.id] += 1

    def retain(self) -> None:
        held = sorted(i for i, n in self.holds.items() if n)
        if held:
            reference_id = self.rng.choice(held)
            assert self.storage.references.retain(reference_id) >= self.holds[reference_id] + 1
            self.holds[reference_id] += 1

    def release(self) -> None:
        held = sorted(i for i, n in self.holds.items() if n)
        if held:
            reference_id = self.rng.choice(held)
            assert self.storage.references.release(reference_id) >= self.holds[reference_id] - 1
            self.holds[reference_id] -= 1

    def collect_garbage(self) -> None:
        self.storage.references.collect_garbage()  # nothing expires, and a last release deletes: nothing to take

    def resolve(self) -> None:
        held = sorted(i for i, n in self.holds.items() if n)
        if held:
            reference_id = self.rng.choice(held)
            assert self.storage.references.resolve(reference_id, verify=True) == self.contents[reference_id]

    def get_reference(self) -> None:
        held = sorted(i for i, n in self.holds.items() if n)
        if held:
            reference_id = self.rng.choice(held)
            assert self.storage.references.get(reference_id).ref_count >= self.holds[reference_id]

    def list_references(self) -> None:
        self.storage.references.list(limit=10)

    def reference_stats(self) -> None:
        assert self.storage.references.stats().active_refs >= sum(1 for n in self.holds.values() if n)


class _CollectorFailures(logging.Handler):
    """What the background collector of references logs when a run of it fails."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.failures: list = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.failures.append((type(error).__name__, getattr(error, "retryable", False), record.getMessage()))


def _load_process(location: dict, number: int, start: threading.Barrier, result_path: str) -> None:
    """THREADS workers on one storage for DURATION seconds once every process is ready."""
    report = {"errors": [], "threads": []}
    collector = _CollectorFailures()
    logging.getLogger("loom_models").addHandler(collector)
    try:
        with open_storage(**location, gc_interval=1) as storage:  # the collector runs among the writers
            workers = [_Worker(storage, "p%d-t%d" % (number, i), random.Random("%d-%d-%d" % (SEED, number, i)))
                       for i in range(THREADS)]  # fmt: skip
            start.wait(120)  # every process has its storage open: the load starts at once
            began = time.time()
            deadline = time.monotonic() + DURATION
            threads = [threading.Thread(target=worker.run, args=(deadline,)) for worker in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            report["threads"] = [worker.report() for worker in workers]
            report["began"], report["ended"] = began, time.time()
    except Exception:
        start.abort()  # the others, and the parent, need not wait for this one
        report["errors"].append(traceback.format_exc())
    report["collector_failures"] = collector.failures
    with open(result_path, "w") as file:
        json.dump(report, file)


def _check_store(store, threads: list[dict]) -> None:
    sessions = {k: v for t in threads for k, v in t["sessions"].items()}
    messages = collections.defaultdict(dict)
    for session_id, message_id, tokens in store.sql("sessions", "SELECT session_id, id, token_count FROM messages"):
        messages[session_id][message_id] = tokens
    reported = {k: {int(i): n for i, n in v["messages"].items()} for k, v in sessions.items() if v["messages"]}
    assert dict(messages) == reported, "messages lost, or found where none was written"
    deleted = [k for t in threads for k in t["deleted"]]
    rows = store.sql("sessions", "SELECT id, total_tokens, total_cost_usd FROM sessions")
    assert deleted and not {r[0] for r in rows} & set(deleted), "deleted sessions are back"
    assert {r[0]: (r[1], r[2] * 8) for r in rows} == {
        k: (sum(v["messages"].values()), v["cost"]) for k, v in sessions.items()
    }, "sessions lost, or totals wrong"
    totals = store.sql(
        "sessions",
        "SELECT s.id FROM sessions s LEFT JOIN messages m ON m.session_id = s.id GROUP BY s.id, s.total_tokens"
        " HAVING s.total_tokens != COALESCE(SUM(m.token_count), 0)",
    )
    assert totals == []
    executions = dict(store.sql("sessions", "SELECT session_id, COUNT(*) FROM tool_executions GROUP BY session_id"))
    assert executions == {k: v["executions"] for k, v in sessions.items() if v["executions"]}

    requests = {k: v for t in threads for k, v in t["requests"].items()}
    assert dict(store.sql("hitl", "SELECT id, status FROM human_requests")) == requests, "requests lost or wrong"

    holds: collections.Counter = collections.Counter()
    for thread in threads:
        holds.update(thread["holds"])
    references = store.sql("references", "SELECT id, ref_count, data, size_bytes FROM reference_store")
    assert {r[0]: r[1] for r in references} == {k: n for k, n in holds.items() if n}, "reference counts wrong"
    assert all(hashlib.sha256(bytes(data)).hexdigest() == i and len(data) == size for i, _, data, size in references)


@pytest.mark.slow
def test_four_processes_of_four_threads_lose_nothing_under_load(data_store, tmp_path):
    store = data_store
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES + 1)
    paths = [str(tmp_path / ("process-%d.json" % i)) for i in range(PROCESSES)]
    processes = [
        context.Process(target=_load_process, args=(store.location, i, start, path)) for i, path in enumerate(paths)
    ]
    for process in processes:
        process.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a process that failed to open reports why below
        start.wait(120)
    for process in processes:
        process.join(DURATION + 120)
    assert [p.exitcode for p in processes] == [0] * PROCESSES

    reports = [json.loads(pathlib.Path(path).read_text()) for path in paths]
    errors = [e for r in reports for e in r["errors"]] + [e for r in reports for t in r["threads"] for e in t["errors"]]
    assert errors == [], "%d errors; the first:\n%s" % (len(errors), errors[0])
    # The collector gives way to writers (a short lock wait): a run of it may
    # meet a lock and leave its work to the next run, but fail for nothing else.
    collector_failures = [f for r in reports for f in r["collector_failures"]]
    assert [f for f in collector_failures if f[0] != "DatabaseLockedError"] == []
    threads = [t for r in reports for t in r["threads"]]
    assert len(threads) == PROCESSES * THREADS
    _check_store(store, threads)

    writes, reads = sum(t["writes"] for t in threads), sum(t["reads"] for t in threads)
    elapsed = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    slowest = max(t["slowest"] for t in threads)
    print(
        "\nload (%s, %d processes x %d threads, %.1f s): %d writes, %d reads: %.0f writes/s, %.0f reads/s;"
        " slowest call %.2f s (%s); %d collector runs gave way to writers"
        % (
            store.backend.name,
            PROCESSES,
            THREADS,
            elapsed,
            writes,
            reads,
            writes / elapsed,
            reads / elapsed,
            slowest[0],
            slowest[1],
            len(collector_failures),
        )
    )
    assert writes > 0 and reads > 0


# -- an app server and its workers starting together ------------------------------------------

TRIALS = 100
STARTERS = 4


def _start_together(root: str, index: int, barrier, failures) -> None:
    """Open a fresh data directory with the others at the same instant, trial after trial."""
    for trial in range(TRIALS):
        barrier.wait(60)
        try:
            with open_storage("%s/trial-%03d" % (root, trial), gc_interval=0) as storage:
                storage.sessions.save_session(Session(id="starter-%d" % index))
        except Exception:
            failures.put((trial, index, traceback.format_exc()))


@pytest.mark.slow
def test_four_processes_opening_a_fresh_data_directory_at_once_always_succeed(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier, failures = context.Barrier(STARTERS), context.Queue()
    starters = [
        context.Process(target=_start_together, args=(str(tmp_path), index, barrier, failures))
        for index in range(STARTERS)
    ]
    for starter in starters:
        starter.start()
    failed, deadline = [], time.monotonic() + 600
    # Read failures as they come: a child cannot end while its queue's pipe is full.
    while any(starter.is_alive() for starter in starters) and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            failed.append(failures.get(timeout=0.5))
    for starter in starters:
        starter.join(10)
    while not failures.empty():
        failed.append(failures.get())

    assert [starter.exitcode for starter in starters] == [0] * STARTERS
    assert failed == [], "%d of %d opens failed; the first:\n%s" % (len(failed), TRIALS * STARTERS, failed[0][2])
    for trial in range(TRIALS):
        with contextlib.closing(sqlite3.connect(tmp_path / ("trial-%03d" % trial) / "sessions.db")) as db:
            assert db.execute("SELECT COUNT(*) FROM sessions").fetchone() == (STARTERS,), trial

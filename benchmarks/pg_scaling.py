"""What one PostgreSQL server holds: loom's writes from many processes, and its hot calls as messages grow.

    python benchmarks/pg_scaling.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/pg_scaling.py --database-url ... --stops 1000000,5000000 --processes 8

In a throw-away schema (dropped at the end), PROCESSES processes write sessions of
100 messages through the public API (save_session, then save_messages in batches of
BATCH) until the store holds each stop's count of messages; at each stop it prints
the rows written per second meanwhile, the bytes per message (the messages table
with its indexes and TOAST), and the hot calls' latencies from one process:
save_message, the latest 100 messages, get_stats, load_session (P99 too), and
list_pending among 100,000 requests (written once, 10% pending). Figures go to
docs/scaling.md; nothing is asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import time
import uuid
from urllib.parse import quote

import peewee

from loom_models import open_storage
from loom_models.sessions import Message, Session

MESSAGES_PER_SESSION, BATCH = 100, 50
REQUESTS, PENDING_EVERY = 100_000, 10
SAMPLES = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--stops", default="1000000,5000000", help="message counts to measure at")
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()
    stops = [int(stop) for stop in args.stops.split(",")]
    schema = "loom_scaling_%s" % uuid.uuid4().hex[:8]
    admin = peewee.PostgresqlDatabase(None)
    admin.init(**_connect_params(args.database_url))
    admin.execute_sql("CREATE SCHEMA %s" % schema)
    url = args.database_url + ("&" if "?" in args.database_url else "?") + "options=" + quote("-csearch_path=" + schema)
    try:
        with open_storage(database_url=url, gc_interval=0) as storage:
            _write_requests(storage)
            written = 0
            for stop in stops:
                started = time.perf_counter()
                _write_in_processes(url, written, stop - written, args.processes)
                seconds = time.perf_counter() - started
                rate = (stop - written) / seconds
                print(
                    "%s messages: %d processes wrote %s messages/s (%.0f s)"
                    % (f"{stop:,}", args.processes, f"{rate:,.0f}", seconds)
                )
                written = stop
                admin.execute_sql("VACUUM ANALYZE %s.messages" % schema)
                _report(storage, stop)
    finally:
        admin.execute_sql("DROP SCHEMA %s CASCADE" % schema)
        admin.close()


def _connect_params(url: str) -> dict:
    from playhouse.db_url import parse

    return parse(url.split("?")[0])


def _write_in_processes(url: str, first: int, messages: int, processes: int) -> None:
    sessions = messages // MESSAGES_PER_SESSION
    shares = [(url, first // MESSAGES_PER_SESSION + n, sessions, processes) for n in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.starmap(_write_sessions, shares)


def _write_sessions(url: str, start: int, sessions: int, step: int) -> None:
    """Every `step`th session from `start`: its row, then its messages in batches."""
    with open_storage(database_url=url, gc_interval=0) as storage:
        for number in range(start, start + sessions, step):
            session_id = "sess_%08d" % number
            storage.sessions.save_session(Session(id=session_id, agent_id="agent_%d" % (number % 50)))
            for _ in range(MESSAGES_PER_SESSION // BATCH):
                batch = [Message(role="user", content=_text(), token_count=40, cost_usd=0.0004) for _ in range(BATCH)]
                storage.sessions.save_messages(session_id, batch)


def _text() -> str:
    return " ".join(
        random.choice(("order", "refund", "where", "is", "my", "parcel", "thanks", "kettle")) for _ in range(30)
    )


def _write_requests(storage) -> None:
    """REQUESTS human requests in one statement, one in PENDING_EVERY pending, the others approved."""
    now = int(time.time() * 1000)
    storage.hitl.database.execute_sql(
        "INSERT INTO human_requests (id, agent_id, session_id, question, context_json, request_type, priority,"
        " timeout_ms, created_at, expires_at, status, response, response_data_json, responded_at, responded_by)"
        " SELECT 'req_' || n, 'agent_' || mod(n, 50), 'sess_' || n, 'May I refund it?', 'null', 'approval',"
        " (ARRAY['low', 'medium', 'high', 'critical'])[mod(n, 4) + 1], 86400000, %s - n, %s - n + 86400000,"
        " CASE WHEN mod(n, %s) = 0 THEN 'pending' ELSE 'approved' END, '', '', NULL, ''"
        " FROM generate_series(1, %s) AS n",
        (now, now, PENDING_EVERY, REQUESTS),
    )


def _report(storage, messages: int) -> None:
    sessions = storage.sessions
    some = ["sess_%08d" % random.randrange(messages // MESSAGES_PER_SESSION) for _ in range(SAMPLES)]
    size = storage.sessions.database.execute_sql("SELECT pg_total_relation_size('messages')").fetchone()[0]
    print("  bytes per message (table, indexes, TOAST): %.0f" % (size / messages))
    for name, call in (
        ("save_message", lambda sid: sessions.save_message(sid, Message(role="user", content=_text()))),
        ("latest 100 messages", lambda sid: sessions.load_messages(sid, limit=100)),
        ("get_stats", lambda sid: sessions.get_stats()),
        ("load_session", lambda sid: sessions.load_session(sid)),
        ("list_pending, 50 of 100,000 requests", lambda sid: storage.hitl.list_pending(limit=50)),
    ):
        print("  %-38s P50 %6.2f ms  P99 %6.2f ms" % (name, *_percentiles(call, some)))


def _percentiles(call, session_ids: list[str]) -> tuple[float, float]:
    for session_id in session_ids[:30]:  # warm
        call(session_id)
    times = []
    for session_id in session_ids:
        started = time.perf_counter_ns()
        call(session_id)
        times.append((time.perf_counter_ns() - started) / 1e6)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


if __name__ == "__main__":
    main()

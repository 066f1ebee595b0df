"""loom_models.aio under asyncio: one task after another, and 50 tasks at once, on SQLite and PostgreSQL.

    figures = run_aio(plan, database_url)   # one dict per store and workload

Each workload checks its result (1,000 messages and exact totals for 50 tasks
x 20 saves) and measures how late a 1 ms ticker on the same loop ran: the
event loop must go on while queries run.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time

from _data import LATEST, Plan, message
from _loom import throwaway_schema
from _workloads import _equal

from loom_models import aio
from loom_models.sessions import Message, Session

TASKS, PER_TASK = 50, 20


def run_aio(plan: Plan, database_url: str | None) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="loom-bench-aio-") as directory, contextlib.ExitStack() as stack:
        stores = {"loom": {"data_dir": directory}}
        if database_url:
            stores["loom-pg"] = {"database_url": stack.enter_context(throwaway_schema(database_url))}
        return [figure for name, where in stores.items() for figure in asyncio.run(_measure(name, where, plan))]


async def _measure(store: str, where: dict, plan: Plan) -> list[dict]:
    async with aio.open_storage(**where, gc_interval=0) as storage:
        sessions = storage.sessions
        for session_id in ("one", "many", "read"):
            await sessions.save_session(Session(id=session_id))
        await sessions.save_messages("read", [Message(**message(i)) for i in range(LATEST * 10)])

        def save(session_id: str, i: int):
            return lambda: sessions.save_message(session_id, Message(**message(i)))

        def read():
            return sessions.load_messages("read", limit=LATEST)

        figures = [
            await _one_task(store, "save_message", [save("one", i) for i in range(plan.calls)]),
            await _tasks(
                store, "save_message", [[save("many", t * PER_TASK + i) for i in range(PER_TASK)] for t in range(TASKS)]
            ),
            await _one_task(store, "load_messages (latest %d)" % LATEST, [read] * plan.calls),
            await _tasks(store, "load_messages (latest %d)" % LATEST, [[read] * PER_TASK] * TASKS),
        ]
        many = await sessions.load_session("many")
        _equal(len(many.messages), TASKS * PER_TASK, "messages of %d tasks" % TASKS)
        _equal(many.total_tokens, sum(m.token_count for m in many.messages), "total tokens")
    return figures


async def _one_task(store: str, operation: str, calls: list) -> dict:
    with _ticker() as lag:
        times = []
        for call in calls:
            started = time.perf_counter()
            await call()
            times.append(time.perf_counter() - started)
    return {
        "store": store,
        "operation": operation,
        "tasks": 1,
        "calls": len(calls),
        "p50_ms": statistics.median(times) * 1e3,
        "wall_s": sum(times),
        "max_lag_ms": lag[0] * 1e3,
    }


async def _tasks(store: str, operation: str, per_task: list[list]) -> dict:
    async def task(calls):
        for call in calls:
            await call()

    with _ticker() as lag:
        started = time.perf_counter()
        await asyncio.gather(*(task(calls) for calls in per_task))
        wall = time.perf_counter() - started
    calls = sum(map(len, per_task))
    return {
        "store": store,
        "operation": operation,
        "tasks": len(per_task),
        "calls": calls,
        "p50_ms": None,
        "wall_s": wall,
        "max_lag_ms": lag[0] * 1e3,
    }


@contextlib.contextmanager
def _ticker():
    """The longest a 1 ms sleep on this loop overslept meanwhile, in seconds (a list of one, filled at the end)."""
    worst = [0.0]

    async def tick():
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            worst[0] = max(worst[0], time.perf_counter() - started - 0.001)

    ticking = asyncio.get_running_loop().create_task(tick())
    try:
        yield worst
    finally:
        ticking.cancel()

"""LangGraph checkpointers: LoomSaver beside LangGraph's own SqliteSaver, on one thread of STEPS steps.

    figures = run_langgraph(plan, database_url)   # one dict per saver, or [] without langgraph-checkpoint-sqlite

Each step stores a checkpoint whose message list has grown by one message (of
MESSAGE_CHARS characters), as a chat agent's does, with the channels that
changed named in `new_versions` as LangGraph names them. Then the bytes the
store takes on disk, and get_tuple of the newest checkpoint, GETS times. The
last checkpoint read back is checked against what was put.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sqlite3
import statistics
import tempfile
import time

from _data import Plan
from _loom import throwaway_schema

MESSAGE_CHARS = 200
CONFIG = {"configurable": {"thread_id": "thread-1", "checkpoint_ns": ""}}


def run_langgraph(plan: Plan, database_url: str | None) -> list[dict]:
    if importlib.util.find_spec("langgraph.checkpoint.sqlite") is None:
        return []  # the bench extra brings LangGraph's SQLite saver
    from langgraph.checkpoint.sqlite import SqliteSaver

    from loom_models.integrations.langgraph import LoomSaver

    steps, gets = (200, 200) if plan.memory else (20, 20)  # plan.memory: a full run
    figures = []
    with tempfile.TemporaryDirectory(prefix="loom-bench-langgraph-") as directory, contextlib.ExitStack() as stack:
        path = os.path.join(directory, "sqlite-saver.db")
        with SqliteSaver.from_conn_string(path) as saver:
            figures.append(_measure("SqliteSaver", saver, steps, gets))
        figures[-1]["bytes"] = _sqlite_bytes(path)
        with LoomSaver.open(os.path.join(directory, "loom")) as saver:
            figures.append(_measure("LoomSaver", saver, steps, gets))
        figures[-1]["bytes"] = _sqlite_bytes(os.path.join(directory, "loom", "checkpoints.db"))
        if database_url:
            url = stack.enter_context(throwaway_schema(database_url))
            with LoomSaver.open(database_url=url) as saver:
                figures.append(_measure("LoomSaver-pg", saver, steps, gets))
                figures[-1]["bytes"] = saver.storage.checkpoints.backend.sizes().database_bytes
    return figures


def _measure(name: str, saver, steps: int, gets: int) -> dict:
    from langchain_core.messages import AIMessage
    from langgraph.checkpoint.base import create_checkpoint, empty_checkpoint

    checkpoint, config, messages, puts = empty_checkpoint(), CONFIG, [], []
    for step in range(steps):
        messages = [*messages, AIMessage("message %d " % step + "x" * MESSAGE_CHARS, id="m%d" % step)]
        checkpoint = create_checkpoint(checkpoint, None, step)
        checkpoint["channel_values"] = {"messages": messages, "step": step}
        versions = checkpoint["channel_versions"]
        new_versions = {
            channel: saver.get_next_version(versions.get(channel), None) for channel in ("messages", "step")
        }
        checkpoint["channel_versions"] = {**versions, **new_versions}
        started = time.perf_counter()
        config = saver.put(config, checkpoint, {"source": "loop", "step": step, "parents": {}}, new_versions)
        puts.append(time.perf_counter() - started)
    reads = []
    for _ in range(gets):
        started = time.perf_counter()
        newest = saver.get_tuple(CONFIG)
        reads.append(time.perf_counter() - started)
    if newest.checkpoint["channel_values"]["messages"] != messages:
        raise AssertionError("%s gave back another message list than it was given" % name)
    return {
        "saver": name,
        "steps": steps,
        "put_p50_ms": statistics.median(puts) * 1e3,
        "get_tuple_p50_ms": statistics.median(reads) * 1e3,
    }


def _sqlite_bytes(path: str) -> int:
    """The database file's size, with its write-ahead log folded in."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(path)

"""How fast loom_models is beside stdlib sqlite3 and peer libraries, on the same data.

    pip install -e ".[bench]"       # optional: the peers, and pyinstrument to profile a slow spot
    python benchmarks/bench.py                      # full: 3 runs
    python benchmarks/bench.py --quick              # tiny counts and data: does it work? (CI)
    python benchmarks/bench.py --scale              # and 1,000,000 messages: reads, a write, stats, bytes
    python benchmarks/bench.py --database-url postgresql://postgres@127.0.0.1:5432/test   # loom on PostgreSQL too
    python benchmarks/bench.py --runs 5 --json figures.json

The stores, each on its own files in a temporary directory made for the run:
- raw: stdlib sqlite3 as a careful hand-written store uses it (_raw.py), on files
  made by loom's migrations and with loom's pragmas: the baseline of every ratio;
- loom: loom_models through its public API, model objects in and out (_loom.py);
- loom-pg (with --database-url): loom on PostgreSQL, in a throw-away schema, for
  the sessions operations (and, with --scale, the million messages and list_pending);
- openai-agents and langchain-community chat histories (_peers.py), when they are
  installed, for the operations they have, and loom's LoomSession beside
  openai-agents' SQLiteSession.

Then loom_models.aio (_aio.py): save_message and load_messages from one task,
and from 50 tasks at once, on SQLite (and PostgreSQL), with how late the event
loop ran meanwhile. Then LangGraph's checkpointers (_langgraph.py): LoomSaver
beside SqliteSaver, the bytes a 200-step thread takes and put/get_tuple times.

Every operation runs its iterations interleaved (each iteration calls every store
once, the first store rotating) and discards the first tenth as warm-up. Inputs
are plain values prepared outside the timing; making a store's own objects of
them (a loom Message, a LangChain HumanMessage) is part of the timed call. Results
are checked (counts, ids, hashes), so a broken store cannot look fast: a wrong
result or an error ends the run with a non-zero exit. Speed is only reported,
never asserted.

This file reads the command line and prints the report; _harness.py does the
timing, _workloads.py says what each operation does and checks, and _data.py
holds the plans and the values every store is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import sqlite3
import sys
import time

import _peers
from _aio import run_aio
from _data import BATCH, FULL, LARGE, LATEST, MB, PAGE, QUICK, Plan
from _harness import across_runs, memory_figures, run_once, run_scale
from _langgraph import run_langgraph

# Output.


def environment(peers: list) -> dict:
    versions = {name: importlib.metadata.version(name) for name in ("loom-models", "peewee", "marshmallow")}
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
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


# The scale table's timed columns: heading, and the key of run_scale's figures.
SCALE_TIMES = (
    ("load_session P50", "load_session_p50_ms"),
    ("load_session P99", "load_session_p99_ms"),
    ("latest %d P50" % LATEST, "latest_%d_p50_ms" % LATEST),
    ("get_stats P50", "get_stats_p50_ms"),
    ("save_message P50", "save_message_p50_ms"),
    ("list_pending P50", "list_pending_p50_ms"),
)


def print_scale(figures: list[dict], plan: Plan) -> None:
    print(
        "scale: %s sessions x %d messages = %s messages per store, written with save_session + save_messages"
        % (f"{plan.scale_sessions:,}", BATCH, f"{plan.scale_sessions * BATCH:,}")
    )
    headings = " ".join(heading for heading, _ in SCALE_TIMES)
    print("  %-7s %8s %11s %9s  %s" % ("store", "write s", "messages/s", "bytes/msg", headings))
    for f in figures:
        times = " ".join(_scale_time(f[key], len(heading)) for heading, key in SCALE_TIMES)
        rate = f"{f['messages'] / f['write_s']:,.0f}"
        print("  %-7s %8.1f %11s %9.0f  %s" % (f["store"], f["write_s"], rate, f["bytes_per_message"], times))
    print(
        "  (times in ms; load_session and latest %d: %s random sessions, loaded once before the timing;"
        % (LATEST, f"{plan.scale_loads:,}")
    )
    print("  save_message: a message more into each of them, after the reads; list_pending: limit %d of" % PAGE)
    print(
        "  %s requests, %s pending, loom only; bytes: the sessions file, or PostgreSQL's messages, sessions"
        % (f"{plan.requests:,}", f"{plan.pending:,}")
    )
    print("  and session_counts tables with their indexes; loom-pg's calls are timed apart from the SQLite")
    print("  stores' writes, whose data its commits would flush too: ext4 commits one journal for all files)")
    print()


def _scale_time(ms: float | None, width: int) -> str:
    return "%*s" % (width, "-" if ms is None else "%.3f" % ms)


def print_aio(figures: list[dict]) -> None:
    print("loom_models.aio: one task after another (P50 per call), and 50 tasks at once (wall time for all)")
    print(
        "  %-7s %-28s %5s %6s %9s %9s %11s %12s"
        % ("store", "operation", "tasks", "calls", "P50 ms", "wall s", "calls/s", "max lag ms")
    )
    for f in figures:
        p50 = "%9.3f" % f["p50_ms"] if f["p50_ms"] is not None else "%9s" % "-"
        print(
            "  %-7s %-28s %5d %6d %s %9.2f %11s %12.1f"
            % (
                f["store"],
                f["operation"],
                f["tasks"],
                f["calls"],
                p50,
                f["wall_s"],
                f"{f['calls'] / f['wall_s']:,.0f}",
                f["max_lag_ms"],
            )
        )
    print("  (max lag: the longest a 1 ms timer on the same event loop ran late meanwhile)")
    print()


def print_langgraph(figures: list[dict]) -> None:
    print("LangGraph checkpointers: one thread whose message list grows by a message a step")
    print("  %-13s %6s %12s %11s %17s" % ("saver", "steps", "bytes", "put P50 ms", "get_tuple P50 ms"))
    for f in figures:
        print(
            "  %-13s %6d %12s %11.3f %17.3f"
            % (f["saver"], f["steps"], f"{f['bytes']:,}", f["put_p50_ms"], f["get_tuple_p50_ms"])
        )
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
    parser.add_argument(
        "--scale", action="store_true", help="also write 1,000,000 messages (per store) and time calls over them"
    )
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
    asynchronous = run_aio(plan, args.database_url)
    print_aio(asynchronous)
    graphs = run_langgraph(plan, args.database_url)
    if graphs:
        print_langgraph(graphs)
    memory = memory_figures() if plan.memory else []
    if memory:
        print_memory(memory)
    scale = run_scale(plan, args.database_url) if args.scale else []
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
            "aio": asynchronous,
            "langgraph": graphs,
            "references_50mb": memory,
            "scale": scale,
        }
        with open(args.json, "w") as out:
            json.dump(document, out, indent=1)


if __name__ == "__main__":
    main()

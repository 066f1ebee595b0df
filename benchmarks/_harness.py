"""The timing harness: the workloads' operations, interleaved over the stores, and the figures of their times.

    figures = run_once(QUICK, peers=[], database_url=None)   # one run: fresh stores, every workload
    summary = across_runs([figures, ...])                     # per operation and store: medians over the runs
    memory_figures()                                          # the 50 MB reference, in child processes
    run_scale(FULL, database_url=None)                        # --scale: a million messages

What each operation does is _workloads.py's; here each call is timed, checked,
and blamed on its store if it fails. Speed is only reported, never asserted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import _loom
import _raw
import _workloads
from _data import Plan
from _workloads import Operation

HERE = os.path.dirname(os.path.abspath(__file__))

SQLITE_STORES = {"raw": _raw.RawStore, "loom": _loom.LoomStore}


class BenchmarkFailure(Exception):
    """An operation raised, or returned a wrong result: the figures cannot be trusted."""


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


# Runs.


def run_once(plan: Plan, peers: list, database_url: str | None) -> list[Figure]:
    """Every workload on fresh stores in a new temporary directory; the figures of each operation."""
    with tempfile.TemporaryDirectory(prefix="loom-bench-") as directory, contextlib.ExitStack() as stack:
        stores = _open_stores(directory, peers, database_url, stack)
        figures = []
        for workload in _workloads.workloads(plan):
            taking_part = [store for store in stores if workload.domain in store.domains]
            for store in taking_part:
                workload.prepare(store)
            for operation in workload.operations():
                able = [store for store in taking_part if hasattr(store, operation.method)]
                figures += figures_of(operation, measure(operation, able))
        return figures


def _open_stores(directory: str, peers: list, database_url: str | None, stack: contextlib.ExitStack) -> list:
    """raw first (the baseline), then loom, loom-pg and the peers; each closed when `stack` ends."""
    makers = [
        lambda: _raw.RawStore(os.path.join(directory, "raw")),
        lambda: _loom.LoomStore(os.path.join(directory, "loom")),
    ]
    if database_url:
        makers.append(lambda: _loom.LoomStore(database_url=stack.enter_context(_loom.throwaway_schema(database_url))))
    makers += [functools.partial(peer, directory) for peer in peers]
    stores = []
    for make in makers:
        stores.append(make())
        stack.callback(stores[-1].close)  # before the schema is dropped: contexts end last in, first out
    return stores


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

_MEMORY_CHILD = "import sys; sys.path.insert(0, sys.argv[1]); import _harness; _harness.memory_child(*sys.argv[2:])"


def memory_figures() -> list[dict]:
    figures = []
    for store in SQLITE_STORES:
        for operation in _workloads.LARGE_OPERATIONS:
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
    """In a child process: one operation on the 50 MB reference; print its peak memory and time as JSON."""
    store = SQLITE_STORES[store_name](directory)
    if operation == "setup":
        print(json.dumps({"id": _workloads.large_setup(store)}))
        store.close()
        return
    call = _workloads.large_call(store, operation, reference_id)
    before = _peak_rss()
    started = time.perf_counter_ns()
    result = call()
    elapsed = time.perf_counter_ns() - started
    peak = _peak_rss() - before
    _workloads.check_large(operation, result)
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


def run_scale(plan: Plan, database_url: str | None) -> list[dict]:
    """Per store (raw, loom, and loom-pg given a URL): write the sessions, measure their bytes, time the calls."""
    workload = _workloads.ScaleWorkload(plan)
    with tempfile.TemporaryDirectory(prefix="loom-bench-scale-") as directory, contextlib.ExitStack() as stack:
        stores = _open_stores(directory, [], database_url, stack)
        written = {store.name: _write_scale(store, workload) for store in stores}
        sizes = {store.name: store.sessions_bytes() for store in stores}  # as written: before save_message adds
        # A server's commit waits for its WAL to reach the disk (fdatasync). Timed between
        # the SQLite stores' writes, it would wait for theirs too (ext4 commits its journal
        # for all files at once), as a server on a disk of its own does not: apart.
        on_files = [store for store in stores if store.name != "loom-pg"]
        timed = _timed(workload.operations(), on_files)
        for store in stores[len(on_files) :]:
            for operation, figures in _timed(workload.operations(), [store]).items():
                timed[operation].update(figures)
        # loom's alone: raw beside loom over the same requests is the main run's list_pending.
        asking = [store for store in stores if isinstance(store, _loom.LoomStore)]
        for store in asking:
            workload.fill_requests(store)
        timed.update(_timed(workload.request_operations(), asking))
        return [
            _scale_figures(store.name, written[store.name], sizes[store.name], workload.messages, timed)
            for store in stores
        ]


def _write_scale(store, workload: _workloads.ScaleWorkload) -> float:
    """Seconds spent in save_session and save_messages for the workload's sessions."""
    spent = 0
    for session, batch in workload.writes():
        started = time.perf_counter_ns()
        store.save_session(session)
        store.save_messages(session["id"], batch)
        spent += time.perf_counter_ns() - started
    return spent / 1e9


def _timed(operations: list[Operation], stores: list) -> dict[str, dict[str, Figure]]:
    """Each operation's figures, by store, under the operation's name."""
    return {
        operation.name: {figure.store: figure for figure in _figures(operation.name, measure(operation, stores))}
        for operation in operations
    }


def _scale_figures(store: str, write_s: float, size: int, messages: int, timed: dict) -> dict:
    """A store's line of the scale table: `<operation>_p50_ms` and `_p99_ms`, None for a call it sat out."""
    figures = {"store": store, "messages": messages, "write_s": write_s, "bytes_per_message": size / messages}
    for operation, by_store in timed.items():
        figure = by_store.get(store)
        figures["%s_p50_ms" % operation] = figure.p50_ms if figure else None
        figures["%s_p99_ms" % operation] = figure.p99_ms if figure else None
    return figures

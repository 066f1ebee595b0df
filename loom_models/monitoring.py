"""Watching a storage's calls: the slow ones logged, and, with an OpenTelemetry meter, durations and pool figures.

    storage = open_storage(database_url=url, pool_size=8, slow_call_ms=50, meter=metrics.get_meter("support-agent"))

A repository call that takes `slow_call_ms` or longer is logged by the
`loom_models.slow` logger at WARNING, with its name, its time and the shape of
the SQL it ran (statements as prepared, placeholders for the values): never a
value, so no message content or id reaches a log.

With a meter (the OpenTelemetry metrics API; the `tracing` extra), every call's
duration goes to the histogram `loom.call.duration` (ms, attribute `loom.call`:
"session_store.save_message"...), and a PostgreSQL pool's figures to the gauge
`loom.pool.connections` (attribute `state`: in_use or idle) and the counters
`loom.pool.waits` and `loom.pool.wait_time` (s). As with tracing, a call made
by another call of the same repository is part of it, not one of its own.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import peewee

from .errors import ValidationError

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, Observation

    from .pool import PostgresPool

slow_calls = logging.getLogger("loom_models.slow")
# How many of a call's statements its log line can show (a garbage collection runs many).
_MOST_STATEMENTS = 20
# How much of each statement a slow call's log line shows.
_SHAPE_CHARACTERS = 240

# The repository whose watched call runs in this context, and the SQL it has run.
_watching: contextvars.ContextVar[object | None] = contextvars.ContextVar("loom_watching", default=None)
_statements: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("loom_statements", default=None)


class CallWatch:
    """What a storage reports of its calls: those of `slow_call_ms` or more to the log, all to `meter`."""

    def __init__(self, *, slow_call_ms: float | None, meter: Meter | None) -> None:
        if slow_call_ms is not None and (
            isinstance(slow_call_ms, bool) or not isinstance(slow_call_ms, (int, float)) or not 0 <= slow_call_ms < 1e12
        ):
            raise ValidationError({"slow_call_ms": ["Must be a number of milliseconds, 0 or more."]})
        self._slow_seconds = None if slow_call_ms is None else slow_call_ms / 1000
        self._instruments = None if meter is None else _instruments_of(meter)

    def watch_database(self, database: peewee.Database) -> None:
        """Note the SQL that a watched call runs on `database`, for the slow-call log."""
        if self._slow_seconds is None:
            return
        execute = database.execute_sql

        def execute_sql(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            ran = _statements.get()
            if ran is not None and len(ran) < _MOST_STATEMENTS:
                ran.append(sql)
            return execute(sql, params, *args, **kwargs)

        # On the instance: every database class peewee has (pooled or not) runs its SQL through it.
        database.execute_sql = execute_sql  # type: ignore[method-assign]

    def watch_pool(self, pool: PostgresPool) -> None:
        """The pool's figures, read when the meter collects, as long as the pool lives."""
        if self._instruments is not None:
            self._instruments.pools.add(pool)

    def call(self, owner: object, name: str, call: Callable[[], Any]) -> Any:
        """call(), timed and reported as `name`; a call inside another of `owner`'s is part of that one."""
        if _watching.get() is owner:
            return call()
        inside, ran = _watching.set(owner), _statements.set([] if self._slow_seconds is not None else None)
        started = time.perf_counter()
        try:
            return call()
        finally:
            seconds = time.perf_counter() - started
            statements = _statements.get() or []
            _watching.reset(inside)
            _statements.reset(ran)
            self._report(name, seconds, statements)

    def _report(self, name: str, seconds: float, statements: list[str]) -> None:
        if self._instruments is not None:
            self._instruments.durations.record(seconds * 1000, {"loom.call": name})
        if self._slow_seconds is not None and seconds >= self._slow_seconds:
            shapes = list(dict.fromkeys(_shape(sql) for sql in statements))  # each once, in order
            slow_calls.warning("slow call %s: %.1f ms; SQL: %s", name, seconds * 1000, " | ".join(shapes) or "none")


class _Instruments:
    """A meter's loom instruments, made once for every storage that reports to it (a second would be ignored)."""

    def __init__(self, meter: Meter) -> None:
        self.pools: weakref.WeakSet[PostgresPool] = weakref.WeakSet()
        self.durations = meter.create_histogram(
            "loom.call.duration", unit="ms", description="How long a loom repository call took."
        )
        meter.create_observable_gauge("loom.pool.connections", [self._connections], description="Pooled connections.")
        meter.create_observable_counter("loom.pool.waits", [self._waits], description="Waits for a connection.")
        meter.create_observable_counter(
            "loom.pool.wait_time", [self._wait_time], unit="s", description="Time spent waiting for a connection."
        )

    def _connections(self, options: CallbackOptions) -> list[Observation]:
        return [
            _observation(count, {"state": state, "loom.database": pool.database})
            for pool in list(self.pools)
            for state, count in (("in_use", pool.stats().in_use), ("idle", pool.stats().idle))
        ]

    def _waits(self, options: CallbackOptions) -> list[Observation]:
        return [_observation(pool.stats().waits, {"loom.database": pool.database}) for pool in list(self.pools)]

    def _wait_time(self, options: CallbackOptions) -> list[Observation]:
        return [_observation(pool.stats().wait_seconds, {"loom.database": pool.database}) for pool in list(self.pools)]


_instruments: weakref.WeakKeyDictionary[Meter, _Instruments] = weakref.WeakKeyDictionary()
_making_instruments = threading.Lock()


def _instruments_of(meter: Meter) -> _Instruments:
    with _making_instruments:
        if meter not in _instruments:
            _instruments[meter] = _Instruments(meter)
        return _instruments[meter]


def _shape(sql: str) -> str:
    """A statement on one line, its first _SHAPE_CHARACTERS: enough to tell it, and a log line stays short."""
    line = " ".join(sql.split())
    return line if len(line) <= _SHAPE_CHARACTERS else line[:_SHAPE_CHARACTERS] + "…"


def _observation(value: float, attributes: dict | None = None) -> Observation:
    from opentelemetry.metrics import Observation  # only a caller with a meter has the API

    return Observation(value, attributes)

"""A pool of PostgreSQL connections, for many threads: it counts its waits, and drops what the server closed.

    database = PostgresPool("loom", max_connections=8, host="127.0.0.1", user="loom")
    database.stats()   # PoolStats(size=8, open=3, in_use=1, idle=2, waits=0, wait_seconds=0.0)

open_database makes one for `pooled=True` (as many connections as threads ask
for at once: max_connections=None), and for `pool_size=N` or a URL's
`?pool_size=N` (at most N). A thread that finds every connection of a bounded
pool in use waits up to WAIT_SECONDS for one, then gets DatabaseUnavailableError
(retryable), never a hang.
"""

from __future__ import annotations

import dataclasses
import select
import threading
import time
from typing import Any

from playhouse.pool import MaxConnectionsExceeded, PooledDatabase, PooledPostgresqlDatabase

# How long a call waits for a connection while all of the pool's are in use.
WAIT_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class PoolStats:
    """A pool's figures: its size, the connections open (in use and idle), and the waits for one so far."""

    size: int | None  # None: as many as threads ask for at once
    open: int
    in_use: int
    idle: int
    waits: int
    wait_seconds: float


class PostgresPool(PooledPostgresqlDatabase):
    """playhouse.pool's PostgreSQL pool (at most `max_connections`, if not None), which counts how often and how long
    threads wait, and checks a connection out without a round trip."""

    def __init__(self, database: str, *, max_connections: int | None, **kwargs: Any) -> None:
        super().__init__(database, max_connections=max_connections, timeout=WAIT_SECONDS, **kwargs)
        self._figures = threading.Lock()
        self._waits = 0
        self._wait_seconds = 0.0

    def connect(self, reuse_if_open: bool = False) -> Any:
        try:
            return super(PooledDatabase, self).connect(reuse_if_open)  # one try, without waiting
        except MaxConnectionsExceeded:
            pass
        started = time.monotonic()  # every connection is in use: this thread waits for one
        try:
            return super().connect(reuse_if_open)
        finally:
            with self._figures:
                self._waits += 1
                self._wait_seconds += time.monotonic() - started

    def _is_closed(self, conn: Any) -> bool:
        # playhouse asks the server (SELECT 1) at every check-out. A server that
        # ended an idle connection (a restart, pg_terminate_backend) has sent its
        # last words, or EOF, already: the socket is readable, and one poll tells.
        # (A connection that died silently, a half-open TCP one, is found by the
        # call that uses it: DatabaseUnavailableError, and it is dropped then.)
        if conn.closed:
            return True
        readable = select.poll()  # not select(): it fails on a socket numbered 1024 or more
        readable.register(conn, select.POLLIN)
        if not readable.poll(0):
            return False
        self._close_raw(conn)  # nothing loom runs sends a notice to an idle connection: it is over
        return True

    def stats(self) -> PoolStats:
        with self._pool_lock:
            in_use, idle = len(self._in_use), len(self._connections)
        with self._figures:
            waits, wait_seconds = self._waits, self._wait_seconds
        return PoolStats(self._max_connections, in_use + idle, in_use, idle, waits, round(wait_seconds, 6))

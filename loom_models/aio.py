"""The storage for asyncio code: every repository method as a coroutine.

    from loom_models import aio

    async with aio.open_storage("./loom-data") as storage:   # or database_url=...
        await storage.sessions.save_session(Session(id="sess_1"))
        await storage.sessions.save_message("sess_1", Message(role="user", content="Hi"))
        async for message in storage.sessions.iter_messages("sess_1"):
            print(message.content)

    storage = await aio.open_storage("./loom-data")   # the same, closed by hand
    await storage.close()

The same arguments, methods, results and errors as the sync storage.

How: a thread bridge. Each call runs the sync repository's method in one of
the storage's own threads (Bridge says how many, and why), so a query never
blocks the event loop, and the
code that keeps totals exact, retries and translates errors is the one the
sync storage runs. peewee 4's own playhouse.pwasyncio (a greenlet bridge over
aiosqlite and asyncpg) was measured against it (save_message and
load_messages(limit=100), one task and 50 at once, medians of 3 runs):

                       thread bridge    pwasyncio
    SQLite  save, 1 task     0.7 ms    1.4-2.0 ms   (aiosqlite: a thread hop per statement)
    SQLite  50 tasks x 20    0.7 s     2.2-8.2 s
    PG      save, 1 task     1.6 ms    2.2-2.3 ms   (asyncpg re-prepares every statement)
    PG      50 tasks x 20    1.9 s     2.9-3.5 s
    reads                    even; pwasyncio 20-30% ahead for one task on PG

Writes are what an agent's store does most, so the thread bridge stays; it
also needs no second driver, and pwasyncio would have needed our SQLite write
lock and our PostgreSQL statements written again for it.

Connections are pooled (playhouse.pool): a thread gives its connection back
after every call, so none stays with a thread, and close() closes them all.

A call that has begun runs to its end: when the awaiting task is cancelled, it
sees CancelledError once the call is over (a write is then in the store), and
no thread works on the storage after close().
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import peewee
from playhouse.pool import PooledDatabase

from .calls import storage_call
from .checkpoints import CheckpointRepository
from .errors import LoomStorageError
from .hitl import HumanRequest, HumanRequestRepository
from .hitl.repository import waiting_until
from .pool import PoolStats
from .references import ReferenceRepository
from .repository import Repository
from .sessions import Message, SessionRepository
from .storage import Storage

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Tracer

logger = logging.getLogger(__name__)

R = TypeVar("R")

# Threads for a database server's calls: as many as concurrent.futures gives an executor by default.
THREADS = min(32, (os.cpu_count() or 1) + 4)


class Bridge:
    """Runs a storage's sync calls in threads of its own.

    Over pooled databases (open_storage's): one thread for each SQLite file,
    THREADS for a database server; each thread gives its connections back to
    the pool after every call. SQLite writes one transaction at a time and
    Python decodes rows one at a time, so more threads on a file only contend
    for the GIL: 50 tasks reading 100 messages 20 times each took 0.95 s with
    one thread, 2.5 s with two and 4.9 s with six (PostgreSQL: 2.9 s with one,
    1.4-1.8 s with four to six). Over a storage of plain per-thread connections
    (AsyncStorage.over), one thread for all, which closes its connections when
    the bridge closes.
    """

    def __init__(self, storage: Storage, *, owned: bool) -> None:
        self._storage = storage
        self._owned = owned
        self._databases = [database for database, _ in storage.by_database()]
        self._pooled = all(isinstance(database, PooledDatabase) for database in self._databases)
        if self._pooled:
            self._executors = {database: _executor(_threads_for(database)) for database in self._databases}
        else:
            self._executors = dict.fromkeys(self._databases, _executor(1))
        self.closed = False
        self._process = os.getpid()  # a forked child has none of these threads

    async def call(self, database: peewee.Database | None, function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """`function(*args, **kwargs)` in a thread of `database` (None: of the first)."""
        if os.getpid() != self._process:  # its call would wait forever for a thread the fork left behind
            raise LoomStorageError(
                "%r was opened by process %d: open a storage in each process" % (self._storage, self._process)
            )
        if not self.closed:
            executor = self._executors[database or self._databases[0]]
            try:
                job = _in_thread(executor, self._run, function, args, kwargs)
            except RuntimeError:
                if not self.closed:
                    raise
                # close() shut the threads down between the look and the submit.
            else:
                return await _to_the_end(job)
        raise LoomStorageError("%r is closed" % self._storage)

    def _run(self, function: Callable[..., R], args: tuple, kwargs: dict) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            if self._pooled:
                self._close_connections()  # back to the pool

    def _close_connections(self) -> None:
        for database in self._databases:
            database.close()

    def close(self) -> None:
        """Refuse new calls, wait for those under way, close the threads' connections (and an owned storage)."""
        if self.closed:
            return
        self.closed = True
        executors = set(self._executors.values())
        if not self._pooled:
            (executor,) = executors
            executor.submit(self._close_connections).result()
        for executor in executors:
            executor.shutdown()
        if self._owned:
            self._storage.close()


def _threads_for(database: peewee.Database) -> int:
    return 1 if isinstance(database, peewee.SqliteDatabase) else THREADS


def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="loom-aio")


def _in_thread(executor: Executor | None, function: Callable[..., R], *args: Any) -> asyncio.Future[R]:
    """`function(*args)` in a thread of `executor` (None: the loop's), in the caller's context (its span)."""
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(executor, functools.partial(context.run, function, *args))


async def _to_the_end(job: asyncio.Future[R]) -> R:
    """`job`'s result; when the awaiting task is cancelled, the cancel is raised once the job is over."""
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        while not job.done():
            with contextlib.suppress(asyncio.CancelledError):  # cancelled again: still, the call ends first
                await asyncio.wait([job])
        if not job.cancelled() and job.exception() is not None:
            logger.warning("loom_models: a call whose caller was cancelled failed: %r", job.exception())
        raise


class AsyncRepository:
    """A sync repository's public methods as coroutines (made once per subclass, from `sync`)."""

    sync: type[Repository]

    def __init__(self, repository: Repository, bridge: Bridge) -> None:
        self.repository = repository
        self._bridge = bridge

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, method in inspect.getmembers(cls.sync, inspect.isfunction):
            if not name.startswith("_") and name != "close" and name not in cls.__dict__:
                setattr(cls, name, _bridged(name, method))

    def __repr__(self) -> str:
        return "<Async%s" % repr(self.repository)[1:]

    if TYPE_CHECKING:  # the methods made from `sync`: their coroutines, as type checkers see them

        def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]: ...


def _bridged(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(self: AsyncRepository, *args: Any, **kwargs: Any) -> Any:
        return await self._bridge.call(self.repository.database, getattr(self.repository, name), *args, **kwargs)

    return call


class AsyncSessionRepository(AsyncRepository):
    sync = SessionRepository
    repository: SessionRepository

    def iter_messages(self, session_id: str, batch_size: int = 1000) -> AsyncIterator[Message]:
        """All messages in order, a page of `batch_size` fetched, then yielded; nothing held between pages.

        async for message in storage.sessions.iter_messages("sess_1"):
            index(message.content)
        """
        self.repository.iter_messages(session_id, batch_size)  # checks the arguments at once

        async def pages() -> AsyncIterator[Message]:
            position = None
            while True:
                page = await self._bridge.call(
                    self.repository.database, self.repository._messages_after, session_id, position, batch_size
                )
                for message in page:
                    yield message
                if len(page) < batch_size:
                    return
                position = (page[-1].timestamp, page[-1].id)

        return pages()


class AsyncHumanRequestRepository(AsyncRepository):
    sync = HumanRequestRepository
    repository: HumanRequestRepository

    async def wait_for_response(
        self, request_id: str, timeout: float | None = None, poll_interval: float = 0.5
    ) -> HumanRequest:
        """Wait until the request is decided, looking every `poll_interval` seconds; no thread waits meanwhile.

        decided = await storage.hitl.wait_for_response("req_1", timeout=30)

        As the sync wait_for_response: expired at its deadline, returned as it is at `timeout`.
        """
        give_up = waiting_until(timeout, poll_interval)
        while True:
            request, pause = await self._bridge.call(
                self.repository.database, self.repository._poll_response, request_id, give_up, poll_interval
            )
            if pause is None:
                return request
            await asyncio.sleep(pause)


class AsyncReferenceRepository(AsyncRepository):
    sync = ReferenceRepository
    repository: ReferenceRepository


class AsyncCheckpointRepository(AsyncRepository):
    sync = CheckpointRepository
    repository: CheckpointRepository


class AsyncStorage:
    """Every domain's repository, async.

    async with aio.open_storage("./loom-data") as storage: ...   # owns its storage
    storage = aio.AsyncStorage.over(sync_storage)                # a view; close() leaves sync_storage open

    `storage.sync` is the sync storage under it, whose calls run in the calling
    thread (on the event loop's, they block it).
    """

    def __init__(self, storage: Storage, bridge: Bridge) -> None:
        self.sync = storage
        self.sessions = AsyncSessionRepository(storage.sessions, bridge)
        self.hitl = AsyncHumanRequestRepository(storage.hitl, bridge)
        self.references = AsyncReferenceRepository(storage.references, bridge)
        self.checkpoints = AsyncCheckpointRepository(storage.checkpoints, bridge)
        self._bridge = bridge

    @classmethod
    def over(cls, storage: Storage, *, owned: bool = False) -> AsyncStorage:
        """The async API of a sync storage, its calls run in a thread of their own.

        close() closes that thread's connections, and `storage` too when `owned`.
        """
        return cls(storage, Bridge(storage, owned=owned))

    def pool_stats(self) -> PoolStats | None:
        """Storage.pool_stats(): the connection pool's figures (no call to the database)."""
        return self.sync.pool_stats()

    async def stats(self) -> dict:
        """Storage.stats(): every domain's figures, JSON-ready."""
        return await self._bridge.call(None, self.sync.stats)

    async def close(self) -> None:
        """Wait for the calls under way, then close the connections (and the storage, if owned). Safe twice."""
        await asyncio.to_thread(self._bridge.close)

    def close_now(self) -> None:
        """close(), from sync code: it blocks until the calls under way are over."""
        self._bridge.close()

    async def __aenter__(self) -> AsyncStorage:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "<Async%s" % repr(self.sync)[1:]


def open_storage(
    data_dir: str | os.PathLike | None = None,
    *,
    database_url: str | None = None,
    tracer: Tracer | None = None,
    gc_interval: float | None = 300,
    migrate: bool = True,
    pool_size: int | None = None,
    slow_call_ms: float | None = None,
    meter: Meter | None = None,
) -> Opening:
    """loom_models.open_storage for asyncio: `async with open_storage(...) as storage`, or `await open_storage(...)`.

    The same arguments; the opening (and migrating) runs in a thread too.
    """
    return Opening(
        functools.partial(
            open_now,
            data_dir,
            database_url=database_url,
            tracer=tracer,
            gc_interval=gc_interval,
            migrate=migrate,
            pool_size=pool_size,
            slow_call_ms=slow_call_ms,
            meter=meter,
        )
    )


class Opening(Coroutine[Any, Any, AsyncStorage]):
    """What aio.open_storage returns: a coroutine of the storage, and a context that closes it on leaving.

    storage = await aio.open_storage(...)
    async with aio.open_storage(...) as storage: ...
    asyncio.run(aio.open_storage(...)), create_task(...)   # a coroutine as any other
    """

    def __init__(self, open_: Callable[[], AsyncStorage]) -> None:
        self._coroutine = _opened(open_)
        self._storage: AsyncStorage | None = None

    def __await__(self) -> Generator[Any, None, AsyncStorage]:
        return self._coroutine.__await__()

    def send(self, value: Any) -> Any:
        return self._coroutine.send(value)

    def throw(self, *error: Any) -> Any:
        return self._coroutine.throw(*error)

    def close(self) -> None:
        self._coroutine.close()

    async def __aenter__(self) -> AsyncStorage:
        self._storage = await self._coroutine
        return self._storage

    async def __aexit__(self, *exc_info: object) -> None:
        if self._storage is not None:
            await self._storage.close()


async def _opened(open_: Callable[[], AsyncStorage]) -> AsyncStorage:
    opening = _in_thread(None, open_)
    try:
        return await _to_the_end(opening)
    except asyncio.CancelledError:
        if not opening.cancelled() and opening.exception() is None:
            await opening.result().close()  # opened for a caller that has gone
        raise


@storage_call
def open_now(
    data_dir: str | os.PathLike | None = None,
    *,
    database_url: str | None = None,
    tracer: Tracer | None = None,
    gc_interval: float | None = 300,
    migrate: bool = True,
    pool_size: int | None = None,
    slow_call_ms: float | None = None,
    meter: Meter | None = None,
) -> AsyncStorage:
    """open_storage, done in the calling thread (for a constructor, say): the storage, ready for async calls."""
    storage = Storage.wire(
        data_dir,
        database_url=database_url,
        tracer=tracer,
        pooled=True,
        pool_size=pool_size,
        slow_call_ms=slow_call_ms,
        meter=meter,
    )
    storage.prepare(migrate=migrate, gc_interval=gc_interval)
    for database, _ in storage.by_database():
        database.close()  # this thread's connection, back to the pool
    return AsyncStorage.over(storage, owned=True)

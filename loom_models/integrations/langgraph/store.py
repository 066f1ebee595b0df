"""LangGraph's long-term memory store on loom: LoomStore and AsyncLoomStore (BaseStore).

    from loom_models.integrations.langgraph import LoomStore

    with LoomStore.open("./loom-data", ttl={"default_ttl": 24 * 60}) as store:   # or database_url=...
        store.put(("users", "u1"), "prefs", {"theme": "dark"})
        store.get(("users", "u1"), "prefs").value                # {'theme': 'dark'}
        graph = builder.compile(store=store)

    LoomStore(storage)                                          # over an open storage, left open
    async with AsyncLoomStore.open("./loom-data") as store:     # for asyncio code
        await store.aput(("users", "u1"), "prefs", {"theme": "dark"})

The items are the checkpoints domain's (checkpoints/items.py), beside the
checkpointers' state. Where it differs from LangGraph's SqliteStore:

- An expired item is never returned, swept or not, whatever
  TTLConfig.omit_expired says; a read that refreshes TTLs never brings an
  expired item back.
- A read refreshes the TTLs of what it returns when the call says so
  (`refresh_ttl`), else when TTLConfig.refresh_on_read does: as SqliteStore,
  no refresh unless asked (BaseStore's default would be yes), but a call's
  refresh_ttl=True counts even without the config's (SqliteStore ignores it).
- A value must be JSON: a datetime in it is refused, not turned into a text.
- Vector search (index=) is not supported; a search's `query=` is ignored and
  its items have no score, as in SqliteStore without an index.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import math
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, Literal

from langgraph.store.base import NOT_PROVIDED, BaseStore, Item, NotProvided, Op, Result, SearchItem, TTLConfig
from langgraph.store.base.batch import AsyncBatchedBaseStore

from ... import aio
from ...checkpoints.items import SWEEP_BATCH, StoreItemRepository, item_row
from ...columns import utc_now
from ...errors import LoomStorageError, ValidationError
from ...storage import Storage, open_storage

logger = logging.getLogger(__name__)

# Minutes between sweeps when neither the call nor the TTLConfig says.
SWEEP_INTERVAL_MINUTES = 5
# A sweeper gives way: blocked for long, it would hold up the writers it waits behind, and close().
SWEEPER_LOCK_WAIT_MS = 500
_TTL_KEYS = {"refresh_on_read": bool, "omit_expired": bool, "default_ttl": float, "sweep_interval_minutes": float}


class _RefreshWhenAsked:
    """Reads that refresh TTLs when the call or the TTLConfig asks, never by default (as SqliteStore)."""

    ttl_config: TTLConfig | None

    def _refresh(self, refresh_ttl: bool | None) -> bool:
        if refresh_ttl is not None:
            return refresh_ttl
        return bool((self.ttl_config or {}).get("refresh_on_read", False))

    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        return super().get(namespace, key, refresh_ttl=self._refresh(refresh_ttl))  # type: ignore[misc]

    def search(
        self, namespace_prefix: tuple[str, ...], /, *, refresh_ttl: bool | None = None, **search: Any
    ) -> list[SearchItem]:
        return super().search(namespace_prefix, refresh_ttl=self._refresh(refresh_ttl), **search)  # type: ignore[misc]

    async def aget(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        return await super().aget(namespace, key, refresh_ttl=self._refresh(refresh_ttl))  # type: ignore[misc]

    async def asearch(
        self, namespace_prefix: tuple[str, ...], /, *, refresh_ttl: bool | None = None, **search: Any
    ) -> list[SearchItem]:
        return await super().asearch(namespace_prefix, refresh_ttl=self._refresh(refresh_ttl), **search)  # type: ignore[misc]


class LoomStore(_RefreshWhenAsked, BaseStore):
    """LangGraph's BaseStore on a loom storage; safe to share between threads.

    LoomStore(storage, ttl={"default_ttl": 60})         # over an open storage, left open
    with LoomStore.open("./loom-data") as store: ...     # owns its storage
    """

    supports_ttl = True

    def __init__(self, storage: Storage, *, ttl: TTLConfig | None = None, index: Any = None) -> None:
        _refuse_index(index)
        if not isinstance(storage, Storage):
            raise ValidationError(
                {"storage": ["Must be a sync loom_models storage (open_storage); see AsyncLoomStore."]}
            )
        self.ttl_config = _ttl_config(ttl)
        self.storage = storage
        self._items = StoreItemRepository(storage.checkpoints.database, storage.checkpoints.tracer)
        self._stop_sweeping = threading.Event()
        self._sweeper: threading.Thread | None = None
        # Expired items also go on the storage's collector thread, when it runs one.
        self._collector_sweep = functools.partial(sweep_expired, self._items)
        storage.references.sweep_too(self._collector_sweep)

    @classmethod
    @contextlib.contextmanager
    def open(
        cls,
        data_dir: str | os.PathLike | None = None,
        *,
        database_url: str | None = None,
        ttl: TTLConfig | None = None,
        index: Any = None,
    ) -> Iterator[LoomStore]:
        """A store on a storage of its own, both closed on leaving.

        with LoomStore.open(database_url="postgresql://loom@db/loom", ttl={"default_ttl": 60}) as store: ...
        """
        _refuse_index(index)
        with open_storage(data_dir, database_url=database_url) as storage, cls(storage, ttl=ttl) as store:
            yield store

    @classmethod
    @contextlib.contextmanager
    def from_conn_string(
        cls, conn_string: str, *, ttl: TTLConfig | None = None, index: Any = None
    ) -> Iterator[LoomStore]:
        """SqliteStore.from_conn_string's counterpart: a path, ":memory:" or a postgresql:// URL.

        with LoomStore.from_conn_string("./memories.db") as store: ...   # data directory ./memories.db.loom

        ":memory:" is a new temporary data directory, removed on leaving.
        """
        with _location(conn_string) as where, cls.open(**where, ttl=ttl, index=index) as store:
            yield store

    def setup(self) -> None:
        """Nothing to do: opening the storage applied its migrations."""

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        self._check_open()
        return self._items.batch(ops)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        raise NotImplementedError("LoomStore is for sync code: in asyncio code use AsyncLoomStore")

    def sweep_ttl(self) -> int:
        """Delete the expired items now; return how many went (they were never read meanwhile)."""
        self._check_open()
        return self._items.sweep_expired()

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> concurrent.futures.Future[None]:
        """Sweep every `sweep_interval_minutes` (else the TTLConfig's, else 5) in a thread, until stop_ttl_sweeper().

        store.start_ttl_sweeper(60)   # a Future, done once the sweeper stops; cancelling it stops it
        """
        minutes = _interval(sweep_interval_minutes, self.ttl_config)
        stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        stopped.add_done_callback(lambda future: self._stop_sweeping.set() if future.cancelled() else None)
        if self._sweeper is not None and self._sweeper.is_alive():
            return stopped  # one sweeper a store
        self._stop_sweeping.clear()
        self._sweeper = threading.Thread(
            target=self._sweep_every, args=(minutes * 60, stopped), name="loom-store-ttl", daemon=True
        )
        self._sweeper.start()
        return stopped

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper within its current small batch; False if it is still running after `timeout` seconds."""
        sweeper = self._sweeper
        if sweeper is None:
            return True
        self._stop_sweeping.set()
        sweeper.join(timeout)
        if sweeper.is_alive():
            return False
        self._sweeper = None
        return True

    def close(self) -> None:
        """Stop the sweeper and refuse every call from now on; a storage given to it stays open. Safe twice."""
        self.storage.references.unsweep(self._collector_sweep)
        self.stop_ttl_sweeper()
        self._items.close()

    def __enter__(self) -> LoomStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<LoomStore on %r>" % self.storage

    def _check_open(self) -> None:
        # Its own repository, over the storage's database: once the storage is
        # closed, a call would otherwise open the database again.
        if self.storage.checkpoints.closed:
            raise LoomStorageError("%r is closed" % self.storage)

    def _sweep_every(self, seconds: float, stopped: concurrent.futures.Future[None]) -> None:
        try:
            # Once the storage is closed, a sweep would only open its database again.
            while not self._stop_sweeping.wait(seconds) and not self.storage.checkpoints.closed:
                self._sweep_until_stopped()
        finally:
            if not stopped.done():
                stopped.set_result(None)

    def _sweep_until_stopped(self) -> None:
        sweep_expired(self._items, self._stop_sweeping)


class _AsyncItems(aio.AsyncRepository):
    sync = StoreItemRepository
    repository: StoreItemRepository


class AsyncLoomStore(_RefreshWhenAsked, AsyncBatchedBaseStore):
    """LangGraph's BaseStore for asyncio code: every call runs in the storage's own threads.

    async with AsyncLoomStore.open("./loom-data") as store:
        graph = builder.compile(store=store)
    AsyncLoomStore(storage)   # over an open aio storage, left open; made on the event loop it serves

    As LangGraph's batched stores, it gathers the calls made in one tick of its
    event loop into one batch. Its sync methods serve other threads; called on
    its event loop's own thread, where they would block it, they refuse
    (asyncio.InvalidStateError).
    """

    supports_ttl = True

    def __init__(self, storage: aio.AsyncStorage | Storage, *, ttl: TTLConfig | None = None, index: Any = None) -> None:
        self._task = None  # what LangGraph's __del__ reads, even of a store whose __init__ refused
        _refuse_index(index)
        ttl_config = _ttl_config(ttl)
        if not isinstance(storage, (aio.AsyncStorage, Storage)):
            raise ValidationError({"storage": ["Must be a loom_models storage (aio.open_storage or open_storage)."]})
        super().__init__()  # on the running loop: it starts the batching task there
        self.ttl_config = ttl_config
        # A sync storage is given threads of its own here, closed with the store.
        self._view: aio.AsyncStorage | None = None
        if isinstance(storage, Storage):
            storage = self._view = aio.AsyncStorage.over(storage)
        self.storage = storage
        sync = self.storage.sync
        repository = StoreItemRepository(sync.checkpoints.database, sync.checkpoints.tracer)
        self._items = _AsyncItems(repository, self.storage._bridge)
        # Expired items also go on the storage's collector thread, when it runs one.
        self._collector_sweep = functools.partial(sweep_expired, repository)
        sync.references.sweep_too(self._collector_sweep)
        self._stop_sweeping = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        data_dir: str | os.PathLike | None = None,
        *,
        database_url: str | None = None,
        ttl: TTLConfig | None = None,
        index: Any = None,
    ) -> AsyncIterator[AsyncLoomStore]:
        """A store on a storage of its own, both closed on leaving.

        async with AsyncLoomStore.open(database_url="postgresql://loom@db/loom") as store: ...
        """
        _refuse_index(index)
        async with aio.open_storage(data_dir, database_url=database_url) as storage, cls(storage, ttl=ttl) as store:
            yield store

    @classmethod
    @contextlib.asynccontextmanager
    async def from_conn_string(
        cls, conn_string: str, *, ttl: TTLConfig | None = None, index: Any = None
    ) -> AsyncIterator[AsyncLoomStore]:
        """AsyncSqliteStore.from_conn_string's counterpart, as LoomStore.from_conn_string is SqliteStore's."""
        with _location(conn_string) as where:
            async with cls.open(**where, ttl=ttl, index=index) as store:
                yield store

    async def setup(self) -> None:
        """Nothing to do: opening the storage applied its migrations."""

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await self._items.batch(list(ops))

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        # Checked before it is queued: a bad value fails its own call, not the
        # others gathered into its batch.
        item_row("", "", value, None if isinstance(ttl, NotProvided) else ttl, utc_now())
        await super().aput(namespace, key, value, index, ttl=ttl)

    async def sweep_ttl(self) -> int:
        """Delete the expired items now; return how many went (they were never read meanwhile)."""
        return await self._items.sweep_expired()

    async def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> asyncio.Task[None]:
        """Sweep every `sweep_interval_minutes` (else the TTLConfig's, else 5), until stop_ttl_sweeper().

        await store.start_ttl_sweeper(60)   # a Task; cancelling it stops the sweeper too
        """
        minutes = _interval(sweep_interval_minutes, self.ttl_config)
        if self._sweeper is None or self._sweeper.done():
            self._stop_sweeping.clear()
            self._sweeper = asyncio.create_task(self._sweep_every(minutes * 60), name="loom-store-ttl")
        return self._sweeper

    async def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper within its current small batch; False if it is still running after `timeout` seconds."""
        sweeper = self._sweeper
        if sweeper is None or sweeper.done():
            self._sweeper = None
            return True
        self._stop_sweeping.set()
        done, _ = await asyncio.wait([sweeper], timeout=timeout)
        if not done:
            return False
        self._sweeper = None
        return True

    async def aclose(self) -> None:
        """Stop the sweeper and refuse every call from now on; a storage given to it stays open. Safe twice."""
        self.storage.sync.references.unsweep(self._collector_sweep)
        await self.stop_ttl_sweeper()
        self._items.repository.close()
        if self._view is not None:
            await self._view.close()

    async def __aenter__(self) -> AsyncLoomStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return "<AsyncLoomStore on %r>" % self.storage

    async def _sweep_every(self, seconds: float) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stop_sweeping.wait(), seconds)
                return
            except asyncio.TimeoutError:
                pass
            if self.storage._bridge.closed:  # the storage went: its calls would only fail
                return
            try:
                # A batch a call: the storage's threads serve other calls between them.
                while not self._stop_sweeping.is_set() and await self._items.sweep_expired(batches=1) >= SWEEP_BATCH:
                    pass
            except Exception:  # whatever it was, the next run may fare better
                logger.exception("loom_models: sweeping expired store items failed")


def sweep_expired(items: StoreItemRepository, stop: threading.Event | None = None) -> None:
    """Delete the expired items, a batch a transaction, until none is left or `stop` is set.

    What a sweeper thread runs: the store's own (start_ttl_sweeper), or the
    storage's collector (open_storage's gc_interval), which every store hands it.
    """
    try:
        items.backend.give_way(SWEEPER_LOCK_WAIT_MS)
        while not (stop and stop.is_set()) and items.sweep_expired(batches=1) >= SWEEP_BATCH:
            pass
    except Exception:  # whatever it was, the next run may fare better
        logger.exception("loom_models: sweeping expired store items failed")
    finally:
        # A connection per run: none is held idle between runs, and its short
        # lock wait goes with it.
        items.backend.discard_connection()


def _refuse_index(index: Any) -> None:
    if index is not None:
        raise NotImplementedError(
            "vector search is not supported by loom's LangGraph stores: give no index= (an IndexConfig);"
            " search by namespace and filter serves without one"
        )


def _ttl_config(ttl: object) -> TTLConfig | None:
    """A TTLConfig, checked: its minutes numbers above 0 (or None), its switches bools."""
    if ttl is None:
        return None
    if not isinstance(ttl, Mapping):
        raise ValidationError({"ttl": ["Must be a TTLConfig (a dict), got %s." % type(ttl).__name__]})
    for name, value in ttl.items():
        kind = _TTL_KEYS.get(name)
        if kind is None:
            raise ValidationError(
                {"ttl": ["Unknown TTLConfig key %r; expected one of %s." % (name, ", ".join(_TTL_KEYS))]}
            )
        if kind is bool and not isinstance(value, bool):
            raise ValidationError({"ttl": ["%s must be True or False." % name]})
        if kind is float and value is not None and not _minutes(value):
            raise ValidationError({"ttl": ["%s must be a number of minutes above 0, or None." % name]})
    return TTLConfig(**ttl)


def _interval(minutes: float | None, ttl: TTLConfig | None) -> float:
    minutes = minutes or (ttl or {}).get("sweep_interval_minutes") or SWEEP_INTERVAL_MINUTES
    if not _minutes(minutes):
        raise ValidationError({"sweep_interval_minutes": ["Must be a number of minutes above 0."]})
    return float(minutes)


def _minutes(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@contextlib.contextmanager
def _location(conn_string: str) -> Iterator[dict]:
    """open()'s arguments for a connection string of LangGraph's SQLite stores, or a PostgreSQL URL."""
    if not isinstance(conn_string, str) or not conn_string:
        raise ValidationError({"conn_string": ["Must be a path, ':memory:' or a postgresql:// URL."]})
    if conn_string.startswith(("postgresql://", "postgres://")):
        yield {"database_url": conn_string}
    elif conn_string == ":memory:":
        with tempfile.TemporaryDirectory(prefix="loom-store-") as directory:
            yield {"data_dir": directory}
    else:
        # A directory beside the path: a store is several files (one per domain).
        yield {"data_dir": conn_string + ".loom"}

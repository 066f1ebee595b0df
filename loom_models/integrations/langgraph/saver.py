"""LangGraph checkpointers on loom: LoomSaver and AsyncLoomSaver.

    from langgraph.graph import StateGraph
    from loom_models.integrations.langgraph import LoomSaver

    with LoomSaver.open("./loom-data") as saver:          # or database_url=...; LoomSaver(storage) over one open
        graph = builder.compile(checkpointer=saver)
        graph.invoke(inputs, {"configurable": {"thread_id": "thread-1"}})
        saver.prune(["thread-1"])                         # keep only the newest checkpoint

What LangGraph hands over is stored as its serializer (`serde`) writes it; the
rows are the checkpoints domain's (checkpoints/). A channel's value is stored
once per version, as LangGraph's PostgreSQL saver does, and a list that only
grew since the version this saver last wrote is stored as its new items, so a
thread whose message list grows a message a step takes space in proportion to
its messages, not to the square of its steps.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import json
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ... import aio
from ...checkpoints import StoredCheckpoint
from ...errors import ValidationError
from ...storage import Storage, open_storage
from ...validation import check_id, storable

R = TypeVar("R")

# Checkpoints fetched at a time by list(): each page is read in one snapshot, then yielded.
PAGE = 25
# Lists remembered per saver to store the next version as its new items (thread, namespace, channel).
REMEMBERED_LISTS = 128
_EMPTY = ("empty", b"")  # a channel with a version but no value yet, as LangGraph's savers mark it


class LoomSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on a loom storage; safe to share between threads.

    LoomSaver(storage)                              # over an open storage, left open
    with LoomSaver.open("./loom-data") as saver:    # owns its storage
    """

    def __init__(self, storage: Storage | aio.AsyncStorage, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.storage = storage
        sync = storage.sync if isinstance(storage, aio.AsyncStorage) else storage
        if not isinstance(sync, Storage):
            raise ValidationError({"storage": ["Must be a loom_models storage (open_storage or aio.open_storage)."]})
        self._checkpoints = sync.checkpoints
        self._lists = _RememberedLists(REMEMBERED_LISTS)

    @classmethod
    @contextlib.contextmanager
    def open(
        cls, data_dir: str | None = None, *, database_url: str | None = None, serde: SerializerProtocol | None = None
    ) -> Iterator[LoomSaver]:
        """A saver on a storage of its own, closed on leaving.

        with LoomSaver.open(database_url="postgresql://loom@db/loom") as saver: ...
        """
        with open_storage(data_dir, database_url=database_url) as storage:
            yield cls(storage, serde=serde)

    def get_next_version(self, current: str | int | float | None, channel: None = None) -> str:
        # The count orders versions; the random part keeps two forks of a thread from
        # giving one version of a channel two values (each version is stored once).
        try:
            count = 0 if current is None else int(str(current).split(".")[0])
        except ValueError:
            raise ValidationError({"current": ["Must be a channel version: a count, then '.' and more."]}) from None
        return "%032d.%016d" % (count + 1, secrets.randbelow(10**16))

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, namespace = _thread_of(config)
        stored = self._checkpoints.get(thread_id, namespace, get_checkpoint_id(config))
        return None if stored is None else self._tuple(stored)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        for page in self._pages(config, filter, before, limit):
            yield from page

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id, namespace = _thread_of(config)
        _check_checkpoint(checkpoint, metadata, new_versions)
        rest = {key: value for key, value in checkpoint.items() if key != "channel_values"}
        type_, data = self.serde.dumps_typed(rest)
        stored_metadata = _json_metadata(get_checkpoint_metadata(config, metadata))
        row = {
            "checkpoint_ns": namespace,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": get_checkpoint_id(config),
            "run_id": stored_metadata.get("run_id"),
            "type": type_,
            "checkpoint": data,
            "metadata": stored_metadata,
            "channel_versions": checkpoint["channel_versions"],
        }
        values, lists = self._value_rows(thread_id, namespace, checkpoint["channel_values"], new_versions)
        if self._checkpoints.put(thread_id, row, values):  # another process pruned what a list extended
            self._lists.forget(thread_id)
            values, lists = self._value_rows(thread_id, namespace, checkpoint["channel_values"], new_versions, False)
            self._checkpoints.put(thread_id, row, values)  # each value whole: nothing it needs can be gone
        self._lists.remember(lists)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": namespace, "checkpoint_id": checkpoint["id"]}}

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        thread_id, namespace = _thread_of(config)
        checkpoint_id = check_id(get_checkpoint_id(config), "checkpoint_id")
        check_id(task_id, "task_id")
        if not isinstance(task_path, str) or not storable(task_path):
            raise ValidationError({"task_path": ["Must be a string, without NUL or lone surrogates."]})
        if isinstance(writes, (str, bytes, Mapping)) or not all(_is_write(write) for write in writes):
            raise ValidationError({"writes": ["Must be a list of (channel, value) pairs, each channel a string."]})
        rows = []
        for idx, (channel, value) in enumerate(writes):
            type_, data = self.serde.dumps_typed(value)
            rows.append(
                {
                    "checkpoint_ns": namespace,
                    "checkpoint_id": checkpoint_id,
                    "task_id": task_id,
                    "task_path": task_path,
                    # An error, an interrupt... has its own index, and replaces the last one.
                    "idx": WRITES_IDX_MAP.get(channel, idx),
                    "channel": channel,
                    "type": type_,
                    "value": data,
                }
            )
        self._checkpoints.put_writes(thread_id, rows)

    def delete_thread(self, thread_id: str) -> None:
        self._checkpoints.delete_thread(thread_id)
        self._lists.forget(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._checkpoints.delete_for_runs(run_ids)
        self._lists.forget()

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._checkpoints.copy_thread(source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep each namespace's newest checkpoint, with the values it names ("keep_latest"), or nothing ("delete").

        Not for a graph with LangGraph's DeltaChannel (beta): its state is
        rebuilt from the writes of older checkpoints, which "keep_latest" deletes.
        """
        if strategy not in ("keep_latest", "delete"):
            raise ValidationError({"strategy": ["Must be 'keep_latest' or 'delete'."]})
        self._checkpoints.prune(thread_ids, keep_latest=strategy == "keep_latest")
        for thread_id in thread_ids:
            self._lists.forget(thread_id)

    def _pages(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Iterator[builtins.list[CheckpointTuple]]:
        """list()'s checkpoints a page at a time: each page read whole, nothing held while it is used."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ValidationError({"limit": ["Must be a whole number."]})
        if filter is not None and not isinstance(filter, dict):
            raise ValidationError({"filter": ["Must be a dict of metadata keys and values."]})
        configurable = (config or {}).get("configurable", {})
        where = [configurable.get(name) for name in ("thread_id", "checkpoint_ns", "checkpoint_id")]
        older = get_checkpoint_id(before) if before else None
        left, after = limit, None
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            page = self._checkpoints.list_page(*where, metadata=filter, before=older, after=after, limit=size)
            yield [self._tuple(stored) for stored in page]
            if len(page) < size:
                return
            left = None if left is None else left - size
            last = page[-1].row
            after = (last.checkpoint_id, last.thread_id, last.checkpoint_ns)

    def _tuple(self, stored: StoredCheckpoint) -> CheckpointTuple:
        row = stored.row
        checkpoint = self.serde.loads_typed((row.type, bytes(row.checkpoint)))
        checkpoint["channel_values"] = {
            channel: self._value(pieces) for channel, pieces in stored.values.items() if pieces[0][0] != _EMPTY[0]
        }
        config = _config(row.thread_id, row.checkpoint_ns, row.checkpoint_id)
        parent = row.parent_checkpoint_id
        writes = [(w.task_id, w.channel, self.serde.loads_typed((w.type, bytes(w.value)))) for w in stored.writes]
        return CheckpointTuple(
            config,
            checkpoint,
            row.metadata,
            _config(row.thread_id, row.checkpoint_ns, parent) if parent else None,
            writes,
        )

    def _value(self, pieces: builtins.list[tuple[str, bytes]]) -> Any:
        whole, *appended = pieces
        value = self.serde.loads_typed(whole)
        if appended:
            value = list(value)
            for items in appended:
                value.extend(self.serde.loads_typed(items))
        return value

    def _value_rows(
        self,
        thread_id: str,
        namespace: str,
        values: dict[str, Any],
        new_versions: ChannelVersions,
        grown: bool = True,
    ) -> tuple[builtins.list[dict], dict[tuple, _List]]:
        """The rows of the channels' new versions, and the lists among them to remember.

        `grown`: a list that only grew since this saver stored it is stored as its new items.
        """
        rows, lists = [], {}
        for channel, version in new_versions.items():
            row = {"channel": channel, "version": str(version), "base_version": None}
            if channel not in values:
                rows.append({**row, "type": _EMPTY[0], "value": _EMPTY[1]})
                continue
            value, key = values[channel], (thread_id, namespace, channel)
            if type(value) is list:
                items = tuple(self.serde.dumps_typed(item) for item in value)
                lists[key] = _List(str(version), items)
                extended = self._lists.grown(key, items, str(version)) if grown else None
                if extended is not None:
                    base, count = extended
                    type_, data = self.serde.dumps_typed(value[count:])
                    rows.append({**row, "base_version": base, "type": type_, "value": data})
                    continue
            type_, data = self.serde.dumps_typed(value)
            rows.append({**row, "type": type_, "value": data})
        return rows, lists


class AsyncLoomSaver(LoomSaver):
    """A LangGraph checkpointer for asyncio code: every call runs in the storage's own threads.

    async with AsyncLoomSaver.open("./loom-data") as saver:
        graph = builder.compile(checkpointer=saver)
        await graph.ainvoke(inputs, {"configurable": {"thread_id": "thread-1"}})

    Its sync methods serve other threads; called on an event loop's own
    thread, where they would block it, they refuse.
    """

    storage: aio.AsyncStorage

    def __init__(self, storage: aio.AsyncStorage, *, serde: SerializerProtocol | None = None) -> None:
        if not isinstance(storage, aio.AsyncStorage):  # whose threads would it run in, and who closes them?
            raise ValidationError({"storage": ["Must be an aio storage: aio.open_storage, or aio.AsyncStorage.over."]})
        super().__init__(storage, serde=serde)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(  # type: ignore[override]
        cls, data_dir: str | None = None, *, database_url: str | None = None, serde: SerializerProtocol | None = None
    ) -> AsyncIterator[AsyncLoomSaver]:
        """A saver on a storage of its own, closed on leaving.

        async with AsyncLoomSaver.open(database_url="postgresql://loom@db/loom") as saver: ...
        """
        async with aio.open_storage(data_dir, database_url=database_url) as storage:
            yield cls(storage, serde=serde)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._in_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        pages = self._pages(config, filter, before, limit)
        while page := await self._in_thread(next, pages, None):
            for checkpoint in page:
                yield checkpoint

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._in_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self._in_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._in_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._in_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._in_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._in_thread(self.prune, thread_ids, strategy=strategy)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        _refuse_on_a_loop("get_tuple")
        return super().get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        _refuse_on_a_loop("list")
        return super().list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        _refuse_on_a_loop("put")
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        _refuse_on_a_loop("put_writes")
        super().put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        _refuse_on_a_loop("delete_thread")
        super().delete_thread(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        _refuse_on_a_loop("delete_for_runs")
        super().delete_for_runs(run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        _refuse_on_a_loop("copy_thread")
        super().copy_thread(source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        _refuse_on_a_loop("prune")
        super().prune(thread_ids, strategy=strategy)

    async def _in_thread(self, function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        # The storage's threads run no event loop: there, the sync methods serve.
        return await self.storage._bridge.call(self._checkpoints.database, function, *args, **kwargs)


class _List(NamedTuple):
    """A list this saver stored: its version, and each item as the serializer wrote it."""

    version: str
    items: tuple[tuple[str, bytes], ...]


class _RememberedLists:
    """The lists a saver stored last, per (thread, namespace, channel), the least recently used forgotten first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lists: collections.OrderedDict[tuple, _List] = collections.OrderedDict()
        self._lock = threading.Lock()  # LangGraph's "async" durability puts from background threads

    def grown(self, key: tuple, items: tuple, version: str) -> tuple[str, int] | None:
        """(the version it grew from, how many items that had), if `items` only appends to the list stored last."""
        with self._lock:
            last = self._lists.get(key)
        if last is None or last.version == version or items[: len(last.items)] != last.items:
            return None
        return last.version, len(last.items)

    def remember(self, lists: dict[tuple, _List]) -> None:
        with self._lock:
            for key, stored in lists.items():
                self._lists[key] = stored
                self._lists.move_to_end(key)
            while len(self._lists) > self._size:
                self._lists.popitem(last=False)

    def forget(self, thread_id: str | None = None) -> None:
        """Forget a thread's lists, or all."""
        with self._lock:
            for key in [key for key in self._lists if thread_id is None or key[0] == thread_id]:
                del self._lists[key]


def _thread_of(config: RunnableConfig) -> tuple[str, str]:
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    thread_id = (configurable or {}).get("thread_id")
    if thread_id is None:
        raise ValidationError({"thread_id": ["The config must name a thread: {'configurable': {'thread_id': ...}}."]})
    namespace = configurable.get("checkpoint_ns") or ""  # type: ignore[union-attr]
    if not isinstance(namespace, str) or len(namespace) > 255 or not storable(namespace):
        raise ValidationError({"checkpoint_ns": ["Must be a string of at most 255 characters, without NUL."]})
    return check_id(str(thread_id), "thread_id"), namespace


def _check_checkpoint(checkpoint: object, metadata: object, new_versions: object) -> None:
    if not isinstance(checkpoint, Mapping) or not all(
        isinstance(checkpoint.get(part), dict) for part in ("channel_values", "channel_versions")
    ):
        raise ValidationError({"checkpoint": ["Must be a LangGraph Checkpoint: channel_values, channel_versions..."]})
    check_id(checkpoint.get("id"), "checkpoint.id")
    if not isinstance(metadata, Mapping):
        raise ValidationError({"metadata": ["Must be a dict."]})
    if not isinstance(new_versions, Mapping):
        raise ValidationError({"new_versions": ["Must be a dict of channels and their new versions."]})


def _is_write(write: object) -> bool:
    return isinstance(write, (tuple, list)) and len(write) == 2 and isinstance(write[0], str)


def _config(thread_id: str, namespace: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": namespace, "checkpoint_id": checkpoint_id}}


def _json_metadata(metadata: CheckpointMetadata) -> dict:
    """The metadata as JSON gives it back (a tuple a list, keys in order): a filter finds what a read returns.

    Refused: what JSON has no value for (NaN, a datetime), and text that
    PostgreSQL's JSON cannot hold (NUL, a lone surrogate): one such value
    would break every filtered list() after it.
    """
    try:
        decoded = json.loads(json.dumps(metadata, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValidationError({"metadata": ["Must be JSON: %s." % error]}) from None
    if not _all_storable(decoded):
        raise ValidationError({"metadata": ["Its text must not contain NUL characters or lone surrogates."]})
    return decoded


def _all_storable(value: Any) -> bool:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return all(storable(key) and _all_storable(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_all_storable(item) for item in value)
    return True


def _refuse_on_a_loop(method: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise asyncio.InvalidStateError(
        "AsyncLoomSaver.%s would block the event loop: await a%s(...) instead, or call it from another thread"
        % (method, method)
    )

"""LoomSession: the OpenAI Agents SDK's `Session` kept by loom_models.

    from agents import Agent, Runner
    from loom_models.integrations.openai_agents import LoomSession

    session = LoomSession("conversation_1", data_dir="./loom-data")   # or database_url=, or storage=
    result = await Runner.run(agent, "Where is my order?", session=session)
    await session.record_usage(result, pricing={"input": 2.0, "output": 8.0})   # USD per million tokens

Where `SQLiteSession` keeps opaque JSON, each item here is a message of the
loom session `session_id`: kept verbatim (it comes back exactly as given, ids
and all, whatever its type) and read into loom's own columns where it maps
(role, content, tool calls, tool result), so that `load_session`, search,
`loom-db export` and the multi-agent reads see the conversation. The store
keeps exact token and cost totals (`record_usage`), and the same storage has
the human-in-the-loop requests, references, backups and PostgreSQL.

Differences from SQLiteSession: `clear_session()` deletes the items and
zeroes the totals but keeps the session (its name, agent, context and tool
executions, which the SDK does not know of; `storage.sessions.delete_session`
removes it); `get_items(0)` is [] and a negative limit is a ValidationError.
Items are in the order they were added, across processes and machines too:
the store stamps each with its session's clock, which never goes back.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from agents.memory.session_settings import SessionSettings, coerce_session_settings

from .. import aio
from ..errors import ForeignKeyConstraintError, LoomStorageError, NotFoundError, ValidationError
from ..sessions import Message, Session
from ..storage import Storage
from ..validation import check_id, check_limit, storable

Item = dict[str, Any]
# USD per million tokens ({"input": 2.0, "output": 8.0}), or a function of the run's `Usage` giving USD.
Pricing = Mapping[str, float] | Callable[[Any], float]


class LoomSession:
    """The SDK's Session protocol (get_items, add_items, pop_item, clear_session, session_settings) on loom.

    Exactly one of `storage` (an aio storage, shared by many sessions, or a sync
    one), `data_dir` or `database_url`. The sessions of one data directory, URL
    or sync storage share one store (its connections and threads), opened by
    the first of them and closed by the last one's `close()`.
    """

    def __init__(
        self,
        session_id: str,
        storage: aio.AsyncStorage | Storage | None = None,
        *,
        data_dir: str | os.PathLike | None = None,
        database_url: str | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = check_id(session_id, "session_id")
        self.session_settings = (
            SessionSettings() if session_settings is None else coerce_session_settings(session_settings)
        )
        if sum(where is not None for where in (storage, data_dir, database_url)) != 1:
            raise ValidationError({"storage": ["Give exactly one of storage, data_dir or database_url."]})
        self._closed = False
        self._shared: tuple | None = None
        if isinstance(storage, aio.AsyncStorage):
            self._storage = storage
            return
        if isinstance(storage, Storage):
            self._shared = (os.getpid(), "storage", id(storage))
            self._storage = _SHARED.take(self._shared, lambda: aio.AsyncStorage.over(storage))
        elif storage is None:
            if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
                raise ValidationError({"data_dir": ["Must be a path."]})
            # Per process: a forked child opens its own.
            where = (os.getpid(), "location", os.path.realpath(data_dir) if data_dir is not None else database_url)
            self._shared = where
            # A store for conversations: no references to collect, no collector thread.
            self._storage = _SHARED.take(
                where, lambda: aio.open_now(data_dir, database_url=database_url, gc_interval=0)
            )
        else:
            raise ValidationError({"storage": ["Expected an aio or a sync storage, got %s." % type(storage).__name__]})

    @property
    def storage(self) -> aio.AsyncStorage:
        """The storage the items are in (refused once the session is closed)."""
        if self._closed:
            raise LoomStorageError("%r is closed" % self)
        return self._storage

    async def get_items(self, limit: int | None = None) -> list[Item]:
        """The latest `limit` items (None: session_settings.limit, then all), oldest first."""
        if limit is None:
            limit = self.session_settings.limit
        if limit == 0:
            return []
        messages = await self.storage.sessions.load_messages(
            self.session_id, limit=None if limit is None else check_limit(limit)
        )
        return [item_of(message) for message in messages]

    async def add_items(self, items: list[Item]) -> None:
        """Append items, in one transaction; the session is made on its first items."""
        sessions = self.storage.sessions  # refused when closed, even for no items
        messages = [message_of(item) for item in items]
        if not messages:
            return
        try:
            await sessions.save_messages(self.session_id, messages)
        except ForeignKeyConstraintError:  # no session yet
            await sessions.save_session(Session(id=self.session_id))
            await sessions.save_messages(self.session_id, messages)

    async def pop_item(self) -> Item | None:
        """Remove the newest item, its tokens and cost off the session's totals; None when there is none."""
        popped = await self.storage.sessions.pop_message(self.session_id)
        return None if popped is None else item_of(popped)

    async def clear_session(self) -> None:
        """Delete every item, the totals back to 0; the session itself stays (see the module's docstring)."""
        with contextlib.suppress(NotFoundError):  # no session, nothing to clear
            await self.storage.sessions.clear_messages(self.session_id)

    async def record_usage(self, result: Any, *, pricing: Pricing | None = None) -> Message | None:
        """Put a run's tokens, and their cost by `pricing`, on the newest item and the session's totals.

            result = await Runner.run(agent, "Hi", session=session)
            await session.record_usage(result, pricing={"input": 2.0, "output": 8.0})   # USD per million
            await session.record_usage(result, pricing=lambda usage: usage.requests * 0.01)

        No price list is built in: prices change, the application knows its own.
        Returns the item's message as it now is, or None when the session has no item.
        """
        usage = result.context_wrapper.usage
        tokens, cost = usage.input_tokens + usage.output_tokens, _cost(usage, pricing)
        try:
            return await self.storage.sessions.add_usage(self.session_id, token_count=tokens, cost_usd=cost)
        except NotFoundError:
            return None  # no item to charge

    def close(self) -> None:
        """Refuse every call from now on; the store opened for it closes with the last session on it.

        A storage given to it stays open. Safe to call twice.
        """
        if not self._closed and self._shared is not None:
            _SHARED.give_back(self._shared)
        self._closed = True

    def __repr__(self) -> str:
        return "<LoomSession %s on %r>" % (self.session_id, self._storage)


def _cost(usage: Any, pricing: Pricing | None) -> float:
    if pricing is None:
        return 0.0
    if callable(pricing):
        cost = pricing(usage)
    elif isinstance(pricing, Mapping) and set(pricing) <= {"input", "output"} and all(map(_number, pricing.values())):
        cost = (usage.input_tokens * pricing.get("input", 0) + usage.output_tokens * pricing.get("output", 0)) / 1e6
    else:
        expected = 'Expected {"input": USD, "output": USD} per million tokens, or a function of the usage.'
        raise ValidationError({"pricing": [expected]})
    if not _number(cost) or not math.isfinite(cost) or cost < 0:
        raise ValidationError({"pricing": ["The cost must be a finite number of USD, 0 or more; got %r." % (cost,)]})
    return float(cost)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _SharedStores:
    """The stores that sessions open by location, one per location: opened by the first, closed by the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[tuple, tuple[aio.AsyncStorage, int]] = {}

    def take(self, where: tuple, open_: Callable[[], aio.AsyncStorage]) -> aio.AsyncStorage:
        with self._lock:
            storage, users = self._stores.get(where) or (open_(), 0)
            self._stores[where] = (storage, users + 1)
            return storage

    def give_back(self, where: tuple) -> None:
        with self._lock:
            storage, users = self._stores.pop(where)
            if users > 1:
                self._stores[where] = (storage, users - 1)
                return
        storage.close_now()


_SHARED = _SharedStores()


# -- items and messages ------------------------------------------------------------------------


def message_of(item: Mapping[str, Any]) -> dict:
    """A loom message of an SDK item: the item verbatim, and what maps of it in loom's own columns.

    message_of({"role": "user", "content": "Hi"})   # {'role': 'user', 'content': 'Hi', 'item': {...}, ...}
    """
    if not isinstance(item, Mapping):
        raise ValidationError({"item": ["Expected an item (a mapping), got %s." % type(item).__name__]})
    kind, role = item.get("type", "message"), item.get("role")
    if not isinstance(kind, str) or not isinstance(role, (str, type(None))):
        raise ValidationError({"item": ["An item's type and role are strings: %.80r." % (item,)]})
    columns: dict[str, Any] = {"role": "assistant", "content": ""}
    if kind == "message" and role is not None:
        columns["role"] = _ROLES.get(role, "assistant")
        columns["content"] = _text(item.get("content"))
    elif kind == "reasoning":
        columns["content"] = _text(item.get("summary"))
    elif kind.endswith("_output"):  # function_call_output, computer_call_output...
        # The output is in the item and, as text, in content: not a third time in tool_result.
        columns.update(role="tool", tool_use_id=_id(item.get("call_id")), content=_text(item.get("output")))
    elif kind.endswith("_call"):  # function_call, web_search_call, computer_call...
        call = {"ID": _id(item.get("call_id") or item.get("id")), "Name": item.get("name") or kind}
        call["Input"] = _arguments(item.get("arguments", item.get("action")))
        columns["tool_calls"] = [call]
    return {**columns, "item": dict(item)}


def item_of(message: Message) -> Item:
    """The SDK item a message was saved from; for one loom wrote itself, the nearest item."""
    if message.item is not None:
        return message.item
    if message.role == "tool" and message.tool_use_id:
        return {"type": "function_call_output", "call_id": message.tool_use_id, "output": message.content}
    return {"role": message.role if message.role != "tool" else "assistant", "content": message.content}


# The SDK's developer role is what loom calls system.
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def _text(content: Any) -> str:
    """The text of a content: itself, or its parts' texts a line each (images and files have none)."""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = [part.get("text") or part.get("refusal") for part in content if isinstance(part, Mapping)]
        text = "\n".join(part for part in parts if isinstance(part, str))
    else:
        text = ""
    return text if storable(text) else text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 255 and storable(value) else None


def _arguments(arguments: Any) -> Any:
    """A call's input: its JSON arguments decoded when they are JSON, else as given."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments, parse_constant=_not_json)
        except (ValueError, RecursionError):
            return arguments
    return arguments


def _not_json(constant: str) -> None:
    raise ValueError("%s is not JSON" % constant)  # NaN, Infinity: Python reads them, JSON has none

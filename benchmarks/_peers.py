"""The peers: other libraries' chat-history stores, each on its own SQLite file.

    stores, notes = available()   # the peer classes that import here, a note for each that does not
    peer = stores[0](directory)
    peer.create_session("sess_1", messages)     # untimed: one history object per conversation
    peer.save_message("sess_1", {"role": "user", "content": "Hi"})

They come with the `bench` extra (pip install -e ".[bench]"). Each has only the
operations its library has: openai-agents' SQLiteSession (add_items, get_items),
and loom's LoomSession beside it, used alike; and langchain-community's
SQLChatMessageHistory (add_message, add_messages, .messages; it has no "latest
N"). Each is used as its documentation shows, with its own schema and settings,
and turns the benchmark's plain message values into its own input objects
inside the timed call, as loom does.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import os


class AgentsStore:
    name = "openai-agents"
    distribution = "openai-agents"
    module = "agents.memory"
    domains = ("sessions",)

    def __init__(self, directory: str):
        from agents.memory import SQLiteSession

        self._session_class = SQLiteSession
        self._path = os.path.join(directory, "openai-agents.db")
        # Its API is async: one event loop for the whole run, so no call pays for making one.
        self._loop = asyncio.new_event_loop()
        self._sessions: dict = {}

    def create_session(self, session_id: str, messages: list[dict]) -> None:
        self._sessions[session_id] = self._session_class(session_id, self._path)
        self.save_messages(session_id, messages)

    def save_message(self, session_id: str, message: dict) -> None:
        self._run(self._sessions[session_id].add_items([_item(message)]))

    def save_messages(self, session_id: str, messages: list[dict]) -> None:
        self._run(self._sessions[session_id].add_items([_item(message) for message in messages]))

    def load_session(self, session_id: str) -> list[dict]:
        return self._run(self._sessions[session_id].get_items())

    def load_messages(self, session_id: str, limit: int) -> list[dict]:
        return self._run(self._sessions[session_id].get_items(limit=limit))

    def count_messages(self, session_id: str) -> int:
        return len(self.load_session(session_id))

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    def _run(self, coroutine):
        return self._loop.run_until_complete(coroutine)


class LoomSessionStore(AgentsStore):
    """loom's own Session for the SDK (integrations.openai_agents), used as AgentsStore uses SQLiteSession.

    Its sessions share one aio storage, as an application's do.
    """

    name = "LoomSession"
    distribution = "loom-models"
    module = "loom_models.integrations.openai_agents"

    def __init__(self, directory: str):
        from loom_models import aio
        from loom_models.integrations.openai_agents import LoomSession

        super().__init__(directory)
        self.storage = aio.open_now(os.path.join(directory, "loom-session"), gc_interval=0)
        self._session_class = lambda session_id, _path: LoomSession(session_id, self.storage)

    def close(self) -> None:
        super().close()
        self.storage.close_now()


class LangChainStore:
    name = "langchain-community"
    distribution = "langchain-community"
    module = "langchain_community.chat_message_histories"
    domains = ("sessions",)

    def __init__(self, directory: str):
        from langchain_community.chat_message_histories import SQLChatMessageHistory
        from langchain_core.messages import AIMessage, HumanMessage
        from sqlalchemy import create_engine

        self._history_class = SQLChatMessageHistory
        self._message_classes = {"user": HumanMessage, "assistant": AIMessage}
        # One engine (one connection pool) for every conversation of the file.
        self._engine = create_engine("sqlite:///" + os.path.join(directory, "langchain-community.db"))
        self._histories: dict = {}

    def create_session(self, session_id: str, messages: list[dict]) -> None:
        self._histories[session_id] = self._history_class(session_id=session_id, connection=self._engine)
        self.save_messages(session_id, messages)

    def save_message(self, session_id: str, message: dict) -> None:
        self._histories[session_id].add_message(self._message(message))

    def save_messages(self, session_id: str, messages: list[dict]) -> None:
        self._histories[session_id].add_messages([self._message(message) for message in messages])

    def load_session(self, session_id: str) -> list:
        return self._histories[session_id].messages

    def count_messages(self, session_id: str) -> int:
        return len(self.load_session(session_id))

    def close(self) -> None:
        self._engine.dispose()

    def _message(self, message: dict):
        return self._message_classes[message["role"]](content=message["content"])


def available() -> tuple[list[type], list[str]]:
    """The peer classes whose library imports here, and a note for each that does not."""
    stores, notes = [], []
    for store in (AgentsStore, LoomSessionStore, LangChainStore):
        try:
            importlib.import_module(store.module)
        except ImportError as error:
            notes.append('%s skipped: %s (pip install -e ".[bench]" adds it)' % (store.name, error))
        else:
            stores.append(store)
    return stores, notes


def version(store: type) -> str:
    return importlib.metadata.version(store.distribution)


def _item(message: dict) -> dict:
    # An input item of the OpenAI Responses API, as an agent run hands it to its session.
    return {"role": message["role"], "content": message["content"]}

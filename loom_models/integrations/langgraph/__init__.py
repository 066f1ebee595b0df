"""LangGraph on loom: checkpointers (LoomSaver, AsyncLoomSaver) and long-term stores (LoomStore, AsyncLoomStore).

Needs the `langgraph` extra: pip install "loom-models[langgraph]".
"""

from .saver import AsyncLoomSaver, LoomSaver
from .store import AsyncLoomStore, LoomStore

__all__ = ["AsyncLoomSaver", "AsyncLoomStore", "LoomSaver", "LoomStore"]

"""The checkpoints domain: checkpoints.db, LangGraph's state and long-term store.

integrations.langgraph turns its rows into LangGraph's objects.
"""

from .models import ChannelValue, GraphCheckpoint, GraphWrite
from .repository import CheckpointRepository, StoredCheckpoint

__all__ = ["ChannelValue", "CheckpointRepository", "GraphCheckpoint", "GraphWrite", "StoredCheckpoint"]

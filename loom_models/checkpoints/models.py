"""The rows of LangGraph's state: checkpoints, channel values by version, pending writes.

Bytes are what the saver's serializer gave (`type` is its tag); the metadata
and the channel versions are JSON, for the database's own queries (a metadata
filter, pruning).
"""

import peewee

from ..base import BaseModel
from ..columns import JSONField, UnixTimeField


class GraphCheckpoint(BaseModel):
    thread_id = peewee.TextField()
    checkpoint_ns = peewee.TextField(default="")
    checkpoint_id = peewee.TextField()
    parent_checkpoint_id = peewee.TextField(null=True)
    run_id = peewee.TextField(null=True)
    type = peewee.TextField()
    checkpoint = peewee.BlobField()
    metadata = JSONField()
    channel_versions = JSONField()
    created_at = UnixTimeField(resolution=1000)

    class Meta:
        table_name = "graph_checkpoints"
        primary_key = peewee.CompositeKey("thread_id", "checkpoint_ns", "checkpoint_id")

    def __repr__(self) -> str:
        values = self.__data__
        return "<GraphCheckpoint %s/%s %s>" % (
            values.get("thread_id"),
            values.get("checkpoint_ns") or "",
            values.get("checkpoint_id"),
        )


class ChannelValue(BaseModel):
    """A channel's value at one version; with a `base_version`, the items it appends to that version's list."""

    thread_id = peewee.TextField()
    checkpoint_ns = peewee.TextField()
    channel = peewee.TextField()
    version = peewee.TextField()
    base_version = peewee.TextField(null=True)
    type = peewee.TextField()
    value = peewee.BlobField()

    class Meta:
        table_name = "graph_channel_values"
        primary_key = peewee.CompositeKey("thread_id", "checkpoint_ns", "channel", "version")


class GraphWrite(BaseModel):
    """A task's write to a channel, pending on a checkpoint."""

    thread_id = peewee.TextField()
    checkpoint_ns = peewee.TextField()
    checkpoint_id = peewee.TextField()
    task_id = peewee.TextField()
    task_path = peewee.TextField(default="")
    idx = peewee.IntegerField()
    channel = peewee.TextField()
    type = peewee.TextField()
    value = peewee.BlobField()

    class Meta:
        table_name = "graph_writes"
        primary_key = peewee.CompositeKey("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx")


class StoreItem(BaseModel):
    """An item of LangGraph's long-term store (integrations.langgraph.LoomStore): a JSON object by namespace and key."""

    namespace = peewee.TextField()  # the labels joined by "."
    key = peewee.TextField()
    value = peewee.TextField()  # JSON text of an object
    created_at = UnixTimeField(resolution=1000)
    updated_at = UnixTimeField(resolution=1000)
    expires_at = UnixTimeField(resolution=1000, null=True)
    ttl_minutes = peewee.FloatField(null=True)

    class Meta:
        table_name = "graph_store_items"
        primary_key = peewee.CompositeKey("namespace", "key")

    def __repr__(self) -> str:
        return "<StoreItem %s %s>" % (self.__data__.get("namespace"), self.__data__.get("key"))

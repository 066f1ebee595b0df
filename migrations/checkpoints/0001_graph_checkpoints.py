"""LangGraph's checkpoints, the channel values they point at, and the writes pending on them.

A channel's value is stored once per version (graph_channel_values), not once
per checkpoint: a checkpoint names the versions of its channels. A value that
only appends to a list names the version it extends (`base_version`) and holds
the appended items alone, so a growing message list costs its new messages.

Our own tables, prefixed so that they never meet LangGraph's own savers' tables
in a shared PostgreSQL database. Bytes are the serializer's, as it gave them.
"""

from peewee import SqliteDatabase

CHECKPOINTS = """CREATE TABLE graph_checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    run_id TEXT,
    type TEXT NOT NULL,
    checkpoint {blob} NOT NULL,
    metadata TEXT NOT NULL,
    channel_versions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
)"""

CHANNEL_VALUES = """CREATE TABLE graph_channel_values (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    base_version TEXT,
    type TEXT NOT NULL,
    value {blob} NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version),
    FOREIGN KEY (thread_id, checkpoint_ns, channel, base_version)
        REFERENCES graph_channel_values (thread_id, checkpoint_ns, channel, version)
)"""

WRITES = """CREATE TABLE graph_writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT NOT NULL,
    value {blob} NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
)"""

INDEXES = (
    "CREATE INDEX idx_graph_checkpoints_run ON graph_checkpoints(run_id)",
    # A value's extensions, found when it is deleted (the foreign key's check).
    "CREATE INDEX idx_graph_channel_values_base"
    " ON graph_channel_values(thread_id, checkpoint_ns, channel, base_version)",
)


def up(migrator, db):
    blob = "BLOB" if isinstance(db, SqliteDatabase) else "BYTEA"
    for table in (CHECKPOINTS, CHANNEL_VALUES, WRITES):
        db.execute_sql(table.format(blob=blob))
    for index in INDEXES:
        db.execute_sql(index)


def down(migrator, db):
    for table in ("graph_writes", "graph_channel_values", "graph_checkpoints"):
        db.execute_sql("DROP TABLE %s" % table)

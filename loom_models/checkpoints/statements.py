"""The statements of the checkpoints domain that get_tuple and put run, built once.

    sql = CheckpointStatements(graphs.Checkpoint, graphs.ChannelValue, graphs.Write)
    sql.newest.models(thread_id="thread-1", checkpoint_ns="", limit=1)   # [GraphCheckpoint] or []
    sql.insert_value.execute(**value_row)                              # stored once: a second time, ignored

Building these queries took most of a put's and a get_tuple's time (statements.py says why).
"""

from __future__ import annotations

from ..statements import Statement, param
from .models import ChannelValue, GraphCheckpoint, GraphWrite


class CheckpointStatements:
    def __init__(self, C: type[GraphCheckpoint], V: type[ChannelValue], W: type[GraphWrite]) -> None:
        of_thread = (C.thread_id == param(C.thread_id), C.checkpoint_ns == param(C.checkpoint_ns))
        self.newest = Statement(C.select().where(*of_thread).order_by(C.checkpoint_id.desc()).limit(param("limit")))
        self.checkpoint = Statement(C.select().where(*of_thread, C.checkpoint_id == param(C.checkpoint_id)))
        self.writes_of = Statement(
            W.select()
            .where(
                W.thread_id == param(W.thread_id),
                W.checkpoint_ns == param(W.checkpoint_ns),
                W.checkpoint_id == param(W.checkpoint_id),
            )
            .order_by(W.task_path, W.task_id, W.idx)
        )
        self.insert_checkpoint = Statement(
            C.insert({field: param(field) for field in C._meta.sorted_fields}).on_conflict(
                conflict_target=[C.thread_id, C.checkpoint_ns, C.checkpoint_id],
                preserve=[C.parent_checkpoint_id, C.run_id, C.type, C.checkpoint, C.metadata, C.channel_versions],
            )
        )
        # A version is one value: stored once, it stays.
        self.insert_value = Statement(
            V.insert({field: param(field) for field in V._meta.sorted_fields}).on_conflict_ignore()
        )
        self.value_exists = Statement(
            V.select(V.version).where(
                V.thread_id == param(V.thread_id),
                V.checkpoint_ns == param(V.checkpoint_ns),
                V.channel == param(V.channel),
                V.version == param(V.version),
            )
        )

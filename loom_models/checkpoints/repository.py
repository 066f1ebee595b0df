"""CheckpointRepository: LangGraph's checkpoints, channel values and pending writes, as stored bytes.

    with open_storage("./loom-data") as storage:
        graphs = storage.checkpoints
        graphs.put("thread-1", checkpoint_row, value_rows)   # one transaction
        stored = graphs.get("thread-1", "")                  # the newest, with its values and writes
        graphs.prune(["thread-1"])                           # keep only the newest per namespace

This is the store under integrations.langgraph's savers, which turn LangGraph's
objects into these rows with their serializer; the repository never decodes
what the serializer wrote. A channel value is a list of pieces: the value, then
the items each later version appended to it (models.ChannelValue).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import peewee
from peewee import SQL, Tuple, fn

from ..base import bind_models
from ..calls import repository_call
from ..columns import utc_now
from ..errors import ValidationError
from ..repository import Repository
from ..validation import check_id, check_limit, check_time
from .models import ChannelValue, GraphCheckpoint, GraphWrite, StoreItem
from .statements import CheckpointStatements

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

Piece = tuple[str, bytes]  # a serializer's (type, bytes)

# Channel values looked up in one statement: four bound values each, well under SQLite's limit.
_SEEDS_PER_QUERY = 200
_CHAIN = """WITH RECURSIVE
chain(thread_id, checkpoint_ns, channel, version, head, base_version, type, value, depth) AS (
    SELECT thread_id, checkpoint_ns, channel, version, version, base_version, type, value, 0
      FROM graph_channel_values WHERE {seeds}
    UNION ALL
    SELECT v.thread_id, v.checkpoint_ns, v.channel, v.version, c.head, v.base_version, v.type, v.value, c.depth + 1
      FROM chain c {base}
)
SELECT thread_id, checkpoint_ns, channel, head, type, value FROM chain ORDER BY depth DESC"""
_IS_BASE = (
    "v.thread_id = c.thread_id AND v.checkpoint_ns = c.checkpoint_ns"
    " AND v.channel = c.channel AND v.version = c.base_version"
)
# Each step of the chain is one primary-key lookup. PostgreSQL plans a plain join
# by its statistics, which for a young table say "scan it whole" at every step
# (15 ms for a chain of 200); a lateral one-row lookup (LIMIT 1 keeps it from being
# planned as a join again) is an index lookup a step whatever they say.
_BASE = {
    "sqlite": "JOIN graph_channel_values v ON " + _IS_BASE,
    "postgresql": "CROSS JOIN LATERAL (SELECT * FROM graph_channel_values v WHERE %s LIMIT 1) v" % _IS_BASE,
}
_SEED = "(thread_id = {p} AND checkpoint_ns = {p} AND channel = {p} AND version = {p})"
# Rows per INSERT: well under every backend's limit on bound parameters.
_ROWS_PER_INSERT = 100
# The key space of the threads' locks (backend.lock_keys): any constant, the same in every process.
_THREAD_LOCKS = 0x67726168  # "grah"


@dataclasses.dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint row, the pieces of each of its channels' values, and the writes pending on it in order."""

    row: GraphCheckpoint
    values: dict[str, list[Piece]]
    writes: list[GraphWrite]


class CheckpointRepository(Repository):
    domain = "checkpoints"
    file = "checkpoints.db"
    table = "graph_checkpoints"
    span_prefix = "checkpoint_store"
    models = (GraphCheckpoint, ChannelValue, GraphWrite, StoreItem)  # the store's items too: its migrations

    def __init__(self, database: peewee.Database, tracer: Tracer | None = None):
        super().__init__(database, tracer)
        self.Checkpoint, self.ChannelValue, self.Write = bind_models(
            database, [GraphCheckpoint, ChannelValue, GraphWrite]
        )
        self._sql = CheckpointStatements(self.Checkpoint, self.ChannelValue, self.Write)

    @repository_call(ids=("thread_id",))
    def put(self, thread_id: str, row: Mapping[str, Any], values: Sequence[Mapping[str, Any]]) -> list[str]:
        """Store a checkpoint and its channels' new values, in one transaction.

        A value that appends to its `base_version` needs that version stored:
        when another process has pruned it, nothing is written, and the
        channels whose base is gone are returned, to be given whole.
        """
        check_id(thread_id, "thread_id")
        namespace = {"thread_id": thread_id, "checkpoint_ns": row["checkpoint_ns"]}
        with self.backend.write():
            self._lock_threads([thread_id])  # no prune takes a base between the look and the insert
            missing = [
                value["channel"]
                for value in values
                if value.get("base_version") is not None
                and not self._sql.value_exists.rows(
                    **namespace, channel=value["channel"], version=value["base_version"]
                )
            ]
            if missing:
                return missing
            for value in values:
                self._sql.insert_value.execute(**{"base_version": None, **value, **namespace})
            checkpoint = {"parent_checkpoint_id": None, "run_id": None, **row, **namespace, "created_at": utc_now()}
            self._sql.insert_checkpoint.execute(**checkpoint)
        return []

    @repository_call(ids=("thread_id",))
    def put_writes(self, thread_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store a task's writes. One at a negative index (an error, an interrupt...) replaces
        the one stored there; any other write already stored is kept, as LangGraph expects."""
        check_id(thread_id, "thread_id")
        W = self.Write
        # Several at one index (two interrupts of one task): the last one stands, as it would one by one.
        special = {_write_key(row): {**row, "thread_id": thread_id} for row in rows if row["idx"] < 0}
        ordinary = [{**row, "thread_id": thread_id} for row in rows if row["idx"] >= 0]
        with self.backend.write():
            self._lock_threads([thread_id])
            if special:
                W.insert_many(list(special.values())).on_conflict(
                    conflict_target=[W.thread_id, W.checkpoint_ns, W.checkpoint_id, W.task_id, W.idx],
                    preserve=[W.task_path, W.channel, W.type, W.value],
                ).execute()
            for start in range(0, len(ordinary), _ROWS_PER_INSERT):
                W.insert_many(ordinary[start : start + _ROWS_PER_INSERT]).on_conflict_ignore().execute()

    @repository_call(ids=("thread_id",))
    def get(self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None) -> StoredCheckpoint | None:
        """The checkpoint `checkpoint_id` of a thread's namespace, or its newest; None if there is none."""
        check_id(thread_id, "thread_id")
        where = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
        with self.backend.snapshot():
            if checkpoint_id is None:
                rows = self._sql.newest.models(**where, limit=1)
            else:
                rows = self._sql.checkpoint.models(**where, checkpoint_id=checkpoint_id)
            return self._with_values_and_writes(rows)[0] if rows else None

    @repository_call()
    def list_page(
        self,
        thread_id: str | None = None,
        checkpoint_ns: str | None = None,
        checkpoint_id: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        before: str | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int = 25,
    ) -> list[StoredCheckpoint]:
        """Checkpoints, newest first, whose metadata holds every key of `metadata` with its value.

        `before`: only checkpoints older than that id. `after`: the (checkpoint_id,
        thread_id, checkpoint_ns) of the previous page's last checkpoint.
        """
        check_limit(limit)
        C = self.Checkpoint
        query = C.select()
        for column, value in (
            (C.thread_id, thread_id),
            (C.checkpoint_ns, checkpoint_ns),
            (C.checkpoint_id, checkpoint_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if before is not None:
            query = query.where(C.checkpoint_id < before)
        if after is not None:
            query = query.where(Tuple(C.checkpoint_id, C.thread_id, C.checkpoint_ns) < Tuple(*after))
        for key, value in (metadata or {}).items():
            if not isinstance(key, str):
                raise ValidationError({"filter": ["Keys must be strings."]})
            query = query.where(self.backend.json_member_is(C.metadata, key, _json(value)))
        order = (C.checkpoint_id.desc(), C.thread_id.desc(), C.checkpoint_ns.desc())
        with self.backend.snapshot():
            return self._with_values_and_writes(list(query.order_by(*order).limit(limit)))

    @repository_call(ids=("thread_id",))
    def delete_thread(self, thread_id: str) -> int:
        """Delete a thread's checkpoints, values and writes; return how many checkpoints went."""
        check_id(thread_id, "thread_id")
        with self.backend.write():
            self._lock_threads([thread_id])
            return self._delete_threads([thread_id])

    @repository_call()
    def delete_for_runs(self, run_ids: Sequence[str]) -> int:
        """Delete the checkpoints the runs made, their writes, and values nothing else needs; return the count."""
        run_ids = _ids(run_ids, "run_ids")
        C = self.Checkpoint
        doomed = C.select(C.thread_id, C.checkpoint_ns, C.checkpoint_id).where(C.run_id.in_(run_ids))
        with self.backend.write():
            self._lock_threads(sorted({thread_id for thread_id, _, _ in doomed.tuples()}))
            return self._delete_checkpoints(list(doomed.tuples()))  # read again, now that no put comes between

    @repository_call(ids={"source_thread_id": "thread_id"})
    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> int:
        """Copy a thread's checkpoints, values and writes to another thread id; return how many checkpoints.

        What the target already holds under the same ids is kept.
        """
        check_id(source_thread_id, "source_thread_id")
        check_id(target_thread_id, "target_thread_id")
        with self.backend.write():
            self._lock_threads([source_thread_id, target_thread_id])
            # A statement a table: a value's base is in the same statement, checked at its end.
            for model in (self.ChannelValue, self.Checkpoint, self.Write):
                fields = [field for field in model._meta.sorted_fields if field.name != "thread_id"]
                # A copy is new: idle since it was made, not since its source's last step.
                copied = [
                    peewee.Value(utc_now(), converter=f.db_value) if f.name == "created_at" else f for f in fields
                ]
                source = model.select(peewee.Value(target_thread_id), *copied).where(
                    model.thread_id == source_thread_id
                )
                model.insert_from(source, [model.thread_id, *fields]).on_conflict_ignore().execute()
            C = self.Checkpoint
            return C.select().where(C.thread_id == source_thread_id).count()

    @repository_call()
    def prune(
        self, thread_ids: Sequence[str], *, keep_latest: bool = True, idle_before: datetime.datetime | None = None
    ) -> int:
        """Delete the threads' checkpoints but the newest of each namespace (or all); return how many went.

        `idle_before`: only of those threads whose newest checkpoint is older
        still, as the transaction sees them (one resumed meanwhile is left be).
        """
        thread_ids = _ids(thread_ids, "thread_ids")
        C = self.Checkpoint
        with self.backend.write():
            self._lock_threads(thread_ids)  # a put of one of them waits, or has committed: seen below
            if idle_before is not None:
                thread_ids = self._idle(idle_before, thread_ids)
            if not keep_latest:
                return self._delete_threads(thread_ids)
            query = C.select(C.thread_id, C.checkpoint_ns, C.checkpoint_id).where(C.thread_id.in_(thread_ids))
            rows = list(query.tuples())
            newest: dict[tuple[str, str], str] = {}
            for thread_id, namespace, checkpoint_id in rows:
                newest[thread_id, namespace] = max(checkpoint_id, newest.get((thread_id, namespace), ""))
            doomed = [row for row in rows if row[2] != newest[row[0], row[1]]]
            return self._delete_checkpoints(doomed)

    @repository_call()
    def threads_idle_since(self, moment: datetime.datetime) -> list[str]:
        """The threads whose newest checkpoint was stored before `moment`, oldest first."""
        return self._idle(moment)

    @repository_call()
    def stats(self) -> dict:
        """Threads, checkpoints, pending writes, the bytes of channel values, and the long-term store's items.

        graphs.stats()["value_bytes"]
        """
        C, V, W = self.Checkpoint, self.ChannelValue, self.Write
        items = peewee.Table("graph_store_items").bind(self.database)  # its model needs LangGraph (items.py)
        with self.backend.snapshot():
            threads, checkpoints = C.select(fn.COUNT(C.thread_id.distinct()), fn.COUNT(SQL("*"))).tuples().get()
            values, size = V.select(fn.COUNT(SQL("*")), fn.COALESCE(fn.SUM(fn.LENGTH(V.value)), 0)).tuples().get()
            writes, stored = W.select().count(), items.select().count()
        return {
            "threads": threads,
            "checkpoints": checkpoints,
            "writes": writes,
            "values": values,
            "value_bytes": int(size),
            "store_items": stored,
        }

    def _lock_threads(self, thread_ids: list[str]) -> None:
        """Hold these threads until the transaction ends: their writers take turns (SQLite: the whole file)."""
        self.backend.lock_keys(_THREAD_LOCKS, thread_ids)

    def _idle(self, moment: datetime.datetime, among: list[str] | None = None) -> list[str]:
        """The threads (of `among`, if given) whose newest checkpoint was stored before `moment`, oldest first."""
        C = self.Checkpoint
        last = fn.MAX(C.created_at)
        idle = last < C.created_at.db_value(check_time(moment, "moment"))  # HAVING does not convert it
        query = C.select(C.thread_id).group_by(C.thread_id).having(idle)
        if among is not None:
            query = query.where(C.thread_id.in_(among))
        return [thread_id for (thread_id,) in query.order_by(last, C.thread_id).tuples()]

    def _with_values_and_writes(self, rows: list[GraphCheckpoint]) -> list[StoredCheckpoint]:
        """Each checkpoint with its channels' values and its pending writes, in two statements or so."""
        if not rows:
            return []
        seeds = {
            (row.thread_id, row.checkpoint_ns, channel, str(version))
            for row in rows
            for channel, version in row.channel_versions.items()
        }
        pieces = self._pieces(sorted(seeds))
        writes = self._writes([(row.thread_id, row.checkpoint_ns, row.checkpoint_id) for row in rows])
        return [
            StoredCheckpoint(
                row,
                {
                    channel: pieces[row.thread_id, row.checkpoint_ns, channel, str(version)]
                    for channel, version in row.channel_versions.items()
                    if (row.thread_id, row.checkpoint_ns, channel, str(version)) in pieces
                },
                writes.get((row.thread_id, row.checkpoint_ns, row.checkpoint_id), []),
            )
            for row in rows
        ]

    def _pieces(self, seeds: list[tuple[str, str, str, str]]) -> dict[tuple, list[Piece]]:
        """{(thread, namespace, channel, version): its value's pieces, the whole value first}."""
        found: dict[tuple, list[Piece]] = defaultdict(list)
        for start in range(0, len(seeds), _SEEDS_PER_QUERY):
            batch = seeds[start : start + _SEEDS_PER_QUERY]
            where = " OR ".join([_SEED.format(p=self.database.param)] * len(batch))
            chain = _CHAIN.format(seeds=where, base=_BASE[self.backend.name])
            cursor = self.database.execute_sql(chain, [v for seed in batch for v in seed])
            for thread_id, namespace, channel, head, type_, value in cursor.fetchall():
                found[thread_id, namespace, channel, head].append((type_, bytes(value)))
        return found

    def _writes(self, keys: list[tuple[str, str, str]]) -> dict[tuple, list[GraphWrite]]:
        W = self.Write
        if len(keys) == 1:  # get_tuple's
            ((thread_id, namespace, checkpoint_id),) = keys
            writes = self._sql.writes_of.models(
                thread_id=thread_id, checkpoint_ns=namespace, checkpoint_id=checkpoint_id
            )
        else:
            key = Tuple(W.thread_id, W.checkpoint_ns, W.checkpoint_id)
            writes = W.select().where(key.in_(keys)).order_by(W.task_path, W.task_id, W.idx)
        found: dict[tuple, list[GraphWrite]] = defaultdict(list)
        for write in writes:
            found[write.thread_id, write.checkpoint_ns, write.checkpoint_id].append(write)
        return found

    def _delete_threads(self, thread_ids: list[str]) -> int:
        C, V, W = self.Checkpoint, self.ChannelValue, self.Write
        W.delete().where(W.thread_id.in_(thread_ids)).execute()
        deleted = C.delete().where(C.thread_id.in_(thread_ids)).execute()
        V.delete().where(V.thread_id.in_(thread_ids)).execute()
        return deleted

    def _delete_checkpoints(self, keys: list[tuple[str, str, str]]) -> int:
        """Delete these checkpoints and their writes, then the values no checkpoint left needs."""
        if not keys:
            return 0
        C, W = self.Checkpoint, self.Write
        for start in range(0, len(keys), _SEEDS_PER_QUERY):
            batch = keys[start : start + _SEEDS_PER_QUERY]
            W.delete().where(Tuple(W.thread_id, W.checkpoint_ns, W.checkpoint_id).in_(batch)).execute()
            C.delete().where(Tuple(C.thread_id, C.checkpoint_ns, C.checkpoint_id).in_(batch)).execute()
        self._delete_unneeded_values(sorted({thread_id for thread_id, _, _ in keys}))
        return len(keys)

    def _delete_unneeded_values(self, thread_ids: list[str]) -> None:
        """Delete the threads' values that no checkpoint names, nor extends to one it names."""
        C, V = self.Checkpoint, self.ChannelValue
        for thread_id in thread_ids:
            needed = {
                (namespace, channel, str(version))
                for namespace, versions in C.select(C.checkpoint_ns, C.channel_versions)
                .where(C.thread_id == thread_id)
                .tuples()
                for channel, version in versions.items()
            }
            bases = {
                (namespace, channel, version): base
                for namespace, channel, version, base in V.select(V.checkpoint_ns, V.channel, V.version, V.base_version)
                .where(V.thread_id == thread_id)
                .tuples()
            }
            kept = set()
            for key in needed:
                while key in bases and key not in kept:
                    kept.add(key)
                    key = (key[0], key[1], bases[key])
            depths = _depths(bases)
            # The newest extensions first: a value goes only once nothing extends it.
            doomed = sorted(set(bases) - kept, key=lambda key: depths[key], reverse=True)
            for start in range(0, len(doomed), _SEEDS_PER_QUERY):
                batch = [(thread_id, *key) for key in doomed[start : start + _SEEDS_PER_QUERY]]
                V.delete().where(Tuple(V.thread_id, V.checkpoint_ns, V.channel, V.version).in_(batch)).execute()


def _write_key(row: Mapping[str, Any]) -> tuple:
    return (row["checkpoint_ns"], row["checkpoint_id"], row["task_id"], row["idx"])


def _depths(bases: dict[tuple, str | None]) -> dict[tuple, int]:
    """How many links down its chain each value is (a whole value: 0); each link walked once."""
    depths: dict[tuple, int] = {}
    for start in bases:
        chain, key = [], start
        while key not in depths:
            base = bases.get(key)
            if base is None:  # a whole value
                depths[key] = 0
                break
            chain.append(key)
            key = (key[0], key[1], base)
        for link in reversed(chain):
            depths[link] = depths[key] + 1
            key = link
    return depths


def _ids(ids: Iterable[str], name: str) -> list[str]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise ValidationError({name: ["Must be a list of ids."]})
    return [check_id(value, name) for value in ids]


def _json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        raise ValidationError({"filter": ["Values must be JSON: %r is not." % (value,)]}) from None

"""ReferenceRepository: large content stored once by its SHA-256, counted, and collected.

    from loom_models import open_storage
    from loom_models.references import ReferenceType

    with open_storage("./loom-data") as storage:
        refs = storage.references
        ref = refs.store(report_bytes, type=ReferenceType.TOOL_RESULT, ttl=3600)
        refs.store(report_bytes)        # the same bytes: one row, ref_count 2
        refs.resolve(ref.id)            # the bytes, until they expire
        refs.release(ref.id)            # 1; at 0 the row is gone
        refs.collect_garbage()          # expired and unreferenced rows go

Expired content is never returned, whether or not the collector has run yet.
`open_storage` runs the collector in a background thread every `gc_interval`
seconds; `gc_runs` and `evictions` in `stats()` count this repository's runs
since it was opened (they are not stored, so a restart starts them at 0).
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import hashlib
import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import peewee
from peewee import SQL, fn

from ..base import bind_models
from ..calls import repository_call
from ..columns import utc_now
from ..errors import (
    DatabaseCorruptError,
    NotFoundError,
    ReferenceExpiredError,
    ValidationError,
)
from ..repository import Repository
from ..validation import check_limit, check_seconds, check_time
from .models import SQLITE_STORE, Reference, ReferenceType
from .schemas import load_store
from .statements import ReferenceStatements, expired

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

logger = logging.getLogger(__name__)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# A collector transaction deletes at most this much, so it never holds the write
# lock for long, and close() never waits for more than one such batch.
GC_BATCH_ROWS = 100
GC_BATCH_BYTES = 8 * 2**20
COLLECTOR_LOCK_WAIT_MS = 500


@dataclasses.dataclass(frozen=True)
class ReferenceStats:
    active_refs: int
    current_bytes: int
    gc_runs: int
    evictions: int


# What each call's result tells its span (calls.repository_call).
def _reference_facts(reference: Reference) -> dict:
    return {"reference_id": reference.id, "ref_count": reference.ref_count}


def _ref_count(count: int) -> dict:
    return {"ref_count": count}


class ReferenceRepository(Repository):
    domain = "references"
    file = "references.db"
    table = "reference_store"
    span_prefix = "reference_store"
    models = (Reference,)

    def __init__(self, database: peewee.Database, tracer: Tracer | None = None):
        super().__init__(database, tracer)
        (self.Reference,) = bind_models(database, self.models)
        self._sql = ReferenceStatements(self.Reference)
        self._lock_reference = self.backend.row_lock(self.Reference)
        self._counts_lock = threading.Lock()
        self._gc_runs = self._evictions = 0
        self._stop_collecting = threading.Event()
        self._collector: threading.Thread | None = None
        self._other_sweeps: list[Callable[[], object]] = []

    @repository_call(tells=_reference_facts)
    def store(
        self, data: bytes, *, type: int = ReferenceType.UNSPECIFIED, ttl: float | datetime.timedelta | None = None
    ) -> Reference:
        """Store bytes; the same bytes again add one reference, and the later expiry wins.

        ref = refs.store(b"...", type=ReferenceType.LARGE_PAYLOAD, ttl=timedelta(hours=1))
        """
        values = load_store({"data": data, "type": type, "ttl": ttl})
        content, moment = values["data"], utc_now()
        row = {
            "id": hashlib.sha256(content).hexdigest(),
            "type": values["type"],
            "store": SQLITE_STORE,
            "data": content,
            "ref_count": 1,
            "created_at": moment,
            "expires_at": None if values["ttl"] is None else _expiry(moment, values["ttl"]),
            "size_bytes": len(content),
        }
        with self.backend.write():
            (stored,) = self._sql.store.models(**row, now=moment)
        stored.data = content
        return stored

    @repository_call(ids={"ref_or_id": "reference_id"})
    def resolve(self, ref_or_id: Reference | str, *, verify: bool = False) -> bytes:
        """The bytes of a live reference; with `verify`, re-hashed against the id.

        data = refs.resolve(ref)            # or refs.resolve(ref.id)
        """
        reference_id = _id_of(ref_or_id)
        found = self._sql.resolve.models(id=reference_id)
        self._check_live(reference_id, found[0] if found else None)
        data = bytes(found[0].data)  # PostgreSQL gives a memoryview
        if verify and hashlib.sha256(data).hexdigest() != reference_id:
            raise DatabaseCorruptError("reference corrupt: %s does not hash to its id" % reference_id)
        return data

    @repository_call(ids=("reference_id",), tells=_ref_count)
    def retain(self, reference_id: str) -> int:
        """Add a reference to live content; return the new count.

        refs.retain(ref.id)   # 2
        """
        _id_of(reference_id)
        R = self.Reference
        with self.backend.write():
            self._lock_reference(reference_id)
            retained = self._sql.retain.rows(id=reference_id, now=utc_now())
            if not retained:  # say why: absent, or expired
                self._check_live(reference_id, R.select(R.expires_at, R.ref_count).where(R.id == reference_id).first())
        return retained[0][0]

    @repository_call(ids=("reference_id",), tells=_ref_count)
    def release(self, reference_id: str) -> int:
        """Drop a reference; return the new count. At 0 the content is deleted.

        refs.release(ref.id)   # 0: gone
        """
        _id_of(reference_id)
        with self.backend.write():
            self._lock_reference(reference_id)
            if self._sql.delete_last.execute(id=reference_id).rowcount:
                return 0
            released = self._sql.release.rows(id=reference_id)
        if not released:
            raise NotFoundError("reference not found: %s" % reference_id)
        return released[0][0]

    @repository_call(ids=("reference_id",))
    def get(self, reference_id: str) -> Reference:
        """A live reference's metadata, without its bytes.

        refs.get(ref.id).size_bytes
        """
        _id_of(reference_id)
        R = self.Reference
        found = R.select(*self._sql.metadata).where(R.id == reference_id).first()
        self._check_live(reference_id, found)
        return found

    @repository_call()
    def ids_starting(self, prefix: str, *, limit: int = 2) -> list[str]:
        """The reference ids (SHA-256s) that start with `prefix`, at most `limit`: an id told from its start.

        refs.ids_starting("3f2a9c1e")   # ['3f2a9c1e0b7d...']
        """
        return self._ids_starting(self.Reference.id, prefix, limit)

    @repository_call()
    def list(self, *, limit: int | None = None) -> list[Reference]:
        """Live references' metadata, newest first.

        [r.id for r in refs.list(limit=20)]
        """
        R = self.Reference
        query = R.select(*self._sql.metadata).where(~expired(R, utc_now()), R.ref_count > 0)
        return list(query.order_by(R.created_at.desc(), R.id.desc()).limit(check_limit(limit)))

    @repository_call()
    def collect_garbage(self, now: datetime.datetime | None = None) -> int:
        """Delete expired and unreferenced content a small batch a transaction; return how many.

        refs.collect_garbage()
        """
        R = self.Reference
        garbage = expired(R, utc_now() if now is None else check_time(now, "now")) | (R.ref_count <= 0)
        removed = 0
        while not self._stop_collecting.is_set():
            with self.backend.write():
                batch = self._garbage_batch(garbage)
                # The condition again: content stored anew meanwhile is no garbage.
                removed += R.delete().where(R.id.in_(batch), garbage).execute() if batch else 0
            if not batch:
                break
        with self._counts_lock:
            self._gc_runs += 1
            self._evictions += removed
        return removed

    def _garbage_batch(self, garbage: peewee.Expression) -> builtins.list[str]:  # list: the method above
        """Ids of at most GC_BATCH_ROWS garbage rows and GC_BATCH_BYTES (but one row at least)."""
        R = self.Reference
        query = self.backend.skip_locked(R.select(R.id, R.size_bytes).where(garbage).limit(GC_BATCH_ROWS))
        batch: builtins.list[str] = []
        size = 0
        for row_id, row_size in query.tuples():
            if batch and size + row_size > GC_BATCH_BYTES:
                break
            batch.append(row_id)
            size += row_size
        return batch

    @repository_call()
    def stats(self) -> ReferenceStats:
        """Live references and their bytes; this repository's collector runs and evictions.

        refs.stats().current_bytes
        """
        R = self.Reference
        live = R.select(fn.COUNT(SQL("*")), fn.COALESCE(fn.SUM(R.size_bytes), 0)).where(
            ~expired(R, utc_now()), R.ref_count > 0
        )
        count, size = live.tuples().get()
        with self._counts_lock:
            return ReferenceStats(count, int(size), self._gc_runs, self._evictions)

    def start_collector(self, interval: float) -> None:
        """Collect garbage every `interval` seconds in a background thread, until close().

        refs.start_collector(300)
        """
        check_seconds(interval, "gc_interval", maximum=threading.TIMEOUT_MAX)
        if self._collector is not None:
            return
        self._collector = threading.Thread(
            target=self._collect_every, args=(interval,), name="loom-references-gc", daemon=True
        )
        self._collector.start()

    def sweep_too(self, sweep: Callable[[], object]) -> None:
        """Call `sweep` after each run of the collector, on its thread, until unsweep(sweep).

        refs.sweep_too(store_items_sweep)   # one housekeeping thread for the whole storage

        `sweep` looks after its own errors and connections.
        """
        self._other_sweeps.append(sweep)

    def unsweep(self, sweep: Callable[[], object]) -> None:
        """No longer call `sweep` (given to sweep_too); safe if it was never given."""
        if sweep in self._other_sweeps:
            self._other_sweeps.remove(sweep)

    def stop_collector(self) -> None:
        """Stop the background collector; it ends within its current small batch. Safe to call twice."""
        self._stop_collecting.set()
        if self._collector is not None:
            self._collector.join()
            self._collector = None
        self._stop_collecting.clear()  # a collect_garbage() called from now on runs to the end

    def close(self) -> None:
        """Stop the collector, and close the database if this repository opened it.

        refs.close()
        """
        self.stop_collector()
        super().close()

    def _collect_every(self, interval: float) -> None:
        while not self._stop_collecting.wait(interval):
            self._collect_now()
            for sweep in list(self._other_sweeps):
                sweep()

    def _collect_now(self) -> None:
        try:
            # The collector gives way: blocked for long, it would hold up close().
            self.backend.give_way(COLLECTOR_LOCK_WAIT_MS)
            self.collect_garbage()
        except Exception:  # whatever it was, the next run may fare better
            logger.exception("loom_models: garbage collection of references failed")
        finally:
            # A connection per run: none is held idle between runs, a dropped
            # one (a restarted server) is replaced, and its short lock wait
            # goes with it rather than back to a pool.
            self.backend.discard_connection()

    def _check_live(self, reference_id: str, found: Reference | None) -> None:
        if found is None or found.ref_count <= 0:  # released to 0: gone, whether or not collected
            raise NotFoundError("reference not found: %s" % reference_id)
        if found.expires_at is not None and found.expires_at <= utc_now():
            raise ReferenceExpiredError("reference expired: %s" % reference_id)


def _expiry(now: datetime.datetime, ttl: datetime.timedelta) -> datetime.datetime:
    # Whole seconds on disk: round up, so content lives at least its TTL.
    end = now + ttl
    return end if end.microsecond == 0 else end.replace(microsecond=0) + datetime.timedelta(seconds=1)


def _id_of(ref_or_id: Reference | str) -> str:
    reference_id = ref_or_id.id if isinstance(ref_or_id, Reference) else ref_or_id
    if not isinstance(reference_id, str) or not _SHA256_HEX.fullmatch(reference_id):
        raise ValidationError({"id": ["Must be a lowercase hex SHA-256 (64 characters)."]})
    return reference_id

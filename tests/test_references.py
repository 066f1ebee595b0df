"""The ReferenceRepository contract, on whichever backend the `backend` fixture gives."""

import datetime
import hashlib
import logging
import multiprocessing
import subprocess
import sys
import time

import pytest

from loom_models import DatabaseCorruptError, NotFoundError, ReferenceExpiredError, ValidationError, open_storage
from loom_models.references import Reference, ReferenceRepository, ReferenceSchema, ReferenceType
from loom_models.references.repository import GC_BATCH_BYTES, GC_BATCH_ROWS

UTC = datetime.timezone.utc


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now_s() -> int:
    return int(time.time())


def stored_row(backend, data: bytes):
    rows = backend.sql(
        "SELECT type, store, ref_count, created_at, expires_at, size_bytes FROM reference_store WHERE id = ?", sha(data)
    )
    return rows[0] if rows else None


def expire(backend, data: bytes):
    backend.sql("UPDATE reference_store SET expires_at = ? WHERE id = ?", now_s() - 5, sha(data))


# -- storing -------------------------------------------------------------------------------


def test_store_writes_the_reference_layout(references, backend):
    before = now_s()
    ref = references.store(b"a tool result", type=ReferenceType.TOOL_RESULT, ttl=60)

    assert isinstance(ref, Reference)
    assert (ref.id, ref.type, ref.ref_count, ref.size_bytes, ref.data) == (
        sha(b"a tool result"),
        ReferenceType.TOOL_RESULT,
        1,
        13,
        b"a tool result",
    )
    type_, store, count, created, expires, size = stored_row(backend, b"a tool result")
    assert (type_, store, count, size) == (6, 2, 1, 13)
    assert before <= created <= now_s() and created + 60 <= expires <= created + 61  # TTL rounded up
    assert [bytes(data) for (data,) in backend.sql("SELECT data FROM reference_store")] == [b"a tool result"]
    assert ref.created_at == datetime.datetime.fromtimestamp(created, UTC)


def test_no_ttl_means_never_stored_as_zero(references, backend):
    ref = references.store(b"forever")

    assert ref.expires_at is None
    assert stored_row(backend, b"forever")[4] == 0


def test_the_same_bytes_again_add_a_reference_and_match_the_row(references, backend):
    first = references.store(b"same", ttl=60)
    second = references.store(b"same", ttl=3600)

    assert backend.sql("SELECT COUNT(*) FROM reference_store") == [(1,)]
    assert second.ref_count == 2 == stored_row(backend, b"same")[2]
    assert second.created_at == first.created_at
    assert second.expires_at > first.expires_at
    assert stored_row(backend, b"same")[4] == int(second.expires_at.timestamp())
    assert references.get(second.id).__data__ == {k: v for k, v in second.__data__.items() if k != "data"}


@pytest.mark.parametrize(
    "first, second, lives",
    [(60, 3600, 3600), (3600, 60, 3600), (60, None, None), (None, 60, None)],
)
def test_the_later_expiry_wins(references, backend, first, second, lives):
    references.store(b"x", ttl=first)
    references.store(b"x", ttl=second)

    created, expires = stored_row(backend, b"x")[3:5]
    if lives is None:
        assert expires == 0
    else:  # the second store may come a second after the first, and a TTL rounds up
        assert created + lives <= expires <= created + lives + 2


def test_storing_expired_content_again_starts_afresh(references, backend):
    references.store(b"old", ttl=60)
    references.store(b"old", ttl=60)
    expire(backend, b"old")
    backend.sql("UPDATE reference_store SET created_at = created_at - 1000")

    again = references.store(b"old", type=ReferenceType.PATTERN_DATA, ttl=120)

    assert (again.ref_count, again.type) == (1, ReferenceType.PATTERN_DATA)
    assert references.resolve(again) == b"old"
    type_, _, count, created, expires, _ = stored_row(backend, b"old")
    assert (type_, count) == (5, 1) and created >= now_s() - 2 and created + 120 <= expires <= created + 121


def test_content_expires_at_its_second_and_never_before_its_ttl(references, backend):
    started = time.time()
    ref = references.store(b"timed", ttl=1)
    assert ref.expires_at.timestamp() >= started + 1  # rounded up, never down

    backend.sql("UPDATE reference_store SET expires_at = ? WHERE id = ?", now_s(), ref.id)
    with pytest.raises(ReferenceExpiredError):
        references.resolve(ref)


@pytest.mark.parametrize("data", [bytearray(b"mutable"), memoryview(b"a view")])
def test_bytes_like_data_is_stored(references, data):
    ref = references.store(data)
    assert references.resolve(ref.id) == bytes(data) and ref.id == sha(bytes(data))


@pytest.mark.parametrize(
    "arguments, field",
    [
        ({"data": b""}, "data"),
        ({"data": "text is not bytes"}, "data"),
        ({"data": None}, "data"),
        ({"data": 42}, "data"),
        ({"data": [1, 2]}, "data"),
        ({"data": b"x", "type": 99}, "type"),
        ({"data": b"x", "type": "TOOL_RESULT"}, "type"),
        ({"data": b"x", "ttl": 0}, "ttl"),
        ({"data": b"x", "ttl": -1}, "ttl"),
        ({"data": b"x", "ttl": float("nan")}, "ttl"),
        ({"data": b"x", "ttl": "1h"}, "ttl"),
        ({"data": b"x", "ttl": datetime.timedelta(days=10**6)}, "ttl"),
        ({"data": b"x", "ttl": True}, "ttl"),
    ],
)
def test_bad_input_is_rejected_and_nothing_is_written(references, backend, arguments, field):
    data = arguments.pop("data")
    with pytest.raises(ValidationError) as error:
        references.store(data, **arguments)
    assert field in error.value.messages
    assert backend.sql("SELECT COUNT(*) FROM reference_store") == [(0,)]


# -- resolving -----------------------------------------------------------------------------


def test_resolve_by_id_or_by_reference(references):
    ref = references.store(b"payload")
    assert references.resolve(ref.id) == references.resolve(ref) == b"payload"


def test_resolve_missing_is_not_found(references):
    with pytest.raises(NotFoundError, match="^reference not found: %s$" % sha(b"nope")):
        references.resolve(sha(b"nope"))


@pytest.mark.parametrize("bad", ["", "abc", sha(b"x").upper(), sha(b"x") + "0", None, 5, b"x"])
def test_resolve_checks_the_id(references, bad):
    with pytest.raises(ValidationError):
        references.resolve(bad)


def test_expired_content_is_never_returned(references, backend):
    ref = references.store(b"short lived", ttl=60)
    expire(backend, b"short lived")  # the collector has not run

    with pytest.raises(ReferenceExpiredError, match="^reference expired: %s$" % ref.id):
        references.resolve(ref.id)
    with pytest.raises(ReferenceExpiredError):
        references.get(ref.id)
    with pytest.raises(ReferenceExpiredError):
        references.retain(ref.id)
    assert references.list() == []


def test_a_short_ttl_expires_by_itself(references):
    ref = references.store(b"one second", ttl=1)
    assert references.resolve(ref) == b"one second"

    time.sleep(2.0)

    with pytest.raises(ReferenceExpiredError):
        references.resolve(ref)


def test_verify_catches_altered_bytes(references, backend):
    ref = references.store(b"original")
    backend.sql("UPDATE reference_store SET data = ? WHERE id = ?", b"tampered", ref.id)

    assert references.resolve(ref) == b"tampered"  # unverified reads trust the id
    with pytest.raises(DatabaseCorruptError, match=ref.id):
        references.resolve(ref, verify=True)


# -- counting ------------------------------------------------------------------------------


def test_retain_and_release_return_the_new_count(references, backend):
    ref = references.store(b"counted")

    assert references.retain(ref.id) == 2
    assert references.retain(ref.id) == 3
    assert references.release(ref.id) == 2
    assert references.release(ref.id) == 1
    assert stored_row(backend, b"counted")[2] == 1
    assert references.release(ref.id) == 0
    assert stored_row(backend, b"counted") is None
    with pytest.raises(NotFoundError):
        references.release(ref.id)
    with pytest.raises(NotFoundError):
        references.retain(ref.id)


def _retain_then_release(target, reference_id, barrier):
    with ReferenceRepository.open(target) as repository:
        barrier.wait()
        for _ in range(100):
            repository.retain(reference_id)
        for _ in range(100):
            repository.release(reference_id)


def _release(target, reference_id, barrier, results):
    with ReferenceRepository.open(target) as repository:
        barrier.wait()
        try:
            results.put(repository.release(reference_id))
        except NotFoundError:
            results.put("not found")


@pytest.mark.parametrize("count, releasers", [(4, 4), (2, 4)])
def test_processes_releasing_at_once_never_go_below_zero(references, backend, count, releasers):
    ref = references.store(b"contended")
    for _ in range(count - 1):
        references.retain(ref.id)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(releasers), context.Queue()
    workers = [
        context.Process(target=_release, args=(backend.target, ref.id, barrier, results)) for _ in range(releasers)
    ]
    for worker in workers:
        worker.start()
    outcomes = sorted((results.get(timeout=60) for _ in workers), key=str)
    for worker in workers:
        worker.join(60)

    assert outcomes == sorted(list(range(count)) + ["not found"] * (releasers - count), key=str)
    assert stored_row(backend, b"contended") is None


def test_four_processes_retaining_and_releasing_keep_an_exact_count(references, backend):
    ref = references.store(b"shared")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_retain_then_release, args=(backend.target, ref.id, barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)

    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert stored_row(backend, b"shared")[2] == 1


# -- metadata ------------------------------------------------------------------------------


def test_get_and_list_give_metadata_without_the_bytes(references, backend):
    older = references.store(b"older")
    backend.sql("UPDATE reference_store SET created_at = created_at - 10 WHERE id = ?", older.id)
    newer = references.store(b"newer", type=ReferenceType.SESSION_STATE)

    got = references.get(newer.id)
    assert got.data is None and got.type is ReferenceType.SESSION_STATE and got.size_bytes == 5
    assert [r.id for r in references.list()] == [newer.id, older.id]
    assert [r.id for r in references.list(limit=1)] == [newer.id]
    assert all(r.data is None for r in references.list())
    with pytest.raises(ValidationError):
        references.list(limit=0)


def test_rows_written_by_the_reference_implementation_are_read(references, backend):
    data = b'{"trace": [1, 2, 3]}'
    backend.sql(
        "INSERT INTO reference_store (id, type, store, data, ref_count, created_at, expires_at, size_bytes)"
        " VALUES (?, 7, 2, ?, 3, 1767225600, 0, ?)",
        sha(data),
        data,
        len(data),
    )

    ref = references.get(sha(data))

    assert (ref.type, ref.ref_count, ref.expires_at) == (ReferenceType.OBSERVABILITY_TRACE, 3, None)
    assert references.resolve(ref, verify=True) == data


# -- collecting ----------------------------------------------------------------------------


def test_collect_garbage_removes_expired_and_unreferenced_rows(references, backend):
    for data in (b"live", b"never"):
        references.store(data, ttl=3600 if data == b"live" else None)
    references.store(b"expired", ttl=60)
    expire(backend, b"expired")
    references.store(b"orphan")
    backend.sql("UPDATE reference_store SET ref_count = 0 WHERE id = ?", sha(b"orphan"))

    assert references.collect_garbage() == 2
    assert sorted(bytes(d) for (d,) in backend.sql("SELECT data FROM reference_store")) == [b"live", b"never"]
    assert references.collect_garbage(now=datetime.datetime.now(UTC) + datetime.timedelta(hours=2)) == 1
    stats = references.stats()
    assert (stats.active_refs, stats.current_bytes, stats.gc_runs, stats.evictions) == (1, 5, 2, 3)


def deletes_during(call):
    statements = []

    class Log(logging.Handler):
        def emit(self, record):
            if isinstance(record.msg, tuple) and record.msg[0].startswith("DELETE"):
                statements.append(record.msg[0])

    handler, logger = Log(), logging.getLogger("peewee")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        result = call()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    return result, len(statements)


def test_collect_garbage_deletes_in_batches_bounded_by_rows(references, backend):
    for i in range(GC_BATCH_ROWS * 2 + 7):
        references.store(b"item %d" % i, ttl=60)
    backend.sql("UPDATE reference_store SET expires_at = ?", now_s() - 5)

    removed, deletes = deletes_during(references.collect_garbage)

    assert removed == GC_BATCH_ROWS * 2 + 7 and deletes == 3
    assert backend.sql("SELECT COUNT(*) FROM reference_store") == [(0,)]


def test_collect_garbage_deletes_in_batches_bounded_by_bytes(references, backend):
    third = GC_BATCH_BYTES // 3 + 1  # two fit in no batch together with a third
    for i in range(5):
        references.store(bytes([i]) * third, ttl=60)
    backend.sql("UPDATE reference_store SET expires_at = ?", now_s() - 5)

    removed, deletes = deletes_during(references.collect_garbage)

    assert removed == 5 and deletes == 3


def test_stats_count_live_content(references, backend):
    references.store(b"12345")
    references.store(b"12345")
    references.store(b"abc", ttl=60)
    references.store(b"gone", ttl=60)
    expire(backend, b"gone")

    stats = references.stats()

    assert (stats.active_refs, stats.current_bytes, stats.gc_runs, stats.evictions) == (2, 8, 0, 0)


def test_the_background_collector_removes_expired_rows_without_a_call(backend):
    url = backend.target if "://" in backend.target else "sqlite:///" + backend.target
    with open_storage(database_url=url, gc_interval=0.1) as storage:
        storage.references.store(b"soon gone", ttl=60)
        expire(backend, b"soon gone")
        deadline = time.monotonic() + 2
        # The run counts its evictions once its deletes are committed: wait for both.
        while (
            stored_row(backend, b"soon gone") is not None or storage.references.stats().evictions == 0
        ) and time.monotonic() < deadline:
            time.sleep(0.05)

        assert stored_row(backend, b"soon gone") is None
        assert storage.references.stats().evictions == 1


def test_close_stops_a_collector_in_the_middle_of_a_long_run(tmp_path, backend):
    with ReferenceRepository.open(backend.target) as setup:
        for i in range(40):
            setup.store(bytes([i]) * 2**20, ttl=60)
    backend.sql("UPDATE reference_store SET expires_at = ?", now_s() - 5)
    repository = ReferenceRepository.open(backend.target)
    repository.start_collector(0.01)
    time.sleep(0.05)  # let a run begin

    started = time.monotonic()
    repository.close()

    assert time.monotonic() - started < 1.0
    assert repository._collector is None


def test_the_collector_survives_a_failed_run(backend, monkeypatch):
    repository = ReferenceRepository.open(backend.target)
    runs = []
    real = repository.collect_garbage

    def flaky():
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("a bad moment")
        return real()

    monkeypatch.setattr(repository, "collect_garbage", flaky)
    repository.store(b"later gone", ttl=60)
    expire(backend, b"later gone")
    repository.start_collector(0.05)
    deadline = time.monotonic() + 2
    while stored_row(backend, b"later gone") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    repository.close()

    assert len(runs) >= 2 and stored_row(backend, b"later gone") is None


def test_collect_garbage_by_hand_after_the_collector_is_stopped(backend):
    with ReferenceRepository.open(backend.target) as repository:
        repository.start_collector(300)
        repository.stop_collector()
        repository.store(b"gone by hand", ttl=60)
        expire(backend, b"gone by hand")

        assert repository.collect_garbage() == 1
        assert stored_row(backend, b"gone by hand") is None


def test_close_stops_the_collector_promptly_and_twice_is_fine(tmp_path):
    storage = open_storage(tmp_path, gc_interval=300)
    collector = storage.references._collector
    assert collector.is_alive()

    started = time.monotonic()
    storage.close()
    stopped_in = time.monotonic() - started
    storage.close()

    assert not collector.is_alive() and stopped_in < 1.0


def test_gc_interval_zero_or_none_runs_no_collector(tmp_path):
    for interval in (0, None):
        with open_storage(tmp_path, gc_interval=interval) as storage:
            assert storage.references._collector is None
    for bad in (-1, 1e300, "often"):
        with pytest.raises(ValidationError):
            open_storage(tmp_path, gc_interval=bad)


def test_references_survive_a_restart(backend):
    with ReferenceRepository.open(backend.target) as first:
        ref = first.store(b"durable", type=ReferenceType.PATTERN_DATA, ttl=3600)
        first.retain(ref.id)

    with ReferenceRepository.open(backend.target) as again:
        assert again.resolve(ref.id, verify=True) == b"durable"
        assert again.get(ref.id).ref_count == 2


def test_schema_dumps_metadata_as_json(references):
    ref = references.store(b"json me", type=ReferenceType.LARGE_PAYLOAD)

    dumped = ReferenceSchema().dump(references.get(ref.id))

    assert dumped["id"] == ref.id and dumped["type"] == 4 and dumped["expires_at"] is None
    assert "data" not in dumped


# -- large content -------------------------------------------------------------------------

MEASURE = """
import hashlib, os, resource, sys
from loom_models.references import ReferenceRepository
repository = ReferenceRepository.open(sys.argv[1])
data = os.urandom(50 * 2**20)
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = peak()
repository.store(data)
stored = peak()
assert repository.resolve(hashlib.sha256(data).hexdigest(), verify=True) == data
print(stored - base, peak() - base)
"""


def test_fifty_megabytes_store_and_resolve_in_a_few_copies(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path / "references.db")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    store_peak, total_peak = (int(n) / (50 * 2**20) for n in result.stdout.split())
    # Peak resident memory above what the caller holds, in copies of the payload.
    assert store_peak < 3.5 and total_peak < 5.5, (store_peak, total_peak)

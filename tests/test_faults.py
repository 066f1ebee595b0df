"""Faults: a writer killed at random, a full disk, damaged files.

Whatever happens, a write whose call returned is there afterwards, the files stay
sound, and damage shows up as DatabaseCorruptError, never as a raw driver error
or as wrong data. Results are checked through raw SQL, not through the
repositories under test.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
import traceback

import pytest

from loom_models import DatabaseCorruptError, DiskFullError, maintenance, open_storage
from loom_models.db import open_database
from loom_models.hitl import HumanRequest, HumanRequestRepository
from loom_models.references import ReferenceRepository
from loom_models.sessions import Message, Session, SessionRepository
from loom_models.storage import DOMAINS

FILES = {domain: repository.file for domain, repository in DOMAINS.items()}
# The table each domain keeps most of its rows in: the one to damage.
MAIN_TABLES = {
    "sessions": "messages",
    "hitl": "human_requests",
    "references": "reference_store",
    "checkpoints": "graph_channel_values",
}


# -- crash: SIGKILL at random moments ----------------------------------------------------

CRASH_KILLS = 50
CRASH_SEED = 20240611
# Every this many runs the kill may land anywhere from the child's start on
# (imports, opening, migrating), not only once it writes.
KILL_FROM_START_EVERY = 10
BATCH = 3  # messages per save_messages call: all of them or none


def _crash_writer(location: dict, run: int, channel, seed: int) -> None:
    """Write through the repositories until killed; send each acknowledged write.

    A write is sent only once its call has returned, so whatever the parent
    receives was acknowledged to the caller.
    """
    try:
        rng = random.Random(seed)
        storage = open_storage(**location, gc_interval=0.2)  # the collector runs, and is killed, too
        own = "run-%02d" % run
        for session_id in ("shared", own):
            storage.sessions.save_session(Session(id=session_id, agent_id="crash"))
            channel.send(("session", session_id))
        channel.send(("ready",))
        for step in range(10**9):
            session_id = own if step % 2 else "shared"  # "shared" gathers messages of every run
            tag = "%s/%d" % (own, step)
            if step % 4 == 3:
                batch = [_crash_message(rng, "%s/%d:%d" % (tag, i, BATCH)) for i in range(BATCH)]
                saved = storage.sessions.save_messages(session_id, batch)
            else:
                saved = [storage.sessions.save_message(session_id, _crash_message(rng, tag + "/0:1"))]
            for message in saved:
                channel.send(("message", message.id))
            request = storage.hitl.store(
                HumanRequest(agent_id="crash", session_id=own, question="Go on? " + tag, timeout_ms=3_600_000)
            )
            channel.send(("request", request.id))
            if step % 3 == 0:
                storage.hitl.respond_to_request(request.id, "approved", "yes", responded_by="crash-test")
                channel.send(("approved", request.id))
            # Up to a few pages: some contents spill into overflow pages.
            reference = storage.references.store(rng.randbytes(rng.randint(1, 12_000)))
            channel.send(("reference", reference.id))
    except BaseException:
        channel.send(("error", traceback.format_exc()))
        raise


def _crash_message(rng: random.Random, content: str) -> Message:
    # Costs in eighths add up exactly in binary floating point.
    return Message(role="user", content=content, token_count=rng.randint(1, 1000), cost_usd=rng.randint(0, 80) / 8)


class _Acknowledged:
    """The ids of the writes the children were told had succeeded, by kind."""

    def __init__(self):
        self.sessions, self.messages, self.requests, self.approved, self.references = set(), set(), set(), set(), set()
        self._by_kind = {"session": self.sessions, "message": self.messages, "request": self.requests,
                         "approved": self.approved, "reference": self.references}  # fmt: skip

    def take(self, report: tuple) -> None:
        kind, value = report
        self._by_kind[kind].add(value)

    def count(self) -> int:
        return sum(map(len, self._by_kind.values()))


def _run_and_kill(context, location: dict, run: int, rng: random.Random, acknowledged: _Acknowledged) -> None:
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_crash_writer, args=(location, run, writer, rng.randrange(2**32)), daemon=True)
    started = time.monotonic()
    child.start()
    writer.close()  # ours: the child's end is then the only one, and EOF means it is gone
    errors = []

    def receive(until: float | None) -> bool:
        """Take reports until `until` (None: until EOF); True when the child said it is ready."""
        while until is None or time.monotonic() < until:
            if until is not None and not reader.poll(max(until - time.monotonic(), 0)):
                break
            try:
                report = reader.recv()
            except EOFError:
                return False
            if report[0] == "ready":
                return True
            if report[0] == "error":
                errors.append(report[1])
            else:
                acknowledged.take(report)
        return False

    if run % KILL_FROM_START_EVERY == 0:
        receive(started + rng.uniform(0, 1.0))
    else:
        assert receive(started + 30) or errors, "run %d: the writer never got ready" % run
        receive(time.monotonic() + rng.uniform(0, 0.3))
    if child.is_alive():
        os.kill(child.pid, signal.SIGKILL)
    receive(None)
    child.join(10)
    reader.close()
    assert not errors, "run %d: the writer failed:\n%s" % (run, errors[0])
    assert child.exitcode == -signal.SIGKILL, "run %d ended by itself (exit code %s)" % (run, child.exitcode)


def _check_after_crash(store, acknowledged: _Acknowledged, run: int) -> None:
    where = "after kill %d" % run
    assert store.integrity_problems() == {}, where
    if not acknowledged.count():  # killed early: maybe before the schema, and nothing to look for
        return

    sessions = {row[0] for row in store.sql("sessions", "SELECT id FROM sessions")}
    assert acknowledged.sessions <= sessions, where
    messages = dict(store.sql("sessions", "SELECT id, content FROM messages"))
    assert acknowledged.messages <= messages.keys(), where
    # A batch, acknowledged or not, is all there or not at all: "<batch tag>/<i>:<size>".
    batches: dict = {}
    for content in messages.values():
        tag, size = content.rsplit(":", 1)
        batches.setdefault((tag.rsplit("/", 1)[0], int(size)), set()).add(tag)
    assert [key for key, seen in batches.items() if len(seen) != key[1]] == [], where
    totals = store.sql(
        "sessions",
        "SELECT s.id, s.total_tokens, COALESCE(SUM(m.token_count), 0), s.total_cost_usd, COALESCE(SUM(m.cost_usd), 0)"
        " FROM sessions s LEFT JOIN messages m ON m.session_id = s.id GROUP BY s.id, s.total_tokens, s.total_cost_usd",
    )
    assert [row for row in totals if row[1] != row[2] or row[3] != row[4]] == [], where

    requests = dict(store.sql("hitl", "SELECT id, status FROM human_requests"))
    assert acknowledged.requests <= requests.keys(), where
    assert {requests[i] for i in acknowledged.approved} <= {"approved"}, where
    assert set(requests.values()) <= {"pending", "approved"}, where
    half_answered = "SELECT id FROM human_requests WHERE (status = 'pending') = (responded_at IS NOT NULL)"
    assert store.sql("hitl", half_answered) == [], where

    references = store.sql("references", "SELECT id, data, size_bytes, ref_count FROM reference_store")
    assert acknowledged.references <= {row[0] for row in references}, where
    assert [row[0] for row in references if not _sound_reference(*row)] == [], where


def _sound_reference(reference_id: str, data, size: int, count: int) -> bool:
    return hashlib.sha256(bytes(data)).hexdigest() == reference_id and len(data) == size and count >= 1


@pytest.mark.slow
def test_a_writer_killed_at_random_moments_loses_nothing_it_acknowledged(data_store):
    store = data_store
    context = multiprocessing.get_context("spawn")
    rng = random.Random(CRASH_SEED)
    acknowledged = _Acknowledged()

    for run in range(CRASH_KILLS):  # one store throughout: each run writes on top of the crashed ones
        _run_and_kill(context, store.location, run, rng, acknowledged)
        _check_after_crash(store, acknowledged, run)

    print(
        "crash (%s): %d kills, %d acknowledged writes (%d messages, %d requests, %d answers, %d references), all there"
        % (
            store.backend.name,
            CRASH_KILLS,
            acknowledged.count(),
            len(acknowledged.messages),
            len(acknowledged.requests),
            len(acknowledged.approved),
            len(acknowledged.references),
        )
    )
    assert len(acknowledged.messages) > 10 * CRASH_KILLS  # the kills did land among writes
    assert acknowledged.approved and len(acknowledged.references) > CRASH_KILLS
    with open_storage(**store.location, gc_interval=None) as storage:  # and the store still serves
        assert storage.sessions.load_session("shared").total_tokens == sum(
            row[0] for row in store.sql("sessions", "SELECT token_count FROM messages WHERE session_id = 'shared'")
        )


# -- disk full ---------------------------------------------------------------------------

# Pages a database may grow to: room for the schema and a few dozen rows.
FULL_AT_PAGES = 64
ROOMY_PAGES = 100_000


def _fill(write, limit: int = 10_000) -> tuple[list, DiskFullError]:
    """Call `write(i)` until it raises DiskFullError; what it returned, and the error."""
    written = []
    for i in range(limit):
        try:
            written.append(write(i))
        except DiskFullError as error:
            return written, error
    raise AssertionError("%d writes and the disk is not full" % limit)


def _repository_on_a_small_disk(tmp_path, repository_class):
    database = open_database(tmp_path / "small.db", pragmas={"max_page_count": FULL_AT_PAGES})
    repository = repository_class(database)
    repository.migrate()
    return repository, database


def _sqlite(path, query: str, *params) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(query, params).fetchall()


def _assert_disk_full(error: DiskFullError) -> None:
    assert error.retryable and error.code == "disk_full"
    assert isinstance(error.__cause__, sqlite3.OperationalError)


def test_a_full_disk_refuses_messages_keeps_what_was_committed_and_recovers(tmp_path):
    repo, database = _repository_on_a_small_disk(tmp_path, SessionRepository)
    repo.save_session(Session(id="s"))

    def write_message(i):
        return repo.save_message("s", Message(role="user", content="%d " % i + "m" * 3000, token_count=i))

    saved, error = _fill(write_message)
    _assert_disk_full(error)
    with pytest.raises(DiskFullError):  # a batch that does not fit leaves nothing behind
        repo.save_messages("s", [Message(role="user", content="b" * 3000, token_count=1)] * 20)
    with pytest.raises(DiskFullError):
        repo.save_session(Session(id="big", context={"notes": "c" * 20_000}))

    path = tmp_path / "small.db"
    rows = _sqlite(path, "SELECT id, content, token_count FROM messages ORDER BY id")
    assert len(saved) > 5 and rows == [(m.id, m.content, m.token_count) for m in saved]
    assert _sqlite(path, "SELECT id, total_tokens FROM sessions") == [("s", sum(m.token_count for m in saved))]
    assert [(m.id, m.content) for m in repo.load_session("s").messages] == [(m.id, m.content) for m in saved]

    database.pragma("max_page_count", ROOMY_PAGES)
    more = repo.save_messages("s", [Message(role="user", content="b" * 3000, token_count=1)] * 20)
    repo.save_session(Session(id="big", context={"notes": "c" * 20_000}))
    assert _sqlite(path, "SELECT COUNT(*), SUM(token_count) FROM messages") == [
        (len(saved) + len(more), sum(m.token_count for m in saved) + 20)
    ]
    assert repo.load_session("s").total_tokens == sum(m.token_count for m in saved) + 20
    assert maintenance.integrity_check(database) == []
    database.close()


def test_a_full_disk_refuses_requests_keeps_what_was_committed_and_recovers(tmp_path):
    repo, database = _repository_on_a_small_disk(tmp_path, HumanRequestRepository)

    def ask(i):
        question = "%d " % i + "q" * 3000
        return repo.store(HumanRequest(id="req-%04d" % i, agent_id="a", session_id="s", question=question))

    stored, error = _fill(ask)
    _assert_disk_full(error)

    path = tmp_path / "small.db"
    assert len(stored) > 5
    assert _sqlite(path, "SELECT id, question, status FROM human_requests ORDER BY id") == [
        (r.id, r.question, "pending") for r in stored
    ]
    assert sorted(r.id for r in repo.list_by_session("s")) == [r.id for r in stored]
    assert repo.get(stored[0].id).question == stored[0].question

    database.pragma("max_page_count", ROOMY_PAGES)
    late = ask(len(stored) + 1)
    repo.respond_to_request(late.id, "approved", "fine", responded_by="alice")
    answer = _sqlite(path, "SELECT status, responded_by FROM human_requests WHERE id = ?", late.id)
    assert answer == [("approved", "alice")]
    assert _sqlite(path, "SELECT COUNT(*) FROM human_requests") == [(len(stored) + 1,)]
    assert maintenance.integrity_check(database) == []
    database.close()


def test_a_full_disk_refuses_references_keeps_what_was_committed_and_recovers(tmp_path):
    repo, database = _repository_on_a_small_disk(tmp_path, ReferenceRepository)
    rng = random.Random(6)

    stored, error = _fill(lambda i: repo.store(rng.randbytes(3000)))
    _assert_disk_full(error)

    path = tmp_path / "small.db"
    rows = _sqlite(path, "SELECT id, data, ref_count FROM reference_store")
    assert len(stored) > 5 and sorted(rows) == sorted((r.id, r.data, 1) for r in stored)
    assert all(repo.resolve(r.id, verify=True) == r.data for r in stored)
    assert repo.retain(stored[0].id) == 2  # no new page needed: a count goes on changing

    database.pragma("max_page_count", ROOMY_PAGES)
    late = repo.store(rng.randbytes(3000))
    assert repo.resolve(late.id, verify=True) == late.data
    assert _sqlite(path, "SELECT COUNT(*) FROM reference_store") == [(len(stored) + 1,)]
    assert maintenance.integrity_check(database) == []
    database.close()


@contextlib.contextmanager
def _small_file_system(directory, size: str):
    """A tmpfs of `size` mounted on `directory`; the test is skipped, visibly, where that is not allowed."""
    directory.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", str(directory)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command: the max_page_count tests stand in for a full file system")
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (%s): the max_page_count tests stand in" % mounted.stderr.strip())
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def test_a_full_file_system_under_the_data_directory(tmp_path):
    with _small_file_system(tmp_path / "disk", "1m") as disk:
        data_dir = disk / "loom-data"
        filler = disk / "filler"
        with open_storage(data_dir, gc_interval=None) as storage:
            filler.write_bytes(b"\0" * 256 * 1024)  # freed below
            storage.sessions.save_session(Session(id="s"))
            rng = random.Random(7)
            message = Message(role="user", content="m" * 2000, token_count=1)
            writes = {
                "sessions": lambda i: storage.sessions.save_message("s", message),
                "hitl": lambda i: storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="q" * 2000)),
                "references": lambda i: storage.references.store(rng.randbytes(2000)),
            }
            written = {}
            for domain, write in writes.items():  # each domain, until it too is refused
                written[domain], error = _fill(write)
                _assert_disk_full(error)

            def sql(domain, query):
                return _sqlite(data_dir / FILES[domain], query)

            assert sql("sessions", "SELECT id FROM messages ORDER BY id") == [(m.id,) for m in written["sessions"]]
            assert sql("sessions", "SELECT total_tokens FROM sessions") == [(len(written["sessions"]),)]
            assert sorted(sql("hitl", "SELECT id FROM human_requests")) == sorted((r.id,) for r in written["hitl"])
            assert sorted(sql("references", "SELECT id FROM reference_store")) == sorted(
                (r.id,) for r in written["references"]
            )
            assert len(storage.sessions.load_session("s").messages) == len(written["sessions"])

            filler.unlink()  # space again
            for write in writes.values():
                write(-1)
            assert sql("sessions", "SELECT COUNT(*) FROM messages") == [(len(written["sessions"]) + 1,)]
            assert sql("hitl", "SELECT COUNT(*) FROM human_requests") == [(len(written["hitl"]) + 1,)]
            assert sql("references", "SELECT COUNT(*) FROM reference_store") == [(len(written["references"]) + 1,)]
        for name in FILES.values():
            database = open_database(data_dir / name)
            assert maintenance.integrity_check(database) == [], name
            database.close()


# -- corruption --------------------------------------------------------------------------

DAMAGE_KINDS = ("page_size", "magic", "leaf", "root", "schema", "truncated")
RANDOM_PAGE_TRIALS = 12


def _fill_store(data_dir) -> None:
    with open_storage(data_dir, gc_interval=None) as storage:
        storage.sessions.save_session(Session(id="s", context={"user": "john"}))
        storage.sessions.save_messages(
            "s", [Message(role="user", content="message %04d " % i + "x" * 200, token_count=i) for i in range(300)]
        )
        for i in range(200):
            question = "q%04d " % i * 40
            storage.hitl.store(HumanRequest(id="req-%04d" % i, agent_id="a", session_id="s", question=question))
        for i in range(200):
            storage.references.store(b"content %04d " % i + b"y" * 400)
        for i in range(200):  # a checkpoint a step, its list grown by an item, as LangGraph's savers store them
            row = {
                "checkpoint_ns": "",
                "checkpoint_id": "c%04d" % i,
                "parent_checkpoint_id": "c%04d" % (i - 1) if i else None,
                "type": "msgpack",
                "checkpoint": b"checkpoint %04d " % i + b"z" * 200,
                "metadata": {"step": i},
                "channel_versions": {"messages": "v%04d" % i},
            }
            value = {"channel": "messages", "version": "v%04d" % i, "type": "msgpack", "value": b"item %04d" % i * 20}
            storage.checkpoints.put("t", row, [{**value, "base_version": "v%04d" % (i - 1) if i else None}])


def _read_everything(storage, domain: str):
    """What the repository returns for every read of the domain, as plain values."""
    if domain == "sessions":
        repo = storage.sessions
        session = repo.load_session("s")
        return (
            [(s.id, s.total_tokens, s.context) for s in repo.list_sessions(limit=None)],
            [(m.id, m.content, m.token_count) for m in session.messages],
            [m.id for m in repo.load_messages("s", limit=50)],
            [m.id for m in repo.iter_messages("s", batch_size=64)],
            repo.get_stats(),
        )
    if domain == "hitl":
        repo = storage.hitl
        every = repo.list_by_session("s")
        return (
            [(r.id, r.question, r.status) for r in every],
            [repo.get(r.id).question for r in every],
            [r.id for r in repo.list_pending(limit=None)],
            repo.get_stats(),
        )
    if domain == "checkpoints":
        repo = storage.checkpoints
        every = repo.list_page("t", limit=1000)
        return (
            [(c.row.checkpoint_id, bytes(c.row.checkpoint), c.row.metadata, c.values) for c in every],
            repo.get("t").values,
            repo.stats(),
        )
    repo = storage.references
    listed = repo.list()
    return ([(r.id, r.size_bytes) for r in listed], [repo.resolve(r.id, verify=True) for r in listed], repo.stats())


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A data directory with data in every domain, and what reading it returns."""
    data_dir = tmp_path_factory.mktemp("pristine") / "data"
    _fill_store(data_dir)
    with open_storage(data_dir, gc_interval=None) as storage:
        expected = {domain: _read_everything(storage, domain) for domain in FILES}
    assert not any(data_dir.glob("*-wal")), "every page must be in the database files"
    return data_dir, expected


def _pages(path, table: str) -> tuple[int, dict]:
    """The page size, and the pages of `table` by type (dbstat: internal, leaf, overflow)."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        size = connection.execute("PRAGMA page_size").fetchone()[0]
        rows = connection.execute("SELECT pageno, pagetype FROM dbstat WHERE name = ? ORDER BY pageno", (table,))
        pages: dict = {}
        for number, kind in rows:
            pages.setdefault(kind, []).append(number)
    return size, pages


def _overwrite_page(path, number: int, size: int, seed: int) -> None:
    with open(path, "r+b") as file:
        file.seek((number - 1) * size)
        file.write(random.Random(seed).randbytes(size))


def _damage(path, kind: str, table: str) -> None:
    size, pages = _pages(path, table)
    if kind == "page_size":  # bytes 16-17 of the header: not a power of two
        with open(path, "r+b") as file:
            file.seek(16)
            file.write(b"\x00\x03")
    elif kind == "magic":
        with open(path, "r+b") as file:
            file.write(b"Not SQLite at all")
    elif kind == "leaf":  # a page in the middle of the table's b-tree
        _overwrite_page(path, pages["leaf"][len(pages["leaf"]) // 2], size, seed=1)
    elif kind == "root":
        _overwrite_page(path, pages["internal"][0], size, seed=2)
    elif kind == "schema":  # page 1 after its header: the schema table
        with open(path, "r+b") as file:
            file.seek(100)
            file.write(random.Random(3).randbytes(size - 100))
    elif kind == "truncated":
        os.truncate(path, os.path.getsize(path) // 2)


def _copy(pristine, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(pristine[0], data_dir)
    return data_dir


@pytest.mark.parametrize("kind", DAMAGE_KINDS)
@pytest.mark.parametrize("domain", FILES)
def test_a_damaged_file_gives_database_corrupt_on_open_or_read(pristine, tmp_path, domain, kind):
    data_dir = _copy(pristine, tmp_path)
    _damage(data_dir / FILES[domain], kind, MAIN_TABLES[domain])

    with pytest.raises(DatabaseCorruptError) as caught, open_storage(data_dir, gc_interval=None) as storage:
        _read_everything(storage, domain)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert caught.value.code == "database_corrupt" and not caught.value.retryable


@pytest.mark.parametrize("domain", FILES)
def test_a_random_page_of_garbage_gives_database_corrupt_or_the_right_data(pristine, tmp_path, domain):
    """Whichever page is hit, reads fail with DatabaseCorruptError or return exactly what was written."""
    rng = random.Random(domain)
    size = _pages(pristine[0] / FILES[domain], MAIN_TABLES[domain])[0]
    page_count = os.path.getsize(pristine[0] / FILES[domain]) // size
    outcomes = []
    for trial in range(RANDOM_PAGE_TRIALS):
        data_dir = tmp_path / str(trial)
        shutil.copytree(pristine[0], data_dir)
        _overwrite_page(data_dir / FILES[domain], rng.randint(2, page_count), size, seed=trial)
        try:
            with open_storage(data_dir, gc_interval=None) as storage:
                read = _read_everything(storage, domain)
        except DatabaseCorruptError:
            outcomes.append("corrupt")
        else:
            assert read == pristine[1][domain], "trial %d returned other data than was written" % trial
            outcomes.append("intact")
    assert "corrupt" in outcomes, outcomes


def test_a_damaged_file_leaves_the_other_domains_readable(pristine, tmp_path):
    data_dir = _copy(pristine, tmp_path)
    _damage(data_dir / "sessions.db", "leaf", "messages")

    with open_storage(data_dir, gc_interval=None) as storage:
        with pytest.raises(DatabaseCorruptError):
            _read_everything(storage, "sessions")
        assert _read_everything(storage, "hitl") == pristine[1]["hitl"]
        assert _read_everything(storage, "references") == pristine[1]["references"]
        database = storage.sessions.database
        assert maintenance.integrity_check(database) != []
        with pytest.raises(DatabaseCorruptError, match="integrity check failed"):
            maintenance.integrity_check(database, raise_on_error=True)


def test_verify_catches_bytes_altered_with_raw_sql(tmp_path):
    with open_storage(tmp_path / "data", gc_interval=None) as storage:
        ref = storage.references.store(b"the original content")
        with contextlib.closing(sqlite3.connect(tmp_path / "data" / "references.db")) as connection, connection:
            connection.execute("UPDATE reference_store SET data = ? WHERE id = ?", (b"the altered content", ref.id))

        with pytest.raises(DatabaseCorruptError, match=ref.id) as caught:
            storage.references.resolve(ref.id, verify=True)
        assert caught.value.code == "database_corrupt"


def test_verify_catches_a_byte_flipped_in_the_file(pristine, tmp_path):
    """SQLite has no page checksums: a flipped byte inside a row reads back silently, unless verified."""
    data_dir = _copy(pristine, tmp_path)
    path = data_dir / "references.db"
    content = b"content 0123 " + b"y" * 400
    image = bytearray(path.read_bytes())
    at = image.index(content) + 20
    image[at] ^= 0x01
    path.write_bytes(bytes(image))

    with open_storage(data_dir, gc_interval=None) as storage:
        ref_id = hashlib.sha256(content).hexdigest()
        assert storage.references.resolve(ref_id) != content  # unverified: altered, and nothing says so
        with pytest.raises(DatabaseCorruptError, match=ref_id):
            storage.references.resolve(ref_id, verify=True)
        assert storage.references.resolve(hashlib.sha256(b"content 0124 " + b"y" * 400).hexdigest(), verify=True)

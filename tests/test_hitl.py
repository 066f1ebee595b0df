"""The HumanRequestRepository contract, on whichever backend the `backend` fixture gives.

On SQLite every write holds the database's write lock, so the races below cannot
tell a compare-and-set from a read-then-write; the PostgreSQL run, where writers
meet only on the row, is the one that can.
"""

import datetime
import multiprocessing
import subprocess
import sys
import threading

import marshmallow
import pytest

from loom_models import ConflictError, NotFoundError, RequestExpiredError, ValidationError
from loom_models.hitl import HumanRequest, HumanRequestRepository, HumanRequestSchema, ResponseSchema

UTC = datetime.timezone.utc


def ago(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(UTC) - datetime.timedelta(seconds=seconds)


def ms(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000)


def request(**overrides) -> HumanRequest:
    values = {"agent_id": "agent", "session_id": "sess_1", "question": "Deploy to production?"}
    return HumanRequest(**{**values, **overrides})


def overdue(**overrides) -> HumanRequest:
    """A request whose deadline passed a minute ago."""
    return request(created_at=ago(120), timeout_ms=60_000, **overrides)


def row(backend, request_id, columns="*"):
    return backend.sql("SELECT %s FROM human_requests WHERE id = ?" % columns, request_id)[0]


# -- storing -------------------------------------------------------------------------------


def test_store_files_a_pending_request_in_the_reference_layout(hitl, backend):
    created = datetime.datetime(2030, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    stored = hitl.store(request(id="req_1", created_at=created, timeout_ms=90_000, context={"sql": "DELETE"}))

    assert isinstance(stored, HumanRequest)
    assert (stored.status, stored.response, stored.responded_by, stored.response_data) == ("pending", "", "", None)
    assert stored.created_at == created.replace(microsecond=678_000)
    assert stored.expires_at == stored.created_at + datetime.timedelta(seconds=90)
    assert row(backend, "req_1", "created_at, expires_at, timeout_ms, context_json") == (
        ms(created),
        ms(created) + 90_000,
        90_000,
        '{"sql":"DELETE"}',
    )
    assert row(backend, "req_1", "status, response, responded_by, response_data_json, responded_at") == (
        "pending",
        "",
        "",
        "",
        None,
    )
    assert hitl.get("req_1").__data__ == stored.__data__


def test_store_fills_sensible_defaults(hitl):
    stored = hitl.store({"agent_id": "a", "session_id": "s", "question": "Proceed?"})

    assert stored.id.startswith("req_")
    assert hitl.store(request(id=None)).id.startswith("req_")
    assert (stored.request_type, stored.priority, stored.timeout_ms, stored.context) == (
        "approval",
        "medium",
        300_000,
        None,
    )


def test_a_duplicate_id_is_a_conflict_and_changes_nothing(hitl, backend):
    hitl.store(request(id="req_1", question="first"))

    with pytest.raises(ConflictError, match="request already exists: req_1"):
        hitl.store(request(id="req_1", question="second"))
    assert row(backend, "req_1", "question") == ("first",)


BAD_REQUESTS = [
    ({"request_type": "decision"}, "request_type"),
    ({"priority": "urgent"}, "priority"),
    ({"question": ""}, "question"),
    ({"question": "   "}, "question"),
    ({"timeout_ms": 0}, "timeout_ms"),
    ({"timeout_ms": -5}, "timeout_ms"),
    ({"timeout_ms": 10**20}, "timeout_ms"),
    ({"timeout_ms": 1.5}, "timeout_ms"),
    ({"context": {"when": datetime.datetime.now()}}, "context"),
    ({"agent_id": None}, "agent_id"),
    ({"session_id": ""}, "session_id"),
    ({"question": "NUL \x00"}, "question"),
    ({"status": "approved"}, "status"),
    ({"created_at": datetime.datetime(9999, 12, 31, 23, 59)}, "timeout_ms"),
]


@pytest.mark.parametrize("change, field", BAD_REQUESTS)
def test_bad_requests_are_rejected_and_nothing_is_written(hitl, backend, change, field):
    values = {"agent_id": "agent", "session_id": "sess_1", "question": "Deploy?", **change}

    with pytest.raises(ValidationError) as error:
        hitl.store(values)

    assert field in error.value.messages
    assert backend.sql("SELECT COUNT(*) FROM human_requests") == [(0,)]


def test_get_a_missing_request_is_not_found(hitl):
    with pytest.raises(NotFoundError, match="^request not found: req_x$"):
        hitl.get("req_x")


# -- listing -------------------------------------------------------------------------------


def test_list_pending_orders_by_priority_then_age(hitl):
    for name, priority, age in [
        ("low_old", "low", 50),
        ("high_new", "high", 10),
        ("critical", "critical", 5),
        ("medium", "medium", 30),
        ("high_old", "high", 40),
    ]:
        hitl.store(request(id=name, priority=priority, created_at=ago(age)))

    assert [r.id for r in hitl.list_pending()] == ["critical", "high_old", "high_new", "medium", "low_old"]
    assert [r.id for r in hitl.list_pending(limit=2)] == ["critical", "high_old"]


def test_list_pending_never_returns_an_expired_or_decided_request(hitl):
    hitl.store(request(id="open"))
    hitl.store(overdue(id="late"))  # no sweep has run
    hitl.store(request(id="done"))
    hitl.respond_to_request("done", "approved", "", responded_by="alice")

    assert [r.id for r in hitl.list_pending()] == ["open"]


def test_list_pending_filters_by_agent_and_session(hitl):
    for i, (agent, session) in enumerate([("a", "s1"), ("a", "s2"), ("b", "s1")]):
        hitl.store(request(id="r%d" % i, agent_id=agent, session_id=session, created_at=ago(10 - i)))

    assert [r.id for r in hitl.list_pending(agent_id="a")] == ["r0", "r1"]
    assert [r.id for r in hitl.list_pending(session_id="s1")] == ["r0", "r2"]
    assert [r.id for r in hitl.list_pending(agent_id="a", session_id="s1")] == ["r0"]


@pytest.mark.parametrize("limit", [0, -1, "5"])
def test_list_pending_rejects_bad_limits(hitl, limit):
    with pytest.raises(ValidationError):
        hitl.list_pending(limit=limit)


def test_list_by_session_gives_every_status_newest_first(hitl):
    hitl.store(request(id="old", created_at=ago(30)))
    hitl.store(request(id="mid", created_at=ago(20)))
    hitl.store(request(id="new", created_at=ago(10)))
    hitl.store(request(id="elsewhere", session_id="other"))
    hitl.respond_to_request("mid", "rejected", "no", responded_by="bob")

    assert [(r.id, r.status) for r in hitl.list_by_session("sess_1")] == [
        ("new", "pending"),
        ("mid", "rejected"),
        ("old", "pending"),
    ]


# -- answering -----------------------------------------------------------------------------


def test_approve_records_the_audit_trail(hitl, backend):
    hitl.store(request(id="req_1"))

    decided = hitl.respond_to_request("req_1", "approved", "Go ahead", "alice", response_data={"ticket": 7})

    assert (decided.status, decided.response, decided.responded_by) == ("approved", "Go ahead", "alice")
    assert decided.response_data == {"ticket": 7}
    assert decided.responded_at is not None
    assert row(backend, "req_1", "status, response, responded_by, response_data_json, responded_at") == (
        "approved",
        "Go ahead",
        "alice",
        '{"ticket":7}',
        ms(decided.responded_at),
    )


@pytest.mark.parametrize(
    "request_type, status, accepted",
    [
        ("approval", "approved", True),
        ("approval", "rejected", True),
        ("approval", "responded", False),
        ("input", "responded", True),
        ("input", "approved", False),
        ("selection", "responded", True),
        ("selection", "rejected", False),
    ],
)
def test_each_request_type_takes_its_own_answers(hitl, backend, request_type, status, accepted):
    hitl.store(request(id="req_1", request_type=request_type))

    if accepted:
        assert hitl.respond_to_request("req_1", status, "answer", "alice").status == status
    else:
        with pytest.raises(ValidationError) as error:
            hitl.respond_to_request("req_1", status, "answer", "alice")
        assert "status" in error.value.messages
        assert row(backend, "req_1", "status, responded_by") == ("pending", "")


@pytest.mark.parametrize(
    "answer, field",
    [
        ({"status": "pending"}, "status"),
        ({"status": "expired"}, "status"),
        ({"status": "maybe"}, "status"),
        ({"responded_by": ""}, "responded_by"),
        ({"response_data": {1, 2}}, "response_data"),
        ({"response": 5}, "response"),
        ({"responded_by": "system:expiry"}, "responded_by"),
    ],
)
def test_bad_answers_are_rejected(hitl, backend, answer, field):
    hitl.store(request(id="req_1"))
    arguments = {"status": "approved", "response": "", "responded_by": "alice", **answer}

    with pytest.raises(ValidationError) as error:
        hitl.respond_to_request("req_1", **arguments)

    assert field in error.value.messages
    assert row(backend, "req_1", "status") == ("pending",)


def test_a_decided_request_cannot_be_decided_again(hitl, backend):
    hitl.store(request(id="req_1"))
    hitl.respond_to_request("req_1", "rejected", "no", "alice")

    with pytest.raises(ConflictError, match="req_1 is already rejected"):
        hitl.respond_to_request("req_1", "approved", "yes", "mallory")
    assert row(backend, "req_1", "status, responded_by") == ("rejected", "alice")


def test_answering_a_missing_request_is_not_found(hitl):
    with pytest.raises(NotFoundError, match="request not found: nope"):
        hitl.respond_to_request("nope", "approved", "", "alice")


def test_a_late_answer_expires_the_request(hitl, backend):
    hitl.store(overdue(id="req_1"))

    with pytest.raises(RequestExpiredError, match="request expired: req_1"):
        hitl.respond_to_request("req_1", "approved", "too late", "alice")

    assert row(backend, "req_1", "status, responded_by, response") == ("expired", "system:expiry", "")
    with pytest.raises(RequestExpiredError, match="request expired: req_1"):  # still expired, not a conflict
        hitl.respond_to_request("req_1", "approved", "too late", "alice")


def test_waiting_for_the_lock_does_not_stretch_the_deadline(hitl, backend):
    hitl.store(request(id="req_1", timeout_ms=400))
    holding, release = threading.Event(), threading.Event()

    def hold():
        with backend.write_lock(("human_requests",)):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    threading.Timer(1.0, release.set).start()  # let go after the deadline
    try:
        with pytest.raises(RequestExpiredError):
            hitl.respond_to_request("req_1", "approved", "late", "alice")
    finally:
        release.set()
        holder.join()
    assert row(backend, "req_1", "status") == ("expired",)


def test_eight_threads_racing_to_answer_one_request(hitl, backend):
    hitl.store(request(id="req_1"))
    outcomes, start = [], threading.Barrier(8)

    def answer(i):
        start.wait()
        try:
            hitl.respond_to_request("req_1", "approved" if i % 2 else "rejected", "", "person%d" % i)
            outcomes.append("won")
        except ConflictError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    status, winner = row(backend, "req_1", "status, responded_by")
    assert outcomes.count("won") == 1
    assert sorted(o for o in outcomes if o != "won") == ["request req_1 is already %s" % status] * 7
    assert winner.startswith("person")


def _race(target, index, barrier, results):
    repository = HumanRequestRepository.open(target)
    barrier.wait()
    try:
        repository.respond_to_request("req_1", "approved", "", "process%d" % index)
        results.put("won")
    except ConflictError as error:
        results.put(str(error))
    finally:
        repository.close()


def test_four_processes_racing_to_answer_one_request(hitl, backend):
    hitl.store(request(id="req_1"))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_race, args=(backend.target, i, barrier, results)) for i in range(4)]
    for worker in workers:
        worker.start()
    outcomes = sorted(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(60)

    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert outcomes == ["request req_1 is already approved"] * 3 + ["won"]
    assert row(backend, "req_1", "status") == ("approved",)


# -- expiry, waiting, retention, stats -------------------------------------------------------


def test_expire_overdue_sweeps_only_overdue_pending_requests(hitl, backend):
    hitl.store(overdue(id="late1"))
    hitl.store(overdue(id="late2"))
    hitl.store(request(id="open"))
    hitl.store(overdue(id="decided"))
    backend.sql("UPDATE human_requests SET status = 'approved' WHERE id = 'decided'")

    assert hitl.expire_overdue() == 2
    assert hitl.expire_overdue() == 0

    rows = dict(backend.sql("SELECT id, status || ':' || responded_by FROM human_requests"))
    assert rows == {
        "late1": "expired:system:expiry",
        "late2": "expired:system:expiry",
        "open": "pending:",
        "decided": "approved:",
    }


def test_expire_overdue_at_a_given_time(hitl):
    hitl.store(request(id="r", timeout_ms=60_000))

    assert hitl.expire_overdue(now=datetime.datetime.now(UTC) + datetime.timedelta(minutes=2)) == 1
    assert hitl.get("r").status == "expired"
    east = datetime.timezone(datetime.timedelta(hours=5))
    for bad in ("tomorrow", 12, datetime.datetime.min.replace(tzinfo=east)):
        with pytest.raises(ValidationError):
            hitl.expire_overdue(now=bad)


DECIDE_LATER = """
import sys, time
from loom_models.hitl import HumanRequestRepository
time.sleep(float(sys.argv[2]))
with HumanRequestRepository.open(sys.argv[1]) as hitl:
    hitl.respond_to_request("req_1", "approved", "from elsewhere", "carol")
"""


def test_wait_for_response_sees_another_process_decide(hitl, backend):
    hitl.store(request(id="req_1"))
    decider = subprocess.Popen([sys.executable, "-c", DECIDE_LATER, backend.target, "1.0"])
    try:
        decided = hitl.wait_for_response("req_1", poll_interval=0.2)
        returned_at = datetime.datetime.now(UTC)
    finally:
        decider.wait(60)

    assert decider.returncode == 0
    assert (decided.status, decided.responded_by) == ("approved", "carol")
    lag = (returned_at - decided.responded_at).total_seconds()
    assert lag < 0.2 + 0.25  # one poll interval, and a little for a loaded machine


def test_wait_for_response_expires_the_request_at_its_deadline(hitl, backend):
    stored = hitl.store(request(id="req_1", timeout_ms=700))

    decided = hitl.wait_for_response("req_1", poll_interval=0.2)

    assert (decided.status, decided.responded_by) == ("expired", "system:expiry")
    assert row(backend, "req_1", "status") == ("expired",)
    assert 0 <= (decided.responded_at - stored.expires_at).total_seconds() < 0.25  # not a poll interval late


def test_wait_for_response_gives_up_after_its_timeout(hitl):
    hitl.store(request(id="req_1", timeout_ms=60_000))

    assert hitl.wait_for_response("req_1", timeout=0.2, poll_interval=0.05).status == "pending"
    for bad in (
        {"timeout": -1},
        {"poll_interval": 0},
        {"poll_interval": float("nan")},
        {"timeout": "1"},
        {"timeout": 10**400},
        {"poll_interval": 1e12},
    ):
        with pytest.raises(ValidationError):
            hitl.wait_for_response("req_1", **bad)


def test_delete_older_than_purges_requests_decided_before_the_cutoff_only(hitl, backend):
    hitl.store(request(id="old_pending", created_at=ago(3600), timeout_ms=10**9))
    hitl.store(request(id="filed_long_ago_approved_now", created_at=ago(40 * 86400), timeout_ms=10**12))
    hitl.store(request(id="approved_long_ago", created_at=ago(3600), timeout_ms=10**9))
    hitl.store(overdue(id="expired_long_ago"))
    hitl.store(request(id="old_overdue_unswept", created_at=ago(200), timeout_ms=190_000))  # due 10 s ago
    hitl.store(request(id="new_rejected"))
    hitl.respond_to_request("filed_long_ago_approved_now", "approved", "", "alice")
    hitl.respond_to_request("approved_long_ago", "approved", "", "alice")
    hitl.respond_to_request("new_rejected", "rejected", "", "alice")
    hitl.expire_overdue(now=ago(30))  # sweeps expired_long_ago only, 30 s ago
    backend.sql("UPDATE human_requests SET responded_at = ? WHERE id = 'approved_long_ago'", ms(ago(3000)))
    backend.sql("UPDATE human_requests SET responded_at = ? WHERE id = 'expired_long_ago'", ms(ago(101)))

    listed = hitl.list_decided_before(datetime.timedelta(seconds=100))
    assert [r.id for r in listed] == ["approved_long_ago", "expired_long_ago"]  # the earliest decided first
    assert [r.id for r in hitl.list_decided_before(datetime.timedelta(seconds=100), limit=1)] == ["approved_long_ago"]
    assert backend.sql("SELECT COUNT(*) FROM human_requests") == [(6,)]
    assert hitl.delete_older_than(datetime.timedelta(seconds=100)) == 2
    assert sorted(r for (r,) in backend.sql("SELECT id FROM human_requests")) == [
        "filed_long_ago_approved_now",
        "new_rejected",
        "old_overdue_unswept",
        "old_pending",
    ]
    with pytest.raises(ValidationError):
        hitl.delete_older_than(datetime.timedelta(days=-1))


def test_a_decided_reference_row_without_a_decision_time_is_as_old_as_its_creation(hitl, backend):
    old = ms(ago(7200))
    backend.sql(
        "INSERT INTO human_requests VALUES ('ref_timeout', 'a', 's', 'Go on', 'null', 'approval', 'normal',"
        " 1000, ?, ?, 'timeout', '', '', NULL, '')",
        old,
        old + 1000,
    )

    assert hitl.delete_older_than(datetime.timedelta(hours=1)) == 1


# -- withdrawing a question ------------------------------------------------------------------


def test_cancel_withdraws_a_pending_request(hitl, backend):
    hitl.store(request(id="req_1", timeout_ms=3_600_000))

    cancelled = hitl.cancel("req_1", cancelled_by="agent:billing")

    assert (cancelled.status, cancelled.responded_by, cancelled.response) == ("expired", "agent:billing", "")
    assert abs((cancelled.responded_at - ago(0)).total_seconds()) < 5
    status, by, at = row(backend, "req_1", "status, responded_by, responded_at")
    assert (status, by, at) == ("expired", "agent:billing", ms(cancelled.responded_at))
    assert hitl.list_pending() == []
    with pytest.raises(RequestExpiredError, match="^request expired: req_1$"):
        hitl.respond_to_request("req_1", "approved", "too late", "alice")


def test_cancel_of_a_decided_request_is_a_conflict_naming_its_status(hitl, backend):
    hitl.store(request(id="req_1"))
    hitl.respond_to_request("req_1", "rejected", "no", "alice")

    with pytest.raises(ConflictError, match="^request req_1 is already rejected$"):
        hitl.cancel("req_1", cancelled_by="agent:x")
    assert row(backend, "req_1", "status, responded_by") == ("rejected", "alice")


def test_cancel_of_an_overdue_or_missing_request(hitl, backend):
    hitl.store(overdue(id="late"))

    with pytest.raises(RequestExpiredError, match="^request expired: late$"):
        hitl.cancel("late", cancelled_by="agent:x")
    assert row(backend, "late", "status, responded_by") == ("expired", "system:expiry")
    with pytest.raises(NotFoundError, match="^request not found: nope$"):
        hitl.cancel("nope", cancelled_by="agent:x")
    for bad in ("", None, "x" * 256, "a\x00b"):
        with pytest.raises(ValidationError, match="cancelled_by"):
            hitl.cancel("late", cancelled_by=bad)


def test_get_stats_counts_per_status(hitl):
    assert hitl.get_stats() == {"pending": 0, "approved": 0, "rejected": 0, "responded": 0, "expired": 0}
    hitl.store(request(id="a"))
    hitl.store(request(id="b"))
    hitl.store(request(id="c", request_type="input"))
    hitl.store(overdue(id="late"))  # pending on disk, expired in fact
    hitl.respond_to_request("a", "approved", "", "x")
    hitl.respond_to_request("c", "responded", "42", "x")

    assert hitl.get_stats() == {"pending": 1, "approved": 1, "rejected": 0, "responded": 1, "expired": 1}


def test_pending_by_priority_counts_what_list_pending_gives(hitl):
    assert hitl.pending_by_priority() == {"critical": 0, "high": 0, "medium": 0, "low": 0}
    for i, priority in enumerate(["high", "low", "high", "critical"]):
        hitl.store(request(id="r%d" % i, priority=priority))
    hitl.store(overdue(id="late", priority="critical"))
    hitl.respond_to_request("r0", "approved", "", "x")

    assert hitl.pending_by_priority() == {"critical": 1, "high": 1, "medium": 0, "low": 1}
    assert sum(hitl.pending_by_priority().values()) == len(hitl.list_pending())


# -- restarts and the reference implementation's rows ----------------------------------------


def test_requests_and_answers_survive_a_restart(backend):
    with HumanRequestRepository.open(backend.target) as first:
        first.store(request(id="req_1", context={"amount": 120}))
        answered = first.respond_to_request("req_1", "approved", "ok", "alice", response_data=[1, 2])

    with HumanRequestRepository.open(backend.target) as again:
        assert again.get("req_1").__data__ == answered.__data__


def test_rows_written_by_the_reference_implementation_are_read(hitl, backend):
    created = ms(ago(10))
    backend.sql(
        "INSERT INTO human_requests VALUES ('ref', 'a', 's', 'Proceed', 'null', 'decision', 'normal', 60000, ?, ?,"
        " 'pending', '', '', NULL, '')",
        created,
        created + 60_000,
    )
    backend.sql(
        "INSERT INTO human_requests VALUES ('old', 'a', 's', 'Proceed', '{\"k\":1}', 'approval', 'high', 1000, ?, ?,"
        " 'timeout', '', '', ?, 'system')",
        created,
        created + 1000,
        created + 1000,
    )

    hitl.store(request(id="low", priority="low", created_at=ago(100)))
    hitl.store(request(id="medium", priority="medium", created_at=ago(1)))
    assert [r.id for r in hitl.list_pending()] == ["ref", "medium", "low"]  # 'normal' ranks as medium
    pending = hitl.get("ref")
    assert (pending.request_type, pending.priority, pending.context) == ("decision", "normal", None)
    assert hitl.get("old").status == "timeout" and hitl.get("old").context == {"k": 1}
    assert hitl.respond_to_request("ref", "approved", "", "alice").status == "approved"
    assert hitl.get_stats()["timeout"] == 1 and hitl.get_stats()["pending"] == 2


def test_a_response_that_is_no_mapping_is_a_validation_error():
    for bad in (["approved"], "approved", None):
        with pytest.raises(marshmallow.ValidationError):
            ResponseSchema().load(bad)


def test_schema_dumps_json(hitl):
    stored = hitl.store(request(id="req_1", created_at=datetime.datetime(2030, 1, 1, tzinfo=UTC), timeout_ms=1000))

    dumped = HumanRequestSchema().dump(stored)

    assert dumped["created_at"] == "2030-01-01T00:00:00+00:00"
    assert dumped["expires_at"] == "2030-01-01T00:00:01+00:00"
    assert (dumped["status"], dumped["responded_at"]) == ("pending", None)


def test_ids_starting_finds_request_ids_by_their_exact_start(hitl):
    stored = [
        hitl.store(HumanRequest(id=i, question="q", agent_id="a", session_id="s")).id
        for i in ("req_ab1", "req_ab2", "req_c")
    ]
    assert stored == ["req_ab1", "req_ab2", "req_c"]
    assert hitl.ids_starting("req_ab") == ["req_ab1", "req_ab2"]
    assert hitl.ids_starting("req_c") == ["req_c"]
    assert hitl.ids_starting("REQ_C") == hitl.ids_starting("req_a_") == []

"""loom-db requests, through the installed script, on the suite's backend; and HumanRequestRepository.list_requests.

Decisions are checked through the Python API (storage.hitl.get), listings through
the tables and the --json documents.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess

import pytest
import test_cli
from test_cli import SCRIPT, Store, script

from loom_models import ValidationError
from loom_models.hitl import HumanRequest

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY_MS = 24 * 3600 * 1000

store = test_cli.store  # the fixture: an initialised store on the suite's backend


def loom(store: Store, *args) -> subprocess.CompletedProcess:
    """The installed loom-db on `store`, its output a pipe whose width is unknown (so 100 columns)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOOM_DATA_DIR", "COLUMNS")}
    return subprocess.run(
        [SCRIPT, *map(str, store.args), *map(str, args)], env=env, timeout=60, capture_output=True, text=True
    )


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done


def ok_json(store: Store, *args):
    return json.loads(ok(loom(store, "--json", *args)).stdout)


def fails(done: subprocess.CompletedProcess, code: int) -> str:
    """The one line on stderr of a command that exited with `code`."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def put(store: Store, question: str, *, minutes_ago: float = 0, **fields) -> str:
    fields = {"agent_id": "billing", "session_id": "sess_1", "timeout_ms": DAY_MS, **fields}
    created = NOW - datetime.timedelta(minutes=minutes_ago)
    with store.storage() as storage:
        return storage.hitl.store(HumanRequest(question=question, created_at=created, **fields)).id


def listed(store: Store, *args) -> list[str]:
    return [r["question"] for r in ok_json(store, "requests", "list", *args)["requests"]]


# -- list --------------------------------------------------------------------------------------


def test_list_puts_pending_first_by_priority_then_age_then_the_decided(store):
    put(store, "low old", priority="low", minutes_ago=30)
    put(store, "medium", priority="medium", minutes_ago=20)
    put(store, "critical new", priority="critical", minutes_ago=1)
    put(store, "critical old", priority="critical", minutes_ago=10)
    put(store, "high", priority="high", minutes_ago=5)
    decided = put(store, "decided", priority="critical", minutes_ago=40)
    with store.storage() as storage:
        storage.hitl.respond_to_request(decided, "approved", "", responded_by="alice")
    order = ["critical old", "critical new", "high", "medium", "low old", "decided"]
    assert listed(store) == order
    lines = ok(loom(store, "requests", "list")).stdout.splitlines()
    assert lines[0].split() == ["id", "agent", "question", "priority", "left"]
    assert all(question in line for question, line in zip(order, lines[1:], strict=True))
    assert lines[-1].split()[-1] == "approved"


def test_list_shows_the_time_left_or_the_status(store):
    put(store, "minutes", minutes_ago=0.1, timeout_ms=int(12.5 * 60_000))
    put(store, "hours", timeout_ms=int(3.5 * 3600_000))
    put(store, "overdue", minutes_ago=120, timeout_ms=3600_000)
    lines = ok(loom(store, "requests", "list")).stdout.splitlines()
    left = {line.split()[2]: line.split()[-1] for line in lines[1:]}
    # 12.4 minutes left when it was filed: 12m, or 11m on a machine that took 24 s to list it.
    assert left.pop("minutes") in ("12m", "11m")
    assert left.pop("hours") in ("3h29m", "3h28m") and left == {"overdue": "expired"}
    assert listed(store, "--status", "pending") == ["minutes", "hours"]
    assert listed(store, "--status", "expired") == ["overdue"]


def test_list_filters_by_status_and_agent(store):
    put(store, "billing pending")
    put(store, "support pending", agent_id="support")
    approved = put(store, "support approved", agent_id="support")
    rejected = put(store, "billing rejected")
    with store.storage() as storage:
        storage.hitl.respond_to_request(approved, "approved", "", responded_by="alice")
        storage.hitl.respond_to_request(rejected, "rejected", "", responded_by="alice")
    assert listed(store, "--agent", "support") == ["support pending", "support approved"]
    assert listed(store, "--status", "rejected") == ["billing rejected"]
    assert listed(store, "--status", "approved", "--agent", "billing") == []
    assert ok(loom(store, "requests", "list", "--agent", "nobody")).stdout == "No requests.\n"
    assert fails(loom(store, "requests", "list", "--status", "maybe"), 2).startswith("Error: ")


def test_list_says_how_many_more_past_the_limit(store):
    for index in range(5):
        put(store, "question %d" % index, minutes_ago=10 - index)
    lines = ok(loom(store, "requests", "list", "--limit", "2")).stdout.splitlines()
    assert len(lines) == 4 and lines[-1] == "... and 3 more (--limit 5 lists them all)"
    document = ok_json(store, "requests", "list", "--limit", "2")
    assert document["total"] == 5 and [r["question"] for r in document["requests"]] == ["question 0", "question 1"]
    assert "more" not in ok(loom(store, "requests", "list", "--limit", "5")).stdout
    fails(loom(store, "requests", "list", "--limit", "0"), 2)


def test_list_shortens_long_questions_at_a_word_to_fit_100_columns(store):
    put(store, "word " * 60 + "end")
    line = ok(loom(store, "requests", "list")).stdout.splitlines()[1]
    assert len(line) <= 100 and "word…" in line and "end" not in line


def test_list_shows_the_start_of_each_id_which_the_commands_take(store):
    first = put(store, "Refund order 1?", id="req_0bc286e6a5c4464e8161ef6e3b1c2a6a")
    put(store, "Refund order 2?", id="req_0bc286e6a5c4ffff", minutes_ago=1)

    rows = ok(loom(store, "requests", "list")).stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["req_0bc286e6a5c4ffff", "req_0bc286e6a5c44"]  # chosen: whole
    ambiguous = fails(loom(store, "requests", "approve", "req_0bc286e6a5c4", "--by", "alice"), 4)
    assert "starts more than one request's id" in ambiguous

    ok(loom(store, "requests", "approve", "req_0bc286e6a5c44", "--by", "alice"))
    with store.storage() as storage:
        assert storage.hitl.get(first).status == "approved"
    assert ok_json(store, "requests", "show", "req_0bc286e6a5c4f")["status"] == "pending"


# -- show --------------------------------------------------------------------------------------


def test_show_gives_everything_a_person_needs(store):
    request_id = put(
        store, "Which colour?", request_type="selection", priority="high", context={"options": ["blue", "red"]}
    )
    shown = ok(loom(store, "requests", "show", request_id)).stdout
    for text in ("Which colour?", "selection", "high", "pending, 23h left", '["blue", "red"]', " UTC"):
        assert text in shown
    assert "decided by  -" in shown
    with store.storage() as storage:
        storage.hitl.respond_to_request(request_id, "responded", "blue", responded_by="bob")
    shown = ok(loom(store, "requests", "show", request_id)).stdout
    assert "decided by  bob" in shown and "response    blue" in shown and "responded" in shown
    document = ok_json(store, "requests", "show", request_id)
    assert (document["id"], document["status"], document["responded_by"]) == (request_id, "responded", "bob")
    assert document["context"] == {"options": ["blue", "red"]} and document["responded_at"].endswith("+00:00")


# -- decisions ---------------------------------------------------------------------------------


def decided(store: Store, request_id: str) -> HumanRequest:
    with store.storage() as storage:
        return storage.hitl.get(request_id)


def test_approve_reject_respond_and_cancel_are_seen_by_the_python_api(store):
    approve, reject = put(store, "Deploy?"), put(store, "Refund?")
    answer, cancel = put(store, "Where to?", request_type="input"), put(store, "Wait?")
    line = ok(loom(store, "requests", "approve", approve, "--by", "alice", "--note", "Go")).stdout
    assert line == "Approved request %s (by alice).\n" % approve
    ok(loom(store, "requests", "reject", reject, "--by", "bob"))
    document = ok_json(store, "requests", "respond", answer, "Paris", "--by", "carol")
    assert (document["id"], document["status"], document["response"]) == (answer, "responded", "Paris")
    ok(loom(store, "requests", "cancel", cancel))
    got = {r: decided(store, r) for r in (approve, reject, answer, cancel)}
    assert [(got[r].status, got[r].responded_by, got[r].response) for r in got] == [
        ("approved", "alice", "Go"),
        ("rejected", "bob", ""),
        ("responded", "carol", "Paris"),
        ("expired", "loom-db", ""),
    ]
    assert all(request.responded_at is not None for request in got.values())


def test_a_second_decision_is_refused_naming_the_status(store):
    request_id = put(store, "Deploy?")
    ok(loom(store, "requests", "approve", request_id, "--by", "alice"))
    for args in (("reject", request_id, "--by", "bob"), ("approve", request_id, "--by", "bob"), ("cancel", request_id)):
        error = fails(loom(store, "requests", *args), 5)
        assert "already approved" in error and "requests show %s" % request_id in error
    cancelled = put(store, "Wait?")
    ok(loom(store, "requests", "cancel", cancelled))
    assert "expired" in fails(loom(store, "requests", "approve", cancelled, "--by", "bob"), 6)
    assert (decided(store, request_id).responded_by, decided(store, cancelled).responded_by) == ("alice", "loom-db")


def test_an_answer_the_request_type_does_not_take_is_refused(store):
    request_id = put(store, "Deploy?")
    assert "approved or rejected" in fails(loom(store, "requests", "respond", request_id, "yes", "--by", "bob"), 4)
    assert decided(store, request_id).status == "pending"


@pytest.mark.parametrize("command", [("approve",), ("reject",), ("respond", "text")])
def test_by_is_required(store, command):
    request_id = put(store, "Deploy?")
    assert "--by" in fails(loom(store, "requests", command[0], request_id, *command[1:]), 2)
    assert decided(store, request_id).status == "pending"


@pytest.mark.parametrize(
    "args", [("show",), ("approve", "--by", "a"), ("reject", "--by", "a"), ("respond", "x", "--by", "a"), ("cancel",)]
)
def test_a_missing_request_exits_3(store, args):
    command, *rest = args
    assert "req_missing" in fails(loom(store, "requests", command, "req_missing", *rest), 3)


@pytest.mark.parametrize("command", ["list", "show", "approve", "reject", "respond", "cancel"])
def test_help_ends_with_examples(command):
    lines = script("requests", command, "--help", capture_output=True, text=True).stdout.rstrip().splitlines()
    examples = lines[[line.strip() for line in lines].index("Examples:") + 1 :]
    assert 2 <= len(examples) <= 3 and all(line.strip().startswith("loom-db ") for line in examples)


# -- the repository's listing --------------------------------------------------------------------


def test_list_requests_pages_and_counts(hitl):
    for index, priority in enumerate(("low", "critical", "medium")):
        hitl.store(HumanRequest(id="r%d" % index, agent_id="a", session_id="s", question="q", priority=priority))
    hitl.respond_to_request("r0", "rejected", "", responded_by="al")
    page, total = hitl.list_requests(limit=2)
    assert ([r.id for r in page], total) == (["r1", "r2"], 3)
    assert [r.id for r in hitl.list_requests()[0]] == ["r1", "r2", "r0"]
    assert hitl.list_requests(status="rejected", agent_id="b") == ([], 0)
    with pytest.raises(ValidationError):
        hitl.list_requests(status="maybe")
    with pytest.raises(ValidationError):
        hitl.list_requests(limit=0)

"""Documents of records (loom_models.documents): loaded whole, checked first, written all or nothing.

loom_models.testing's load_fixture is the same function, under the name a test suite uses.

On the suite's backend, through the plugin's `loom_storage`; what was written is
checked through raw SQL.
"""

import base64
import copy
import datetime
import json
import pathlib

import pytest

from loom_models import ConflictError, ValidationError, open_storage
from loom_models.documents import is_document, load_document
from loom_models.hitl import HumanRequestSchema
from loom_models.references import ReferenceType
from loom_models.testing import SessionFactory, load_fixture

UTC = datetime.timezone.utc
PNG_HEADER = b"\x89PNG\r\n\x1a\n"
TABLES = {
    "sessions": ("sessions", "messages", "tool_executions"),
    "hitl": ("human_requests",),
    "references": ("reference_store",),
}

# The sample data the README's example loads, as a project would commit it.
SAMPLE = json.loads((pathlib.Path(__file__).parent / "data" / "sample.json").read_text())


def sql(storage, domain: str, query: str, *params) -> list[tuple]:
    database = getattr(storage, domain).database
    return list(database.execute_sql(query.replace("?", database.param), params).fetchall())


def row_counts(storage) -> dict:
    return {
        table: sql(storage, domain, "SELECT COUNT(*) FROM %s" % table)[0][0]
        for domain, tables in TABLES.items()
        for table in tables
    }


def without_row_ids(session: dict) -> dict:
    rows = {
        name: [{k: v for k, v in row.items() if k not in ("id", "session_id")} for row in session[name]]
        for name in ("messages", "tool_executions")
    }
    return {**session, **rows}


# -- loading ----------------------------------------------------------------------------------


def test_a_fixture_loads_every_kind(loom_storage):
    loaded = load_fixture(loom_storage, copy.deepcopy(SAMPLE))

    assert [s.id for s in loaded.sessions] == ["sess_1", "sess_2"]
    assert row_counts(loom_storage) == {
        "sessions": 2,
        "messages": 2,
        "tool_executions": 1,
        "human_requests": 4,
        "reference_store": 2,
    }
    statuses = sql(loom_storage, "hitl", "SELECT id, status, responded_by FROM human_requests ORDER BY id")
    assert statuses == [
        ("req_approved", "approved", "alice"),
        ("req_late", "expired", "system:expiry"),
        ("req_note", "responded", "bob"),
        ("req_pending", "pending", ""),
    ]
    assert [r.status for r in loaded.requests] == ["pending", "approved", "responded", "expired"]
    assert loom_storage.references.resolve(loaded.references[0].id) == b"quarter,revenue\nQ3,1.12\n"
    assert loom_storage.references.resolve(loaded.references[1].id) == PNG_HEADER
    assert sql(
        loom_storage, "references", "SELECT type FROM reference_store WHERE id = ?", loaded.references[1].id
    ) == [(4,)]


def test_progress_is_told_the_rows_each_record_wrote_and_the_whole(loom_storage):
    told = []
    load_document(loom_storage, copy.deepcopy(SAMPLE), progress=lambda rows, total: told.append((rows, total)))

    written = sum(row_counts(loom_storage).values())
    assert [total for _, total in told] == [written] * len(told)
    assert sum(rows for rows, _ in told) == written
    assert len(told) == sum(len(SAMPLE.get(kind, [])) for kind in ("sessions", "requests", "references"))


def test_import_session_tells_progress_the_rows_a_batch_at_a_time(loom_storage):
    session = SessionFactory.create(storage=loom_storage, messages=1200, tool_executions=3)
    document = loom_storage.sessions.export_session(session.id)
    told = []

    loom_storage.sessions.import_session({**document, "id": "copy"}, progress=told.append)

    assert sum(told) == 1 + 1200 + 3 and told[0] == 1 and len(told) > 3  # the messages in more than one batch


def test_what_was_loaded_reads_back_as_given(loom_storage):
    load_fixture(loom_storage, copy.deepcopy(SAMPLE))

    exported = json.loads(json.dumps(loom_storage.sessions.export_session("sess_1")))
    given = SAMPLE["sessions"][0]
    fields = ("name", "agent_id", "context", "created_at", "updated_at")
    assert {k: exported[k] for k in fields} == {k: given[k] for k in fields}
    assert [(m["role"], m["content"], m["timestamp"]) for m in exported["messages"]] == [
        (m["role"], m["content"], m["timestamp"]) for m in given["messages"]
    ]
    assert exported["tool_executions"][0]["result"] == {"status": "shipped"}
    assert (exported["total_tokens"], exported["total_cost_usd"]) == (12, 0.25)
    note = HumanRequestSchema().dump(loom_storage.hitl.get("req_note"))
    assert {k: note[k] for k in ("status", "response", "responded_by", "response_data")} == {
        "status": "responded",
        "response": "VIP",
        "responded_by": "bob",
        "response_data": {"tier": "gold"},
    }


def dumped(storage) -> dict:
    """Everything in a store as a fixture, as JSON gives it back."""
    references = storage.references.list()
    document = {
        "sessions": [storage.sessions.export_session(s.id) for s in storage.sessions.list_sessions()],
        "requests": [
            HumanRequestSchema().dump(storage.hitl.get(request_id))
            for (request_id,) in sql(storage, "hitl", "SELECT id FROM human_requests ORDER BY id")
        ],
        "references": [
            {
                "data_base64": base64.b64encode(storage.references.resolve(r.id)).decode(),
                "type": ReferenceType(r.type).name,
            }
            for r in references
        ],
    }
    return json.loads(json.dumps(document))


def comparable(document: dict) -> dict:
    """A dumped fixture without what each store assigns: row ids, and when a request was answered."""
    return {
        "sessions": sorted((without_row_ids(s) for s in document["sessions"]), key=lambda s: s["id"]),
        "requests": [{k: v for k, v in r.items() if k != "responded_at"} for r in document["requests"]],
        "references": sorted(document["references"], key=lambda r: r["data_base64"]),
    }


def test_round_trip_through_a_second_store(loom_storage, tmp_path):
    load_fixture(loom_storage, copy.deepcopy(SAMPLE))
    first = dumped(loom_storage)

    with open_storage(tmp_path / "second", gc_interval=0) as second:
        load_fixture(second, first)
        assert comparable(dumped(second)) == comparable(first)


def test_a_fixture_from_a_file(loom_storage, tmp_path):
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(SAMPLE))

    loaded = load_fixture(loom_storage, path)
    assert len(loaded.requests) == 4 and row_counts(loom_storage)["sessions"] == 2


def test_a_file_that_is_not_json(loom_storage, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")

    with pytest.raises(ValidationError, match="broken.json: Not JSON"):
        load_fixture(loom_storage, str(path))


def test_every_key_is_optional(loom_storage):
    assert load_fixture(loom_storage, {}).sessions == []
    assert len(load_fixture(loom_storage, {"references": [{"data": "x"}]}).references) == 1


def test_a_fixture_is_told_from_an_exported_session():
    assert is_document(SAMPLE) and is_document({"references": []})
    assert not is_document(SAMPLE["sessions"][0]) and not is_document([]) and not is_document("sessions")


# -- bad input: nothing is written ------------------------------------------------------------


def spoiled(kind: str, index: int, **changes) -> dict:
    """SAMPLE with one item changed (a value of None removes the key)."""
    document = copy.deepcopy(SAMPLE)
    item = {**document[kind][index], **changes}
    document[kind][index] = {k: v for k, v in item.items() if v is not None}
    return document


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (["sessions"], "document: Must be a JSON object"),
        ({"sessions": [], "session": []}, "session: Unknown key"),
        ({"sessions": {"id": "s"}}, "sessions: Must be a list"),
        ({"requests": ["req_1"]}, "requests: 0: Must be a JSON object"),
        (spoiled("sessions", 1, messages=[{"role": "robot"}]), "sessions: 1: messages: 0: role"),
        (spoiled("sessions", 1, tool_executions=[{"input": {}}]), "sessions: 1: tool_executions: 0: tool_name"),
        (spoiled("sessions", 1, id=""), "sessions: 1: id"),
        (spoiled("sessions", 1, colour="blue"), "sessions: 1: colour"),
        (spoiled("requests", 3, question=None), "requests: 3: question"),
        (spoiled("requests", 3, status="maybe"), "requests: 3: status: Must be one of"),
        (spoiled("requests", 1, responded_by=None), "requests: 1: responded_by"),
        (spoiled("requests", 1, responded_by="system:me"), "requests: 1: responded_by"),
        (spoiled("requests", 2, status="approved"), "requests: 2: status: A input request is answered with responded"),
        (spoiled("requests", 1, created_at="2026-01-01T00:00:00+00:00"), "requests: 1: status: A decided request"),
        (spoiled("requests", 3, created_at=None), "requests: 3: status: An expired request needs a deadline"),
        (spoiled("references", 1, data="both"), "references: 1: data: Give data"),
        (spoiled("references", 0, data=""), "references: 0: data: Must not be empty"),
        (spoiled("references", 1, data_base64="not base64!"), "references: 1: data_base64"),
        (spoiled("references", 0, type="HUGE"), "references: 0: type"),
        (spoiled("references", 0, ttl=-1), "references: 0: ttl"),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(loom_storage, document, named):
    with pytest.raises(ValidationError) as raised:
        load_fixture(loom_storage, document)

    assert named in str(raised.value)
    assert set(row_counts(loom_storage).values()) == {0}


def test_an_id_the_store_holds_already_leaves_the_store_as_it_was(loom_storage):
    SessionFactory.create(storage=loom_storage, id="sess_2", messages=1)
    before = row_counts(loom_storage)

    with pytest.raises(ConflictError, match="sess_2"):
        load_fixture(loom_storage, copy.deepcopy(SAMPLE))  # sess_1 is written before sess_2 fails

    assert row_counts(loom_storage) == before
    assert sql(loom_storage, "sessions", "SELECT id FROM sessions") == [("sess_2",)]


def test_a_request_id_twice_writes_nothing_in_any_database(loom_storage):
    document = copy.deepcopy(SAMPLE)
    document["requests"].append(document["requests"][0])

    with pytest.raises(ConflictError, match="req_pending"):
        load_fixture(loom_storage, document)

    assert set(row_counts(loom_storage).values()) == {0}

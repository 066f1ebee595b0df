"""Hot statements: SQL built once must bind and decode exactly as peewee's own query would."""

import datetime

import pytest

from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session
from loom_models.statements import Statement, param


def _data(instances) -> list[dict]:
    return [dict(instance.__data__) for instance in instances]


def test_decoded_rows_match_what_a_peewee_select_gives(sessions):
    sessions.save_session(Session(id="sess_1", context={"user": "john"}))
    sessions.save_messages(
        "sess_1",
        [
            Message(role="assistant", content="42", tool_calls=[{"name": "add", "args": [40, 2]}], cost_usd=0.5),
            Message(role="tool", content="", tool_use_id="t1", tool_result={"ok": True}, token_count=7),
            Message(role="user", content="Ünïcode ✓", session_context="shared", agent_id="a1"),
        ],
    )
    M, S = sessions.Message, sessions.Session
    by_peewee = M.select().where(M.session == "sess_1").order_by(M.id)
    statement = Statement(M.select().where(M.session == param("session_id")).order_by(M.id))
    decoded = statement.models(session_id="sess_1")

    assert _data(decoded) == _data(by_peewee) and len(decoded) == 3
    assert all(type(m) is M and not m._dirty for m in decoded)
    # Made without Model.__init__: what peewee's instances hold, they hold.
    assert all(vars(m).keys() == vars(by_peewee[0]).keys() for m in decoded)
    assert decoded[0].timestamp.tzinfo is datetime.timezone.utc
    assert _data(Statement(S.select().where(S.id == param("id"))).models(id="sess_1")) == _data(S.select())


def test_the_pending_requests_match_a_peewee_select(hitl):
    for i, priority in enumerate(["low", "critical", "high"]):
        hitl.store(HumanRequest(id="r%d" % i, agent_id="a", session_id="s", question="?", priority=priority))
    H = hitl.HumanRequest
    assert _data(hitl.list_pending(limit=10)) == _data(H.select().order_by(H.id).where(H.id == "r1")) + _data(
        H.select().where(H.id.in_(["r2", "r0"])).order_by(H.id.desc())
    )


def test_positional_parameters_bind_in_order(sessions):
    S = sessions.Session
    statement = Statement(S.select(S.id).where(S.id.in_([param(), param()])).order_by(S.id))
    sessions.save_session(Session(id="a"))
    sessions.save_session(Session(id="b"))
    sessions.save_session(Session(id="c"))
    assert statement.rows("c", "a") == [("a",), ("c",)]


def test_a_constant_in_a_statement_is_refused(sessions):
    # A constant would become a positional parameter among named ones.
    S = sessions.Session
    with pytest.raises(ValueError, match="param"):
        Statement(S.select().where(S.id == param("id"), S.total_tokens > 0))


def test_named_parameters_fit_the_driver(sessions):
    S = sessions.Session
    sql = Statement(S.select(S.id).where(S.id == param("id"))).sql
    assert sql.endswith(":id)") if sessions.backend.name == "sqlite" else sql.endswith("%(id)s)")


def test_a_parameter_made_of_a_field_converts_its_value_as_the_field_does(sessions, backend):
    S = sessions.Session
    at = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    insert = Statement(S.insert({f: param(f) for f in S._meta.sorted_fields}))

    insert.execute(
        id="s", name=None, agent_id="a", parent_session_id=None, context={"k": [1]}, created_at=at,
        updated_at=at, total_cost_usd=0.0, total_tokens=0,
    )  # fmt: skip
    moved = Statement(S.update(updated_at=param(S.updated_at, "when")).where(S.id == param(S.id)))
    moved.execute(id="s", when=at + datetime.timedelta(hours=1))

    assert backend.sql("SELECT context_json, created_at, updated_at FROM sessions") == [
        ('{"k":[1]}', int(at.timestamp()), int(at.timestamp()) + 3600)
    ]
    rows = Statement(S.select(S.id).where(S.id.in_([param(field=S.id), param()]))).rows("s", "x")
    assert rows == [("s",)]

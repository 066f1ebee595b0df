"""What a person sees of a record: its repr, whether it was built by hand or returned by a repository."""

from loom_models.hitl import HumanRequest
from loom_models.references import Reference
from loom_models.sessions import Message, Session, ToolExecution


def test_reprs_say_what_a_person_needs():
    assert repr(Session(id="sess_1", agent_id="support", name="Order 42")) == "<Session sess_1 support 'Order 42'>"
    assert repr(Message(id=12, role="user", content="Where is my order?")) == "<Message 12 user 'Where is my order?'>"
    assert repr(Message(role="assistant", content="x" * 60)) == "<Message (new) assistant '%s...'>" % ("x" * 37)
    assert (
        repr(ToolExecution(id=3, tool_name="lookup_order", error="timeout")) == "<ToolExecution 3 lookup_order failed>"
    )
    assert repr(HumanRequest(id="req_1", status="pending", priority="high", question="Refund?")) == (
        "<HumanRequest req_1 pending high 'Refund?'>"
    )
    assert repr(Reference(id="ab" * 32, size_bytes=1024, ref_count=2)) == "<Reference abababababab 1024 bytes 2 refs>"


def test_records_a_repository_returns_have_the_same_reprs(sessions, hitl, references):
    sessions.save_session(Session(id="sess_1", agent_id="support"))
    message = sessions.save_message("sess_1", Message(role="user", content="Hi"))
    request = hitl.store(HumanRequest(id="req_1", agent_id="a", session_id="s", question="Go?", priority="low"))

    assert repr(sessions.load_session("sess_1")) == "<Session sess_1 support>"
    assert repr(message) == "<Message %d user 'Hi'>" % message.id
    assert repr(sessions.load_messages("sess_1")[0]) == repr(message)
    assert repr(request) == repr(hitl.get("req_1")) == "<HumanRequest req_1 pending low 'Go?'>"
    assert repr(references.store(b"data")).endswith(" 4 bytes 1 refs>")

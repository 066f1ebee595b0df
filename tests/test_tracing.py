"""Spans of repository calls: names, attributes, errors, parents; no cost without a tracer.

Spans go to the SDK's in-memory exporter through a provider of the test's own
(the global provider can be set only once per process).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from loom_models import calls, open_storage, tracing
from loom_models.errors import ForeignKeyConstraintError, NotFoundError, ValidationError
from loom_models.hitl import HumanRequest, HumanRequestRepository
from loom_models.references import ReferenceRepository
from loom_models.sessions import Message, Session, SessionRepository, ToolExecution
from loom_models.storage import REPOSITORIES

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("loom-tests")


@pytest.fixture
def sessions(backend, tracer, exporter):
    with SessionRepository.open(backend.target, tracer=tracer) as repository:
        repository.save_session(Session(id="sess_1", agent_id="support"))
        exporter.clear()  # the spans of opening and of the setup are not the test's
        yield repository


@pytest.fixture
def hitl(backend, tracer, exporter):
    with HumanRequestRepository.open(backend.target, tracer=tracer) as repository:
        exporter.clear()
        yield repository


@pytest.fixture
def references(backend, tracer, exporter):
    with ReferenceRepository.open(backend.target, tracer=tracer) as repository:
        exporter.clear()
        yield repository


def the_span(exporter):
    """The one span finished since the last clear."""
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def test_save_message_is_one_span_with_its_session_role_and_tokens(sessions, exporter):
    sessions.save_message("sess_1", Message(role="user", content="Hi", token_count=7))

    span = the_span(exporter)  # not a second one for save_messages, which it calls
    assert span.name == "session_store.save_message"
    assert dict(span.attributes) == {"session_id": "sess_1", "role": "user", "token_count": 7}
    assert span.status.status_code is StatusCode.UNSET


def test_a_batch_write_and_a_list_count_their_rows(sessions, exporter):
    sessions.save_messages("sess_1", [Message(role="user", content=str(i)) for i in range(3)])
    sessions.load_messages(session_id="sess_1", limit=2)  # ids given by keyword count too

    written, listed = exporter.get_finished_spans()
    assert (written.name, dict(written.attributes)) == (
        "session_store.save_messages",
        {"session_id": "sess_1", "row_count": 3},
    )
    assert (listed.name, dict(listed.attributes)) == (
        "session_store.load_messages",
        {"session_id": "sess_1", "row_count": 2},
    )


def test_a_stored_record_names_its_ids(sessions, exporter):
    sessions.save_session(Session(id="sess_2", agent_id="researcher"))
    sessions.save_session(Session(id="sess_3"))  # no agent: no agent_id attribute

    with_agent, without_agent = exporter.get_finished_spans()
    assert dict(with_agent.attributes) == {"session_id": "sess_2", "agent_id": "researcher"}
    assert dict(without_agent.attributes) == {"session_id": "sess_3"}


@pytest.mark.parametrize(
    ("call", "name", "attributes"),
    [
        (lambda repo: repo.export_session("sess_1"), "session_store.export_session", {"session_id": "sess_1"}),
        (
            lambda repo: repo.load_agent_sessions("support"),
            "session_store.load_agent_sessions",
            {"agent_id": "support", "row_count": 1},
        ),
        (
            lambda repo: repo.load_messages_from_parent("sess_1"),
            "session_store.load_messages_from_parent",
            {"session_id": "sess_1", "row_count": 0},
        ),
    ],
)
def test_a_call_made_of_other_calls_is_one_span(sessions, exporter, call, name, attributes):
    call(sessions)

    span = the_span(exporter)
    assert (span.name, dict(span.attributes)) == (name, attributes)


def test_hitl_calls(hitl, exporter):
    request = hitl.store(HumanRequest(agent_id="billing", session_id="sess_1", question="Refund?"))
    hitl.respond_to_request(request.id, "approved", "Go ahead", responded_by="alice")
    hitl.list_pending(agent_id="billing")

    stored, responded, pending = exporter.get_finished_spans()
    assert (stored.name, dict(stored.attributes)) == (
        "hitl_store.store",
        {"request_id": request.id, "agent_id": "billing", "session_id": "sess_1"},
    )
    assert (responded.name, dict(responded.attributes)) == (
        "hitl_store.respond_to_request",
        {"request_id": request.id, "status": "approved"},
    )
    assert (pending.name, dict(pending.attributes)) == (
        "hitl_store.list_pending",
        {"agent_id": "billing", "row_count": 0},
    )


def test_wait_for_response_is_one_span_however_often_it_looks(hitl, exporter):
    request = hitl.store(HumanRequest(agent_id="a", session_id="s", question="Deploy?", timeout_ms=50))
    exporter.clear()

    decided = hitl.wait_for_response(request.id, poll_interval=0.01)  # looks until the deadline

    span = the_span(exporter)
    assert decided.status == "expired"
    assert (span.name, dict(span.attributes)) == (
        "hitl_store.wait_for_response",
        {"request_id": request.id, "status": "expired"},
    )


def test_reference_calls(references, exporter):
    reference = references.store(b"a large tool result")
    references.retain(reference.id)
    references.resolve(reference)  # a Reference, not an id, names it too

    stored, retained, resolved = exporter.get_finished_spans()
    assert [stored.name, retained.name, resolved.name] == [
        "reference_store.store",
        "reference_store.retain",
        "reference_store.resolve",
    ]
    assert dict(stored.attributes) == {"reference_id": reference.id, "ref_count": 1}
    assert dict(retained.attributes) == {"reference_id": reference.id, "ref_count": 2}
    assert dict(resolved.attributes) == {"reference_id": reference.id}


def assert_failed_with(span, error):
    assert span.status.status_code is StatusCode.ERROR
    (event,) = span.events
    assert event.name == "exception"
    cls = type(error)
    assert event.attributes["exception.type"] in (cls.__name__, "%s.%s" % (cls.__module__, cls.__qualname__))
    assert event.attributes["exception.message"] == str(error)


def test_a_failure_records_the_error_the_caller_gets(sessions, exporter):
    with pytest.raises(NotFoundError) as missing:
        sessions.load_session("sess_missing")
    with pytest.raises(ValidationError) as invalid:
        sessions.save_message("sess_1", Message(role="robot", content="beep"))
    # The driver's foreign key error, as the caller gets it: translated.
    with pytest.raises(ForeignKeyConstraintError) as orphan:
        sessions.save_tool_execution("sess_missing", ToolExecution(tool_name="search"))

    failed_load, failed_save, failed_execution = exporter.get_finished_spans()
    assert failed_load.name == "session_store.load_session"
    assert dict(failed_load.attributes) == {"session_id": "sess_missing"}
    assert_failed_with(failed_load, missing.value)
    assert failed_save.name == "session_store.save_message"
    assert_failed_with(failed_save, invalid.value)
    assert_failed_with(failed_execution, orphan.value)


def test_after_a_failure_the_next_call_has_its_own_span(sessions, exporter):
    with pytest.raises(NotFoundError):
        sessions.export_session("sess_missing")
    sessions.get_stats()

    failed, stats = exporter.get_finished_spans()
    assert (failed.name, stats.name) == ("session_store.export_session", "session_store.get_stats")
    assert stats.parent is None and stats.status.status_code is StatusCode.UNSET


def test_spans_are_children_of_the_application_span(sessions, tracer, exporter):
    with tracer.start_as_current_span("agent turn") as turn:
        sessions.save_message("sess_1", Message(role="user", content="Hi"))
        sessions.load_session("sess_1")

    *calls, application = exporter.get_finished_spans()
    assert application.name == "agent turn"
    assert [call.name for call in calls] == ["session_store.save_message", "session_store.load_session"]
    for call in calls:
        assert call.parent.span_id == turn.get_span_context().span_id
        assert call.context.trace_id == turn.get_span_context().trace_id


def test_the_statements_of_a_call_run_inside_its_span(sessions, tracer, exporter, monkeypatch):
    # As an instrumented database driver would: a span per statement.
    execute_sql = sessions.database.execute_sql

    def execute_in_span(*args, **kwargs):
        with tracer.start_as_current_span("statement"):
            return execute_sql(*args, **kwargs)

    monkeypatch.setattr(sessions.database, "execute_sql", execute_in_span)

    sessions.save_message("sess_1", Message(role="user", content="Hi"))

    *statements, call = exporter.get_finished_spans()
    assert call.name == "session_store.save_message"
    assert statements
    assert all(statement.parent.span_id == call.context.span_id for statement in statements)


def test_open_storage_traces_every_domain(backend, tracer, exporter):
    url = backend.target if "://" in backend.target else "sqlite:///" + backend.target

    migrations = {"%s.migrate" % repository.span_prefix for repository in REPOSITORIES}
    assert {"session_store.migrate", "hitl_store.migrate", "reference_store.migrate"} < migrations

    with open_storage(database_url=url, tracer=tracer, gc_interval=0) as storage:
        assert {span.name for span in exporter.get_finished_spans()} == migrations
        exporter.clear()
        storage.sessions.save_session(Session(id="sess_1"))
        storage.hitl.get_stats()
        storage.references.list()

    assert [span.name for span in exporter.get_finished_spans()] == [
        "session_store.save_session",
        "hitl_store.get_stats",
        "reference_store.list",
    ]


def test_without_a_tracer_no_tracing_code_runs(backend, tracer, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tracing code ran")

    monkeypatch.setattr(tracing, "in_span", refuse)
    monkeypatch.setattr(calls, "_argument", refuse)

    with SessionRepository.open(backend.target) as untraced:
        untraced.save_session(Session(id="sess_1"))
        untraced.save_message("sess_1", Message(role="user", content="Hi", token_count=2))
        assert untraced.load_session("sess_1").total_tokens == 2
        with pytest.raises(NotFoundError):
            untraced.load_session("sess_missing")
        # With a tracer the same call does reach the code refused above.
        traced = SessionRepository(untraced.database, tracer=tracer)
        with pytest.raises(AssertionError, match="tracing code ran"):
            traced.load_session("sess_1")


def test_the_package_works_without_opentelemetry(backend):
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if the tracing extra were not installed
        try:
            import opentelemetry.trace
        except ImportError:
            pass
        else:
            raise SystemExit("opentelemetry is still importable")

        from loom_models import tracing
        from loom_models.sessions import Message, Session, SessionRepository

        with SessionRepository.open(sys.argv[1]) as repo:
            repo.save_session(Session(id="sess_1"))
            repo.save_message("sess_1", Message(role="user", content="Hi", token_count=2))
            print(repo.load_session("sess_1").total_tokens)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, backend.target], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"


def test_the_readme_example_traces(tmp_path):
    tracing = README.read_text().split("\n## Tracing\n", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", tracing, re.S)
    setup = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        """
    )
    report = "\nprint([(s.name, dict(s.attributes)) for s in exporter.get_finished_spans()][-2:])\n"

    done = subprocess.run(
        [sys.executable, "-c", setup + example + report], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == repr(
        [
            ("session_store.save_message", {"session_id": "sess_abc123", "role": "user", "token_count": 2}),
            ("turn", {}),
        ]
    )


def test_a_span_attribute_named_after_a_parameter_that_is_gone_is_refused_at_once():
    with pytest.raises(TypeError, match="has no parameter session_id"):

        @calls.repository_call(ids=("session_id",))
        def load(self, session): ...

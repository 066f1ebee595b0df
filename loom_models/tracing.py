"""Spans of repository calls, through the OpenTelemetry API, when a tracer is given.

    from opentelemetry import trace
    from loom_models import open_storage
    from loom_models.sessions import Message

    tracer = trace.get_tracer("support-agent")
    with open_storage("./loom-data", tracer=tracer) as storage:
        with tracer.start_as_current_span("turn"):
            storage.sessions.save_message("sess_1", Message(role="user", content="Hi", token_count=2))
    # one span, "session_store.save_message", a child of "turn", with the
    # attributes session_id="sess_1", role="user", token_count=2

`SessionRepository.open(path, tracer=tracer)` and `SessionRepository(database,
tracer=tracer)` take one too (likewise the other repositories). Each public
repository call is one span named `<span_prefix>.<method>`, current while the
call runs; what its attributes are, each repository declares beside its
methods (`calls.repository_call`): the ids the call was given, and what its
result tells (by default a list's length or a count of rows, `row_count`). A call that a traced call makes on the
same repository (save_message saves through save_messages) adds no span of its
own. Opening makes a `<span_prefix>.migrate` span (`check_schema` with
migrate=False); the reference
collector's runs are `reference_store.collect_garbage` spans of its own thread;
`iter_messages` is lazy and makes none.

A failed call's span records the LoomStorageError its caller gets, and has
status ERROR (the tracer's `start_as_current_span` does both). Nothing here
imports opentelemetry: the tracer passed in is all this module touches, so only
an application that makes one needs the `tracing` extra.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

# The object whose traced call is running in this context: the calls that call
# makes on the same object belong to its span.
_tracing: contextvars.ContextVar[object | None] = contextvars.ContextVar("loom_tracing", default=None)


def in_span(
    tracer: Tracer, owner: object, name: str, attributes: dict, call: Callable[[], Any], tells: Callable[[Any], dict]
) -> Any:
    """call() in a span `name` with `attributes` and what `tells(result)` says; in none inside another of `owner`'s.

    in_span(tracer, repository, "session_store.get_stats", {}, call, lambda stats: {})
    """
    if _tracing.get() is owner:
        return call()
    with tracer.start_as_current_span(name, attributes=attributes) as span:
        inside = _tracing.set(owner)
        try:
            result = call()
        finally:
            _tracing.reset(inside)
        # An unset field (a session without an agent) is no attribute value.
        span.set_attributes({key: value for key, value in tells(result).items() if value is not None})
        return result

"""Spans for repository calls, through the OpenTelemetry API, when a tracer is given.

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
repository call is one span named `<span_prefix>.<method>` (session_store,
hitl_store, reference_store), current while the call runs. A call that a traced
call makes on the same repository (save_message saves through save_messages)
adds no span of its own. Opening migrates, so it makes `<span_prefix>.migrate`
spans; the reference collector's runs are `reference_store.collect_garbage`
spans of its own thread. `iter_messages` is lazy and makes none. Attributes,
where they apply:

    session_id, agent_id,       the ids the call was given, or those of the
    request_id, reference_id    record it stored (save_session, import_session, store)
    role, token_count           save_message: the message saved
    row_count                   rows a list returned, a batch wrote or a sweep removed
    ref_count                   references' store, retain, release: the new count
    status                      hitl's respond_to_request, wait_for_response, cancel: the request's

A failed call's span records the LoomStorageError its caller gets, and has
status ERROR (the tracer's `start_as_current_span` does both). Nothing here
imports opentelemetry: the tracer passed in is all this module touches, so only
an application that makes one needs the `tracing` extra. Without a tracer a call
costs one `is None` check (and one more Python call, about 0.3 µs).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from .repository import Repository

F = TypeVar("F", bound=Callable[..., Any])

# The repository whose traced call is running in this context: the calls that
# call makes on its own repository belong to its span.
_traced_repository: contextvars.ContextVar[Repository | None] = contextvars.ContextVar(
    "loom_traced_repository", default=None
)

# Parameters that name what a call is about -> their span attribute.
_ID_PARAMETERS = {
    "session_id": "session_id",
    "agent_id": "agent_id",
    "request_id": "request_id",
    "reference_id": "reference_id",
    "ref_or_id": "reference_id",
}


def traced(method: F) -> F:
    """`method` as one that makes a span when its repository has a tracer, if it is a
    public repository method (its first parameter `self`); any other function as it is.

        save_message = traced(save_message)   # storage_call does this for every method
    """
    parameters = list(inspect.signature(method).parameters.values())
    if not parameters or parameters[0].name != "self" or method.__name__.startswith("_"):
        return method
    ids = _id_parameters(parameters[1:])

    @functools.wraps(method)
    def wrapper(repository: Repository, *args: Any, **kwargs: Any) -> Any:
        tracer = repository.tracer
        if tracer is None or _traced_repository.get() is repository:
            return method(repository, *args, **kwargs)
        return _call_in_span(tracer, repository, method, _given_ids(ids, args, kwargs), args, kwargs)

    return cast(F, wrapper)


def _call_in_span(
    tracer: Tracer, repository: Repository, method: Callable[..., Any], attributes: dict, args: tuple, kwargs: dict
) -> Any:
    name = "%s.%s" % (repository.span_prefix, method.__name__)
    with tracer.start_as_current_span(name, attributes=attributes) as span:
        inside = _traced_repository.set(repository)
        try:
            result = method(repository, *args, **kwargs)
        finally:
            _traced_repository.reset(inside)
        span.set_attributes(_result_attributes(name, result))
        return result


def _id_parameters(parameters: list[inspect.Parameter]) -> list[tuple[str, int | None, str]]:
    """(name, position among the arguments after self or None if keyword-only, attribute) of each id parameter."""
    return [
        (p.name, i if p.kind is p.POSITIONAL_OR_KEYWORD else None, _ID_PARAMETERS[p.name])
        for i, p in enumerate(parameters)
        if p.name in _ID_PARAMETERS
    ]


def _given_ids(ids: list[tuple[str, int | None, str]], args: tuple, kwargs: dict) -> dict:
    given = {}
    for name, position, attribute in ids:
        value = args[position] if position is not None and position < len(args) else kwargs.get(name)
        value = getattr(value, "id", value)  # ref_or_id may be a Reference
        # Anything but a string is bad input, which the span's error tells about.
        if isinstance(value, str):
            given[attribute] = value
    return given


def _result_attributes(name: str, result: Any) -> dict:
    attributes = _RESULT_ATTRIBUTES.get(name)
    if attributes is not None:
        # An unset field (a session without an agent) is no attribute value.
        return {key: value for key, value in attributes(result).items() if value is not None}
    if isinstance(result, list):
        return {"row_count": len(result)}
    return {}


def _session_ids(session: Any) -> dict:
    return {"session_id": session.id, "agent_id": session.agent_id}


def _request_ids(request: Any) -> dict:
    return {"request_id": request.id, "agent_id": request.agent_id, "session_id": request.session_id}


def _message_facts(message: Any) -> dict:
    return {"role": message.role, "token_count": message.token_count}


def _reference_facts(reference: Any) -> dict:
    return {"reference_id": reference.id, "ref_count": reference.ref_count}


def _status(request: Any) -> dict:
    return {"status": request.status}


def _row_count(count: int) -> dict:
    return {"row_count": count}


def _ref_count(count: int) -> dict:
    return {"ref_count": count}


# What a result tells about its call, by span name; any other list gives its row_count.
_RESULT_ATTRIBUTES: dict[str, Callable[[Any], dict]] = {
    "session_store.save_session": _session_ids,
    "session_store.import_session": _session_ids,
    "session_store.save_message": _message_facts,
    "session_store.delete_sessions_older_than": _row_count,
    "hitl_store.store": _request_ids,
    "hitl_store.respond_to_request": _status,
    "hitl_store.wait_for_response": _status,
    "hitl_store.cancel": _status,
    "hitl_store.expire_overdue": _row_count,
    "hitl_store.delete_older_than": _row_count,
    "reference_store.store": _reference_facts,
    "reference_store.retain": _ref_count,
    "reference_store.release": _ref_count,
    "reference_store.collect_garbage": _row_count,
}

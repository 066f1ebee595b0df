"""Where a call crosses into the store: errors translated, a closed repository refusing, a span when traced.

    @storage_call
    def backup(database, destination): ...       # only LoomStorageErrors leave it

    class SessionRepository(Repository):
        @repository_call(ids=("session_id",), tells=_message_facts)
        def save_message(self, session_id, message): ...

`storage_call` translates what a function meets below it (errors.translate),
naming the database's file when its first argument is a database. `repository_call`
does the same for a repository's method, naming the repository's file; refuses
at once when the repository is closed; reports the call to the repository's
CallWatch, if any (monitoring.py); and, when it has a tracer, makes the
call one span, `<span_prefix>.<method>`, whose attributes are the arguments
named in `ids` (a parameter's name, or {parameter: attribute}) and what
`tells(result)` returns (by default `row_count`: a list's length, or a count of rows).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn, ParamSpec, TypeVar

import marshmallow
import peewee

from . import tracing
from .backends import backend_of
from .errors import DRIVER_ERRORS, LoomStorageError, cause_of, translate

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

_RAISED = (LoomStorageError, marshmallow.ValidationError, *DRIVER_ERRORS)


def storage_call(function: Callable[P, R]) -> Callable[P, R]:
    """`function`, from which only LoomStorageErrors leave.

    @storage_call
    def integrity_check(database): ...
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except _RAISED as error:
            first = args[0] if args else None
            _raise_translated(error, backend_of(first).path() if isinstance(first, peewee.Database) else None)

    return wrapper


def repository_call(
    *, ids: Iterable[str] | Mapping[str, str] = (), tells: Callable[[Any], dict] | None = None, span: bool = True
) -> Callable[[F], F]:
    """A repository method's decorator: refused when closed, errors translated, one span when traced.

    @repository_call(ids={"ref_or_id": "reference_id"})
    def resolve(self, ref_or_id): ...

    `span=False` for a private helper of a call that makes its own span, or none.
    """
    attributes = dict(ids) if isinstance(ids, Mapping) else {name: name for name in ids}

    def decorate(method: F) -> F:
        given = _argument_getters(method, attributes)

        def translated(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except _RAISED as error:
                _raise_translated(error, self.backend.path())
            finally:
                if self.gives_back_connections and not self.database.in_transaction():
                    self.database.close()  # to the pool, for the next thread

        def traced(self: Any, args: tuple, kwargs: dict) -> Any:
            if not span or self.tracer is None:
                return translated(self, *args, **kwargs)
            name = "%s.%s" % (self.span_prefix, method.__name__)
            values = {attribute: get(args, kwargs) for attribute, get in given.items()}
            # Anything but a string is bad input, which the span's error tells about.
            values = {attribute: value for attribute, value in values.items() if isinstance(value, str)}
            call = functools.partial(translated, self, *args, **kwargs)
            return tracing.in_span(self.tracer, self, name, values, call, tells or row_count)

        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if self.closed:
                raise LoomStorageError("%r is closed" % self)
            if not span or self.watch is None:
                return traced(self, args, kwargs)
            name = "%s.%s" % (self.span_prefix, method.__name__)
            return self.watch.call(self, name, functools.partial(traced, self, args, kwargs))

        return wrapper  # type: ignore[return-value]

    return decorate


def row_count(result: Any) -> dict:
    """What a result tells a span by default: a list's length, or an int (a count of rows), else nothing."""
    if isinstance(result, list):
        return {"row_count": len(result)}
    if isinstance(result, int) and not isinstance(result, bool):
        return {"row_count": result}  # a count of rows written or removed
    return {}


def _raise_translated(error: BaseException, path: str | None) -> NoReturn:
    """Raise the LoomStorageError for `error` (being handled), naming the database file at `path`, if any."""
    translated = translate(error, path)
    if translated is error:
        raise
    raise translated from cause_of(error)


def _argument_getters(method: Callable[..., Any], attributes: dict[str, str]) -> dict[str, Callable]:
    """{attribute: a function of (args, kwargs) giving the argument of that parameter}, `self` not counted."""
    parameters = list(inspect.signature(method).parameters.values())[1:]
    getters: dict[str, Callable] = {}
    for index, parameter in enumerate(parameters):
        if parameter.name in attributes:
            position = index if parameter.kind is parameter.POSITIONAL_OR_KEYWORD else None
            getters[attributes[parameter.name]] = functools.partial(_argument, parameter.name, position)
    missing = set(attributes) - {p.name for p in parameters}
    if missing:  # a renamed parameter must not lose its attribute in silence
        raise TypeError("%s has no parameter %s" % (method.__qualname__, ", ".join(sorted(missing))))
    return getters


def _argument(name: str, position: int | None, args: tuple, kwargs: dict) -> Any:
    value = args[position] if position is not None and position < len(args) else kwargs.get(name)
    return getattr(value, "id", value)  # a Reference given for its id

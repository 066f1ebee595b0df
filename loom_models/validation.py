"""What the domain schemas share: marshmallow fields for input, and input checks.

(The peewee fields of the columns are columns.py's.)

class NoteSchema(marshmallow.Schema):
    text = Text(required=True)          # a str that any backend can store
    data = JSONValue(load_default=None)  # JSON-serialisable, returned as stored
    at = UnixTime(resolution=1)         # aware UTC datetime, whole seconds

values = load(NoteSchema(), {"text": "hi", "at": datetime.now()})
load_note = FieldwiseLoader(NoteSchema())   # the same load, faster on a hot path
check_limit(0)   # ValidationError {'limit': ['Must be a positive integer.']}
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import marshmallow
import peewee
from marshmallow import fields

from .columns import UTC, to_utc
from .errors import ValidationError, translate

MAX_INT64 = 2**63 - 1

T = TypeVar("T")


def storable(text: str) -> bool:
    """Whether both backends store `text` as it is: no NUL, no lone surrogates."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Text(fields.String):
    """A str that both backends store as it is."""

    default_error_messages = {"unstorable": "Must not contain NUL characters or lone surrogates."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not storable(text):
            raise self.make_error("unstorable")
        return text


def id_text(*more_rules: Callable[[str], None], **kwargs: Any) -> Text:
    """An id's field: 1 to 255 characters that both backends store as they are (as check_id)."""
    return Text(validate=[marshmallow.validate.Length(1, 255), *more_rules], **kwargs)


class JSONValue(fields.Raw):
    """Any JSON value; it is loaded as it will read back (tuples become lists...)."""

    default_error_messages = {"not_json": "Not a JSON-serialisable value: {error}."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        try:
            return json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as error:
            raise self.make_error("not_json", error=error) from None


class JSONObject(JSONValue):
    """A JSON object (a mapping with string keys) or None."""

    default_error_messages = {"not_object": "Must be a JSON object."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise self.make_error("not_object")
        return super()._deserialize(value, attr, data, **kwargs)


class UnixTime(fields.DateTime):
    """An aware UTC datetime truncated to the column's unit (naive input is local time)."""

    def __init__(self, resolution: int = 1, load_default: Any = marshmallow.missing, **kwargs: Any) -> None:
        self.unit_microseconds = 1_000_000 // resolution
        if callable(load_default):  # a default is what the database will give back, too
            load_default = _composed(self._truncated, load_default)
        super().__init__(load_default=load_default, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        try:
            return self._truncated(super()._deserialize(value, attr, data, **kwargs))
        except OverflowError:  # in UTC it falls outside the years 1-9999
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None

    def _truncated(self, moment: datetime.datetime) -> datetime.datetime:
        moment = to_utc(moment)
        return moment.replace(microsecond=moment.microsecond // self.unit_microseconds * self.unit_microseconds)


def _composed(outer: Callable[[T], T], inner: Callable[[], T]) -> Callable[[], T]:
    return lambda: outer(inner())


class WholeNumber(fields.Integer):
    """An int, or a float with no fraction (7.0, as agent SDKs count tokens), never a bool or a string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._validated(value)


def count(maximum: int = MAX_INT64, minimum: int = 0, **kwargs: Any) -> fields.Integer:
    """A whole number from `minimum` to `maximum` (by default, what a 64-bit column holds)."""
    return WholeNumber(validate=marshmallow.validate.Range(minimum, maximum), **kwargs)


def amount(maximum: float, **kwargs: Any) -> fields.Float:
    """A finite number from 0 to `maximum` (costs)."""
    return fields.Float(allow_nan=False, validate=marshmallow.validate.Range(0, maximum), **kwargs)


def generated_id_if_none(data: Any) -> Any:
    """For a schema's pre_load: an id of None asks for a new id, as a missing one does."""
    if not isinstance(data, Mapping) or data.get("id", ...) is not None:
        return data  # what is no mapping, marshmallow refuses after
    return {k: v for k, v in data.items() if k != "id"}


def load(schema: marshmallow.Schema, data: Mapping) -> dict:
    """`schema.load(data)`, raising our ValidationError."""
    try:
        return schema.load(data)
    except marshmallow.ValidationError as error:
        raise translate(error) from error


class FieldwiseLoader:
    """`load(schema, data)`, with the common case done field by field.

        load_message = FieldwiseLoader(MessageSchema(), prepare=without_none_defaults)
        load_message({"role": "user", "content": "Hi"})   # what load(MessageSchema(), ...) gives

    For a mapping of the schema's own fields, each valid, schema.load deserializes
    each field and fills the defaults of the others; here that is done directly,
    without the rest of its machinery (measured: 10 us a message against 23, and
    its load was most of a batch's Python). Anything else (an unknown key, a
    required field missing, a value a field refuses) is schema.load's to decide,
    with its own messages. So the schema stays the one definition of valid input.

    The schema's hooks are not run: a pre_load is given again as `prepare`, and a
    schema with any other hook is refused (read from marshmallow's `_hooks`).
    """

    def __init__(self, schema: marshmallow.Schema, prepare: Callable[[Mapping], Mapping] | None = None) -> None:
        hooks = {tag for tag, methods in schema._hooks.items() if methods}
        if hooks - {"pre_load"} or ("pre_load" in hooks) != (prepare is not None):
            raise TypeError("%s has hooks that FieldwiseLoader does not run: %s" % (type(schema).__name__, hooks))
        self.schema = schema
        self.prepare = prepare
        self.fields = [(name, field, field.load_default) for name, field in schema.load_fields.items()]
        self.names = frozenset(schema.load_fields)

    def __call__(self, data: Mapping) -> dict:
        values = self.prepare(data) if self.prepare is not None and isinstance(data, Mapping) else data
        if not isinstance(values, Mapping) or not self.names.issuperset(values):
            return load(self.schema, data)
        loaded = {}
        try:
            for name, field, default in self.fields:
                if name in values:
                    loaded[name] = field.deserialize(values[name], name, values)
                elif default is not marshmallow.missing:
                    loaded[name] = default() if callable(default) else default
                elif field.required:
                    return load(self.schema, data)
        except marshmallow.ValidationError:
            return load(self.schema, data)
        return loaded


def input_of(obj: object, schema: marshmallow.Schema, what: str) -> dict:
    """The loadable values of a model instance, or a mapping as given.

    Fields the store owns (dump-only in the schema, such as totals) are dropped from
    an instance, so a loaded object can be saved back; a mapping is checked whole.
    """
    if isinstance(obj, peewee.Model):
        return {k: v for k, v in obj.__data__.items() if k in schema.load_fields}
    if isinstance(obj, Mapping):
        return dict(obj)
    raise ValidationError({what: ["Expected a %s or a mapping, got %s." % (what, type(obj).__name__)]})


def loadable(schema: marshmallow.Schema, values: Mapping) -> dict:
    """`values` without what the schema only dumps (what the store assigns, carried by an export)."""
    return {k: v for k, v in values.items() if k not in schema.fields or not schema.fields[k].dump_only}


def fields_set(obj: object) -> Iterable[str]:
    """The fields a caller set: a model's dirty fields (given or assigned), a mapping's keys."""
    if isinstance(obj, peewee.Model):
        return [field.name for field in obj.dirty_fields]
    return obj.keys() if isinstance(obj, Mapping) else ()


def check_positive(value: object, name: str) -> int:
    """A positive int that fits a 64-bit column (a row id, a batch size)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT64:
        raise ValidationError({name: ["Must be a positive integer."]})
    return value


def check_limit(limit: object, name: str = "limit") -> int | None:
    """None, or a positive int; 0 and negatives never mean 'everything'."""
    return None if limit is None else check_positive(limit, name)


def check_id(value: object, name: str = "id") -> str:
    """An id: 1 to 255 characters that both backends store as they are."""
    if not isinstance(value, str) or not 0 < len(value) <= 255 or not storable(value):
        raise ValidationError({name: ["Must be a string of 1 to 255 characters, without NUL or lone surrogates."]})
    return value


def check_time(value: object, name: str) -> datetime.datetime:
    """An aware UTC datetime (naive is local time) within the years 1-9999."""
    try:
        if isinstance(value, datetime.datetime):
            return to_utc(value)
    except OverflowError:
        pass
    raise ValidationError({name: ["Must be a datetime within the years 1-9999 in UTC."]})


def check_seconds(value: object, name: str, *, maximum: float, allow_zero: bool = False) -> float:
    """A number of seconds: above 0 (or from 0, with `allow_zero`) and at most `maximum`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= maximum
        or (value == 0 and not allow_zero)
    ):
        lowest = "from 0" if allow_zero else "more than 0"
        raise ValidationError({name: ["Must be a number of seconds, %s and at most %g." % (lowest, maximum)]})
    return float(value)


def cutoff_time(cutoff: object) -> datetime.datetime:
    """A moment in the past: a datetime, or a timedelta counted back from now.

    A cutoff in the future would match every row, which is never what a
    retention call means (a sign slip, `-timedelta(days=30)`, most likely).
    """
    now = datetime.datetime.now(UTC)
    try:
        if isinstance(cutoff, datetime.timedelta):
            cutoff = now - cutoff
        if isinstance(cutoff, datetime.datetime) and to_utc(cutoff) <= now:
            return to_utc(cutoff)
    except OverflowError:
        pass
    raise ValidationError({"cutoff": ["Must be a past datetime, or a timedelta of 0 or more."]})

"""Column types: the peewee fields of the reference implementation's on-disk conventions.

(The marshmallow fields that check input are validation.py's.)

created_at = UnixTimeField()                 # INTEGER seconds <-> aware UTC datetime
created_at = UnixTimeField(resolution=1000)  # INTEGER milliseconds
expires_at = UnixTimeField(none_as=0)        # 0 <-> None
context = JSONField(column_name="context_json", none_as="null")  # None -> 'null'
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import peewee

from .errors import DatabaseCorruptError

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


class UnixTimeField(peewee.BigIntegerField):
    """An aware UTC datetime stored as whole Unix time units (1 = seconds, 1000 = ms).

    A naive datetime is local time (see `to_utc`). Sub-unit precision is dropped (floored).
    `none_as` is what None is stored as where the reference uses a number for
    "no time" (0 for a reference that never expires).
    """

    def __init__(self, resolution: int = 1, none_as: int | None = None, **kwargs: Any) -> None:
        self.unit = datetime.timedelta(seconds=1) / resolution
        self.none_as = none_as
        super().__init__(**kwargs)

    def db_value(self, value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return (to_utc(value) - EPOCH) // self.unit
        return self.none_as if value is None else value

    def python_value(self, value: Any) -> datetime.datetime | None:
        if value is None or value == self.none_as:
            return None
        try:
            return EPOCH + value * self.unit
        except (TypeError, OverflowError):
            raise corrupt(self, "a time", value) from None


def to_utc(value: datetime.datetime) -> datetime.datetime:
    """The same moment in UTC; a naive datetime is local time, as `datetime.timestamp()` reads it.

    `datetime.now()` is then the moment it was read, wherever the process runs.
    OverflowError when the moment in UTC falls outside the years 1-9999.
    """
    try:
        try:
            return value.astimezone(UTC)
        except (ValueError, OverflowError):
            if value.tzinfo is not None:
                raise
        # For a naive time, Python 3.12+ reads the local zone a day either side,
        # which leaves the calendar within a day of its ends; the zone's offset
        # two days inward is the same.
        inward = value + datetime.timedelta(days=2) if value.year == 1 else value - datetime.timedelta(days=2)
        to_utc_there = inward.astimezone(UTC).replace(tzinfo=None) - inward
        return (value + to_utc_there).replace(tzinfo=UTC)
    except ValueError as error:  # the moment leaves the calendar in UTC
        raise OverflowError(str(error)) from None


class JSONField(peewee.TextField):
    """A JSON value in a TEXT column, on every backend: the reference layout.

    `none_as` is what None is stored as, by the reference implementation's
    convention for the column: SQL NULL (None), the JSON text "null", or "".
    We never query inside these values, so TEXT serves both backends alike.
    """

    def __init__(self, none_as: str | None = None, **kwargs: Any) -> None:
        self.none_as = none_as
        super().__init__(null=True, **kwargs)

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return self.none_as
        return json.dumps(value, separators=(",", ":"))

    def python_value(self, value: Any) -> Any:
        if value is None or value == "":
            return None
        try:
            return json.loads(value)
        except (TypeError, ValueError):
            raise corrupt(self, "JSON", value) from None


def corrupt(field: peewee.Field, expected: str, value: object) -> DatabaseCorruptError:
    # Never garbage, never a row skipped in silence: say where it is.
    return DatabaseCorruptError(
        "not %s in %s.%s: %.60r" % (expected, field.model._meta.table_name, field.column_name, value)
    )

"""peewee fields for the reference implementation's on-disk conventions.

    created_at = UnixTimeField()                 # INTEGER seconds <-> aware UTC datetime
    created_at = UnixTimeField(resolution=1000)  # INTEGER milliseconds
    context = JSONField(column_name="context_json", null_as_json=True)  # None -> 'null'
"""

from __future__ import annotations

import datetime

import peewee

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


class UnixTimeField(peewee.BigIntegerField):
    """An aware UTC datetime stored as whole Unix time units (1 = seconds, 1000 = ms).

    A naive datetime is taken to be UTC. Sub-unit precision is dropped (floored).
    """

    def __init__(self, resolution: int = 1, **kwargs):
        self.unit = datetime.timedelta(seconds=1) / resolution
        super().__init__(**kwargs)

    def db_value(self, value):
        if isinstance(value, datetime.datetime):
            return (to_utc(value) - EPOCH) // self.unit
        return value

    def python_value(self, value):
        if value is None:
            return None
        return EPOCH + value * self.unit


def to_utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class JSONField(peewee.JSONField):
    """peewee's portable JSON field (TEXT on SQLite, JSONB on PostgreSQL).

    With `null_as_json=True`, None is stored as the JSON text `null`, never as SQL
    NULL: the reference implementation's reader scans such columns into a string.
    """

    def __init__(self, null_as_json: bool = False, **kwargs):
        self.null_as_json = null_as_json
        super().__init__(null=True, **kwargs)

    def db_value(self, value):
        if value is None and self.null_as_json and self._wrap is not None:
            return self._wrap(None)
        return super().db_value(value)

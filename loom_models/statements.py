"""Hot statements: SQL that peewee builds once, run with new values on every call.

Turning a query into SQL costs peewee 0.1-0.3 ms, more than SQLite takes to run
a small write. So a repository builds its hot queries once, with named
parameters where the values go, and each call binds values and decodes rows:

    M = repo.Message
    latest = Statement(M.select().where(M.session == param("session_id")).order_by(M.id.desc()).limit(param("n")))
    latest.models(session_id="sess_1", n=50)   # [Message, ...], decoded as peewee would

Values are bound as given: convert them first with the column's field
(`field.db_value`), as peewee does when it builds a query. The drivers cache the
prepared statement of a repeated SQL text, so a hot statement is parsed once too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import peewee


class param(peewee.Node):
    """A parameter: named (`:name` for sqlite3, `%(name)s` for psycopg2), or positional without a name.

    A statement's parameters are all named or all positional.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def __sql__(self, ctx: peewee.Context) -> peewee.Context:
        if self.name is None:
            return ctx.literal(ctx.state.param)
        if ctx.state.param == "?":
            return ctx.literal(":" + self.name)
        return ctx.literal("%%(%s)s" % self.name)


class Statement:
    """A query's SQL, built once; run it with new values."""

    def __init__(self, query: peewee.BaseQuery) -> None:
        self.database: peewee.Database = query._database  # type: ignore[attr-defined]
        self.sql, constants = query.sql()
        if constants:  # a constant among named parameters would shift them
            raise ValueError("every value of a Statement is a param() or SQL literal: %r" % (constants,))
        model, fields = getattr(query, "model", None), getattr(query, "_returning", None)
        self._decoder = Decoder(model, fields) if model and fields else None

    def execute(self, *positional: Any, **named: Any) -> Any:
        return self.database.execute_sql(self.sql, positional or named)

    def rows(self, *positional: Any, **named: Any) -> list[tuple]:
        return self.execute(*positional, **named).fetchall()

    def models(self, *positional: Any, **named: Any) -> list:
        """The rows as model instances, decoded as a peewee select decodes them."""
        if self._decoder is None:
            raise TypeError("this statement returns no model rows: %s" % self.sql)
        return self._decoder.models(self.execute(*positional, **named))


class Decoder:
    """Model instances of rows, each value through its field's python_value.

    Not through peewee's own coercions of TEXT, INTEGER and REAL: both drivers
    give those as str, int and float already, and coercing them again was a
    third of the time it took to decode a row.
    """

    def __init__(self, model: type[peewee.Model], fields: list[peewee.Field]) -> None:
        self.model = model
        self.names = [field.name for field in fields]
        self.converters = [
            (field.name, index, field.python_value) for index, field in enumerate(fields) if _converts(field)
        ]

    def models(self, rows: Iterable[tuple]) -> list:
        decoded = []
        for row in rows:
            values = dict(zip(self.names, row, strict=True))
            for name, index, convert in self.converters:
                if row[index] is not None:  # NULL is None to every field
                    values[name] = convert(row[index])
            instance = self.model(__no_default__=1)
            instance.__data__ = values
            decoded.append(instance)
        return decoded


def _converts(field: peewee.Field) -> bool:
    if isinstance(field, peewee.ForeignKeyField):
        field = field.rel_field
    return type(field).python_value is not peewee.Field.python_value


def bound(model: type[peewee.Model], values: dict) -> dict:
    """`values` by field name, each converted for its column by its field."""
    fields = model._meta.fields
    return {name: fields[name].db_value(value) for name, value in values.items()}

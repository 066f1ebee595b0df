"""Hot statements: SQL that peewee builds once, run with new values on every call.

Turning a query into SQL costs peewee 0.1-0.3 ms, more than SQLite takes to run
a small write. So a repository builds its hot queries once, with parameters
where the values go, and each call binds values and decodes rows:

    M = repo.Message
    latest = Statement(M.select().where(M.session == param(M.session)).order_by(M.id.desc()).limit(param("n")))
    latest.models(session="sess_1", n=50)   # [Message, ...], decoded as peewee would

A parameter made of a field is named after it and converts its value as the
field does (a datetime to its integer, a dict to its JSON), as peewee does when
it builds a query; one made of a name binds its value as it is (a count, a
limit). The drivers cache the prepared statement of a repeated SQL text, so a
hot statement is parsed once too.

What this relies on of peewee's internals, to check at each upgrade of peewee:
- `Context.state.param`: the driver's placeholder ("?" for sqlite3, "%s" for psycopg2),
  and `Database.get_sql_context(**settings)` passing settings to `Context.state`;
- `query._database`, and `query.model` and `query._returning` of a query with RETURNING;
- `Model.__init__` setting no more than `__data__` (the values by field name),
  `_dirty` and `__rel__`: Decoder makes instances without it (as
  `Model(__no_default__=1)` would, the way peewee's own row decoding does);
- `Field.python_value` / `Field.db_value`, and `ForeignKeyField.rel_field`;
- a select with `.returning()` unset: `query._returning` is then its selected fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import peewee

# Fields whose db_value() only adapts a value the drivers take as it is.
_AS_GIVEN = (
    peewee.AutoField,
    peewee.BigIntegerField,
    peewee.CharField,
    peewee.DoubleField,
    peewee.IntegerField,
    peewee.TextField,
)


class param(peewee.Node):
    """A parameter: `param(field)` is named after the field and converted by it,
    `param("name")` bound as given, `param(field, "name")` both; `param()`
    positional (converted by `field=` if given). A statement's parameters are all
    named or all positional.

    A plain text, integer or float column takes its value as given: both drivers
    bind str, int and float as they are, and peewee's adapt() of them again was a
    tenth of a resolve().
    """

    def __init__(
        self,
        field_or_name: peewee.Field | str | None = None,
        name: str | None = None,
        *,
        field: peewee.Field | None = None,
    ) -> None:
        if isinstance(field_or_name, peewee.Field):
            field, name = field_or_name, name or field_or_name.name
        else:
            name = field_or_name
        self.name = name
        self.convert: Callable[[Any], Any] | None = None
        if field is not None and type(field) not in _AS_GIVEN:
            self.convert = field.db_value

    def __sql__(self, ctx: peewee.Context) -> peewee.Context:
        collected = ctx.state.statement_params
        if collected is not None:
            collected.append(self)
        if self.name is None:
            return ctx.literal(ctx.state.param)
        if ctx.state.param == "?":
            return ctx.literal(":" + self.name)
        return ctx.literal("%%(%s)s" % self.name)


class Statement:
    """A query's SQL, built once; run it with new values."""

    def __init__(self, query: peewee.BaseQuery, *, preamble: str = "") -> None:
        """`preamble`: SQL sent before the query in the same round trip (Backend.index_order_preamble)."""
        self.database: peewee.Database = query._database  # type: ignore[attr-defined]
        params: list[param] = []
        self.sql, constants = self.database.get_sql_context(statement_params=params).sql(query).query()
        # In a caller's transaction the preamble would last to its end: the plain SQL runs there.
        self._with_preamble = preamble + self.sql if preamble else None
        if constants:  # a constant among named parameters would shift them
            raise ValueError("every value of a Statement is a param() or SQL literal: %r" % (constants,))
        self._positional = [p.convert for p in params if p.name is None]
        self._named = {p.name: p.convert for p in reversed(params) if p.name is not None and p.convert is not None}
        model, fields = getattr(query, "model", None), getattr(query, "_returning", None)
        self._decoder = Decoder(model, fields) if model and fields else None

    def execute(self, *positional: Any, **named: Any) -> Any:
        if positional:
            pairs = zip(self._positional, positional, strict=True)
            values: Any = [value if convert is None else convert(value) for convert, value in pairs]
        else:
            for name, convert in self._named.items():  # `named` is this call's own dict
                if name in named:
                    named[name] = convert(named[name])
            values = named
        sql = self.sql
        if self._with_preamble is not None and not self.database.in_transaction():
            sql = self._with_preamble
        return self.database.execute_sql(sql, values)

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
        model, names, converters = self.model, self.names, self.converters
        decoded = []
        for row in rows:
            values = dict(zip(names, row, strict=True))
            for name, index, convert in converters:
                if row[index] is not None:  # NULL is None to every field
                    values[name] = convert(row[index])
            # What Model(__no_default__=1) sets, without its call: a third of a row's decoding.
            instance = object.__new__(model)
            instance.__data__, instance.__rel__ = values, {}
            instance._dirty = set()  # type: ignore[attr-defined]
            decoded.append(instance)
        return decoded


def _converts(field: peewee.Field) -> bool:
    if isinstance(field, peewee.ForeignKeyField):
        field = field.rel_field
    return type(field).python_value is not peewee.Field.python_value

"""PostgreSQL: every domain's tables in one database, writers meeting only on the rows they touch.

    backend = PostgresBackend(open_database("postgresql://loom@127.0.0.1/loom"))
    with backend.snapshot(): ...   # REPEATABLE READ: every read of it sees one moment

A write that must read the clock after its lock takes the row lock first
(row_lock): PostgreSQL locks rows as a statement reaches them, so a clock read
before that statement could be stale by the time it runs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import peewee

from ..statements import Statement, param
from .base import Backend, Q, Sizes

# Any constant will do: it only has to be the same in every process.
_MIGRATION_LOCK_KEY = 0x6C6F6F6D  # "loom"


class PostgresBackend(Backend):
    name = "postgresql"
    # On a table no ANALYZE has seen yet, the planner guesses that a handful of
    # rows match, and would read them all through a bitmap and sort them: 10,000
    # pending requests took 14 ms. Told not to sort, it walks the ordered index
    # and stops at the LIMIT (0.7 ms). Sent with the query, it is one implicit
    # transaction, which SET LOCAL ends with.
    index_order_preamble = "SET LOCAL enable_sort = off; "

    def __init__(self, database: peewee.Database) -> None:
        super().__init__(database)
        self._giving_way = threading.local()  # the lock wait of give_way, per thread

    def write(self) -> AbstractContextManager[Any]:
        milliseconds = getattr(self._giving_way, "milliseconds", None)
        if milliseconds is None:
            return self.database.atomic()
        return self._write_giving_way(milliseconds)

    def commits_alone(self) -> bool:
        # Autocommit (as peewee runs), unless a caller's transaction is open or
        # give_way's lock wait needs one to SET LOCAL in.
        return getattr(self._giving_way, "milliseconds", None) is None and not self.database.in_transaction()

    @contextlib.contextmanager
    def _write_giving_way(self, milliseconds: int) -> Iterator[Any]:
        outermost = not self.database.in_transaction()
        with self.database.atomic() as transaction:
            # SET LOCAL ends with the transaction: nothing is left on the connection
            # for its next user (a pool's, or pgbouncer's in transaction pooling).
            # In a savepoint it would last to the end of the caller's transaction.
            if outermost:
                self.database.execute_sql("SET LOCAL lock_timeout = %d" % milliseconds)
            yield transaction

    def give_way(self, milliseconds: int) -> None:
        self._giving_way.milliseconds = int(milliseconds)

    def discard_connection(self) -> None:
        super().discard_connection()
        self._giving_way.milliseconds = None

    def describe(self) -> str:
        return "%s@%s" % (self.database.database, self.database.connect_params.get("host", "localhost"))

    def label(self) -> str:
        return self.database.database

    def snapshot(self) -> AbstractContextManager[Any]:
        return self.database.atomic(isolation_level="REPEATABLE READ")

    def row_lock(self, model: type[peewee.Model]) -> Callable[[str], object]:
        key = model._meta.primary_key
        lock = Statement(model.select(key).where(key == param("id")).for_update())
        return lambda row_id: lock.execute(id=row_id)

    def lock_keys(self, space: int, keys: list[str]) -> None:
        # Advisory locks of two int4 keys never meet the migration lock's one bigint key.
        # In one order in every transaction, so two that lock several keys cannot deadlock.
        self.database.execute_sql(
            "SELECT pg_advisory_xact_lock(%s, h) FROM"
            " (SELECT DISTINCT hashtext(k) AS h FROM unnest(%s::text[]) AS k ORDER BY h) AS hashes",
            (space, list(keys)),
        )

    def skip_locked(self, query: Q) -> Q:
        return query.for_update(skip_locked=True)

    def greatest(self, *values: Any) -> peewee.Function:
        return peewee.fn.GREATEST(*values)

    def json_member_is(self, column: peewee.Field, key: str, value_json: str) -> peewee.Node:
        return peewee.NodeList(
            (peewee.SQL("(CAST("), column, peewee.SQL(" AS jsonb) -> %s) = CAST(%s AS jsonb)", [key, value_json])),
            glue="",
        )

    def match(self, query: Q, column: peewee.Field, index: str, words: list[str]) -> Q:
        # websearch syntax takes "or" between words, and no word as an operator.
        terms = peewee.fn.websearch_to_tsquery("english", " or ".join(words))
        document = peewee.fn.to_tsvector("english", peewee.fn.COALESCE(column, ""))
        query = query.where(peewee.Expression(document, "@@", terms))
        return query.order_by(peewee.fn.ts_rank(document, terms).desc(), column.model._meta.primary_key)

    @contextlib.contextmanager
    def migration_lock(self) -> Iterator[None]:
        with self.database.atomic():
            self.database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
            yield

    def reindex(self) -> None:
        schema = self.database.execute_sql("SELECT current_schema()").fetchone()[0]
        quoted = self.database.get_sql_context().sql(peewee.Entity(schema)).query()[0]
        self.database.execute_sql("REINDEX SCHEMA %s" % quoted)

    def sizes(self) -> Sizes:
        """The bytes of the current schema's tables, and no WAL of its own (0)."""
        (size,) = self.database.execute_sql(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).fetchone()
        return Sizes(int(size), 0)

    def follow_ids(self, field: peewee.AutoField) -> None:
        table, column = field.model._meta.table_name, field.column_name
        self.database.execute_sql(
            'SELECT setval(pg_get_serial_sequence(%%s, %%s), COALESCE(MAX("%s"), 0) + 1, false) FROM "%s"'
            % (column, table),
            (table, column),
        )

    def explain(self, sql: str, params: tuple | list) -> list[str]:
        return [row[0] for row in self.database.execute_sql("EXPLAIN " + sql, params).fetchall()]

"""A whole store copied to another database: a SQLite data directory into PostgreSQL, and back.

    with open_storage("./loom-data") as source, open_storage(database_url=url) as target:
        for table in copy_store(source, target):      # every domain's tables, verified
            print(table.name, table.rows, table.checksum)

Rows are matched by their primary key (message ids are kept), read in key order
a batch at a time, and each batch is written in one transaction: an interrupted
copy is resumed by running it again, and a run that finds everything there
writes nothing. A target holding rows the source does not have is refused
unless `append=True`; a key on both sides whose rows differ is a conflict, and
both are found before anything is written. At the end every source row is read
back from the target: the counts and a SHA-256 per table say the two are the same.

Values are copied as the databases hold them (JSON as its text, times as
numbers): both backends store one layout. Writers should be stopped meanwhile;
a row changed during the copy is what verification reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator

import peewee
from peewee import Tuple, fn

from .calls import storage_call
from .errors import ConflictError
from .repository import Repository
from .storage import Storage

# A batch holds at most this many rows, and about this many bytes once a table's rows are known.
MOST_ROWS = 1000
BATCH_BYTES = 8 << 20
_FIRST_ROWS = 16  # a table's first batch: its rows might be references of many megabytes

Progress = Callable[..., object]  # progress(rows, total=None), as loom-db's bars take it


@dataclasses.dataclass(frozen=True)
class TableCopy:
    """One table's copy: the source's rows, those this run wrote, and what was read back."""

    name: str
    rows: int
    written: int
    found: int  # source rows read back from the target, equal
    checksum: str  # SHA-256 of the source's rows in key order
    target_checksum: str  # of the same keys' rows in the target

    @property
    def verified(self) -> bool:
        return self.found == self.rows and self.checksum == self.target_checksum


class _Table:
    """One table of a domain on both sides, read and written as raw column values."""

    def __init__(self, model: type[peewee.Model], source: Repository, target: Repository):
        self.name = model._meta.table_name
        fields = model._meta.sorted_fields
        key = model._meta.primary_key  # every table of ours has one
        assert key, self.name
        key_names = key.field_names if isinstance(key, peewee.CompositeKey) else (key.name,)
        # The key first, so that a row's key is its first values.
        names = [*key_names, *(f.name for f in fields if f.name not in key_names)]
        self.columns = [model._meta.fields[name].column_name for name in names]
        self.key_width = len(key_names)
        self.auto_id = key if isinstance(key, peewee.AutoField) else None
        self.target = target
        self.source_table = peewee.Table(self.name, self.columns).bind(source.database)
        self.target_table = peewee.Table(self.name, self.columns).bind(target.database)

    def count(self, table: peewee.Table) -> int:
        return table.select(fn.COUNT(peewee.SQL("*"))).scalar()

    def batches(self) -> Iterator[list[tuple]]:
        """The source's rows in key order, a batch at a time (each read in a statement of its own)."""
        table, wanted, last = self.source_table, _FIRST_ROWS, None
        key = Tuple(*(peewee.Column(table, column) for column in self.columns[: self.key_width]))
        while True:
            query = table.select(*(peewee.Column(table, column) for column in self.columns)).order_by(*key.nodes)
            if last is not None:
                query = query.where(key > Tuple(*last))
            batch = [_plain(row) for row in query.limit(wanted).tuples()]
            if not batch:
                return
            yield batch
            last = batch[-1][: self.key_width]
            wanted = max(1, min(MOST_ROWS, len(batch) * BATCH_BYTES // max(1, _bytes(batch))))

    def in_target(self, batch: list[tuple]) -> dict[tuple, tuple]:
        """The target's rows with the keys of `batch`, by key."""
        table, width = self.target_table, self.key_width
        key = Tuple(*(peewee.Column(table, column) for column in self.columns[:width]))
        query = table.select(*(peewee.Column(table, column) for column in self.columns)).where(
            key.in_([row[:width] for row in batch])
        )
        return {row[:width]: row for row in map(_plain, query.tuples())}

    def differing(self, batch: list[tuple], there: dict[tuple, tuple]) -> ConflictError | None:
        for row in batch:
            found = there.get(row[: self.key_width])
            if found is not None and found != row:
                return ConflictError(
                    "%s %s differs in the target from the source's row: nothing was copied over it"
                    % (self.name, ", ".join(map(str, row[: self.key_width])))
                )
        return None

    def write(self, rows: list[tuple]) -> None:
        table = self.target_table
        with self.target.backend.write():
            table.insert(rows, columns=[peewee.Column(table, column) for column in self.columns]).execute()


@storage_call
def copy_store(
    source: Storage, target: Storage, *, append: bool = False, progress: Progress | None = None
) -> list[TableCopy]:
    """Copy every domain's rows from `source` into `target` (both open, their schemas current); verify them.

        copy_store(source, target)                # into an empty store, or one an interrupted copy began
        copy_store(source, target, append=True)   # beside rows of its own

    ConflictError, before anything is written: the target holds rows the source
    does not (unless `append`), or a key whose row differs from the source's; or,
    after, a row that did not read back the same (see the TableCopy list it names).
    """
    advance = progress or (lambda rows, total=None: None)
    tables = [
        _Table(model, mine, theirs)
        for mine, theirs in zip(source.repositories, target.repositories, strict=True)
        for model in mine.models
    ]
    sizes = {table.name: table.count(table.source_table) for table in tables}
    already = {table.name: table.count(table.target_table) for table in tables}
    passes = 3 if any(already.values()) else 2
    advance(0, total=passes * sum(sizes.values()))
    if passes == 3:
        for table in tables:
            _check(table, already[table.name], append, advance)
    written = {table.name: _copy(table, advance) for table in tables}
    copies = [_verify(table, sizes[table.name], written[table.name], advance) for table in tables]
    unequal = [copy.name for copy in copies if not copy.verified]
    if unequal:
        raise ConflictError(
            "the copy did not read back the same: %s (was either store written meanwhile?)" % ", ".join(unequal)
        )
    return copies


def _check(table: _Table, there: int, append: bool, advance: Progress) -> None:
    """Refuse, before anything is written, a target whose rows are not the source's (unless `append`) or differ."""
    found = 0
    for batch in table.batches():
        rows = table.in_target(batch)
        conflict = table.differing(batch, rows)
        if conflict:
            raise conflict
        found += len(rows)
        advance(len(batch))
    if there > found and not append:
        raise ConflictError(
            "the target holds %d rows of %s that are not the source's: copy into an empty store, or append to it"
            % (there - found, table.name)
        )


def _copy(table: _Table, advance: Progress) -> int:
    written = 0
    for batch in table.batches():
        there = table.in_target(batch)
        conflict = table.differing(batch, there)
        if conflict:  # written since the check
            raise conflict
        missing = [row for row in batch if row[: table.key_width] not in there]
        if missing:
            table.write(missing)
            written += len(missing)
        advance(len(batch))
    if table.auto_id is not None:
        table.target.backend.follow_ids(table.auto_id)
    return written


def _verify(table: _Table, rows: int, written: int, advance: Progress) -> TableCopy:
    found, mine, theirs = 0, hashlib.sha256(), hashlib.sha256()
    for batch in table.batches():
        there = table.in_target(batch)
        for row in batch:
            copied = there.get(row[: table.key_width])
            found += copied == row
            _digest(mine, row)
            _digest(theirs, copied)
        advance(len(batch))
    return TableCopy(table.name, rows, written, found, mine.hexdigest(), theirs.hexdigest())


def _digest(sha: hashlib._Hash, row: tuple | None) -> None:
    """Add `row` to `sha`: each value with its type and length, bytes as they are (a repr of megabytes costs more)."""
    for value in (None,) if row is None else row:
        data = value if isinstance(value, bytes) else repr(value).encode()
        sha.update(b"%s:%d:" % (type(value).__name__.encode(), len(data)))
        sha.update(data)


def _plain(row: tuple) -> tuple:
    # PostgreSQL gives a bytea as a memoryview, SQLite as bytes.
    return tuple(bytes(value) if isinstance(value, memoryview) else value for value in row)


def _bytes(batch: list[tuple]) -> int:
    return sum(len(value) for row in batch for value in row if isinstance(value, (bytes, str)))

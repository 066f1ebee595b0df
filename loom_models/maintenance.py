"""Looking after an open database: check it, tidy it, measure it.

    db = open_database("./loom-data/sessions.db")
    integrity_check(db)              # [] when healthy
    fragmentation(db)                # Fragmentation(page_count=120, freelist_count=6, ratio=0.05)
    wal_checkpoint(db, "TRUNCATE")   # (0, 0, 0): not busy, the WAL emptied
    explain(db, "SELECT * FROM messages WHERE session_id = ?", ("s",))

    report = check(db, [repo])       # {'database': 'sessions.db', 'problems': [], 'warnings': [], ...}

Each function takes a database as `open_database` returns it. `analyze`,
`reindex`, `vacuum`, `sizes`, `explain` and `check` work on PostgreSQL too; the
others are SQLite's own and raise NotImplementedError there, naming the backend.
"""

from __future__ import annotations

import peewee

from .backends import Backend, Fragmentation, Sizes, backend_of
from .calls import storage_call
from .errors import (
    DatabaseCorruptError,
    LoomStorageError,
    NotWritableError,
    SchemaMismatchError,
    ValidationError,
)

__all__ = [
    "CHECKPOINT_MODES",
    "Fragmentation",
    "Sizes",
    "analyze",
    "check",
    "check_failure",
    "explain",
    "fragmentation",
    "incremental_vacuum",
    "integrity_check",
    "reindex",
    "sizes",
    "vacuum",
    "wal_checkpoint",
]

CHECKPOINT_MODES = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")


@storage_call
def integrity_check(database: peewee.Database, *, quick: bool = False, raise_on_error: bool = False) -> list[str]:
    """The problems SQLite finds in the file and its foreign keys; [] when healthy.

    integrity_check(db, quick=True)          # quick_check: no index cross-checks
    integrity_check(db, raise_on_error=True) # DatabaseCorruptError instead of a list
    """
    problems = backend_of(database).integrity_problems(quick)
    if problems and raise_on_error:
        raise DatabaseCorruptError("integrity check failed: %s" % "; ".join(problems[:10]))
    return problems


@storage_call
def analyze(database: peewee.Database) -> None:
    """Refresh the planner's statistics.  analyze(db)"""
    database.execute_sql("ANALYZE")


@storage_call
def reindex(database: peewee.Database) -> None:
    """Rebuild every index of the store.  reindex(db)"""
    backend_of(database).reindex()


@storage_call
def vacuum(database: peewee.Database) -> None:
    """Rewrite the database compactly (SQLite), or reclaim dead rows (PostgreSQL).  vacuum(db)"""
    database.execute_sql("VACUUM")


@storage_call
def incremental_vacuum(database: peewee.Database, pages: int) -> int:
    """Free up to `pages` pages of the freelist; return how many went.

    Only a file in auto_vacuum=INCREMENTAL mode gives pages back this way.

        incremental_vacuum(db, 100)
    """
    backend = backend_of(database)
    backend.file("incremental_vacuum")  # SQLite's own: said before the pages are
    if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
        raise ValidationError({"pages": ["Must be a positive integer."]})
    return backend.incremental_vacuum(pages)


@storage_call
def wal_checkpoint(database: peewee.Database, mode: str = "PASSIVE") -> tuple[int, int, int]:
    """Copy the WAL into the database file: (busy, log_pages, checkpointed_pages).

    wal_checkpoint(db, "TRUNCATE")   # and empty the WAL file
    """
    backend = backend_of(database)
    backend.file("wal_checkpoint")
    if mode not in CHECKPOINT_MODES:
        raise ValidationError({"mode": ["Must be one of %s." % ", ".join(CHECKPOINT_MODES)]})
    return backend.wal_checkpoint(mode)


@storage_call
def fragmentation(database: peewee.Database) -> Fragmentation:
    """Pages in the file, pages free, and the free share (0-1): VACUUM when it is high.

    fragmentation(db).ratio
    """
    return backend_of(database).fragmentation()


@storage_call
def sizes(database: peewee.Database) -> Sizes:
    """Bytes of the database and of its WAL (PostgreSQL: the tables of the current schema; WAL 0).

    sizes(db).wal_bytes
    """
    return backend_of(database).sizes()


@storage_call
def explain(database: peewee.Database, sql: str | peewee.Node, params: tuple | list = ()) -> list[str]:
    """The query plan's lines for SQL text or a peewee query.

    explain(db, repo.Message.select().where(repo.Message.session == "s"))
    """
    text, values = database.get_sql_context().sql(sql).query() if isinstance(sql, peewee.Node) else (sql, params)
    return backend_of(database).explain(text, values)


# The error each kind of problem amounts to, the gravest first.
_PROBLEMS = (
    ("integrity", DatabaseCorruptError),
    ("permission", NotWritableError),
    ("schema", SchemaMismatchError),
    ("pragma", LoomStorageError),
)


def check(database: peewee.Database, repositories: list) -> dict:
    """A health report of a database and the schemas of the repositories on it.

        report = check(db, [storage.sessions])
        report["problems"]   # [{'kind': 'integrity' | 'permission' | 'schema' | 'pragma', 'detail': ...}]

    Also its warnings (copies left beside it, free pages) and figures (sizes,
    pragmas, fragmentation, where they apply). A damaged file or one that cannot
    be read is reported, not raised.
    """
    backend = backend_of(database)
    report: dict = {"database": backend.label(), "backend": backend.name, "problems": [], "warnings": []}
    try:
        _look(backend, repositories, report)
    except DatabaseCorruptError as error:
        report["problems"].append({"kind": "integrity", "detail": str(error)})
    except NotWritableError as error:  # too little access to look further
        if not any(problem["kind"] == "permission" for problem in report["problems"]):
            report["problems"].append({"kind": "permission", "detail": str(error)})
    return report


@storage_call
def _look(backend: Backend, repositories: list, report: dict) -> None:
    if not backend.health(report):
        return  # too damaged to look further
    for repository in repositories:
        try:
            repository.check_schema()
        except SchemaMismatchError as error:
            report["problems"].append({"kind": "schema", "detail": "%s: %s" % (repository.domain, error)})
    report["sizes"] = backend.sizes()._asdict()


def check_failure(reports: list[dict]) -> LoomStorageError | None:
    """The error that health reports amount to, of the gravest kind of problem in them; None if healthy."""
    for kind, error in _PROBLEMS:
        failed = [report["database"] for report in reports if any(p["kind"] == kind for p in report["problems"])]
        if failed:
            return error("%s check failed on %s" % (kind, ", ".join(failed)))
    return None

"""open_storage: every domain's repository over one data directory or one database URL.

with open_storage("./loom-data") as storage:       # or $LOOM_DATA_DIR, else ./loom-data
    storage.sessions.save_session(Session(id="sess_1"))
    storage.hitl.store(HumanRequest(agent_id="a", session_id="sess_1", question="Deploy?"))
    storage.references.store(b"a large document")
    storage.checkpoints   # LangGraph's state: integrations.langgraph.LoomSaver(storage)

open_storage(database_url="postgresql://loom@127.0.0.1:5432/loom")   # all domains, one database
Storage.wire("./loom-data")   # the same repositories, the databases as they are: nothing checked

This is the one place that wires databases to repositories; the command line,
backups and fixtures ask it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import warnings
from typing import TYPE_CHECKING

import peewee
from playhouse.pool import PooledDatabase

from .calls import storage_call
from .checkpoints import CheckpointRepository
from .db import open_database, redact
from .errors import LoomStorageError, ValidationError
from .hitl import HumanRequestRepository
from .monitoring import CallWatch
from .pool import PoolStats, PostgresPool
from .references import ReferenceRepository
from .repository import Repository
from .sessions import SessionRepository

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Tracer  # the tracing extra; only a caller with a tracer or meter has it

# Every domain, by its repository, which names the domain, its file and its main
# table. A new domain is one more entry here (and its attribute on Storage, for
# type checkers).
REPOSITORIES: tuple[type[Repository], ...] = (
    SessionRepository,
    HumanRequestRepository,
    ReferenceRepository,
    CheckpointRepository,
)
DOMAINS: dict[str, type[Repository]] = {repository.domain: repository for repository in REPOSITORIES}
DATABASE_FILES = tuple(repository.file for repository in REPOSITORIES)

logger = logging.getLogger(__name__)


class Storage:
    """The repositories of every domain; closing it closes the databases it opened."""

    sessions: SessionRepository
    hitl: HumanRequestRepository
    references: ReferenceRepository
    checkpoints: CheckpointRepository

    def __init__(self, repositories: dict[str, Repository], where: str = ""):
        for domain, repository in repositories.items():
            setattr(self, domain, repository)
        self.repositories = list(repositories.values())
        self._where = where

    @classmethod
    def wire(
        cls,
        data_dir: str | os.PathLike | None = None,
        *,
        database_url: str | None = None,
        tracer: Tracer | None = None,
        pooled: bool = False,
        pool_size: int | None = None,
        slow_call_ms: float | None = None,
        meter: Meter | None = None,
    ) -> Storage:
        """The repositories of every domain over a data directory (made 0700 if missing) or one database URL.

            Storage.wire("./loom-data")   # missing files are created; no schema is checked or migrated

        `pooled`: each database pools its connections, for many threads (db.open_database);
        a PostgreSQL database always does. `pool_size`: its pool holds at most that many.
        `slow_call_ms`, `meter`: the calls to log and to meter (open_storage, monitoring.py).
        close() closes them all.
        """
        if database_url is not None:
            if not isinstance(database_url, str) or "://" not in database_url:
                raise ValidationError({"database_url": ["Must be a URL such as postgresql://user@host/db."]})
            # A server's connection takes milliseconds to open: the threads that come
            # and go (LangGraph's, a web server's) share a pool's, each call giving its back.
            on_server = not database_url.startswith("sqlite")
            shared = open_database(database_url, pooled=pooled or on_server, pool_size=pool_size)
            databases = dict.fromkeys(DOMAINS, shared)
            where = redact(database_url)
        else:
            if pool_size is not None:
                raise ValidationError(
                    {"pool_size": ["Is for a database URL: each SQLite file is written by one at a time."]}
                )
            where = os.fspath(data_dir or os.environ.get("LOOM_DATA_DIR") or "loom-data")
            _make_private_dir(where)
            databases = {
                domain: open_database(os.path.join(where, r.file), pooled=pooled) for domain, r in DOMAINS.items()
            }
        storage = cls({domain: DOMAINS[domain](database, tracer) for domain, database in databases.items()}, where)
        if slow_call_ms is not None or meter is not None:
            storage._watched_by(CallWatch(slow_call_ms=slow_call_ms, meter=meter))
        return storage

    def _watched_by(self, watch: CallWatch) -> None:
        for database, repositories in self.by_database():
            watch.watch_database(database)
            if isinstance(database, PostgresPool):
                watch.watch_pool(database)
            for repository in repositories:
                repository.watch = watch

    def by_database(self) -> list[tuple[peewee.Database, list[Repository]]]:
        """Each distinct database, with the repositories on it (one database for all on PostgreSQL)."""
        grouped: dict[int, tuple[peewee.Database, list[Repository]]] = {}
        for repository in self.repositories:
            grouped.setdefault(id(repository.database), (repository.database, []))[1].append(repository)
        return list(grouped.values())

    def pool_stats(self) -> PoolStats | None:
        """The connection pool's figures (size, open, in use, idle, waits, wait time); None on SQLite.

        storage.pool_stats().waits
        """
        pools = [database for database, _ in self.by_database() if isinstance(database, PostgresPool)]
        return pools[0].stats() if pools else None

    def stats(self) -> dict:
        """Every domain's figures, JSON-ready: sessions and their totals, requests by status and priority, references.

        storage.stats()["requests"]["pending_by_priority"]["critical"]
        """
        references = self.references.stats()
        return {
            "sessions": dataclasses.asdict(self.sessions.get_stats()),
            "requests": {
                "by_status": self.hitl.get_stats(),
                "pending_by_priority": self.hitl.pending_by_priority(),
            },
            "references": {"count": references.active_refs, "bytes": references.current_bytes},
            "checkpoints": self.checkpoints.stats(),
            **({"pool": dataclasses.asdict(pool)} if (pool := self.pool_stats()) else {}),
        }

    def __repr__(self) -> str:
        return "<Storage %s>" % self._where

    def close(self) -> None:
        """Stop the garbage collector and close the databases; every call is refused then. Safe to call twice."""
        for repository in self.repositories:
            repository.close()
        for database, _ in self.by_database():
            database.close()
            if isinstance(database, PooledDatabase):
                database.close_all()  # every thread's, not only this one's

    def prepare(self, *, migrate: bool = True, gc_interval: float | None = 300) -> Storage:
        """Make it ready to serve (see open_storage); closed again if that fails."""
        try:
            for repository in self.repositories:
                repository.backend.check_writable()
                repository.migrate() if migrate else repository.check_schema()
            if gc_interval:
                self.references.start_collector(gc_interval)
                self.references.sweep_too(self._reclaim_counts)
        except BaseException:
            self.close()
            raise
        return self

    def _reclaim_counts(self) -> None:
        """A sweep of the collector's (ReferenceRepository.sweep_too): it looks after its errors and connection."""
        try:
            self.sessions.reclaim_counts()
        except LoomStorageError:  # the next run may fare better
            logger.exception("loom_models: vacuuming the session counts failed")
        finally:
            self.sessions.backend.discard_connection()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@storage_call
def open_storage(
    data_dir: str | os.PathLike | None = None,
    *,
    database_url: str | None = None,
    tracer: Tracer | None = None,
    gc_interval: float | None = 300,
    migrate: bool = True,
    pool_size: int | None = None,
    slow_call_ms: float | None = None,
    meter: Meter | None = None,
) -> Storage:
    """Open (creating if needed) every domain's database, apply pending migrations,
    and collect expired references every `gc_interval` seconds (0 or None: never).

    A PostgreSQL URL's connections are pooled, each call giving its back for the
    next thread's; `pool_size` (or the URL's `?pool_size=`): at most that many.
    `slow_call_ms`: a call that takes that long is logged (`loom_models.slow`,
    with the shape of its SQL, never a value); with an OpenTelemetry `meter`,
    every call's duration and the pool's figures are metrics (monitoring.py).

    With `migrate=False` the schemas must already be current (SchemaMismatchError).
    With an OpenTelemetry `tracer`, every repository call is a span (tracing.py).
    """
    storage = Storage.wire(
        data_dir, database_url=database_url, tracer=tracer, pool_size=pool_size, slow_call_ms=slow_call_ms, meter=meter
    )
    return storage.prepare(migrate=migrate, gc_interval=gc_interval)


def _make_private_dir(path: str) -> None:
    """Create the data directory 0700; warn when an existing one lets others in."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        warnings.warn(
            "loom_models: data directory %s has mode %04o; others may read the store (chmod 700 %s)"
            % (path, mode, path),
            stacklevel=5,  # the caller of open_storage, past storage_call and Storage.wire
        )

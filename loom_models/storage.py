"""open_storage: every domain's repository over one data directory or one database URL.

with open_storage("./loom-data") as storage:       # or $LOOM_DATA_DIR, else ./loom-data
    storage.sessions.save_session(Session(id="sess_1"))
    storage.hitl.store(HumanRequest(agent_id="a", session_id="sess_1", question="Deploy?"))
    storage.references.store(b"a large document")

open_storage(database_url="postgresql://loom@127.0.0.1:5432/loom")   # all domains, one database
"""

from __future__ import annotations

import os
import stat
import warnings
from typing import TYPE_CHECKING

from .calls import storage_call
from .db import open_database, redact
from .errors import ValidationError
from .hitl import HumanRequestRepository
from .references import ReferenceRepository
from .sessions import SessionRepository

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer  # the tracing extra; only a caller with a tracer has it

# domain -> (file in the data directory, repository class)
DOMAINS = {
    "sessions": ("sessions.db", SessionRepository),
    "hitl": ("hitl.db", HumanRequestRepository),
    "references": ("references.db", ReferenceRepository),
}


class Storage:
    """The repositories of every domain; closing it closes the databases it opened."""

    def __init__(self, repositories: dict, databases: list, where: str = ""):
        self.sessions: SessionRepository = repositories["sessions"]
        self.hitl: HumanRequestRepository = repositories["hitl"]
        self.references: ReferenceRepository = repositories["references"]
        self._repositories = list(repositories.values())
        self._databases = databases
        self._where = where
        self.closed = False

    def __repr__(self) -> str:
        return "<Storage %s>" % self._where

    def close(self) -> None:
        """Stop the garbage collector and close the databases; every call is refused then. Safe to call twice."""
        self.closed = True
        for repository in self._repositories:
            repository.close()
        for database in self._databases:
            database.close()

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
) -> Storage:
    """Open (creating if needed) every domain's database, apply pending migrations,
    and collect expired references every `gc_interval` seconds (0 or None: never).

    With `migrate=False` the schemas must already be current (SchemaMismatchError).
    With an OpenTelemetry `tracer`, every repository call is a span (tracing.py).
    """
    if database_url is not None:
        if not isinstance(database_url, str) or "://" not in database_url:
            raise ValidationError({"database_url": ["Must be a URL such as postgresql://user@host/db."]})
        shared = open_database(database_url)
        databases = {domain: shared for domain in DOMAINS}
        where = redact(database_url)
    else:
        where = os.fspath(data_dir or os.environ.get("LOOM_DATA_DIR") or "loom-data")
        _make_private_dir(where)
        databases = {domain: open_database(os.path.join(where, name)) for domain, (name, _) in DOMAINS.items()}
    repositories = {domain: cls(databases[domain], tracer) for domain, (_, cls) in DOMAINS.items()}
    storage = Storage(repositories, list({id(db): db for db in databases.values()}.values()), where)
    try:
        for repository in repositories.values():
            repository.backend.check_writable()
            repository.migrate() if migrate else repository.check_schema()
        if gc_interval:
            storage.references.start_collector(gc_interval)
    except BaseException:
        storage.close()
        raise
    return storage


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
            stacklevel=4,  # the caller of open_storage, past storage_call
        )

"""loom-db: look after a Loom store from the shell.

    loom-db init                                  # ./loom-data, or $LOOM_DATA_DIR
    loom-db demo --sessions 10                    # sample data, then the stats
    loom-db --data-dir /srv/loom stats
    loom-db migrate --dry-run; loom-db migrate; loom-db migrate status
    loom-db migrate --to 0003_search --database sessions
    loom-db check && loom-db backup /srv/backups --keep-days 14
    loom-db restore /srv/backups/loom-20261126T120000Z    # a whole set, or one of its files
    loom-db prune --older-than 30d --dry-run
    loom-db export sess_1 > sess_1.json; loom-db import sess_1.json
    loom-db import records.json                   # sessions, requests, references (documents.py)
    loom-db --database-url postgresql://loom@127.0.0.1/loom --json stats

Global options come before the command. Each command prints a table, or with
--json exactly one JSON document on stdout. An expected error prints one line on
stderr and exits with the code of its class (EXIT_CODES); a usage error, one
line and exit code 2.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import re
import sys

import click

from . import backup as backups
from . import documents, maintenance, migrator
from .backends import backend_of
from .calls import storage_call
from .db import redact
from .errors import (
    ConflictError,
    DatabaseCorruptError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    DiskFullError,
    ExpiredError,
    ForeignKeyConstraintError,
    LoomStorageError,
    NotFoundError,
    NotWritableError,
    SchemaMismatchError,
    ValidationError,
)
from .hitl.models import PRIORITIES
from .storage import DOMAINS, Storage, open_storage

# One row per error class, the most specific first: its exit code and what to do.
# click's own usage errors exit with 2.
EXIT_CODES = (
    (NotFoundError, 3, "Check the id or the path."),
    (ValidationError, 4, "Correct the input and try again."),
    (ConflictError, 5, "It exists already or is in use: choose another id, or stop what uses it."),
    (ExpiredError, 6, "It is past its deadline."),
    (DatabaseLockedError, 7, "Another process holds the database: try again in a moment."),
    (ForeignKeyConstraintError, 8, "It refers to a row that does not exist."),
    (DatabaseCorruptError, 9, "Restore the database from a backup with `loom-db restore`."),
    (DiskFullError, 10, "Free some disk space and try again."),
    (SchemaMismatchError, 11, "Run `loom-db migrate` (or upgrade loom-models if the database is newer)."),
    (NotImplementedError, 12, "This command needs a SQLite data directory (--data-dir)."),
    (DatabaseUnavailableError, 13, "Check that the server is running and the URL's host and port, then try again."),
    (NotWritableError, 14, "Let the user running this write those files and their directory (see `ls -l`)."),
    (LoomStorageError, 1, "`loom-db check` looks for problems."),
)

_DURATION = re.compile(r"(\d+)([dhm])")
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_READ_CHUNK = 1 << 20


def exit_code(error: BaseException) -> tuple[int, str]:
    """The exit code and the advice for an error: its own advice, else its class's in EXIT_CODES.

    exit_code(NotFoundError("session not found: s"))   # (3, 'Check the id or the path.')
    """
    code, advice = next((code, advice) for cls, code, advice in EXIT_CODES if isinstance(error, cls))
    return code, getattr(error, "advice", None) or advice


@dataclasses.dataclass
class Target:
    """What the command works on: a data directory of SQLite files, or one database URL."""

    data_dir: str
    database_url: str | None
    json: bool

    def storage(self, *, create: bool = False) -> Storage:
        """The store, whose schemas must be current unless `create` may make and migrate it.

            with target.storage() as storage: storage.sessions.get_stats()

        No garbage collector runs: a command is over before one would be due.
        """
        if not create:
            self.require_databases()
        data_dir = None if self.database_url is not None else self.data_dir
        return open_storage(data_dir, database_url=self.database_url, gc_interval=0, migrate=create)

    def repositories(self, *, create: bool = False) -> Storage:
        """The repositories over the databases as they are, to migrate or inspect them.

        with target.repositories(create=True) as storage: storage.sessions.migrate()
        """
        if not create:
            self.require_databases()
        return Storage.wire(None if self.database_url else self.data_dir, database_url=self.database_url)

    @contextlib.contextmanager
    def repository(self, domain: str):
        """One domain's repository alone, its schema current: another domain's damaged database is no matter.

        with target.repository("references") as references: references.collect_garbage()
        """
        if self.database_url is None and not os.path.exists(self.path(domain)):
            raise NotFoundError("no database at %s (`loom-db init` creates one)" % self.path(domain))
        with DOMAINS[domain].open(self.database_url or self.path(domain), migrate=False) as repository:
            yield repository

    def path(self, domain: str) -> str:
        return os.path.join(self.data_dir, DOMAINS[domain].file)

    def require_data_dir(self, command: str) -> str:
        if self.database_url is not None:
            raise NotImplementedError("%s is not available for a database URL (PostgreSQL has pg_dump)" % command)
        return self.data_dir

    def where(self) -> str:
        """The store's place, without the password a URL may hold."""
        return self.data_dir if self.database_url is None else redact(self.database_url)

    def require_databases(self) -> None:
        # Only init and demo create a store: a mistyped --data-dir must not become an empty one.
        if self.database_url is None:
            for domain in DOMAINS:
                if not os.path.exists(self.path(domain)):
                    raise NotFoundError("no database at %s (`loom-db init` creates one)" % self.path(domain))


class _Group(click.Group):
    """A click group that reports an expected error, or a usage error, in one line, with its exit code."""

    def make_context(self, *args, **kwargs):
        with _usage_in_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        try:
            with _usage_in_one_line():
                return storage_call(super().invoke)(ctx)
        except (LoomStorageError, NotImplementedError) as error:
            code, advice = exit_code(error)
            click.echo("Error: %s. %s" % (" ".join(str(error).split()).rstrip("."), advice), err=True)
            ctx.exit(code)


class _OneLineUsageError(click.UsageError):
    """A usage error shown in one line, saying where the usage is, rather than with the whole usage."""

    def show(self, file=None):
        where = self.ctx.command_path if self.ctx is not None else "loom-db"
        click.echo("Error: %s (see `%s --help`)" % (self.format_message().rstrip("."), where), file=file, err=True)


@contextlib.contextmanager
def _usage_in_one_line():
    try:
        yield
    except click.UsageError as error:
        if isinstance(error, _OneLineUsageError):
            raise
        raise _OneLineUsageError(error.format_message(), error.ctx) from None


class Duration(click.ParamType):
    """A span of time: a whole number of days, hours or minutes (30d, 12h, 90m)."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime.timedelta):
            return value
        match = _DURATION.fullmatch(str(value).strip())
        try:
            if match:
                return datetime.timedelta(**{_DURATION_UNITS[match[2]]: int(match[1])})
        except OverflowError:
            pass
        self.fail("%r is not a duration such as 30d, 12h or 90m" % value, param, ctx)


@click.group(name="loom-db", cls=_Group)
@click.option(
    "--data-dir",
    envvar="LOOM_DATA_DIR",
    default="loom-data",
    show_default="$LOOM_DATA_DIR, else loom-data",
    type=click.Path(file_okay=False),
    help="The directory of the SQLite databases.",
)
@click.option("--database-url", metavar="URL", help="A PostgreSQL database holding every domain instead.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@click.version_option(package_name="loom-models")
@click.pass_context
def main(ctx, data_dir, database_url, as_json):
    """Look after a Loom store: migrate, check, back up, restore, prune, export."""
    if database_url is not None and ctx.get_parameter_source("data_dir") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give --data-dir or --database-url, not both")
    if database_url is not None and "://" not in database_url:
        # open_database would take it for a file name and create that file.
        raise click.BadParameter("must be a URL such as postgresql://user@host/db", param_hint="--database-url")
    ctx.obj = Target(data_dir, database_url, as_json)
    # What the library logs (a copy taken, a backup deleted) each command prints
    # itself: Python's last-resort handler would print it twice.
    logging.getLogger("loom_models").addHandler(logging.NullHandler())


# -- schema ------------------------------------------------------------------------------


@main.command()
@click.pass_obj
def init(target):
    """Create the data directory and databases, and apply every migration."""
    with target.repositories(create=True) as storage:
        runs = {domain: getattr(storage, domain).migrate_to() for domain in DOMAINS}
    document, lines = _migration_report(target, runs)
    _emit(target, {"target": target.where(), **document}, ["Store ready at %s" % target.where(), *lines])


@main.group(invoke_without_command=True)
@click.option("--dry-run", is_flag=True, help="List what would be applied or reverted, and change nothing.")
@click.option("--to", "to", metavar="NAME", help="Go to this migration: up, or down through each later one's down().")
@click.option("--database", type=click.Choice(list(DOMAINS)), help="The database of --to, where NAME is in several.")
@click.pass_context
def migrate(ctx, dry_run, to, database):
    """Apply the pending migrations of every database (`migrate status` lists them), or go --to one.

    A SQLite database that holds data is first copied beside itself, verified;
    the copy is named in the output.
    """
    if ctx.invoked_subcommand is not None:
        return
    target = ctx.obj
    goals = {domain: None for domain in DOMAINS} if to is None else {_domain_of_migration(to, database): to}
    with target.repositories() as storage:
        if dry_run:
            plans = {d: migrator.plan(migrator.runner(getattr(storage, d).database, d), to) for d, to in goals.items()}
        else:
            runs, failure = _migrate_each(storage, goals)
    if dry_run:
        document = {
            "dry_run": True,
            "apply": {d: p[0] for d, p in plans.items()},
            "revert": {d: p[1] for d, p in plans.items()},
        }
        rows = [(d, name, "apply") for d, p in plans.items() for name in p[0]]
        rows += [(d, name, "revert") for d, p in plans.items() for name in p[1]]
        _emit(target, document, _table(rows, ("database", "migration", "would")) if rows else ["Nothing to do."])
        return
    document, lines = _migration_report(target, runs)
    _emit(target, {"dry_run": False, **document}, lines)
    if failure is not None:
        raise failure


def _migrate_each(storage: Storage, goals: dict) -> tuple[dict, LoomStorageError | None]:
    """Migrate each database to its goal, until one fails: what was done, and the failure."""
    runs = {}
    for domain, to in goals.items():
        try:
            runs[domain] = getattr(storage, domain).migrate_to(to)
        except LoomStorageError as error:  # what the others did is reported all the same
            return runs, error
    return runs, None


def _domain_of_migration(name: str, database: str | None) -> str:
    domains = [database] if database else [domain for domain in DOMAINS if migrator.has_migration(domain, name)]
    if database and not migrator.has_migration(database, name):
        raise click.UsageError("%s has no migration %s (`loom-db migrate status` lists them)" % (database, name))
    if not domains:
        raise click.UsageError("no database has a migration %s (`loom-db migrate status` lists them)" % name)
    if len(domains) > 1:
        raise click.UsageError("%s is a migration of %s: give --database" % (name, ", ".join(domains)))
    return domains[0]


def _migration_report(target: Target, runs: dict) -> tuple[dict, list[str]]:
    """The JSON document and the lines of what migrations did, copies first."""
    document = {
        "applied": {domain: run.applied for domain, run in runs.items()},
        "reverted": {domain: run.reverted for domain, run in runs.items()},
        "backups": {domain: run.backup for domain, run in runs.items() if run.backup},
    }
    lines = ["Copied %s to %s first" % (DOMAINS[domain].file, path) for domain, path in document["backups"].items()]
    rows = [(d, name, "applied") for d, run in runs.items() for name in run.applied]
    rows += [(d, name, "reverted") for d, run in runs.items() for name in run.reverted]
    if rows and target.database_url is not None:
        lines.append("No copy was taken first: on PostgreSQL, take one with pg_dump before migrating.")
    return document, lines + (_table(rows, ("database", "migration", "done")) if rows else ["No migration to run."])


@migrate.command()
@click.pass_obj
def status(target):
    """Applied and pending migrations of every database."""
    with target.repositories() as storage:
        histories = {domain: migrator.runner(getattr(storage, domain).database, domain).status() for domain in DOMAINS}
    document = {domain: _history(steps) for domain, steps in histories.items()}
    rows = [(domain, step.name, _state(step)) for domain, steps in histories.items() for step in steps]
    _emit(target, document, _table(rows, ("database", "migration", "state")))


def _history(steps) -> dict:
    return {
        "applied": [s.name for s in steps if s.applied and s.path is not None],
        "pending": [s.name for s in steps if not s.applied],
        # Applied by a newer version of loom-models: this one cannot serve the database.
        "unknown": [s.name for s in steps if s.path is None],
    }


def _state(step) -> str:
    if step.path is None:
        return "applied by a newer version"
    return "applied %s" % step.applied.strftime("%Y-%m-%d %H:%M:%S") if step.applied else "pending"


# -- what is in the store ------------------------------------------------------------------


@main.command()
@click.pass_obj
def stats(target):
    """Sessions, messages, cost and tokens; requests by status and priority; references."""
    with target.storage() as storage:
        document = _stats(storage)
    _emit(target, document, _stats_lines(document))


def _stats(storage: Storage) -> dict:
    pending = collections.Counter(request.priority for request in storage.hitl.list_pending())
    references = storage.references.stats()
    return {
        "sessions": dataclasses.asdict(storage.sessions.get_stats()),
        "requests": {
            "by_status": storage.hitl.get_stats(),
            "pending_by_priority": {priority: pending[priority] for priority in reversed(PRIORITIES)},
        },
        "references": {"count": references.active_refs, "bytes": references.current_bytes},
    }


def _stats_lines(document: dict) -> list[str]:
    sessions, requests = document["sessions"], document["requests"]
    rows = [
        ("sessions", sessions["session_count"]),
        ("messages", sessions["message_count"]),
        ("tool executions", sessions["tool_execution_count"]),
        ("total cost (USD)", sessions["total_cost_usd"]),
        ("total tokens", sessions["total_tokens"]),
    ]
    rows += [("requests %s" % status, n) for status, n in requests["by_status"].items()]
    rows += [("pending %s" % priority, n) for priority, n in requests["pending_by_priority"].items()]
    rows += [("references", document["references"]["count"]), ("reference bytes", document["references"]["bytes"])]
    return _table(rows)


# -- maintenance ---------------------------------------------------------------------------


@main.command()
@click.pass_obj
def check(target):
    """Integrity, pragmas in force, fragmentation and schema version of every database.

    Exits 9 when a database is damaged, 14 when a file cannot be written, 11 when
    a schema is not current, and 1 when a pragma is not in force.
    """
    # The store as it is: a check must report an old schema or a damaged file, not stop at it.
    with target.repositories() as storage:
        reports = [maintenance.check(database, repositories) for database, repositories in storage.by_database()]
    _emit(target, {"ok": not any(r["problems"] for r in reports), "databases": reports}, _check_lines(reports))
    failure = maintenance.check_failure(reports)
    if failure is not None:
        raise failure


def _check_lines(reports: list[dict]) -> list[str]:
    rows = []
    for report in reports:
        rows.append((report["database"], "problem" if report["problems"] else "ok", _figures(report)))
        rows += [(report["database"], p["kind"], p["detail"]) for p in report["problems"]]
        rows += [(report["database"], "warning", w) for w in report["warnings"]]
    return _table(rows, ("database", "result", "detail"))


def _figures(report: dict) -> str:
    figures = []
    if "sizes" in report:
        figures.append("%(database_bytes)d bytes" % report["sizes"])
    if "sizes" in report and report["backend"] == "sqlite":
        figures.append("WAL %(wal_bytes)d bytes" % report["sizes"])
    if "fragmentation" in report:
        figures.append("%(freelist_count)d of %(page_count)d pages free" % report["fragmentation"])
    return "; ".join(figures)


@main.command()
@click.pass_obj
def vacuum(target):
    """Rewrite each database compactly (SQLite) or reclaim dead rows (PostgreSQL)."""
    rows = []
    with target.storage() as storage, _progress("vacuum", len(storage.by_database())) as advance:
        for database, _ in storage.by_database():
            before = maintenance.sizes(database).database_bytes
            maintenance.vacuum(database)
            rows.append((_name(database), before, maintenance.sizes(database).database_bytes))
            advance(1)
    document = [dict(zip(("database", "bytes_before", "bytes_after"), row, strict=True)) for row in rows]
    _emit(target, {"databases": document}, _table(rows, ("database", "bytes before", "bytes after")))


@main.command()
@click.pass_obj
def analyze(target):
    """Refresh the query planner's statistics of each database."""
    names = []
    with target.storage() as storage:
        for database, _ in storage.by_database():
            maintenance.analyze(database)
            names.append(_name(database))
    _emit(target, {"analyzed": names}, ["Analyzed %s." % name for name in names])


@main.command()
@click.pass_obj
def checkpoint(target):
    """Copy each SQLite database's write-ahead log into it and truncate the log."""
    with target.storage() as storage:
        rows = [
            (_name(database), *maintenance.wal_checkpoint(database, mode="TRUNCATE"))
            for database, _ in storage.by_database()
        ]
    document = [dict(zip(("database", "busy", "log_pages", "checkpointed_pages"), row, strict=True)) for row in rows]
    _emit(target, {"databases": document}, _table(rows, ("database", "busy", "log pages", "checkpointed")))


# -- backups -------------------------------------------------------------------------------


@main.command(name="backup")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--keep-days",
    type=click.IntRange(0, backups.MAX_KEEP_DAYS),
    default=7,
    show_default=True,
    help="Then delete the backups in DIRECTORY taken more than this many days ago (each is named).",
)
@click.pass_obj
def backup_command(target, directory, keep_days):
    """Back up every database into DIRECTORY as one verified set, loom-<UTC time>/.

    A damaged database does not stop the others: they are saved in a set named
    loom-<UTC time>.incomplete, the damaged one is named, the command exits
    non-zero and deletes no older backup.
    """
    data_dir = target.require_data_dir("backup")
    target.require_databases()
    with _progress("backup", 100 * len(DOMAINS)) as advance:
        run = backups.backup_set(data_dir, directory, keep_days=keep_days, progress=_copy_progress(advance))
    failed = {name: str(error) for name, error in run.failed.items()}
    document = {"directory": run.directory, "written": run.written, "failed": failed, "pruned": run.pruned}
    lines = ["Wrote %s" % path for path in run.written]
    lines += ["Deleted %s (taken more than %d days ago)" % (path, keep_days) for path in run.pruned]
    _emit(target, {**document, "keep_days": keep_days}, lines)
    error = run.error()
    if error is not None:
        raise error


@main.command()
@click.argument("backup", metavar="FILE|SET", type=click.Path(exists=True))
@click.option(
    "--database",
    type=click.Choice(list(DOMAINS)),
    help="The database FILE holds; by default, told by its name (sessions..., hitl...).",
)
@click.pass_obj
def restore(target, backup, database):
    """Replace a database with a backup FILE, or every database with a backup SET (a loom-<time>/ directory).

    A set is restored whole or not at all. Nothing may have the store open.
    Each database replaced is kept beside itself first (named in the output).
    """
    data_dir = target.require_data_dir("restore")
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    if os.path.isdir(backup):
        if database:
            raise click.UsageError("--database is for a single FILE; a SET restores every database")
        with _progress("restore", 100 * len(DOMAINS)) as advance:
            kept = backups.restore_set(backup, data_dir, progress=_copy_progress(advance))
    else:
        path = target.path(database or _domain_of(backup))
        with _progress("restore", 100) as advance:
            kept = {path: backups.restore(backup, path, progress=_copy_progress(advance))}
    lines = ["Restored %s from %s" % (path, backup) for path in kept]
    lines += ["The database it replaced is kept as %s" % copy for copy in kept.values() if copy]
    document = {"restored": backup, "databases": [{"database": path, "kept": copy} for path, copy in kept.items()]}
    _emit(target, document, lines)


def _domain_of(backup_file: str) -> str:
    name = os.path.basename(backup_file)
    found = [domain for domain in DOMAINS if name.startswith(domain)]
    if not found:
        raise click.UsageError("cannot tell which database %s holds: give --database %s" % (name, "|".join(DOMAINS)))
    return found[0]


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.pass_obj
def dump(target, directory):
    """Write each database as SQL: to DIRECTORY/<name>.sql (mode 0600), or to stdout as it is read.

    The dump reads one snapshot; while it runs, the WAL is not checkpointed past it.
    """
    target.require_data_dir("dump")
    with target.repositories() as storage:
        databases = {domain: getattr(storage, domain).database for domain in DOMAINS}
        if directory is not None:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            paths = [backups.dump_sql(db, os.path.join(directory, "%s.sql" % d)) for d, db in databases.items()]
            _emit(target, {"written": paths}, ["Wrote %s" % path for path in paths])
        elif target.json:
            _stream_json({domain: backups.iter_dump(database) for domain, database in databases.items()})
        else:
            for domain, database in databases.items():
                click.echo("-- %s" % DOMAINS[domain].file)
                for statement in backups.iter_dump(database):
                    click.echo(statement)


def _stream_json(texts: dict) -> None:
    """Print {key: the text of its lines} as one JSON document, a line at a time: memory stays flat."""
    click.echo("{")
    for index, (key, lines) in enumerate(texts.items()):
        click.echo('  %s: "' % json.dumps(key), nl=False)
        for line in lines:
            click.echo(json.dumps(line + "\n")[1:-1], nl=False)
        click.echo('"' + ("," if index < len(texts) - 1 else ""))
    click.echo("}")


# -- retention -----------------------------------------------------------------------------


@main.command()
@click.pass_obj
def gc(target):
    """Remove expired and unreferenced references."""
    with target.repository("references") as references:
        removed = references.collect_garbage()
    _emit(target, {"removed": removed}, ["Removed %s." % _counted(removed, "reference")])


@main.command()
@click.pass_obj
def expire(target):
    """Mark pending requests past their deadline expired."""
    with target.repository("hitl") as hitl:
        expired = hitl.expire_overdue()
    _emit(target, {"expired": expired}, ["Expired %s." % _counted(expired, "request")])


@main.command()
@click.option("--older-than", required=True, type=Duration(), help="30d, 12h or 90m.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted, and delete nothing.")
@click.pass_obj
def prune(target, older_than, dry_run):
    """Delete sessions not updated for that long, and requests decided that long ago."""
    cutoff = datetime.datetime.now(datetime.timezone.utc) - older_than  # one moment for both
    with target.storage() as storage:
        if dry_run:
            sessions = storage.sessions.list_sessions(updated_before=cutoff, limit=None)
            requests = storage.hitl.list_decided_before(cutoff)
            counts = len(sessions), len(requests)
        else:
            counts = storage.sessions.delete_sessions_older_than(cutoff), storage.hitl.delete_older_than(cutoff)
    what = "%s not updated since %s (with their messages and tool executions) and %s decided before then." % (
        _counted(counts[0], "session"),
        cutoff.strftime("%Y-%m-%d %H:%M UTC"),
        _counted(counts[1], "request"),
    )
    document = {"dry_run": dry_run, "cutoff": cutoff.isoformat(), "sessions": counts[0], "requests": counts[1]}
    if not dry_run:
        _emit(target, document, ["Deleted " + what])
        return
    document.update(session_ids=[s.id for s in sessions], request_ids=[r.id for r in requests])
    rows = [("session", s.id, s.agent_id or "", "updated %s" % _when(s.updated_at)) for s in sessions]
    rows += [
        ("request", r.id, r.agent_id, "%s %s" % (r.status, _when(r.responded_at or r.created_at))) for r in requests
    ]
    lines = ["Would delete " + what, *_table(rows[:_LISTED]), *_more(len(rows) - _LISTED)]
    _emit(target, document, [*lines, "Nothing was deleted (--dry-run)."])


# How many rows a listing shows before it says how many more there are.
_LISTED = 50


def _more(hidden: int) -> list[str]:
    return ["... and %d more (--json lists them all)" % hidden] if hidden > 0 else []


def _when(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


# -- sessions as JSON ----------------------------------------------------------------------


@main.command(name="export")
@click.argument("session_id")
@click.pass_obj
def export_command(target, session_id):
    """Print a session with its messages and tool executions as JSON."""
    with target.storage() as storage:
        document = storage.sessions.export_session(session_id)
    click.echo(json.dumps(document, indent=2))


@main.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.pass_obj
def import_command(target, file):
    """Add a session exported by `loom-db export`, or a document of records (FILE, or - for stdin).

    A document holds sessions, requests and references (loom_models/documents.py);
    all of it is checked before anything is written.
    """
    document = _read_json(file)
    importer = _import_document if documents.is_document(document) else _import_session
    with target.storage() as storage:
        summary, lines = importer(storage, document)
    _emit(target, summary, lines)


def _import_session(storage: Storage, document) -> tuple[dict, list[str]]:
    session = storage.sessions.import_session(document)
    counts = {name: len(document.get(name) or []) for name in ("messages", "tool_executions")}
    line = "Imported session %s: %d messages, %d tool executions." % (
        session.id,
        counts["messages"],
        counts["tool_executions"],
    )
    return {"session_id": session.id, **counts}, [line]


def _import_document(storage: Storage, document) -> tuple[dict, list[str]]:
    loaded = documents.load_document(storage, document)
    ids = {kind: [item.id for item in getattr(loaded, kind)] for kind in documents.KINDS}
    return ids, ["Imported %s." % ", ".join("%d %s" % (len(ids[kind]), kind) for kind in documents.KINDS)]


def _read_json(file: str):
    size = None if file == "-" else os.path.getsize(file)
    chunks = []
    with click.open_file(file, "rb") as handle, _progress("reading", size) as advance:
        for chunk in iter(lambda: handle.read(_READ_CHUNK), b""):
            chunks.append(chunk)
            advance(len(chunk))
    try:
        return json.loads(b"".join(chunks))
    except ValueError as error:
        raise ValidationError({"file": ["Not JSON: %s." % error]}) from None


# -- sample data -----------------------------------------------------------------------------

# The state of each demo session's request to a person, in turn.
_DEMO_REQUESTS: tuple[dict[str, bool], ...] = (
    {},
    {"approved": True},
    {"expired": True},
    {},
    {"answered": True},
    {"rejected": True},
)


@main.command()
@click.option(
    "--sessions",
    "count",
    type=click.IntRange(1, 10_000),
    default=3,
    show_default=True,
    help="How many sample sessions to add.",
)
@click.pass_obj
def demo(target, count):
    """Fill the store (created if needed) with sample data and print its stats.

    Each session has four messages and a tool execution, a request to a person
    (pending, approved, expired, answered or rejected) and a reference.
    """
    try:  # here: factory_boy and Faker are an extra, and slower to import than most commands run
        from .testing import factories
    except ImportError as error:
        raise click.ClickException(
            "loom-db demo makes its sample data with factory_boy and Faker, which are not installed here:"
            " pip install 'loom-models[testing]'"
        ) from error
    with target.storage(create=True) as storage:
        for index in range(count):
            session = factories.SessionFactory.create(storage=storage, messages=4, tool_executions=1)
            state = _DEMO_REQUESTS[index % len(_DEMO_REQUESTS)]
            factories.HumanRequestFactory.create(storage=storage, session=session, **state)
            factories.ReferenceFactory.create(storage=storage, expiring=index % 2 == 1)
        document = _stats(storage)
    _emit(target, document, ["Added %d sample sessions to %s" % (count, target.where()), *_stats_lines(document)])


# -- output ----------------------------------------------------------------------------------


def _emit(target: Target, document, lines: list[str]) -> None:
    """One JSON document with --json, else the lines for people."""
    if target.json:
        click.echo(json.dumps(document, indent=2))
    else:
        for line in lines:
            click.echo(line)


def _table(rows: list[tuple], headers: tuple = ()) -> list[str]:
    """Rows as aligned columns, numbers to the right.

    _table([("sessions", 3)], ("what", "count"))   # ['what      count', 'sessions      3']
    """
    rows = ([headers] if headers else []) + [tuple(row) for row in rows]
    if not rows:
        return []
    texts = [[_text(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in texts) for i in range(len(texts[0]))]
    return [
        "  ".join(
            text.rjust(width) if _number(value) else text.ljust(width)
            for value, text, width in zip(row, row_texts, widths, strict=True)
        ).rstrip()
        for row, row_texts in zip(rows, texts, strict=True)
    ]


def _text(value) -> str:
    return "%.6f" % value if isinstance(value, float) else str(value)


def _counted(count: int, noun: str) -> str:
    """_counted(1, "session") is '1 session', _counted(2, "session") '2 sessions'."""
    return "%d %s%s" % (count, noun, "" if count == 1 else "s")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@contextlib.contextmanager
def _progress(label: str, length: int | None):
    """A function advance(n) moving a progress bar on stderr, shown only when stdout is a terminal.

        with _progress("vacuum", 3) as advance: ... advance(1)

    The bar goes to stderr so that stdout stays one document even on a terminal.
    """
    if length is None or not sys.stdout.isatty():
        yield lambda n: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def _copy_progress(advance):
    """A backup progress callback (remaining, total pages) moving a bar 100 steps a database."""
    done = [0]

    def report(remaining: int, total: int) -> None:
        percent = 100 - 100 * remaining // total if total else 100
        advance(max(percent - done[0], 0))
        done[0] = 0 if percent == 100 else percent  # the next database starts from 0

    return report


def _name(database) -> str:
    return backend_of(database).label()

"""loom-db init, migrate and migrate status: the schema of every database."""

from __future__ import annotations

import click

from .. import migrator
from ..errors import LoomStorageError
from ..storage import DOMAINS, Storage
from . import Target, main
from .output import at, emit, examples, table

# -- schema ------------------------------------------------------------------------------


@main.command(
    short_help="Create the data directory and its databases.",
    epilog=examples(
        "loom-db init",
        "loom-db --data-dir /srv/loom init",
        "loom-db --database-url postgresql://loom@127.0.0.1/loom init",
    ),
)
@click.pass_obj
def init(target):
    """Create the data directory and databases, and apply every migration."""
    with target.repositories(create=True) as storage:
        runs = {domain: getattr(storage, domain).migrate_to() for domain in DOMAINS}
    document, lines = _migration_report(target, runs)
    emit(target, {"target": target.where(), **document}, ["Store ready at %s" % target.where(), *lines])


@main.group(
    invoke_without_command=True,
    short_help="Apply pending migrations; `migrate status` lists them.",
    epilog=examples(
        "loom-db migrate --dry-run", "loom-db migrate", "loom-db migrate --to 0003_search --database sessions"
    ),
)
@click.option("--dry-run", is_flag=True, help="List what would be applied or reverted, and change nothing.")
@click.option("--to", "to", metavar="NAME", help="Go to this migration: up, or down through each later one's down().")
@click.option(
    "--database", type=click.Choice(list(DOMAINS)), help="Only this database; with --to, where NAME is in several."
)
@click.pass_context
def migrate(ctx, dry_run, to, database):
    """Apply the pending migrations of every database (`migrate status` lists them), or go --to one.

    A SQLite database that holds data is first copied beside itself, verified;
    the copy is named in the output.
    """
    if ctx.invoked_subcommand is not None:
        return
    target = ctx.obj
    if to is not None:
        goals = {_domain_of_migration(to, database): to}
    else:
        goals = {domain: None for domain in ([database] if database else DOMAINS)}
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
        emit(target, document, table(rows, ("database", "migration", "would")) if rows else ["Nothing to do."])
        return
    document, lines = _migration_report(target, runs)
    emit(target, {"dry_run": False, **document}, lines)
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
    return document, lines + (table(rows, ("database", "migration", "done")) if rows else ["No migration to run."])


@migrate.command(epilog=examples("loom-db migrate status", "loom-db --json migrate status"))
@click.pass_obj
def status(target):
    """Applied and pending migrations of every database."""
    with target.repositories() as storage:
        histories = {domain: migrator.runner(getattr(storage, domain).database, domain).status() for domain in DOMAINS}
    document = {domain: _history(steps) for domain, steps in histories.items()}
    rows = [(domain, step.name, _state(step)) for domain, steps in histories.items() for step in steps]
    emit(target, document, table(rows, ("database", "migration", "state")))


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
    return "applied %s" % at(step.applied, seconds=True) if step.applied else "pending"

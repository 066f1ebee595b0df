"""loom-db backup, restore, dump and copy: copies of the store, putting them back, moving it."""

from __future__ import annotations

import dataclasses
import json
import os

import click

from .. import backup as backups
from .. import transfer
from ..storage import DOMAINS
from . import main
from .output import copy_progress, database_bytes, emit, examples, progress, table

# -- backups -------------------------------------------------------------------------------


@main.command(
    name="backup",
    short_help="Back up every database as one verified set.",
    epilog=examples(
        "loom-db backup /srv/backups",
        "loom-db backup /srv/backups --keep-days 14",
        "loom-db --json backup /srv/backups | jq .written",
    ),
)
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
    total = database_bytes(*(os.path.join(data_dir, name) for name in backups.DATABASE_FILES))
    with progress("backup", total, in_bytes=True) as advance:
        run = backups.backup_set(data_dir, directory, keep_days=keep_days, progress=copy_progress(advance))
    failed = {name: str(error) for name, error in run.failed.items()}
    document = {"directory": run.directory, "written": run.written, "failed": failed, "pruned": run.pruned}
    lines = ["Wrote %s" % path for path in run.written]
    lines += ["Deleted %s (taken more than %d days ago)" % (path, keep_days) for path in run.pruned]
    emit(target, {**document, "keep_days": keep_days}, lines)
    error = run.error()
    if error is not None:
        raise error


@main.command(
    short_help="Put a backup set, or one database of it, back.",
    epilog=examples(
        "loom-db restore /srv/backups/loom-20261126T120000Z",
        "loom-db restore /srv/backups/loom-20261126T120000Z/hitl.db",
    ),
)
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
        in_set = [os.path.join(backup, name) for name in backups.DATABASE_FILES]
        with progress("restore", database_bytes(*in_set), in_bytes=True) as advance:
            kept = backups.restore_set(backup, data_dir, progress=copy_progress(advance))
    else:
        path = target.path(database or _domain_of(backup))
        with progress("restore", database_bytes(backup), in_bytes=True) as advance:
            kept = {path: backups.restore(backup, path, progress=copy_progress(advance))}
    lines = ["Restored %s from %s" % (path, backup) for path in kept]
    lines += ["The database it replaced is kept as %s" % copy for copy in kept.values() if copy]
    document = {"restored": backup, "databases": [{"database": path, "kept": copy} for path, copy in kept.items()]}
    emit(target, document, lines)


def _domain_of(backup_file: str) -> str:
    name = os.path.basename(backup_file)
    found = [domain for domain in DOMAINS if name.startswith(domain)]
    if not found:
        raise click.UsageError("cannot tell which database %s holds: give --database %s" % (name, "|".join(DOMAINS)))
    return found[0]


@main.command(
    short_help="Write each database as SQL.",
    epilog=examples("loom-db dump > store.sql", "loom-db dump /srv/dumps", "loom-db --json dump | jq -r .sessions"),
)
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.pass_obj
def dump(target, directory):
    """Write each database as SQL: to DIRECTORY/<name>.sql (mode 0600), or to stdout as it is read.

    The dump reads one snapshot of each database; while it runs, the WAL is not checkpointed past it.
    """
    target.require_data_dir("dump")
    with target.repositories() as storage:
        databases = {domain: getattr(storage, domain).database for domain in DOMAINS}
        if directory is not None:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            with progress("dump", len(databases)) as advance:
                paths = []
                for domain, database in databases.items():
                    paths.append(backups.dump_sql(database, os.path.join(directory, "%s.sql" % domain)))
                    advance(1)
            emit(target, {"written": paths}, ["Wrote %s" % path for path in paths])
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


# -- copies between databases ---------------------------------------------------------


@main.command(
    name="copy",
    short_help="Copy the whole store into another database, or from one.",
    epilog=examples(
        "loom-db copy --to postgresql://loom@db.internal/loom",
        "loom-db --database-url postgresql://db.internal/loom copy --to ./back",
        "loom-db copy --from postgresql://loom@db.internal/loom --append",
    ),
)
@click.option("--to", "into", metavar="URL|DIR", help="Copy this store into that database (or data directory).")
@click.option("--from", "out_of", metavar="URL|DIR", help="Copy that database (or data directory) into this store.")
@click.option("--append", is_flag=True, help="Copy into a store holding rows of its own; by default it is refused.")
@click.pass_obj
def copy_command(target, into, out_of, append):
    """Copy every domain's rows from one store into another, in batches, then read them all back.

    Run it again after an interrupt: it goes on where it stopped, and a finished
    copy run again writes nothing. Stop the store's writers first: rows written
    meanwhile are missed, and reported when they differ. The target is created and
    migrated if need be; one holding rows the source does not have is refused
    unless --append, and a row of the same key that differs is never copied over.
    """
    if (into is None) == (out_of is None):
        raise click.UsageError("give --to or --from (one of them)")
    other = dataclasses.replace(target, **_place(into or out_of))
    source, destination = (target, other) if into else (other, target)
    if source.where() == destination.where():
        raise click.UsageError("the store cannot be copied into itself")
    with (
        source.storage() as reading,
        destination.storage(create=True) as writing,
        progress("copy, verify", None) as advance,
    ):
        copies = transfer.copy_store(reading, writing, append=append, progress=advance)
    rows = [(c.name, c.rows, c.written, c.found, c.checksum[:16]) for c in copies]
    lines = table(rows, ("table", "rows", "written", "read back", "sha-256"))
    lines.append("Copied %s into %s: every row read back the same." % (source.where(), destination.where()))
    tables = [{**dataclasses.asdict(c), "verified": c.verified} for c in copies]
    emit(target, {"from": source.where(), "to": destination.where(), "tables": tables}, lines)


def _place(value: str) -> dict:
    """A Target's fields for a database URL or a data directory."""
    if "://" in value:
        return {"database_url": value}
    return {"data_dir": value, "database_url": None}

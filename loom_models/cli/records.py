"""loom-db gc, expire, prune, export, import and demo: the records of the store."""

from __future__ import annotations

import datetime
import json
import os

import click

from .. import documents
from ..errors import ValidationError
from ..storage import Storage
from . import Duration, main
from .output import counted, emit, progress, table
from .upkeep import stats_lines

# A file read for import, a chunk at a time (for the progress bar).
_READ_CHUNK = 1 << 20


# -- retention -----------------------------------------------------------------------------


@main.command()
@click.pass_obj
def gc(target):
    """Remove expired and unreferenced references."""
    with target.repository("references") as references:
        removed = references.collect_garbage()
    emit(target, {"removed": removed}, ["Removed %s." % counted(removed, "reference")])


@main.command()
@click.pass_obj
def expire(target):
    """Mark pending requests past their deadline expired."""
    with target.repository("hitl") as hitl:
        expired = hitl.expire_overdue()
    emit(target, {"expired": expired}, ["Expired %s." % counted(expired, "request")])


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
        counted(counts[0], "session"),
        cutoff.strftime("%Y-%m-%d %H:%M UTC"),
        counted(counts[1], "request"),
    )
    document = {"dry_run": dry_run, "cutoff": cutoff.isoformat(), "sessions": counts[0], "requests": counts[1]}
    if not dry_run:
        emit(target, document, ["Deleted " + what])
        return
    document.update(session_ids=[s.id for s in sessions], request_ids=[r.id for r in requests])
    rows = [("session", s.id, s.agent_id or "", "updated %s" % _when(s.updated_at)) for s in sessions]
    rows += [
        ("request", r.id, r.agent_id, "%s %s" % (r.status, _when(r.responded_at or r.created_at))) for r in requests
    ]
    lines = ["Would delete " + what, *table(rows[:_LISTED]), *_more(len(rows) - _LISTED)]
    emit(target, document, [*lines, "Nothing was deleted (--dry-run)."])


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
    emit(target, summary, lines)


def _import_session(storage: Storage, document) -> tuple[dict, list[str]]:
    session = storage.sessions.import_session(document)
    counts = {name: len(document.get(name) or []) for name in ("messages", "tool_executions")}
    line = "Imported session %s: %s, %s." % (
        session.id,
        counted(counts["messages"], "message"),
        counted(counts["tool_executions"], "tool execution"),
    )
    return {"session_id": session.id, **counts}, [line]


def _import_document(storage: Storage, document) -> tuple[dict, list[str]]:
    loaded = documents.load_document(storage, document)
    ids = {kind: [item.id for item in getattr(loaded, kind)] for kind in documents.KINDS}
    counts = [counted(len(ids[kind]), kind[:-1]) for kind in documents.KINDS]  # kinds are plurals: sessions
    return ids, ["Imported %s." % ", ".join(counts)]


def _read_json(file: str):
    size = None if file == "-" else os.path.getsize(file)
    chunks = []
    with click.open_file(file, "rb") as handle, progress("reading", size) as advance:
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
        from ..testing import factories
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
        document = storage.stats()
    emit(target, document, ["Added %d sample sessions to %s" % (count, target.where()), *stats_lines(document)])

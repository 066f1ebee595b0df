"""loom-db gc, expire, prune, export, import and demo: the records of the store."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import signal
from collections.abc import Iterator

import click

from .. import documents
from ..errors import ValidationError
from ..storage import Storage
from . import Duration, main
from .ids import full_id
from .output import at, counted, emit, examples, progress, table
from .upkeep import stats_lines

# A file read for import, a chunk at a time (for the progress bar).
_READ_CHUNK = 1 << 20
# Threads pruned in one transaction: each batch holds the write lock only briefly.
_THREADS_PER_BATCH = 500
# Every thread's newest checkpoint was stored before it: `--keep-latest` alone trims them all.
_END_OF_TIME = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)


# -- retention -----------------------------------------------------------------------------


@main.command(epilog=examples("loom-db gc", "loom-db --json gc"))
@click.pass_obj
def gc(target):
    """Remove expired and unreferenced references."""
    with target.repository("references") as references:
        removed = references.collect_garbage()
    emit(target, {"removed": removed}, ["Removed %s." % counted(removed, "reference")])


@main.command(epilog=examples("loom-db expire", "loom-db --json expire"))
@click.pass_obj
def expire(target):
    """Mark pending requests past their deadline expired."""
    with target.repository("hitl") as hitl:
        expired = hitl.expire_overdue()
    emit(target, {"expired": expired}, ["Expired %s." % counted(expired, "request")])


@main.command(
    short_help="Delete old sessions, decided requests and idle threads.",
    epilog=examples(
        "loom-db prune --older-than 30d --dry-run",
        "loom-db prune --older-than 90d",
        "loom-db prune --threads-older-than 30d --keep-latest",
    ),
)
@click.option(
    "--older-than",
    type=Duration(),
    help="Sessions not updated, and requests decided, that long ago: 30d, 12h, 90m, 45s.",
)
@click.option("--threads-older-than", type=Duration(), help="LangGraph threads without a checkpoint for that long.")
@click.option(
    "--keep-latest",
    is_flag=True,
    help="Instead of deleting those threads, delete all their checkpoints but the newest of each namespace;"
    " without --threads-older-than, in every thread.",
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted, and delete nothing.")
@click.pass_obj
def prune(target, older_than, threads_older_than, keep_latest, dry_run):
    """Delete sessions not updated for that long and requests decided that long ago (--older-than),
    and LangGraph threads with no checkpoint for that long (--threads-older-than).

    Threads go in batches, each in a transaction of its own: a large prune
    never holds the store's write lock for long.
    """
    if older_than is None and threads_older_than is None and not keep_latest:
        raise click.UsageError("give --older-than, --threads-older-than or --keep-latest")
    now = datetime.datetime.now(datetime.timezone.utc)  # one moment for every cutoff
    parts = []
    with target.storage() as storage:
        if older_than is not None:
            parts.append(_prune_records(storage, now - older_than, dry_run))
        if threads_older_than is not None or keep_latest:
            cutoff = None if threads_older_than is None else now - threads_older_than
            parts.append(_prune_threads(storage, cutoff, keep_latest, dry_run))
    document = {"dry_run": dry_run}
    for part in parts:
        document.update(part.document)
    lines = [part.line for part in parts]
    if dry_run:
        rows = [row for part in parts for row in part.rows]
        lines += [*table(rows[:_LISTED]), *_more(len(rows) - _LISTED), "Nothing was deleted (--dry-run)."]
    emit(target, document, lines)


@dataclasses.dataclass
class _Pruned:
    """What one kind of record pruning did, or would do: its JSON, its line, and (dry run) its listing."""

    document: dict
    line: str
    rows: list[tuple] = dataclasses.field(default_factory=list)


def _prune_records(storage: Storage, cutoff: datetime.datetime, dry_run: bool) -> _Pruned:
    if dry_run:
        sessions = storage.sessions.list_sessions(updated_before=cutoff, limit=None)
        requests = storage.hitl.list_decided_before(cutoff)
        counts = len(sessions), len(requests)
    else:
        counts = storage.sessions.delete_sessions_older_than(cutoff), storage.hitl.delete_older_than(cutoff)
    what = "%s not updated since %s (with their messages and tool executions) and %s decided before then." % (
        counted(counts[0], "session"),
        at(cutoff),
        counted(counts[1], "request"),
    )
    document = {"cutoff": cutoff.isoformat(), "sessions": counts[0], "requests": counts[1]}
    if not dry_run:
        return _Pruned(document, "Deleted " + what)
    document.update(session_ids=[s.id for s in sessions], request_ids=[r.id for r in requests])
    rows = [("session", s.id, s.agent_id or "", "updated %s" % at(s.updated_at)) for s in sessions]
    rows += [("request", r.id, r.agent_id, "%s %s" % (r.status, at(r.responded_at or r.created_at))) for r in requests]
    return _Pruned(document, "Would delete " + what, rows)


def _prune_threads(storage: Storage, cutoff: datetime.datetime | None, keep_latest: bool, dry_run: bool) -> _Pruned:
    """Delete the threads idle since `cutoff` (None: every thread), or all their checkpoints but the newest."""
    thread_ids = storage.checkpoints.threads_idle_since(_END_OF_TIME if cutoff is None else cutoff)
    threads = counted(len(thread_ids), "thread")
    if cutoff is not None:
        threads += " with no checkpoint since %s" % at(cutoff)
    document: dict = {
        "threads_cutoff": None if cutoff is None else cutoff.isoformat(),
        "keep_latest": keep_latest,
        "threads": len(thread_ids),
    }
    if dry_run:
        document["thread_ids"] = thread_ids
        if keep_latest:
            line = "Would delete all checkpoints but the newest of each namespace of %s." % threads
        else:
            line = "Would delete %s (with their checkpoints, writes and channel values)." % threads
        return _Pruned(document, line, [("thread", thread_id, "", "") for thread_id in thread_ids])
    document["checkpoints"] = deleted = _prune_in_batches(storage, thread_ids, cutoff, keep_latest)
    if keep_latest:
        line = "Deleted %s: all but the newest of each namespace of %s." % (counted(deleted, "checkpoint"), threads)
    else:
        line = "Deleted %s: %s, with their writes and channel values." % (threads, counted(deleted, "checkpoint"))
    return _Pruned(document, line)


def _prune_in_batches(
    storage: Storage, thread_ids: list[str], cutoff: datetime.datetime | None, keep_latest: bool
) -> int:
    deleted = 0
    with progress("prune", len(thread_ids)) as advance:
        for start in range(0, len(thread_ids), _THREADS_PER_BATCH):
            batch = thread_ids[start : start + _THREADS_PER_BATCH]
            deleted += storage.checkpoints.prune(batch, keep_latest=keep_latest, idle_before=cutoff)
            advance(len(batch))
    return deleted


# How many rows a listing shows before it says how many more there are.
_LISTED = 50


def _more(hidden: int) -> list[str]:
    return ["... and %d more (--json lists them all)" % hidden] if hidden > 0 else []


# -- sessions as JSON ----------------------------------------------------------------------


@main.command(
    name="export",
    epilog=examples("loom-db export sess_1 > sess_1.json", "loom-db export sess_1 | jq '.messages | length'"),
)
@click.argument("session_id")
@click.pass_obj
def export_command(target, session_id):
    """Print a session with its messages and tool executions as JSON."""
    with target.storage() as storage:
        document = storage.sessions.export_session(full_id(storage.sessions, session_id, "session"))
    click.echo(json.dumps(document, indent=2))


@main.command(
    name="import",
    short_help="Add an exported session, or a document of records.",
    epilog=examples(
        "loom-db import sess_1.json", "loom-db import sess_1.json --as sess_1_copy", "loom-db import records.json"
    ),
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--replace", is_flag=True, help="A session the store holds already gives way to the imported one.")
@click.option("--as", "new_id", metavar="NEW_ID", help="Import the session under this id instead.")
@click.pass_obj
def import_command(target, file, replace, new_id):
    """Add a session exported by `loom-db export`, or a document of records (FILE, or - for stdin).

    A document holds sessions, requests and references (loom_models/documents.py);
    all of it is checked before anything is written. A session whose id the
    store holds already is refused, unless --replace or --as NEW_ID.
    """
    document = _read_json(file)
    if documents.is_document(document):
        if replace or new_id:
            raise click.UsageError("--replace and --as are for one exported session, not a document of records")
        with target.storage() as storage, progress("import", None) as advance:
            summary, lines = _import_document(storage, document, advance)
    else:
        if replace and new_id:
            raise click.UsageError("give --replace or --as, not both")
        if not isinstance(document, dict) or "id" not in document:  # else it would be a blank new session
            raise ValidationError({file: ["Holds no exported session (`loom-db export ID` writes one)."]})
        with target.storage() as storage:
            summary, lines = _import_session(storage, {**document, "id": new_id or document["id"]}, replace)
    emit(target, summary, lines)


def _import_session(storage: Storage, document, replace: bool) -> tuple[dict, list[str]]:
    # Counted before import_session checks them: a list is what it will accept.
    counts = {name: _length(document.get(name)) for name in ("messages", "tool_executions")}
    with progress("import", 1 + sum(counts.values())) as advance:
        session = storage.sessions.import_session(document, replace=replace, progress=advance)
    line = "Imported session %s: %s, %s." % (
        session.id,
        counted(counts["messages"], "message"),
        counted(counts["tool_executions"], "tool execution"),
    )
    return {"session_id": session.id, **counts}, [line]


def _length(items) -> int:
    return len(items) if isinstance(items, list) else 0


def _import_document(storage: Storage, document, advance) -> tuple[dict, list[str]]:
    loaded = documents.load_document(storage, document, progress=advance)
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


@main.command(
    short_help="Fill the store with sample data.",
    epilog=examples("loom-db demo", "loom-db --data-dir /tmp/try demo --sessions 100"),
)
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
    with target.storage(create=True) as storage, progress("demo", count) as advance:
        for index in range(count):
            with _uninterrupted():  # Ctrl-C: whole sample sessions only, each with its request and reference
                session = factories.SessionFactory.create(storage=storage, messages=4, tool_executions=1)
                state = _DEMO_REQUESTS[index % len(_DEMO_REQUESTS)]
                factories.HumanRequestFactory.create(storage=storage, session=session, **state)
                factories.ReferenceFactory.create(storage=storage, expiring=index % 2 == 1)
            advance(1)
        document = storage.stats()
    emit(target, document, ["Added %d sample sessions to %s" % (count, target.where()), *stats_lines(document)])


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold a Ctrl-C back until the block is done: it interrupts at the block's end, not in its middle.

    A handler of its own, not a blocked signal: any thread (a progress bar's) may receive the signal.
    """
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: held.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt

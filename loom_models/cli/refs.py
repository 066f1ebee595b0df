"""loom-db refs list and refs show: the references' metadata, and one's bytes to a file.

    loom-db refs list --limit 20
    loom-db refs show 3f2a9c1e0b7d                # a unique start of the id will do, as in git
    loom-db refs show 3f2a9c1e0b7d --output report.bin

Only live references show: an expired or released one is gone, as the library says.
"""

from __future__ import annotations

import datetime
import os
import re
import tempfile

import click

from ..columns import utc_now
from ..errors import ConflictError, NotFoundError, NotWritableError, ValidationError
from ..references import Reference
from . import main
from .ids import full_id, short_ids
from .output import MOST_LISTED, at, emit, examples, more, size, span, table

# How much of a SHA-256 a listing shows at least, as git shows its commits'.
_SHORT_HASH = 12
_HEX = re.compile(r"[0-9a-f]{4,64}")


@main.group(
    short_help="List references; show one, or write out its bytes.",
    epilog=examples(
        "loom-db refs list --limit 20",
        "loom-db refs show 3f2a9c1e0b7d",
        "loom-db refs show 3f2a9c1e0b7d --output report.bin",
    ),
)
def refs():
    """Look at the references: large content stored once by its SHA-256."""


@refs.command(
    name="list",
    epilog=examples(
        "loom-db refs list", "loom-db refs list --limit 500", "loom-db --json refs list | jq '.references[].id'"
    ),
)
@click.option(
    "--limit", type=click.IntRange(1, MOST_LISTED), default=50, show_default=True, help="How many to list at most."
)
@click.pass_obj
def list_command(target, limit):
    """Live references, newest first: id, type, size, count of references, expiry."""
    with target.repository("references") as references:
        found = references.list(limit=limit + 1)  # one more: are there more?
    page, hidden = found[:limit], len(found) > limit
    document = {"references": [_metadata(r) for r in page], "more": hidden}
    headers = ("id", "type", "size", "refs", "created (UTC)", "expires")
    now = utc_now()
    ids = short_ids([r.id for r in page], keep=_SHORT_HASH)
    rows = [(i, *_row(r, now)) for i, r in zip(ids, page, strict=True)]
    lines = table(rows, headers) if page else ["No references."]
    lines += more(None, limit) if hidden else []
    emit(target, document, lines)


@refs.command(
    epilog=examples("loom-db refs show 3f2a9c1e0b7d", "loom-db refs show 3f2a9c1e0b7d --output report.bin --force")
)
@click.argument("reference_id", metavar="ID")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the reference's bytes to this file.")
@click.option("--force", is_flag=True, help="With --output, replace a file that exists.")
@click.pass_obj
def show(target, reference_id, output, force):
    """A reference's metadata (ID, or a unique start of it); with --output, its bytes written to FILE."""
    if force and output is None:
        raise click.UsageError("--force goes with --output")
    if output is not None and not force and os.path.lexists(output):
        raise _exists(output)
    with target.repository("references") as references:
        reference = references.get(_full_id(references, reference_id))
        if output is not None:
            _write(output, references.resolve(reference.id), force)
    document = _metadata(reference)
    lines = ["%-8s %s" % (name + ":", value) for name, value in zip(("id", *_HEADINGS), _shown(reference), strict=True)]
    if output is not None:
        document["output"] = output
        lines.append("Wrote %s to %s." % (size(reference.size_bytes), output))
    emit(target, document, lines)


_HEADINGS = ("type", "size", "refs", "created", "expires")


def _full_id(references, given: str) -> str:
    """The id that `given` is, or starts (like git's short ids), or an error."""
    given = given.lower()
    if not _HEX.fullmatch(given):
        raise ValidationError({"id": ["Must be a SHA-256 in hex, or at least its first 4 characters."]})
    return full_id(references, given, "reference")


def _write(path: str, data: bytes, force: bool) -> None:
    """The bytes into `path`, whole or not at all: written beside it, then moved in place."""
    directory = os.path.dirname(os.path.abspath(path))
    partial = None
    try:
        handle, partial = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path), suffix=".part")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        if force:
            os.replace(partial, path)
        else:
            os.link(partial, path)  # fails, rather than replaces, if a file appeared meanwhile
    except FileExistsError:
        raise _exists(path) from None
    except FileNotFoundError:
        raise NotFoundError("no directory %s to write %s in" % (directory, os.path.basename(path))) from None
    except OSError as error:
        raise NotWritableError("cannot write %s: %s" % (path, error.strerror or error)) from None
    finally:
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)


def _exists(path: str) -> ConflictError:
    return ConflictError("file exists: %s" % path).advised("Give --force to replace it, or another --output.")


def _metadata(reference: Reference) -> dict:
    kind = reference.type
    return {
        "id": reference.id,
        "type": kind.name.lower() if hasattr(kind, "name") else kind,
        "size_bytes": reference.size_bytes,
        "ref_count": reference.ref_count,
        "created_at": reference.created_at.isoformat(),
        "expires_at": None if reference.expires_at is None else reference.expires_at.isoformat(),
    }


def _row(reference: Reference, now: datetime.datetime) -> tuple:
    """A listing's row but its id: narrower than _shown, to fit 80 columns (its time left, not its expiry)."""
    kind, shown_size, count = _shown(reference)[1:4]
    left = "never" if reference.expires_at is None else _time_left(reference.expires_at, now)
    return (kind, shown_size, count, at(reference.created_at, zone=False), left)


def _time_left(expires_at: datetime.datetime, now: datetime.datetime) -> str:
    seconds = (expires_at - now).total_seconds()
    return "in " + span(seconds) if seconds > 0 else "expired"  # expired since it was read


def _shown(reference: Reference) -> tuple:
    kind = reference.type
    return (
        reference.id,
        kind.name.lower() if hasattr(kind, "name") else str(kind),
        size(reference.size_bytes),
        reference.ref_count,
        at(reference.created_at),
        "never" if reference.expires_at is None else at(reference.expires_at),
    )

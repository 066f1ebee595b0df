"""loom-db requests: see what waits for a person, and decide it.

    loom-db requests list                         # pending first, the most urgent on top
    loom-db requests show req_1
    loom-db requests approve req_1 --by alice --note "Go ahead"
    loom-db --json requests list --status approved --agent billing

A decision goes through the repository's compare-and-set: of two people deciding
at once exactly one wins, and the other is told the status it found.
"""

from __future__ import annotations

import contextlib
import datetime
import json

import click
from rich.cells import cell_len

from ..columns import utc_now
from ..errors import ConflictError
from ..hitl.models import STATUSES, HumanRequest
from ..hitl.schemas import HumanRequestSchema
from . import main
from .ids import full_id, short_ids
from .output import MOST_LISTED, at, emit, examples, line_width, more, shortened, span, table

_SCHEMA = HumanRequestSchema()
_QUESTION_MIN = 20


@main.group(
    name="requests",
    epilog=examples(
        "loom-db requests list",
        "loom-db requests show req_1",
        'loom-db requests approve req_1 --by alice --note "Go ahead"',
    ),
)
def requests_group():
    """See the requests waiting for a person, and decide them.

    An ID may be given by its start, as `requests list` shows it, when no other request's id starts so.
    """


# -- looking ---------------------------------------------------------------------------------


@requests_group.command(
    name="list",
    epilog=examples(
        "loom-db requests list",
        "loom-db requests list --status pending --agent billing",
        "loom-db --json requests list --status approved --limit 100",
    ),
)
@click.option("--status", type=click.Choice(STATUSES), help="Only the requests of this status.")
@click.option("--agent", metavar="AGENT", help="Only the requests of this agent.")
@click.option("--limit", type=click.IntRange(1, MOST_LISTED), default=20, show_default=True, help="How many to list.")
@click.pass_obj
def list_command(target, status, agent, limit):
    """Pending requests first, the most urgent and then the oldest on top; then the decided ones, latest first.

    The last column is the time a pending request has left, else its status.
    """
    with target.repository("hitl") as hitl:
        page, total = hitl.list_requests(status=status, agent_id=agent, limit=limit)
    now = utc_now()
    ids = short_ids([r.id for r in page])
    rows = [(i, r.agent_id, r.question, r.priority, _left(r, now)) for i, r in zip(ids, page, strict=True)]
    lines = _fitted(rows, ("id", "agent", "question", "priority", "left")) if rows else ["No requests."]
    lines += more(total - len(page), len(page)) if rows else []
    emit(target, {"requests": [_document(r) for r in page], "total": total}, lines)


@requests_group.command(
    name="show", epilog=examples("loom-db requests show req_1", "loom-db --json requests show req_1")
)
@click.argument("request_id", metavar="ID")
@click.pass_obj
def show_command(target, request_id):
    """Everything about one request: the question, its context, its decision and who made it."""
    with target.repository("hitl") as hitl:
        request = hitl.get(full_id(hitl, request_id, "request"))
    emit(target, _document(request), _shown(request))


# -- deciding --------------------------------------------------------------------------------


@requests_group.command(
    name="approve",
    epilog=examples(
        "loom-db requests approve req_1 --by alice",
        'loom-db requests approve req_1 --by alice --note "Go ahead"',
    ),
)
@click.argument("request_id", metavar="ID")
@click.option("--by", required=True, metavar="NAME", help="Who approves it.")
@click.option("--note", default="", help="A word for the agent.")
@click.pass_obj
def approve_command(target, request_id, by, note):
    """Approve a pending approval request."""
    _decide(target, request_id, "approved", note, by)


@requests_group.command(
    name="reject",
    epilog=examples(
        "loom-db requests reject req_1 --by alice",
        'loom-db requests reject req_1 --by alice --note "Not before Monday"',
    ),
)
@click.argument("request_id", metavar="ID")
@click.option("--by", required=True, metavar="NAME", help="Who rejects it.")
@click.option("--note", default="", help="Why, for the agent.")
@click.pass_obj
def reject_command(target, request_id, by, note):
    """Reject a pending approval request."""
    _decide(target, request_id, "rejected", note, by)


@requests_group.command(
    name="respond",
    epilog=examples(
        'loom-db requests respond req_1 "Ship it to the Paris office" --by alice',
        "loom-db --json requests respond req_1 blue --by bob",
    ),
)
@click.argument("request_id", metavar="ID")
@click.argument("text")
@click.option("--by", required=True, metavar="NAME", help="Who answers.")
@click.pass_obj
def respond_command(target, request_id, text, by):
    """Answer a pending input or selection request with TEXT."""
    _decide(target, request_id, "responded", text, by)


@requests_group.command(
    name="cancel", epilog=examples("loom-db requests cancel req_1", "loom-db requests cancel req_1 --by alice")
)
@click.argument("request_id", metavar="ID")
@click.option("--by", default="loom-db", show_default=True, metavar="NAME", help="Who withdraws it.")
@click.pass_obj
def cancel_command(target, request_id, by):
    """Withdraw a pending request: it becomes expired, and its agent stops waiting."""
    with target.repository("hitl") as hitl, _told_how_decided(request_id):
        request = hitl.cancel(full_id(hitl, request_id, "request"), cancelled_by=by)
    emit(target, _document(request), ["Cancelled request %s (now expired, by %s)." % (request.id, by)])


def _decide(target, request_id: str, status: str, response: str, by: str) -> None:
    with target.repository("hitl") as hitl, _told_how_decided(request_id):
        request = hitl.respond_to_request(full_id(hitl, request_id, "request"), status, response, responded_by=by)
    verb = {"approved": "Approved", "rejected": "Rejected", "responded": "Answered"}[status]
    emit(target, _document(request), ["%s request %s (by %s)." % (verb, request.id, by)])


@contextlib.contextmanager
def _told_how_decided(request_id: str):
    """A refusal of a decided request, advised where to see the decision (ConflictError's advice is about ids)."""
    try:
        yield
    except ConflictError as error:
        error.advised("`loom-db requests show %s` shows who decided it." % request_id)
        raise


# -- what is printed -------------------------------------------------------------------------


def _document(request: HumanRequest) -> dict:
    return _SCHEMA.dump(request)


def _shown(request: HumanRequest) -> list[str]:
    now = utc_now()
    status = request.status
    if status == "pending":
        status = (
            "expired (past its deadline)" if request.expires_at <= now else "pending, %s left" % _left(request, now)
        )
    context = request.context
    rows = [
        ("id", request.id),
        ("agent", request.agent_id),
        ("session", request.session_id),
        ("type", request.request_type),
        ("priority", request.priority),
        ("status", status),
        ("question", request.question),
    ]
    if isinstance(context, dict) and context.get("options") is not None:
        rows.append(("options", _json(context["options"])))
    rows += [
        ("context", "-" if context is None else _json(context)),
        ("created", at(request.created_at, seconds=True)),
        ("deadline", at(request.expires_at, seconds=True)),
        ("decided", "-" if request.responded_at is None else at(request.responded_at, seconds=True)),
        ("decided by", request.responded_by or "-"),
        ("response", request.response or "-"),
    ]
    if request.response_data is not None:
        rows.append(("response data", _json(request.response_data)))
    return table(rows)


def _left(request: HumanRequest, now: datetime.datetime) -> str:
    """How long a pending request has left (12m, 3h), else its status; '-' when it has no deadline."""
    if request.status != "pending":
        return request.status
    if request.timeout_ms <= 0:
        return "-"
    seconds = (request.expires_at - now).total_seconds()
    return "expired" if seconds <= 0 else span(seconds)


def _fitted(rows: list[tuple], headers: tuple) -> list[str]:
    """The table, its questions (third column) shortened so that a line fits the terminal."""
    width = line_width()
    others = sum(max(cell_len(str(row[i])) for row in [headers, *rows]) + 2 for i in (0, 1, 3, 4))
    room = max(width - others - 1, _QUESTION_MIN)
    return table([(*row[:2], shortened(row[2], room), *row[3:]) for row in rows], headers)


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)

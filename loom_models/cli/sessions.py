"""loom-db sessions list, show, search and delete: what the agents said, and what it cost.

    loom-db sessions list --agent support --limit 50
    loom-db sessions show sess_1
    loom-db sessions search "refund policy"
    loom-db sessions delete sess_1 --yes
    loom-db --json sessions list                  # one JSON document, costs rounded to the micro-dollar

Times print in UTC, with their zone; costs print as money ($0.2395).
"""

from __future__ import annotations

import contextlib
import json
import sys
import textwrap

import click

from ..errors import NotFoundError
from ..sessions import Message, Session
from . import main
from .ids import full_id, short_ids
from .output import (
    MOST_LISTED,
    at,
    counted,
    dollars,
    emit,
    examples,
    line_width,
    money,
    more,
    on_the_point,
    shortened,
    table,
)

# The fewest columns a message keeps, however narrow the terminal: below it, lines wrap.
_NARROWEST = 20


@main.group(
    short_help="List, show, search and delete sessions.",
    epilog=examples(
        "loom-db sessions list --agent support",
        "loom-db sessions show sess_1",
        'loom-db sessions search "refund policy"',
    ),
)
def sessions():
    """Look at the sessions: list them, show one, search their messages; delete one.

    An ID may be given by its start, as `sessions list` shows it, when no other session's id starts so.
    """


# -- list ----------------------------------------------------------------------------------


@sessions.command(
    name="list",
    epilog=examples(
        "loom-db sessions list",
        "loom-db sessions list --agent support --limit 100",
        "loom-db --json sessions list | jq '.sessions[].id'",
    ),
)
@click.option("--agent", metavar="AGENT", help="Only the sessions of this agent.")
@click.option(
    "--limit",
    type=click.IntRange(1, MOST_LISTED),
    default=20,
    show_default=True,
    help="How many sessions to show, the most recently updated first.",
)
@click.pass_obj
def list_command(target, agent, limit):
    """List the sessions, newest first.

    Each with its id, agent, messages, tokens, cost and last update, most
    recently updated first.
    """
    with target.repository("sessions") as repository:
        page = repository.list_sessions(agent_id=agent, limit=limit + 1)
        hidden = _more_than(repository, agent, limit) if len(page) > limit else 0
        page = page[:limit]
        by_session = repository.message_counts([session.id for session in page])
        counts = [by_session[session.id] for session in page]
    document = {"sessions": [_listed(s, n) for s, n in zip(page, counts, strict=True)], "more": hidden}
    emit(target, document, _list_lines(page, counts, hidden, limit, agent))


def _more_than(repository, agent: str | None, limit: int) -> int:
    """How many sessions there are past the first `limit` (at least one: the page ran over)."""
    if agent is None:
        total = repository.get_stats().session_count
    else:
        total = len(repository.list_sessions(agent_id=agent, limit=None))
    return max(total - limit, 1)


def _listed(session: Session, messages: int) -> dict:
    return {
        "id": session.id,
        "agent_id": session.agent_id,
        "name": session.name,
        "messages": messages,
        "total_tokens": session.total_tokens,
        "total_cost_usd": dollars(session.total_cost_usd),
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
    }


def _list_lines(page: list[Session], counts: list[int], hidden: int, limit: int, agent: str | None) -> list[str]:
    if not page:
        return ["No sessions%s." % ("" if agent is None else " of agent %s" % agent)]
    costs = on_the_point([money(session.total_cost_usd) for session in page])
    ids = short_ids([s.id for s in page])
    rows = [
        (i, s.agent_id or "", n, s.total_tokens, cost, at(s.updated_at))
        for i, s, n, cost in zip(ids, page, counts, costs, strict=True)
    ]
    lines = table(rows, ("id", "agent", "messages", "tokens", "cost".rjust(len(costs[0])), "updated"))
    return lines + more(hidden, limit)


# -- show ----------------------------------------------------------------------------------


@sessions.command(
    epilog=examples(
        "loom-db sessions show sess_1",
        "loom-db sessions show sess_1 | less",
        "loom-db --json sessions show sess_1 > sess_1.json",
    )
)
@click.argument("session_id", metavar="ID")
@click.pass_obj
def show(target, session_id):
    """Show a session's conversation and totals.

    Its messages in order (time, role, content, tool calls shortened) and its
    messages, tokens and cost.
    """
    with target.repository("sessions") as repository:
        session = repository.load_session(full_id(repository, session_id, "session"))
    messages = session.messages or []
    document = {
        **_listed(session, len(messages)),
        "conversation": [_message(message) for message in messages],
    }
    emit(target, document, _show_lines(session, messages))


def _message(message: Message) -> dict:
    return {
        "id": message.id,
        "role": message.role,
        "timestamp": message.timestamp.isoformat(),
        "content": message.content,
        "tool_calls": message.tool_calls,
        "tool_use_id": message.tool_use_id,
        "token_count": message.token_count,
        "cost_usd": dollars(message.cost_usd),
    }


def _show_lines(session: Session, messages: list[Message]) -> list[str]:
    about = ["agent %s" % session.agent_id] if session.agent_id else []
    about += ['"%s"' % session.name] if session.name else []
    lines = [
        " ".join(["Session %s" % session.id, *(["(%s)" % ", ".join(about)] if about else [])]),
        "Created %s, updated %s." % (at(session.created_at), at(session.updated_at)),
    ]
    day = None
    for message in messages:
        if message.timestamp.date() != day:
            day = message.timestamp.date()
            lines += ["", "%s UTC" % day.isoformat()]
        lines += _turn(message)
    totals = (counted(len(messages), "message"), counted(session.total_tokens, "token"), money(session.total_cost_usd))
    return [*lines, "", "Total: %s, %s, %s." % totals]


def _turn(message: Message) -> list[str]:
    """A message's lines: its time and role, then its content and its tool calls, wrapped within the line's width."""
    head = "%s  %-9s  " % (message.timestamp.strftime("%H:%M:%S"), message.role)
    indent = " " * len(head)
    room = max(line_width() - len(head), _NARROWEST)
    body = _wrapped(message.content, room)
    body += [shortened("-> " + _call(call), room) for call in _calls(message.tool_calls)]
    return [(head if i == 0 else indent) + line for i, line in enumerate(body or [""])]


def _wrapped(text: str, width: int) -> list[str]:
    lines = []
    for paragraph in text.splitlines():
        lines += textwrap.wrap(paragraph, width) or [""]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _calls(tool_calls) -> list:
    if tool_calls is None:
        return []
    return list(tool_calls) if isinstance(tool_calls, list) else [tool_calls]


def _call(call) -> str:
    """name(args), whatever the shape: loom's {Name, Input}, OpenAI's {function: {name, arguments}}, {name, args}."""
    if not isinstance(call, dict):
        return _compact(call)
    function = call["function"] if isinstance(call.get("function"), dict) else {}
    given = {**function, **call}
    name = given.get("Name") or given.get("name") or "?"
    arguments = next((given[key] for key in ("Input", "input", "args", "arguments") if key in given), "")
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # OpenAI sends the arguments as a JSON string
            arguments = json.loads(arguments)
    return "%s(%s)" % (name, "" if arguments in ("", None) else _compact(arguments))


def _compact(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


# -- search --------------------------------------------------------------------------------


@sessions.command(
    epilog=examples(
        'loom-db sessions search "refund policy"',
        "loom-db sessions search invoice --limit 5",
        "loom-db --json sessions search timeout | jq '.hits[].session_id'",
    )
)
@click.argument("query")
@click.option(
    "--limit", type=click.IntRange(1, MOST_LISTED), default=20, show_default=True, help="How many messages to show."
)
@click.pass_obj
def search(target, query, limit):
    """Search the messages, best match first.

    Messages matching any word of QUERY, with the session of each.

    Words are stemmed ("running" finds "run"); punctuation and quotes are not syntax.
    """
    with target.repository("sessions") as repository:
        hits = repository.search_messages(query, limit=limit)
    document = {"query": query, "hits": [{"session_id": _session_of(hit), **_message(hit)} for hit in hits]}
    emit(target, document, _search_lines(query, hits))


def _search_lines(query: str, hits: list[Message]) -> list[str]:
    if not hits:
        return ["No message matches %s." % json.dumps(query, ensure_ascii=False)]
    ids = short_ids([_session_of(hit) for hit in hits])
    rows = [(i, hit.role, at(hit.timestamp)) for i, hit in zip(ids, hits, strict=True)]
    heads = table(rows, ("session", "role", "time"))
    width = max(len(head) for head in heads)
    lines = [heads[0].ljust(width) + "  message"]
    for head, hit in zip(heads[1:], hits, strict=True):
        lines.append(head.ljust(width) + "  " + shortened(hit.content, max(line_width() - width - 2, _NARROWEST)))
    return lines


# -- delete --------------------------------------------------------------------------------


@sessions.command(epilog=examples("loom-db sessions delete sess_1", "loom-db sessions delete sess_1 --yes"))
@click.argument("session_id", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking first.")
@click.pass_obj
def delete(target, session_id, yes):
    """Delete a session, after asking.

    The session goes with its messages and tool executions; --yes skips the question.

    Without a terminal to ask on (a script, a pipe), give --yes.
    """
    with target.repository("sessions") as repository:
        session = repository.load_session(full_id(repository, session_id, "session"))
        messages = len(session.messages or [])
        if not yes:
            _confirm(session, messages)
        if not repository.delete_session(session.id):  # deleted by another since it was read
            raise NotFoundError("session not found: %s" % session.id)
    what = "session %s with %s" % (session.id, counted(messages, "message"))
    emit(target, {"deleted": session.id, "messages": messages}, ["Deleted %s." % what])


def _confirm(session: Session, messages: int) -> None:
    """Ask on the terminal; no answer, or no terminal to ask on, deletes nothing."""
    if not sys.stdin.isatty():
        raise click.UsageError("not deleting session %s without --yes: there is no terminal to ask on" % session.id)
    question = "Delete session %s (%s, %s, %s)?" % (
        session.id,
        session.agent_id or "no agent",
        counted(messages, "message"),
        money(session.total_cost_usd),
    )
    if not click.confirm(question, default=False, err=True):
        click.echo("Nothing deleted.", err=True)
        click.get_current_context().exit(1)


# -- text ----------------------------------------------------------------------------------


def _session_of(message: Message) -> str:
    return message.__data__["session"]  # the id: `message.session` would read the session

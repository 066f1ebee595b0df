"""loom-db usage: what the agents' messages cost, per UTC day, agent or session, with a bar a row.

    loom-db usage                     # per day over the last 30 days
    loom-db usage --by agent --since 7d
    loom-db --json usage --by session

The sums are the store's (SessionRepository.usage), of the messages' own token
counts and costs; a message's agent is its session's.
"""

from __future__ import annotations

import datetime
import math

import click

from ..sessions.repository import USAGE_GROUPS, Usage
from . import Duration, main
from .output import at, dollars, emit, examples, line_width, money, on_the_point

# The bar's eighths of a character, and the width the whole row keeps within (less on a narrower terminal).
_BLOCKS = " ▏▎▍▌▋▊▉█"
_WIDTH = 80
_NARROWEST_BAR = 10
_NO_AGENT = "(no agent)"


@main.command(
    short_help="Tokens and cost per day, agent or session, as bars.",
    epilog=examples(
        "loom-db usage                           # per day, the last 30 days",
        "loom-db usage --by agent --since 7d",
        "loom-db --json usage --by session       # the numbers, to a script",
    ),
)
@click.option("--by", type=click.Choice(USAGE_GROUPS), default="day", show_default=True, help="How to group.")
@click.option(
    "--since",
    type=Duration(),
    default="30d",
    show_default=True,
    help="The messages of that long ago and since: 30d, 12h, 90m.",
)
@click.pass_obj
def usage(target, by, since):
    """Tokens and cost of the messages since then, per day (UTC), agent or session."""
    cutoff = datetime.datetime.now(datetime.timezone.utc) - since
    with target.repository("sessions") as sessions:
        rows = sessions.usage(by=by, since=cutoff)
    if by == "day":
        rows = _every_day(rows)
    keys = [_key(row.key) for row in rows]
    costs = math.fsum(r.cost_usd for r in rows)
    total = Usage("total", sum(r.tokens for r in rows), costs, sum(r.messages for r in rows))
    document = {
        "by": by,
        "since": cutoff.isoformat(),
        "timezone": "UTC",
        "rows": [{by: _json_key(row.key), **_numbers(row)} for row in rows],
        "total": _numbers(total),
    }
    per = "day (UTC)" if by == "day" else by
    header = "Usage per %s since %s" % (per, at(cutoff))
    if not rows:
        emit(target, document, [header, "No messages."])
        return
    emit(target, document, [header, *_lines(by, keys, rows, total)])


def _numbers(row: Usage) -> dict:
    return {"messages": row.messages, "tokens": row.tokens, "cost_usd": dollars(row.cost_usd)}


def _every_day(rows: list[Usage]) -> list[Usage]:
    """The days from the first to the last, those without messages at 0: a gap shows as a gap."""
    if not rows:
        return rows
    found = {row.key: row for row in rows}
    first, last = rows[0].key, rows[-1].key
    assert isinstance(first, datetime.date) and isinstance(last, datetime.date)
    days = (first + datetime.timedelta(days=n) for n in range((last - first).days + 1))
    return [found.get(day) or Usage(day, 0, 0.0, 0) for day in days]


def _json_key(key: datetime.date | str | None) -> str | None:
    return key.isoformat() if isinstance(key, datetime.date) else key


def _key(key: datetime.date | str | None) -> str:
    return _json_key(key) or _NO_AGENT


def _lines(by: str, keys: list[str], rows: list[Usage], total: Usage) -> list[str]:
    costs = on_the_point([money(r.cost_usd) for r in [*rows, total]])
    cells = [(key, f"{r.messages:,}", f"{r.tokens:,}", cost) for key, r, cost in zip(keys, rows, costs, strict=False)]
    total_cells = ("total", f"{total.messages:,}", f"{total.tokens:,}", costs[-1])
    headers = (by, "messages", "tokens", "cost")
    widths = [max(len(cell[i]) for cell in [headers, *cells, total_cells]) for i in range(4)]
    bar_width = max(min(line_width(), _WIDTH) - 1 - sum(widths) - 2 * len(widths), _NARROWEST_BAR)
    largest = max(r.cost_usd for r in rows)

    def line(cell: tuple, bar: str = "") -> str:
        texts = [cell[0].ljust(widths[0])] + [
            text.rjust(width) for text, width in zip(cell[1:], widths[1:], strict=True)
        ]
        return "  ".join([*texts, bar]).rstrip()

    return [
        line(headers),
        *(line(cell, bar(r.cost_usd, largest, bar_width)) for cell, r in zip(cells, rows, strict=True)),
        line(total_cells),
    ]


def bar(value: float, largest: float, width: int) -> str:
    """`value` as a bar of up to `width` characters, full at `largest`, in eighths of a character."""
    eighths = round(8 * width * value / largest) if largest > 0 else 0
    if value > 0:
        eighths = max(eighths, 1)  # an empty bar would read as nothing spent
    return _BLOCKS[-1] * (eighths // 8) + (_BLOCKS[eighths % 8] if eighths % 8 else "")

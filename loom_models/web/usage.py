"""What the agents cost: tokens and dollars per day over the last 30 days, as a chart, and per agent.

The chart is SVG drawn here, on the server: a bar a day, no chart library and
no JavaScript.
"""

from __future__ import annotations

import dataclasses
import datetime

from starlette.requests import Request
from starlette.responses import Response

from ..sessions.repository import Usage
from .site import site_of

DAYS = 30
# The chart's drawing area, in SVG units.
WIDTH, HEIGHT = 720, 180


@dataclasses.dataclass(frozen=True)
class Bar:
    day: datetime.date
    tokens: int
    cost_usd: float
    x: float
    width: float
    height: float


async def usage(request: Request) -> Response:
    site = site_of(request)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    first = today - datetime.timedelta(days=DAYS - 1)
    since = datetime.datetime.combine(first, datetime.time(), datetime.timezone.utc)
    per_day = await site.storage.sessions.usage(by="day", since=since)
    per_agent = await site.storage.sessions.usage(by="agent", since=since)
    bars = chart(per_day, first, DAYS)
    return site.page(
        request,
        "usage.html",
        bars=bars,
        highest=max(bar.cost_usd for bar in bars),
        per_agent=per_agent,
        width=WIDTH,
        height=HEIGHT,
        first=first,
        today=today,
        tokens=sum(u.tokens for u in per_day),
        cost_usd=sum(u.cost_usd for u in per_day),
        messages=sum(u.messages for u in per_day),
    )


def chart(per_day: list[Usage], first: datetime.date, days: int) -> list[Bar]:
    """A bar for each of `days` days from `first`, as tall as its cost beside the costliest (0 for none)."""
    by_day = {u.key: u for u in per_day}
    highest = max((u.cost_usd for u in per_day), default=0.0) or 1.0
    step = WIDTH / days
    bars = []
    for n in range(days):
        day = first + datetime.timedelta(days=n)
        found = by_day.get(day)
        tokens, cost = (found.tokens, found.cost_usd) if found else (0, 0.0)
        bars.append(Bar(day, tokens, cost, n * step + 1, step - 2, HEIGHT * cost / highest))
    return bars

"""What the agents cost: tokens and dollars per day over the last 30 days, as a chart, and per agent.

The chart is SVG drawn here, on the server: a bar a day, no chart library and
no JavaScript.
"""

from __future__ import annotations

import dataclasses
import datetime

from starlette.requests import Request
from starlette.responses import Response

from .site import site_of

DAYS = 30
# The chart's drawing area, in SVG units.
WIDTH, HEIGHT = 720, 180


@dataclasses.dataclass(frozen=True)
class Bar:
    day: datetime.date
    value: float
    x: float
    width: float
    height: float


@dataclasses.dataclass(frozen=True)
class Chart:
    """One measure (cost or tokens) a day, as bars as tall as their value beside the highest."""

    name: str
    bars: list[Bar]
    highest: float


async def usage(request: Request) -> Response:
    site = site_of(request)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    first = today - datetime.timedelta(days=DAYS - 1)
    since = datetime.datetime.combine(first, datetime.time(), datetime.timezone.utc)
    # Not a message dated after today (a time given to save_message can be): the chart ends today.
    per_day = [u for u in await site.storage.sessions.usage(by="day", since=since) if u.key <= today]
    per_agent = await site.storage.sessions.usage(by="agent", since=since)
    values = {"cost": [0.0] * DAYS, "tokens": [0.0] * DAYS}
    for day in per_day:
        values["cost"][(day.key - first).days] = day.cost_usd
        values["tokens"][(day.key - first).days] = day.tokens
    return site.page(
        request,
        "usage.html",
        charts=[chart(name, first, daily) for name, daily in values.items()],
        per_agent=per_agent,
        width=WIDTH,
        height=HEIGHT,
        first=first,
        today=today,
        tokens=sum(u.tokens for u in per_day),
        cost_usd=sum(u.cost_usd for u in per_day),
        messages=sum(u.messages for u in per_day),
    )


def chart(name: str, first: datetime.date, daily: list[float]) -> Chart:
    """A bar for each day from `first`, one a value of `daily` (0 for none)."""
    highest = max(daily)
    step = WIDTH / len(daily)
    bars = [
        Bar(first + datetime.timedelta(days=n), value, n * step + 1, step - 2, HEIGHT * value / (highest or 1.0))
        for n, value in enumerate(daily)
    ]
    return Chart(name, bars, highest)

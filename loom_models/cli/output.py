"""What loom-db prints: one JSON document, or lines for people; progress bars on a terminal."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import shutil
import sys
from typing import TYPE_CHECKING

import click
from rich import filesize
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..backends import backend_of

if TYPE_CHECKING:
    from . import Target

# The most rows one listing shows (--limit): rich draws some 1,300 rows a second,
# and a longer listing is for a script, which pages through the Python API.
MOST_LISTED = 1000
# The width of text wrapped for people (a conversation, a question) in a pipe.
_PIPE_WIDTH = 100
# The width of a table in a pipe: wide enough that no row is ever wrapped.
_UNBOUNDED = 1 << 20


def line_width() -> int:
    """The width a line keeps within: the terminal's, else _PIPE_WIDTH (a pipe, a file)."""
    return shutil.get_terminal_size((_PIPE_WIDTH, 24)).columns


def emit(target: Target, document, lines: list[str]) -> None:
    """One JSON document with --json, else the lines for people."""
    if target.json:
        click.echo(json.dumps(document, indent=2))
    else:
        for line in lines:
            click.echo(line)


def table(rows: list[tuple], headers: tuple = ()) -> list[str]:
    """Rows as aligned columns, numbers to the right, drawn by rich.

    table([("sessions", 3)], ("what", "count"))   # ['what      count', 'sessions      3']
    table([("tokens", 18620)])                     # ['tokens  18,620']

    On a terminal the table keeps within its width (rich wraps the widest cells
    at their words); in a pipe a row is always one line, however long.
    """
    if not rows and not headers:
        return []
    drawn = Table(box=None, show_header=bool(headers), pad_edge=False, header_style="bold")
    for index, header in enumerate(headers or rows[0]):
        numbers = any(_number(row[index]) for row in rows)
        # fold: a cell too wide wraps within its column, at its words, rather than lose its end to an ellipsis.
        drawn.add_column(str(header) if headers else "", justify="right" if numbers else "left", overflow="fold")
    for row in rows:
        drawn.add_row(*(Text(_text(value)) for value in row))  # Text: a "[" in a value is not markup
    terminal = sys.stdout.isatty()
    drawing = io.StringIO()
    console = Console(
        file=drawing,
        width=shutil.get_terminal_size().columns if terminal else _UNBOUNDED,
        force_terminal=terminal,
        highlight=False,
    )
    console.print(drawn)
    return [line.rstrip() for line in drawing.getvalue().splitlines()]


def examples(*commands: str) -> str:
    """A command's epilog: its examples, the last thing its --help prints (\b: click keeps them as written)."""
    return "\b\nExamples:\n" + "\n".join("  " + command for command in commands)


def money(dollars: float) -> str:
    """Dollars to the micro-dollar, without trailing zeros past the cents.

    money(0.23950000000000002)   # '$0.2395'
    money(1234.5)                # '$1,234.50'
    """
    text = f"{round(dollars, 6):,.6f}".rstrip("0")
    return "$" + text + "0" * (2 - len(text.split(".")[1]))


def dollars(cost_usd: float) -> float:
    """A cost for a JSON document: rounded to the micro-dollar, never 0.23947499999999974."""
    return round(cost_usd, 6)


def on_the_point(amounts: list[str]) -> list[str]:
    """Amounts padded so that their decimal points line up: $0.00045 under $0.000525 reads as the smaller."""
    split = [amount.split(".") for amount in amounts]
    whole, fraction = (max(len(part[i]) for part in split) for i in (0, 1))
    return [w.rjust(whole) + "." + f.ljust(fraction) for w, f in split]


def at(moment: datetime.datetime, *, seconds: bool = False, zone: bool = True) -> str:
    """A time in UTC, saying so: at(moment) is '2026-12-07 09:30 UTC' (a naive time is taken as UTC).

    zone=False leaves " UTC" off, for a column whose heading says it.
    """
    utc = datetime.timezone.utc
    moment = moment.replace(tzinfo=utc) if moment.tzinfo is None else moment.astimezone(utc)
    return moment.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "") + (" UTC" if zone else ""))


def span(seconds: float) -> str:
    """A span of time at a glance, as kubectl prints ages: 45s, 3m20s, 59m, 3h59m, 23h, 2d4h, 30d (rounded down)."""
    s = int(seconds)
    m, h, d = s // 60, s // 3600, s // 86400
    if s < 120:
        return "%ds" % s
    if s < 600:
        return _units(m, "m", s % 60, "s")
    if s < 3 * 3600:
        return "%dm" % m
    if s < 8 * 3600:
        return _units(h, "h", m % 60, "m")
    if s < 48 * 3600:
        return "%dh" % h
    if s < 8 * 86400:
        return _units(d, "d", h % 24, "h")
    return "%dd" % d


def _units(whole: int, unit: str, part: int, part_unit: str) -> str:
    return "%d%s" % (whole, unit) + ("%d%s" % (part, part_unit) if part else "")


def counted(count: int, noun: str) -> str:
    """counted(1, "session") is '1 session', counted(2, "session") '2 sessions'."""
    return "%d %s%s" % (count, noun, "" if count == 1 else "s")


def _text(value) -> str:
    return f"{value:,}" if _number(value) else str(value)  # 18,620 tokens, as usage prints them


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@contextlib.contextmanager
def progress(label: str, total: int | None, *, in_bytes: bool = False):
    """A function advance(n, total=None) moving a progress bar on stderr, drawn only when stderr is a terminal.

        with progress("vacuum", 3) as advance: ... advance(1)
        with progress("backup", 252862464, in_bytes=True) as advance: ... advance(4096)
        with progress("import", None) as advance: ... advance(500, total=12000)   # the total once known

    On stderr, stdout stays one document; in a pipe or a log, nothing is drawn.
    While the total is None, the bar only says that it is moving.
    """
    if not sys.stderr.isatty():
        yield lambda n, total=None: None
        return
    counts = (DownloadColumn(binary_units=False),) if in_bytes else (MofNCompleteColumn(),)
    columns = (TextColumn("{task.description}"), BarColumn(), *counts, TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n, total=None: bar.update(task, advance=n, total=total)


def copy_progress(advance, sizes: list[int]):
    """A copy's progress callback (remaining, total pages) moving a bar in bytes.

    The databases are copied in turn, of these sizes: each copy that ends
    (no page remaining) moves the bar on to the next.
    """
    done = shown = 0

    def report(remaining: int, total: int) -> None:
        nonlocal done, shown
        size = sizes[done] if done < len(sizes) else 0
        now = sum(sizes[:done]) + (size * (total - remaining) // total if total else size)
        advance(now - shown)
        shown = now
        if remaining == 0:
            done += 1

    return report


def file_sizes(*paths: str) -> list[int]:
    """The bytes of each SQLite database, its write-ahead log included (a copy reads both); 0 if missing."""
    return [sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)) for path in paths]


def size(count: int) -> str:
    """A number of bytes as a person reads it: size(252862464) is '252.9 MB'."""
    return filesize.decimal(count)


def label(database) -> str:
    return backend_of(database).label()

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
from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..backends import backend_of
from ..columns import to_utc

if TYPE_CHECKING:
    from . import Target

# The most rows one listing shows (--limit): rich draws some 1,300 rows a second,
# and a longer listing is for a script, which pages through the Python API.
MOST_LISTED = 1000
# The bytes of a SQLite page: loom's databases keep SQLite's default.
_PAGE_SIZE = 4096
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
    """Rows as aligned columns, numbers to the right, drawn by rich as plain text.

    table([("sessions", 3)], ("what", "count"))   # ['what      count', 'sessions      3']
    table([("tokens", 18620)])                     # ['tokens  18,620']

    On a terminal the table keeps within its width: a text cell too wide wraps
    within its column, at its words; the first column (an id, a name), the
    numbers and amounts of money never break, and when even so the table cannot
    fit, the rows are left whole for the terminal to wrap. In a pipe a row is
    always one line, however long.
    """
    if not rows and not headers:
        return []
    drawn = Table(box=None, show_header=bool(headers), pad_edge=False, header_style="")
    for index, header in enumerate(headers or rows[0]):
        numbers = any(_number(row[index]) for row in rows)
        amounts = numbers or all(str(row[index]).startswith("$") for row in rows)
        heading = str(header) if headers else ""
        drawn.add_column(
            heading,
            justify="right" if numbers else "left",
            min_width=cell_len(heading),  # a heading never breaks
            no_wrap=amounts or index == 0,
            overflow="fold",  # never an ellipsis: a value cut short reads as another value
        )
    for row in rows:
        drawn.add_row(*(Text(_text(value)) for value in row))  # Text: a "[" in a value is not markup
    drawing = io.StringIO()
    console = Console(file=drawing, width=_UNBOUNDED, color_system=None, highlight=False)
    if sys.stdout.isatty():
        columns = shutil.get_terminal_size().columns
        if Measurement.get(console, console.options, drawn).minimum <= columns:
            console.width = columns  # else rich would crop what cannot break: let the terminal wrap the rows
    console.print(drawn)
    return [line.rstrip() for line in drawing.getvalue().splitlines()]


def shortened(text: str, room: int) -> str:
    """The text on one line of at most `room` terminal cells, cut at a word's end and marked with '…'.

    shortened("Refund the order of 249.99 EUR?", 20)   # 'Refund the order of…'
    A wide character (CJK, most emoji) takes two cells, as the terminal draws it.
    """
    line = " ".join(text.split())
    if cell_len(line) <= room:
        return line
    kept = ""
    for word in line.split(" "):
        longer = (kept + " " + word) if kept else word
        if cell_len(longer) > room - 1:
            break
        kept = longer
    if not kept:  # a first word longer than the room: cut it, as nothing else would fit
        kept = set_cell_size(line, max(room - 1, 0)).rstrip()  # rstrip: the half of a wide character
    return kept + "…"


def more(hidden: int | None, shown: int) -> list[str]:
    """The line under a listing cut at its --limit: how many more, and the --limit that shows them.

    more(35, 4)      # ['... and 35 more (--limit 39 lists them all)']
    more(None, 50)   # ['... and more (--limit 500 lists more)']: a count not known
    """
    if hidden == 0:
        return []
    count = "%s more" % f"{hidden:,}" if hidden is not None else "more"
    wider = min(shown * 10 if hidden is None else shown + hidden, MOST_LISTED)
    if wider <= shown:
        return ["... and %s (%d is the most one listing shows)" % (count, shown)]
    how = "lists them all" if hidden is not None and wider == shown + hidden else "lists more"
    return ["... and %s (--limit %d %s)" % (count, wider, how)]


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
    """A time in UTC, saying so: at(moment) is '2026-12-07 09:30 UTC' (a naive time is local, as to_utc reads it).

    zone=False leaves " UTC" off, for a column whose heading says it.
    """
    return to_utc(moment).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "") + (" UTC" if zone else ""))


def span(seconds: float) -> str:
    """A span of time at a glance, as kubectl prints ages: 45s, 3m20s, 59m, 3h59m, 23h, 2d4h, 30d (rounded down)."""
    s = max(int(seconds), 0)
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


def copy_progress(advance):
    """A copy's progress callback (remaining, total pages) moving a bar in bytes.

    The databases are copied in turn: each copy that ends (no page remaining)
    adds its pages to those done. A database left out (damaged) adds none, and
    the bar then ends short of its total, as the copy did.
    """
    done = shown = 0

    def report(remaining: int, total: int) -> None:
        nonlocal done, shown
        copied = done + (total - remaining) * _PAGE_SIZE
        advance(copied - shown)
        shown = copied
        if remaining == 0:
            done = copied

    return report


def database_bytes(*paths: str) -> int:
    """The bytes of SQLite databases, their write-ahead logs included (a copy reads both); 0 for one missing."""
    return sum(os.path.getsize(p) for path in paths for p in (path, path + "-wal") if os.path.exists(p))


def size(count: int) -> str:
    """A number of bytes as a person reads it: size(252862464) is '252.9 MB'."""
    return filesize.decimal(count)


def label(database) -> str:
    return backend_of(database).label()

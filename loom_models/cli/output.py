"""What loom-db prints: one JSON document, or lines for people; progress bars on a terminal."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import TYPE_CHECKING

import click

from ..backends import backend_of

if TYPE_CHECKING:
    from . import Target


def emit(target: Target, document, lines: list[str]) -> None:
    """One JSON document with --json, else the lines for people."""
    if target.json:
        click.echo(json.dumps(document, indent=2))
    else:
        for line in lines:
            click.echo(line)


def table(rows: list[tuple], headers: tuple = ()) -> list[str]:
    """Rows as aligned columns, numbers to the right.

    table([("sessions", 3)], ("what", "count"))   # ['what      count', 'sessions      3']
    """
    rows = ([headers] if headers else []) + [tuple(row) for row in rows]
    if not rows:
        return []
    texts = [[_text(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in texts) for i in range(len(texts[0]))]
    return [
        "  ".join(
            text.rjust(width) if _number(value) else text.ljust(width)
            for value, text, width in zip(row, row_texts, widths, strict=True)
        ).rstrip()
        for row, row_texts in zip(rows, texts, strict=True)
    ]


def _text(value) -> str:
    return "%.6f" % value if isinstance(value, float) else str(value)


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


def counted(count: int, noun: str) -> str:
    """counted(1, "session") is '1 session', counted(2, "session") '2 sessions'."""
    return "%d %s%s" % (count, noun, "" if count == 1 else "s")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@contextlib.contextmanager
def progress(label: str, length: int | None):
    """A function advance(n) moving a progress bar on stderr, shown only when stdout is a terminal.

        with progress("vacuum", 3) as advance: ... advance(1)

    The bar goes to stderr so that stdout stays one document even on a terminal.
    """
    if length is None or not sys.stdout.isatty():
        yield lambda n: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def copy_progress(advance):
    """A backup progress callback (remaining, total pages) moving a bar 100 steps a database."""
    done = [0]

    def report(remaining: int, total: int) -> None:
        percent = 100 - 100 * remaining // total if total else 100
        advance(max(percent - done[0], 0))
        done[0] = 0 if percent == 100 else percent  # the next database starts from 0

    return report


def label(database) -> str:
    return backend_of(database).label()

"""loom-db: look after a Loom store from the shell.

    loom-db init                                  # ./loom-data, or $LOOM_DATA_DIR
    loom-db demo --sessions 10                    # sample data, then the stats
    loom-db --data-dir /srv/loom stats
    loom-db migrate --dry-run; loom-db migrate; loom-db migrate status
    loom-db migrate --to 0003_search --database sessions
    loom-db check && loom-db backup /srv/backups --keep-days 14
    loom-db restore /srv/backups/loom-20261126T120000Z    # a whole set, or one of its files
    loom-db prune --older-than 30d --dry-run
    loom-db prune --threads-older-than 90d        # LangGraph threads; --keep-latest trims them instead
    loom-db export sess_1 > sess_1.json; loom-db import sess_1.json
    loom-db import records.json                   # sessions, requests, references (documents.py)
    loom-db --database-url postgresql://loom@127.0.0.1/loom --json stats

Global options go before the command or anywhere after it. Each command prints a table, or with
--json exactly one JSON document on stdout. An expected error prints one line on
stderr and exits with the code of its class (EXIT_CODES); a usage error, one
line and exit code 2; Ctrl-C exits 130, and a reader that stops early (`| head`)
ends it quietly with 141.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import re
import signal
import sys
import warnings

import click

from ..calls import storage_call
from ..db import redact
from ..errors import (
    ConflictError,
    DatabaseCorruptError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    DiskFullError,
    ExpiredError,
    ForeignKeyConstraintError,
    LoomStorageError,
    NotFoundError,
    NotWritableError,
    SchemaMismatchError,
    ValidationError,
)
from ..storage import DOMAINS, Storage, open_storage

# One row per error class, the most specific first: its exit code and what to do.
# click's own usage errors exit with 2.
EXIT_CODES = (
    (NotFoundError, 3, "Check the id or the path."),
    (ValidationError, 4, "Correct the input and try again."),
    (ConflictError, 5, "It exists already or is in use: choose another id, or stop what uses it."),
    (ExpiredError, 6, "It is past its deadline."),
    (DatabaseLockedError, 7, "Another process holds the database: try again in a moment."),
    (ForeignKeyConstraintError, 8, "It refers to a row that does not exist."),
    (DatabaseCorruptError, 9, "Restore the database from a backup with `loom-db restore`."),
    (DiskFullError, 10, "Free some disk space and try again."),
    (SchemaMismatchError, 11, "Run `loom-db migrate` (or upgrade loom-models if the database is newer)."),
    (NotImplementedError, 12, "This command needs a SQLite data directory (--data-dir)."),
    (DatabaseUnavailableError, 13, "Check that the server is running and the URL's host and port, then try again."),
    (NotWritableError, 14, "Let the user running this write those files and their directory (see `ls -l`)."),
    (LoomStorageError, 1, "`loom-db check` looks for problems."),
)

_DURATION = re.compile(r"(\d+)([dhms])")
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_YEAR_ONE = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


def exit_code(error: BaseException) -> tuple[int, str]:
    """The exit code and the advice for an error: its own advice, else its class's in EXIT_CODES.

    exit_code(NotFoundError("session not found: s"))   # (3, 'Check the id or the path.')
    """
    code, advice = next((code, advice) for cls, code, advice in EXIT_CODES if isinstance(error, cls))
    return code, getattr(error, "advice", None) or advice


@dataclasses.dataclass
class Target:
    """What the command works on: a data directory of SQLite files, or one database URL."""

    data_dir: str
    database_url: str | None
    json: bool

    def storage(self, *, create: bool = False) -> Storage:
        """The store, whose schemas must be current unless `create` may make and migrate it.

            with target.storage() as storage: storage.sessions.get_stats()

        No garbage collector runs: a command is over before one would be due.
        """
        if not create:
            self.require_databases()
        data_dir = None if self.database_url is not None else self.data_dir
        return open_storage(data_dir, database_url=self.database_url, gc_interval=0, migrate=create)

    def repositories(self, *, create: bool = False) -> Storage:
        """The repositories over the databases as they are, to migrate or inspect them.

        with target.repositories(create=True) as storage: storage.sessions.migrate()
        """
        if not create:
            self.require_databases()
        return Storage.wire(None if self.database_url else self.data_dir, database_url=self.database_url)

    @contextlib.contextmanager
    def repository(self, domain: str):
        """One domain's repository alone, its schema current: another domain's damaged database is no matter.

        with target.repository("references") as references: references.collect_garbage()
        """
        self.require_databases(domain)
        with DOMAINS[domain].open(self.database_url or self.path(domain), migrate=False) as repository:
            yield repository

    def path(self, domain: str) -> str:
        return os.path.join(self.data_dir, DOMAINS[domain].file)

    def require_data_dir(self, command: str) -> str:
        if self.database_url is not None:
            raise NotImplementedError("%s is not available for a database URL (PostgreSQL has pg_dump)" % command)
        return self.data_dir

    def where(self) -> str:
        """The store's place, without the password a URL may hold."""
        return self.data_dir if self.database_url is None else redact(self.database_url)

    def require_databases(self, *domains: str) -> None:
        """NotFoundError unless the databases of `domains` (default: all) exist."""
        # Only init and demo create a store: a mistyped --data-dir must not become an empty one.
        if self.database_url is None:
            for domain in domains or DOMAINS:
                if not os.path.exists(self.path(domain)):
                    raise NotFoundError("no database at %s (`loom-db init` creates one)" % self.path(domain))


# The options of `main`, which any command takes too (`loom-db stats --json`); True: it takes a value.
_GLOBAL_OPTIONS = {"--json": False, "--data-dir": True, "--database-url": True}


# The top-level help lists the commands in these groups, in this order.
_SECTIONS = {
    "Look at the store": ("stats", "usage", "sessions", "refs", "export"),
    "Act on it": ("requests", "serve", "import", "demo", "prune", "expire", "gc"),
    "Look after the files": (
        "init",
        "migrate",
        "check",
        "backup",
        "restore",
        "copy",
        "dump",
        "vacuum",
        "analyze",
        "checkpoint",
    ),
}


class _Group(click.Group):
    """A click group that reports an expected error, or a usage error, in one line, with its exit code.

    Its help lists the commands by _SECTIONS; one left out of them is listed last, never hidden.
    """

    def format_commands(self, ctx, formatter):
        names = self.list_commands(ctx)
        width = max(map(len, names))
        listed = [name for section in _SECTIONS.values() for name in section]
        sections = [*_SECTIONS.items(), ("Other commands", [name for name in names if name not in listed])]
        for title, section in sections:
            rows = []
            for name in section:
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name.ljust(width), command.get_short_help_str(formatter.width - 6 - width)))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def make_context(self, info_name, args, *more, **kwargs):
        with _usage_in_one_line():
            return super().make_context(info_name, _global_options_first(args), *more, **kwargs)

    def invoke(self, ctx):
        try:
            with _usage_in_one_line():
                return storage_call(self._invoke_reading_on)(ctx)
        except (LoomStorageError, NotImplementedError) as error:
            code, advice = exit_code(error)
            click.echo("Error: %s. %s" % (" ".join(str(error).split()).rstrip("."), advice), err=True)
            ctx.exit(code)
        except _ReaderGone:
            # `loom-db ... | head`: the reader has what it wanted. Quiet, and the
            # status of a process that SIGPIPE ended, as git's.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
            ctx.exit(128 + signal.SIGPIPE)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(128 + signal.SIGINT)

    def _invoke_reading_on(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _ReaderGone() from None  # not an OSError: no storage error of it


class _ReaderGone(Exception):
    """The reader of stdout closed it."""


def _global_options_first(args: list[str]) -> list[str]:
    """`args` with the global options given after the command moved before it, as click wants them.

    ["stats", "--json"] -> ["--json", "stats"]; whatever follows "--" is left as it is.
    """
    before: list[str] = []
    rest = list(args)
    while rest and rest[0].startswith("-") and rest[0] != "--":  # the options before the command
        option = rest.pop(0)
        before.append(option)
        if _GLOBAL_OPTIONS.get(option) and rest:
            before.append(rest.pop(0))
    moved, kept = [], []
    while rest:
        token = rest.pop(0)
        if token == "--":
            kept += [token, *rest]
            break
        name = token.split("=", 1)[0]
        if name in _GLOBAL_OPTIONS:
            moved.append(token)
            if _GLOBAL_OPTIONS[name] and "=" not in token and rest:
                moved.append(rest.pop(0))
        else:
            kept.append(token)
    return [*before, *moved, *kept]


class _OneLineUsageError(click.UsageError):
    """A usage error shown in one line, saying where the usage is, rather than with the whole usage."""

    def show(self, file=None):
        where = self.ctx.command_path if self.ctx is not None else "loom-db"
        click.echo("Error: %s (see `%s --help`)" % (self.format_message().rstrip("."), where), file=file, err=True)


@contextlib.contextmanager
def _usage_in_one_line():
    try:
        yield
    except click.UsageError as error:
        if isinstance(error, _OneLineUsageError):
            raise
        raise _OneLineUsageError(error.format_message(), error.ctx) from None


class Duration(click.ParamType):
    """A span of time: a whole number of days, hours, minutes or seconds (30d, 12h, 90m, 45s).

    It is counted back from now, so it must not reach back before the year 1.
    """

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime.timedelta):
            return value
        match = _DURATION.fullmatch(str(value).strip())
        if not match:
            self.fail("%r is not a duration such as 30d, 12h, 90m or 45s" % value, param, ctx)
        try:
            duration = datetime.timedelta(**{_DURATION_UNITS[match[2]]: int(match[1])})
        except OverflowError:  # more days than a timedelta holds
            duration = datetime.timedelta.max
        if duration > datetime.datetime.now(datetime.timezone.utc) - _YEAR_ONE:
            self.fail("%r is too long a duration: it reaches back before the year 1" % value, param, ctx)
        return duration


@click.group(name="loom-db", cls=_Group)
@click.option(
    "--data-dir",
    envvar="LOOM_DATA_DIR",
    default="loom-data",
    show_default="$LOOM_DATA_DIR, else loom-data",
    type=click.Path(file_okay=False),
    help="The directory of the SQLite databases.",
)
@click.option("--database-url", metavar="URL", help="A PostgreSQL database holding every domain instead.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@click.version_option(package_name="loom-models")
@click.pass_context
def main(ctx, data_dir, database_url, as_json):
    """Look at a Loom store, act on what it holds, and look after its files."""
    if database_url is not None and ctx.get_parameter_source("data_dir") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give --data-dir or --database-url, not both")
    if database_url is not None and "://" not in database_url:
        # open_database would take it for a file name and create that file.
        raise click.BadParameter("must be a URL such as postgresql://user@host/db", param_hint="--database-url")
    ctx.obj = Target(data_dir, database_url, as_json)
    warnings.showwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as a person at a terminal reads it: one line, without the source line that raised it."""
    click.echo("warning: %s" % str(message).removeprefix("loom_models: "), err=True)


# What the library logs (a copy taken, a backup deleted) each command prints
# itself: Python's last-resort handler would print it twice.
logging.getLogger("loom_models").addHandler(logging.NullHandler())

# The commands join `main` as their modules are imported.
from . import backups, records, refs, requests, schema, serve, sessions, upkeep, usage  # noqa: E402, F401

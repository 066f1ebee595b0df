"""loom-db serve: the review inbox in a browser, for the people in the loop.

    loom-db serve                                      # http://127.0.0.1:8400/, as $USER
    loom-db serve --user alice --port 9000
    LOOM_WEB_TOKEN=... loom-db serve --host 0.0.0.0    # others sign in with the token and their name

On 127.0.0.1 whoever reaches the port decides as --user (by default the
account that started it); on any other address a token is required, and each
person signs in with it and a name, which their decisions record.
"""

from __future__ import annotations

import getpass
import ipaddress

import click

from ..aio import AsyncStorage
from ..storage import open_storage
from . import main
from .output import examples

LOOPBACK_NAMES = ("localhost",)


@main.command(
    short_help="The review inbox in a browser.",
    epilog=examples("loom-db serve", "loom-db serve --user alice", 'loom-db serve --host 0.0.0.0 --token "$TOKEN"'),
)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8400, show_default=True, help="The port.")
@click.option(
    "--token",
    envvar="LOOM_WEB_TOKEN",
    show_envvar=True,
    help="What people sign in with; needed on any address but 127.0.0.1.",
)
@click.option("--user", metavar="NAME", help="Who decides, without a token (default: you).")
@click.pass_obj
def serve(target, host, port, token, user):
    """Serve the review inbox: pending requests, most urgent first, and a page to decide each."""
    try:
        import uvicorn

        from ..web import create_app
    except ImportError as error:
        raise click.UsageError('loom-db serve needs the web extra: pip install "loom-models[web]"') from error
    if token is None and not _loopback(host):
        raise click.UsageError("serving on %s needs --token (or LOOM_WEB_TOKEN): anyone could decide" % host)
    if token is not None and len(token) < 16:
        raise click.BadParameter("must be at least 16 characters", param_hint="--token")
    target.require_databases()
    # A server runs for long: unlike a command's, its storage collects expired references as it goes.
    data_dir = None if target.database_url else target.data_dir
    storage = AsyncStorage.over(open_storage(data_dir, database_url=target.database_url, migrate=False), owned=True)
    try:
        app = create_app(storage, user=user or (None if token else getpass.getuser()), token=token)
        click.echo("Inbox at http://%s:%d/ (Ctrl-C stops it)" % (host if ":" not in host else "[%s]" % host, port))
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        storage.close_now()


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

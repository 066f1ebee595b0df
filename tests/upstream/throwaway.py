"""Throw-away stores for other projects' tests: a temporary data directory, or a PostgreSQL schema.

    STORES = ThrowawayStores("loom_sdk_")
    open_storage(**STORES.location(":memory:"))   # a fresh store
    open_storage(**STORES.location("/tmp/x.db"))  # the store of that path, shared by whoever names it
    STORES.clean()                                # closed, dropped, removed (both)
    config.pluginmanager.register(STORES)         # as a pytest plugin: clean() after each test

On SQLite a path's store is the data directory `<path>.loom`; with
LOOM_TEST_DATABASE_URL set, every store is a schema of that PostgreSQL database.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from urllib.parse import quote

import pytest

POSTGRES_URL = os.environ.get("LOOM_TEST_DATABASE_URL")


class ThrowawayStores:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.closers: list[Callable[[], object]] = []
        self.directories: list[str] = []
        self.schemas: set[str] = set()

    def location(self, path: object = ":memory:") -> dict:
        """open_storage's arguments for the store of `path` (":memory:": a new one)."""
        path = os.fspath(path)  # type: ignore[call-overload]
        if POSTGRES_URL:
            name = uuid.uuid4().hex if path == ":memory:" else hashlib.sha1(path.encode()).hexdigest()
            return {"database_url": self._schema(self.prefix + name[:16])}
        directory = tempfile.mkdtemp(prefix=self.prefix) if path == ":memory:" else path + ".loom"
        self.directories.append(directory)
        return {"data_dir": directory}

    def close_later(self, close: Callable[[], object]) -> None:
        """Have clean() call `close` first (a store left open would keep its schema busy)."""
        self.closers.append(close)

    def _schema(self, schema: str) -> str:
        if schema not in self.schemas:
            _postgres("CREATE SCHEMA IF NOT EXISTS %s" % schema)
            self.schemas.add(schema)
        separator = "&" if "?" in POSTGRES_URL else "?"  # type: ignore[operator]
        return "%s%soptions=%s" % (POSTGRES_URL, separator, quote("-csearch_path=%s" % schema))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item):
        yield
        self.clean()  # after the test's own teardown has closed what it opened

    def clean(self) -> None:
        for close in self.closers:
            close()
        for schema in self.schemas:
            _postgres("DROP SCHEMA %s CASCADE" % schema)
        for directory in self.directories:
            shutil.rmtree(directory, ignore_errors=True)
        self.closers.clear()
        self.directories.clear()
        self.schemas.clear()


def _postgres(statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(POSTGRES_URL)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()

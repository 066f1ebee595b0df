"""What differs between SQLite and PostgreSQL, in one object chosen for each database.

    backend = backend_of(database)       # a SqliteBackend or a PostgresBackend
    with backend.write(): ...            # a write transaction
    with backend.snapshot(): ...         # reads that all see one moment
    lock = backend.row_lock(Model)       # inside write(): lock("id") holds that row to the end
    backend.file("backup")               # the database's file; NotImplementedError on PostgreSQL

Code above asks its backend; it never asks which one it is. base.py is the
interface, sqlite.py and postgres.py the two backends.
"""

from __future__ import annotations

import peewee

from .base import Backend, Fragmentation, Sizes
from .postgres import PostgresBackend
from .sqlite import SqliteBackend

__all__ = ["Backend", "Fragmentation", "PostgresBackend", "Sizes", "SqliteBackend", "backend_of"]


def backend_of(database: peewee.Database) -> Backend:
    """The backend of a peewee database, SQLite's or PostgreSQL's.

    backend_of(open_database("./loom-data/sessions.db")).name   # 'sqlite'
    """
    if isinstance(database, peewee.SqliteDatabase):
        return SqliteBackend(database)
    return PostgresBackend(database)

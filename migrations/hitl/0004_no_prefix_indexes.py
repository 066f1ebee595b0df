"""PostgreSQL: drop the reference index on human_requests(session_id), which
(session_id, created_at, id) begins with: it served nothing the longer one does
not, and cost each insert an index more. SQLite keeps it, for the reference
implementation's files.
"""

from peewee import SqliteDatabase


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        db.execute_sql("DROP INDEX IF EXISTS idx_human_requests_session_id")


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        db.execute_sql("CREATE INDEX IF NOT EXISTS idx_human_requests_session_id ON human_requests(session_id)")

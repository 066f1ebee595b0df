"""PostgreSQL: drop the reference indexes that a longer index of ours begins with.

An index on messages(session_id) is the start of (session_id, timestamp, id):
every lookup it serves, the longer one serves too, in order. Kept, it costs each
insert one more index to write, and it tempts the planner to fetch a session's
messages through it and sort them (a 50,000-message session spilled its sort to
disk). SQLite keeps them: the reference implementation's files are ours to share.
"""

from peewee import SqliteDatabase

# Each index, with the table and columns to create it again with.
PREFIXES = {
    "idx_messages_session": "messages(session_id)",
    "idx_tool_executions_session": "tool_executions(session_id)",
    "idx_sessions_updated": "sessions(updated_at)",
}


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        for name in PREFIXES:
            db.execute_sql("DROP INDEX IF EXISTS %s" % name)


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        for name, target in PREFIXES.items():
            db.execute_sql("CREATE INDEX IF NOT EXISTS %s ON %s" % (name, target))

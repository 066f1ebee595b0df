"""Full-text search over message content.

SQLite: the reference implementation's own `messages_fts5` (FTS5, porter
stemming) and its three triggers, created only where missing, then filled from
the messages already there. PostgreSQL: an expression GIN index over the English
tsvector of the content. A SQLite build without FTS5 gets no index; search then
says so, and everything else works.
"""

from peewee import SqliteDatabase

FTS_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts5 USING fts5(message_id UNINDEXED, session_id UNINDEXED,"
    " role UNINDEXED, content, timestamp UNINDEXED, tokenize = 'porter unicode61')"
)
TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS messages_fts5_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts5 (message_id, session_id, role, content, timestamp)
        VALUES (new.id, new.session_id, new.role, new.content, new.timestamp); END""",
    """CREATE TRIGGER IF NOT EXISTS messages_fts5_update AFTER UPDATE ON messages BEGIN
        UPDATE messages_fts5 SET content = new.content WHERE message_id = old.id; END""",
    """CREATE TRIGGER IF NOT EXISTS messages_fts5_delete AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts5 WHERE message_id = old.id; END""",
)
FILL = (
    "INSERT INTO messages_fts5 (message_id, session_id, role, content, timestamp)"
    " SELECT id, session_id, role, content, timestamp FROM messages"
    " WHERE id NOT IN (SELECT message_id FROM messages_fts5)"
)
POSTGRES_INDEX = (
    "CREATE INDEX IF NOT EXISTS idx_messages_search ON messages"
    " USING GIN (to_tsvector('english', COALESCE(content, '')))"
)


def has_fts5(db):
    return bool(db.execute_sql("SELECT sqlite_compileoption_used('ENABLE_FTS5')").fetchone()[0])


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        db.execute_sql(POSTGRES_INDEX)
    elif has_fts5(db):
        db.execute_sql(FTS_TABLE)
        for trigger in TRIGGERS:
            db.execute_sql(trigger)
        db.execute_sql(FILL)


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        db.execute_sql("DROP INDEX idx_messages_search")
        return
    for name in ("insert", "update", "delete"):
        db.execute_sql("DROP TRIGGER IF EXISTS messages_fts5_%s" % name)
    db.execute_sql("DROP TABLE IF EXISTS messages_fts5")

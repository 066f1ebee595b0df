"""Full-text rows found by rowid: deleting a message no longer scans the whole index.

The reference triggers find a message's row in `messages_fts5` by its
`message_id`, an UNINDEXED column: every deleted message scanned the whole
full-text table (a 100-message session took 0.7 s to delete among 30,000
messages, and grew linearly). The same three triggers, doing the same, now key
each row by rowid = message id; existing rows are re-keyed once. Every writer of
the file, the reference implementation included, runs these triggers, so the
index stays in step whoever writes.
"""

from peewee import SqliteDatabase

TRIGGERS = {
    "insert": """CREATE TRIGGER messages_fts5_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts5 (rowid, message_id, session_id, role, content, timestamp)
        VALUES (new.id, new.id, new.session_id, new.role, new.content, new.timestamp); END""",
    "update": """CREATE TRIGGER messages_fts5_update AFTER UPDATE ON messages BEGIN
        UPDATE messages_fts5 SET content = new.content WHERE rowid = old.id; END""",
    "delete": """CREATE TRIGGER messages_fts5_delete AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts5 WHERE rowid = old.id; END""",
}
# As 0003_search created them: the reference implementation's.
REFERENCE_TRIGGERS = {
    "insert": """CREATE TRIGGER messages_fts5_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts5 (message_id, session_id, role, content, timestamp)
        VALUES (new.id, new.session_id, new.role, new.content, new.timestamp); END""",
    "update": """CREATE TRIGGER messages_fts5_update AFTER UPDATE ON messages BEGIN
        UPDATE messages_fts5 SET content = new.content WHERE message_id = old.id; END""",
    "delete": """CREATE TRIGGER messages_fts5_delete AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts5 WHERE message_id = old.id; END""",
}
REKEYED = (
    "INSERT INTO messages_fts5 (rowid, message_id, session_id, role, content, timestamp)"
    " SELECT id, id, session_id, role, content, timestamp FROM messages"
)


def _has_index(db) -> bool:
    return isinstance(db, SqliteDatabase) and "messages_fts5" in db.get_tables()


def _replace_triggers(db, triggers: dict) -> None:
    for name, trigger in triggers.items():
        db.execute_sql("DROP TRIGGER IF EXISTS messages_fts5_%s" % name)
        db.execute_sql(trigger)


def up(migrator, db):
    if not _has_index(db):
        return
    _replace_triggers(db, TRIGGERS)
    if db.execute_sql("SELECT 1 FROM messages_fts5 WHERE rowid != message_id LIMIT 1").fetchone():
        db.execute_sql("DELETE FROM messages_fts5")
        db.execute_sql(REKEYED)


def down(migrator, db):
    if _has_index(db):
        _replace_triggers(db, REFERENCE_TRIGGERS)

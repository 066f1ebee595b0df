"""SQLite: the full-text index reads message content from `messages`, instead of keeping a copy of its own.

`messages_fts5` as 0003_search made it stores every row it indexes, content
included, beside the index: a third of a file's bytes (1,013 a message at a
million messages). Here it becomes an external-content FTS5 table over a view
that gives messages the column names it has always had: the index alone is
stored, and what a search reads of a row comes from `messages`. The same
queries answer as before, the reference implementation's included (they read
`messages_fts5`'s columns by name), and the triggers keep the index in step
with every writer of the file.

Only in files we created: a directory the reference implementation wrote
(it has its `memory_snapshots` and `artifacts` tables) keeps its own table.
"""

from peewee import SqliteDatabase

SOURCE = (
    "CREATE VIEW messages_fts5_source (message_id, session_id, role, content, timestamp)"
    " AS SELECT id, session_id, role, content, timestamp FROM messages"
)
COLUMNS = "message_id UNINDEXED, session_id UNINDEXED, role UNINDEXED, content, timestamp UNINDEXED"
EXTERNAL = (
    "CREATE VIRTUAL TABLE messages_fts5 USING fts5(%s, tokenize = 'porter unicode61',"
    " content = 'messages_fts5_source', content_rowid = 'message_id')" % COLUMNS
)
# As 0003_search created it.
INTERNAL = "CREATE VIRTUAL TABLE messages_fts5 USING fts5(%s, tokenize = 'porter unicode61')" % COLUMNS

ROW = "(rowid, message_id, session_id, role, content, timestamp) VALUES (%(r)s.id, %(r)s.id, %(r)s.session_id,"
ROW += " %(r)s.role, %(r)s.content, %(r)s.timestamp)"
INDEX_NEW = "INSERT INTO messages_fts5 " + ROW % {"r": "new"} + ";"
# An external-content index forgets a row by being told what it indexed of it.
FORGET_OLD = (
    "INSERT INTO messages_fts5 (messages_fts5, rowid, message_id, session_id, role, content, timestamp)"
    " VALUES ('delete', old.id, old.id, old.session_id, old.role, old.content, old.timestamp);"
)
TRIGGERS = {
    "insert": "CREATE TRIGGER messages_fts5_insert AFTER INSERT ON messages BEGIN %s END" % INDEX_NEW,
    "update": "CREATE TRIGGER messages_fts5_update AFTER UPDATE OF content ON messages BEGIN %s %s END"
    % (FORGET_OLD, INDEX_NEW),
    "delete": "CREATE TRIGGER messages_fts5_delete AFTER DELETE ON messages BEGIN %s END" % FORGET_OLD,
}
# As 0004_search_by_rowid left them.
ROWID_TRIGGERS = {
    "insert": "CREATE TRIGGER messages_fts5_insert AFTER INSERT ON messages BEGIN %s END" % INDEX_NEW,
    "update": """CREATE TRIGGER messages_fts5_update AFTER UPDATE ON messages BEGIN
        UPDATE messages_fts5 SET content = new.content WHERE rowid = old.id; END""",
    "delete": """CREATE TRIGGER messages_fts5_delete AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts5 WHERE rowid = old.id; END""",
}
COPY = (
    "INSERT INTO messages_fts5 (rowid, message_id, session_id, role, content, timestamp)"
    " SELECT id, id, session_id, role, content, timestamp FROM messages"
)


def _ours_with_an_index(db) -> bool:
    if not isinstance(db, SqliteDatabase):
        return False
    tables = set(db.get_tables())
    return "messages_fts5" in tables and not tables & {"memory_snapshots", "artifacts"}


def _drop(db) -> None:
    for name in TRIGGERS:
        db.execute_sql("DROP TRIGGER IF EXISTS messages_fts5_%s" % name)
    db.execute_sql("DROP TABLE messages_fts5")


def up(migrator, db):
    if not _ours_with_an_index(db):
        return
    _drop(db)
    db.execute_sql(SOURCE)
    db.execute_sql(EXTERNAL)
    db.execute_sql("INSERT INTO messages_fts5 (messages_fts5) VALUES ('rebuild')")
    for trigger in TRIGGERS.values():
        db.execute_sql(trigger)


def down(migrator, db):
    if not isinstance(db, SqliteDatabase) or "messages_fts5_source" not in [v.name for v in db.get_views()]:
        return
    _drop(db)
    db.execute_sql("DROP VIEW messages_fts5_source")
    db.execute_sql(INTERNAL)
    db.execute_sql(COPY)
    for trigger in ROWID_TRIGGERS.values():
        db.execute_sql(trigger)

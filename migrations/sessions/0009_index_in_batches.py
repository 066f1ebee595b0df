"""SQLite: the full-text index takes new messages a hundred at a time, not one a commit.

FTS5 writes a new segment of its index at every commit that indexed something:
with a message a commit, that flush was two thirds of save_message's own SQL
(measured: 0.26 ms a save with the index, 0.14 without). As PostgreSQL's GIN
index keeps a pending list (fastupdate), new messages now wait in `messages`
itself, past a mark, `messages_fts5_indexed.upto`: the insert that puts a
hundred of them past it indexes them all in one go, and a search indexes
whatever waits first (SessionRepository.search_messages), so it finds every
message all the same. Changes to a message behind the mark still reach the
index at once, as every writer's do; one past it is indexed as it is then.

The reference implementation reading one of our files sees the index up to the
mark: at most the last 99 messages are not in it yet. Its own files keep their
table and triggers (0008 converted only ours, and so does this).
"""

from peewee import SqliteDatabase

BATCH = 100

MARK = "CREATE TABLE messages_fts5_indexed (upto INTEGER NOT NULL)"
UPTO = "(SELECT upto FROM messages_fts5_indexed)"
LAST_ID = "(SELECT COALESCE(MAX(id), 0) FROM messages)"
INTO = "INSERT INTO messages_fts5 (rowid, message_id, session_id, role, content, timestamp) "
INDEX_NEW = INTO + "VALUES (new.id, new.id, new.session_id, new.role, new.content, new.timestamp);"
FORGET_OLD = (
    "INSERT INTO messages_fts5 (messages_fts5, rowid, message_id, session_id, role, content, timestamp)"
    " VALUES ('delete', old.id, old.id, old.session_id, old.role, old.content, old.timestamp);"
)


def index_waiting(last: str, when: str = "1") -> str:
    """The messages past the mark up to `last`, if `when`; and the mark moved to `last`."""
    return (
        INTO + "SELECT id, id, session_id, role, content, timestamp FROM messages"
        " WHERE id > %s AND id <= %s AND %s;"
        % (UPTO, last, when)
        + " UPDATE messages_fts5_indexed SET upto = %s WHERE %s;" % (last, when)
    )


# One trigger with its steps in this order: two triggers would each see the mark the other moved.
INDEX_INSERTED = (
    # A message given an id behind the mark: the mark would never reach it.
    INTO + "SELECT new.id, new.id, new.session_id, new.role, new.content, new.timestamp WHERE new.id <= %s; " % UPTO
) + index_waiting("new.id", when="new.id >= %s + %d" % (UPTO, BATCH))
BEHIND_THE_MARK = "WHEN old.id <= %s" % UPTO
TRIGGERS = {
    "insert": "CREATE TRIGGER messages_fts5_insert AFTER INSERT ON messages BEGIN %s END" % INDEX_INSERTED,
    "update": "CREATE TRIGGER messages_fts5_update AFTER UPDATE OF content ON messages %s BEGIN %s %s END"
    % (BEHIND_THE_MARK, FORGET_OLD, INDEX_NEW),
    "delete": "CREATE TRIGGER messages_fts5_delete AFTER DELETE ON messages %s BEGIN %s END"
    % (BEHIND_THE_MARK, FORGET_OLD),
}
# As 0008_search_over_messages left them.
EACH_COMMIT_TRIGGERS = {
    "insert": "CREATE TRIGGER messages_fts5_insert AFTER INSERT ON messages BEGIN %s END" % INDEX_NEW,
    "update": "CREATE TRIGGER messages_fts5_update AFTER UPDATE OF content ON messages BEGIN %s %s END"
    % (FORGET_OLD, INDEX_NEW),
    "delete": "CREATE TRIGGER messages_fts5_delete AFTER DELETE ON messages BEGIN %s END" % FORGET_OLD,
}


def _ours(db) -> bool:
    return isinstance(db, SqliteDatabase) and "messages_fts5_source" in [v.name for v in db.get_views()]


def _drop_triggers(db) -> None:
    for name in TRIGGERS:
        db.execute_sql("DROP TRIGGER IF EXISTS messages_fts5_%s" % name)


def up(migrator, db):
    if not _ours(db):
        return
    _drop_triggers(db)
    db.execute_sql(MARK)
    db.execute_sql("INSERT INTO messages_fts5_indexed (upto) VALUES (%s)" % LAST_ID)  # all indexed until now
    for trigger in TRIGGERS.values():
        db.execute_sql(trigger)


def down(migrator, db):
    if not _ours(db) or "messages_fts5_indexed" not in db.get_tables():
        return
    _drop_triggers(db)
    for statement in index_waiting(LAST_ID).split(";")[:-1]:
        db.execute_sql(statement)
    db.execute_sql("DROP TABLE messages_fts5_indexed")
    for trigger in EACH_COMMIT_TRIGGERS.values():
        db.execute_sql(trigger)

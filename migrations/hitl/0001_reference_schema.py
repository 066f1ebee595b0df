"""The reference implementation's human_requests table, with its six indexes.

Column for column as the reference implementation creates it (no CHECK constraints: the
reference wrote values outside the documented vocabulary, and they must load).
Times are milliseconds, so BIGINT on PostgreSQL, where INTEGER is 32 bits.
"""

from peewee import SqliteDatabase

TABLE = """CREATE TABLE IF NOT EXISTS human_requests (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    question TEXT NOT NULL,
    context_json TEXT,
    request_type TEXT NOT NULL,
    priority TEXT NOT NULL,
    timeout_ms {integer} NOT NULL,
    created_at {integer} NOT NULL,
    expires_at {integer} NOT NULL,
    status TEXT NOT NULL,
    response TEXT,
    response_data_json TEXT,
    responded_at {integer},
    responded_by TEXT
)"""

INDEXED = ("status", "session_id", "agent_id", "priority", "created_at", "expires_at")


def up(migrator, db):
    db.execute_sql(TABLE.format(integer="INTEGER" if isinstance(db, SqliteDatabase) else "BIGINT"))
    for column in INDEXED:
        db.execute_sql("CREATE INDEX IF NOT EXISTS idx_human_requests_%s ON human_requests(%s)" % (column, column))


def down(migrator, db):
    db.execute_sql("DROP TABLE human_requests")

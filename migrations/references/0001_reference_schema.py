"""The reference implementation's reference_store table, with its two indexes.

Column for column as the reference implementation creates it. On PostgreSQL the bytes are
BYTEA, and times and sizes BIGINT (INTEGER is 32 bits there).
"""

from peewee import SqliteDatabase

TABLE = """CREATE TABLE IF NOT EXISTS reference_store (
    id TEXT PRIMARY KEY,
    type INTEGER NOT NULL,
    store INTEGER NOT NULL,
    data {blob} NOT NULL,
    ref_count {integer} NOT NULL DEFAULT 1,
    created_at {integer} NOT NULL,
    expires_at {integer} NOT NULL DEFAULT 0,
    size_bytes {integer} NOT NULL
)"""


def up(migrator, db):
    sqlite = isinstance(db, SqliteDatabase)
    db.execute_sql(TABLE.format(blob="BLOB" if sqlite else "BYTEA", integer="INTEGER" if sqlite else "BIGINT"))
    db.execute_sql("CREATE INDEX IF NOT EXISTS idx_expires_at ON reference_store(expires_at)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS idx_ref_count ON reference_store(ref_count)")


def down(migrator, db):
    db.execute_sql("DROP TABLE reference_store")

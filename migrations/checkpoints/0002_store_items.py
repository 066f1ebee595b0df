"""LangGraph's long-term memory: the items of its store (BaseStore), by namespace and key.

A namespace is its labels joined by "." (a label holds no "."), so that the
items under a namespace are one range of the primary key: "a.b" and every
text from "a.b." up to, not including, "a.b/" ("/" follows "." in every
encoding). On PostgreSQL the texts compare by code point (COLLATE "C") as they
do on SQLite: under a language's collation that range would not hold, nor
would the order of listed namespaces be the same on both backends.

Times are milliseconds since the epoch; `expires_at` NULL never expires, and
`ttl_minutes` is what a read that refreshes it adds to the clock again.
"""

from peewee import SqliteDatabase

TABLE = """CREATE TABLE graph_store_items (
    namespace TEXT{collate} NOT NULL,
    key TEXT{collate} NOT NULL,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    ttl_minutes {real},
    PRIMARY KEY (namespace, key)
)"""

# The sweeper's: only the rows that can expire.
INDEX = "CREATE INDEX idx_graph_store_items_expires ON graph_store_items (expires_at) WHERE expires_at IS NOT NULL"


def up(migrator, db):
    sqlite = isinstance(db, SqliteDatabase)  # SQLite's own BINARY order is by code point already
    db.execute_sql(
        TABLE.format(collate="" if sqlite else ' COLLATE "C"', real="REAL" if sqlite else "DOUBLE PRECISION")
    )
    db.execute_sql(INDEX)


def down(migrator, db):
    db.execute_sql("DROP TABLE graph_store_items")

"""Partial indexes over pending requests, in the order list_pending returns them.

Pending requests are a small part of the table; indexing only them, by priority
rank (critical first) then age, answers list_pending and the expiry sweep without
reading decided rows. SQLite uses a partial index only when the query repeats
`status = 'pending'` as a literal, and an expression index only when the query
repeats the expression: the repository writes both exactly as here.
"""

RANK = "(CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END)"

INDEXES = {
    "idx_human_requests_pending": "(%s, created_at, id) WHERE status = 'pending'" % RANK,
    "idx_human_requests_pending_agent": "(agent_id, %s, created_at, id) WHERE status = 'pending'" % RANK,
    "idx_human_requests_pending_session": "(session_id, %s, created_at, id) WHERE status = 'pending'" % RANK,
    "idx_human_requests_pending_expires": "(expires_at) WHERE status = 'pending'",
    "idx_human_requests_session_created": "(session_id, created_at, id)",
}


def up(migrator, db):
    for name, definition in INDEXES.items():
        db.execute_sql("CREATE INDEX IF NOT EXISTS %s ON human_requests %s" % (name, definition))


def down(migrator, db):
    for name in INDEXES:
        db.execute_sql("DROP INDEX %s" % name)

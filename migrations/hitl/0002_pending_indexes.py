"""Partial indexes over pending requests, in the order list_pending returns them.

Pending requests are a small part of the table; indexing only them, by priority
rank (critical first) then age, answers list_pending and the expiry sweep without
reading decided rows. SQLite uses a partial index only when the query repeats
`status = 'pending'` as a literal, and an expression index only when the query
repeats the expression: the repository writes both exactly as here. `status`
leads each index all the same: without ANALYZE statistics SQLite prefers an index
whose columns match the query's equalities, and it would take the plain status
index and sort. `expires_at` is carried so that overdue rows are skipped in the
index. The reference also wrote priority 'normal': it ranks as medium.
"""

RANK = (
    "(CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2"
    " WHEN 'normal' THEN 2 WHEN 'low' THEN 3 ELSE 4 END)"
)
ORDER = "%s, created_at, id, expires_at" % RANK

INDEXES = {
    "idx_human_requests_pending": "(status, %s) WHERE status = 'pending'" % ORDER,
    "idx_human_requests_pending_agent": "(agent_id, status, %s) WHERE status = 'pending'" % ORDER,
    "idx_human_requests_pending_session": "(session_id, status, %s) WHERE status = 'pending'" % ORDER,
    "idx_human_requests_pending_expires": "(status, expires_at) WHERE status = 'pending'",
    "idx_human_requests_session_created": "(session_id, created_at, id)",
}


def up(migrator, db):
    for name, definition in INDEXES.items():
        db.execute_sql("CREATE INDEX IF NOT EXISTS %s ON human_requests %s" % (name, definition))


def down(migrator, db):
    for name in INDEXES:
        db.execute_sql("DROP INDEX %s" % name)

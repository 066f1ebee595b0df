"""An index over decided requests by the time of their decision, for retention.

delete_older_than purges requests decided before a cutoff, and
list_decided_before lists them in that order (id breaks ties). A row of the
reference implementation may be decided without a decision time; it is as old
as its creation, hence the COALESCE. Partial, like the pending indexes of 0002: SQLite
uses it only when the query repeats `status <> 'pending'` as a literal and the
expression as it is here, and the repository writes both so.
"""

DECIDED_AT = "COALESCE(responded_at, created_at)"


def up(migrator, db):
    db.execute_sql(
        "CREATE INDEX IF NOT EXISTS idx_human_requests_decided ON human_requests ((%s), id)"
        " WHERE status <> 'pending'" % DECIDED_AT
    )


def down(migrator, db):
    db.execute_sql("DROP INDEX idx_human_requests_decided")

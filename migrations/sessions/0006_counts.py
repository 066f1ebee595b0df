"""PostgreSQL: the counts and totals get_stats reads, kept as rows change, not counted at each call.

Counting a million messages takes PostgreSQL tens of milliseconds a call. Here
each statement that inserts or deletes sessions, messages or tool executions, or
changes messages' usage, adds one row of what it changed to `session_counts` in
its own transaction; get_stats sums those rows. Concurrent writers only ever
insert there, so they neither wait for nor deadlock with each other, and the sum
is exact at any snapshot. Every 128th row, a writer folds the rows into one (one
folder at a time; the others go on); the storage's collector vacuums the table.

The totals are the messages' usage: a session's totals are the sums of its
messages' (save_messages, add_usage, pop_message and clear_messages keep them
so), and counting them from the messages spares the hottest statement of all,
save_message's update of its session, a trigger. Costs are summed as numeric: a
million additions of float8 would drift.

SQLite counts at each call: one writer at a time, and its count reads an index.
"""

from peewee import SqliteDatabase

FOLD_EVERY = 128
COLUMNS = "sessions, messages, tool_executions, total_cost_usd, total_tokens"

TABLE = """CREATE TABLE session_counts (
    id bigserial PRIMARY KEY,
    sessions bigint NOT NULL DEFAULT 0,
    messages bigint NOT NULL DEFAULT 0,
    tool_executions bigint NOT NULL DEFAULT 0,
    total_cost_usd numeric NOT NULL DEFAULT 0,
    total_tokens numeric NOT NULL DEFAULT 0
)"""

FILL = (
    """INSERT INTO session_counts (%s) SELECT
    (SELECT count(*) FROM sessions), (SELECT count(*) FROM messages), (SELECT count(*) FROM tool_executions),
    (SELECT COALESCE(sum(cost_usd::numeric), 0) FROM messages),
    (SELECT COALESCE(sum(token_count), 0) FROM messages)"""
    % COLUMNS
)

# The row a statement adds: what it changed, by table and TG_OP; a row of noughts
# is not added. (A transition table is visible only where its trigger declares it:
# each branch names only its own.)
COUNT = """CREATE FUNCTION loom_session_counts() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    added bigint;
BEGIN
    IF TG_TABLE_NAME = 'messages' AND TG_OP = 'INSERT' THEN
        INSERT INTO session_counts (messages, total_cost_usd, total_tokens)
        SELECT count(*), COALESCE(sum(cost_usd::numeric), 0), COALESCE(sum(token_count), 0)
        FROM new_rows HAVING count(*) > 0 RETURNING id INTO added;
    ELSIF TG_TABLE_NAME = 'messages' AND TG_OP = 'DELETE' THEN
        INSERT INTO session_counts (messages, total_cost_usd, total_tokens)
        SELECT -count(*), -COALESCE(sum(cost_usd::numeric), 0), -COALESCE(sum(token_count), 0)
        FROM old_rows HAVING count(*) > 0 RETURNING id INTO added;
    ELSIF TG_TABLE_NAME = 'messages' THEN
        INSERT INTO session_counts (total_cost_usd, total_tokens)
        SELECT cost, tokens FROM (SELECT
            COALESCE((SELECT sum(cost_usd::numeric) FROM new_rows), 0)
                - COALESCE((SELECT sum(cost_usd::numeric) FROM old_rows), 0) AS cost,
            COALESCE((SELECT sum(token_count) FROM new_rows), 0)
                - COALESCE((SELECT sum(token_count) FROM old_rows), 0) AS tokens) AS changed
        WHERE cost <> 0 OR tokens <> 0 RETURNING id INTO added;
    ELSIF TG_TABLE_NAME = 'sessions' AND TG_OP = 'INSERT' THEN
        INSERT INTO session_counts (sessions) SELECT count(*) FROM new_rows HAVING count(*) > 0
        RETURNING id INTO added;
    ELSIF TG_TABLE_NAME = 'sessions' THEN
        INSERT INTO session_counts (sessions) SELECT -count(*) FROM old_rows HAVING count(*) > 0
        RETURNING id INTO added;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO session_counts (tool_executions) SELECT count(*) FROM new_rows HAVING count(*) > 0
        RETURNING id INTO added;
    ELSE
        INSERT INTO session_counts (tool_executions) SELECT -count(*) FROM old_rows HAVING count(*) > 0
        RETURNING id INTO added;
    END IF;
    IF mod(added, %d) = 0 AND pg_try_advisory_xact_lock(hashtext('loom_session_counts')) THEN
        WITH folded AS (DELETE FROM session_counts RETURNING *)
        INSERT INTO session_counts (%s)
        SELECT COALESCE(sum(sessions), 0), COALESCE(sum(messages), 0), COALESCE(sum(tool_executions), 0),
            COALESCE(sum(total_cost_usd), 0), COALESCE(sum(total_tokens), 0) FROM folded;
    END IF;
    RETURN NULL;
END $$""" % (FOLD_EVERY, COLUMNS)

TRIGGERS = {
    "insert": "AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows",
    "delete": "AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows",
    "update": "AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}
COUNTED = {
    "sessions": ("insert", "delete"),
    "messages": ("insert", "delete", "update"),
    "tool_executions": ("insert", "delete"),
}


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql(TABLE)
    db.execute_sql(COUNT)
    for table, operations in COUNTED.items():
        for operation in operations:
            db.execute_sql(
                "CREATE TRIGGER %s_counted_%s %s FOR EACH STATEMENT EXECUTE FUNCTION loom_session_counts()"
                % (table, operation, TRIGGERS[operation] % table)
            )
    db.execute_sql(FILL)


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    for table, operations in COUNTED.items():
        for operation in operations:
            db.execute_sql("DROP TRIGGER %s_counted_%s ON %s" % (table, operation, table))
    db.execute_sql("DROP FUNCTION loom_session_counts()")
    db.execute_sql("DROP TABLE session_counts")

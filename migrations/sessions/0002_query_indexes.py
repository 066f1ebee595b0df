"""Indexes for every query of SessionRepository, beyond the reference ones.

- a session's messages and tool executions in (timestamp, id) order, and keyset pages;
- sessions most recently updated first, overall and per agent, with keyset pages;
- parent_session_id, which ON DELETE SET NULL searches on every session delete.
"""

INDEXES = {
    "idx_messages_session_time": "messages(session_id, timestamp, id)",
    "idx_tool_executions_session_time": "tool_executions(session_id, timestamp, id)",
    "idx_sessions_updated_id": "sessions(updated_at, id)",
    "idx_sessions_agent_updated": "sessions(agent_id, updated_at, id)",
    "idx_sessions_parent": "sessions(parent_session_id)",
}


def up(migrator, db):
    for name, target in INDEXES.items():
        db.execute_sql("CREATE INDEX IF NOT EXISTS %s ON %s" % (name, target))


def down(migrator, db):
    for name in INDEXES:
        db.execute_sql("DROP INDEX %s" % name)

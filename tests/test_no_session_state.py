"""Nothing outlives a transaction on a PostgreSQL connection: what transaction pooling (pgbouncer) needs.

In transaction pooling a server connection goes to another client after each
transaction, so a session-level SET, or a session advisory lock, would be left
to a stranger. PostgreSQL only (LOOM_TEST_DATABASE_URL).
"""

from __future__ import annotations

import pytest
from conftest import POSTGRES_URL

from loom_models.checkpoints import CheckpointRepository
from loom_models.references import ReferenceRepository

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's session state: runs with LOOM_TEST_DATABASE_URL")


def setting(repository, name: str) -> str:
    return repository.database.execute_sql("SELECT current_setting(%s)", (name,)).fetchone()[0]


def advisory_locks_held(repository) -> int:
    query = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    return repository.database.execute_sql(query).fetchone()[0]


def test_giving_way_sets_the_lock_wait_of_each_transaction_only(backend):
    with ReferenceRepository.open(backend.target) as references:
        default = setting(references, "lock_timeout")
        references.backend.give_way(150)
        with references.backend.write():
            assert setting(references, "lock_timeout") == "150ms"
        assert setting(references, "lock_timeout") == default  # the connection is as it was
        references.collect_garbage()  # the collector's writes give way, and leave nothing
        assert setting(references, "lock_timeout") == default


def test_migrations_and_thread_locks_hold_advisory_locks_for_their_transaction_only(backend):
    with CheckpointRepository.open(backend.target) as checkpoints:
        assert advisory_locks_held(checkpoints) == 0  # after migrating
        with checkpoints.backend.write():
            checkpoints.backend.lock_keys(1, ["thread-1", "thread-2"])
            assert advisory_locks_held(checkpoints) == 2
        assert advisory_locks_held(checkpoints) == 0

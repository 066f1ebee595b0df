"""Multi-agent reads and full-text search over messages, on either backend."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loom_models import LoomStorageError, NotFoundError, ValidationError
from loom_models.sessions import Message, Session


@pytest.fixture
def team(sessions):
    """A coordinator session and two children of two agents; each says what it shares."""
    sessions.save_session(Session(id="coord", agent_id="lead"))
    sessions.save_session(Session(id="child_a", agent_id="alice", parent_session_id="coord"))
    sessions.save_session(Session(id="child_b", agent_id="bob", parent_session_id="coord"))
    sessions.save_session(Session(id="alone", agent_id="alice"))
    sessions.save_messages(
        "coord",
        [
            Message(role="system", content="plan: research the database", session_context="coordinator"),
            Message(role="user", content="a private remark", session_context="direct"),
            Message(role="assistant", content="shared notes on PostgreSQL", session_context="shared"),
        ],
    )
    sessions.save_messages("child_a", [Message(role="user", content="alice is running benchmarks")])
    sessions.save_messages("child_b", [Message(role="user", content="bob reads about SQLite")])
    sessions.save_messages("alone", [Message(role="user", content="alice alone")])
    return sessions


def contents(messages):
    return [m.content for m in messages]


def test_load_agent_sessions(team):
    assert sorted(s.id for s in team.load_agent_sessions("alice")) == ["alone", "child_a"]
    assert team.load_agent_sessions("nobody") == []


def test_a_child_sees_what_its_parent_shared(team):
    assert contents(team.load_messages_from_parent("child_a")) == [
        "plan: research the database",
        "shared notes on PostgreSQL",
    ]
    assert team.load_messages_from_parent("coord") == []  # no parent: none, no error
    with pytest.raises(NotFoundError):
        team.load_messages_from_parent("missing")


def test_an_agent_reads_its_own_and_its_parents_shared_messages_once(team):
    assert contents(team.load_messages_for_agent("alice")) == [
        "plan: research the database",
        "shared notes on PostgreSQL",
        "alice is running benchmarks",
        "alice alone",
    ]
    assert contents(team.load_messages_for_agent("alice", limit=2)) == ["alice is running benchmarks", "alice alone"]
    team.save_session(Session(id="coord", agent_id="alice"))  # now its parent is its own too
    ids = [m.id for m in team.load_messages_for_agent("alice")]
    assert len(ids) == len(set(ids)) == 5  # all three of coord's, each once, and its two own


def test_a_child_keeps_its_messages_when_its_parent_goes(team):
    team.delete_session("coord")

    assert team.load_session("child_a").parent_session_id is None
    assert contents(team.load_messages("child_a")) == ["alice is running benchmarks"]
    assert team.load_messages_from_parent("child_a") == []


def test_search_ranks_the_best_match_first_and_stems(team):
    team.save_messages(
        "alone",
        [
            Message(role="user", content="benchmark"),
            Message(role="user", content="benchmark benchmark benchmarks, the benchmark suite"),
        ],
    )

    found = contents(team.search_messages("benchmarks"))

    assert found[0] == "benchmark benchmark benchmarks, the benchmark suite"
    assert set(found) == {
        "benchmark",
        "benchmark benchmark benchmarks, the benchmark suite",
        "alice is running benchmarks",
    }
    assert contents(team.search_messages("runs")) == ["alice is running benchmarks"]  # run, running, runs


def test_search_filters_by_session_and_agent(team):
    assert contents(team.search_messages("alice", session_id="alone")) == ["alice alone"]
    assert sorted(contents(team.search_messages("alice", agent_id="alice"))) == [
        "alice alone",
        "alice is running benchmarks",
    ]
    assert team.search_messages("alice", agent_id="bob") == []
    assert len(team.search_messages("alice", limit=1)) == 1


@pytest.mark.parametrize(
    "query",
    [
        "what is SQL?",
        "C++",
        '"unbalanced',
        "AND",
        "OR NOT",
        "NEAR(a b)",
        "*",
        "-",
        "content:alice",
        "🙂",
        "",
        "   ",
        "'); DROP TABLE messages; --",
        "a\\x00b",
    ],
)
def test_any_text_is_a_valid_query(team, query):
    assert isinstance(team.search_messages(query), list)


def test_a_question_searches_for_its_telling_words(team):
    assert contents(team.search_messages("What is the plan for the database?")) == ["plan: research the database"]
    assert isinstance(team.search_messages("what is the"), list)  # only common words: still a valid query


def test_search_finds_words_among_punctuation(team):
    assert contents(team.search_messages("SQLite?!")) == ["bob reads about SQLite"]


@pytest.mark.parametrize("limit", [0, -1, "5", None])
def test_search_limits_are_checked(team, limit):
    with pytest.raises(ValidationError):
        team.search_messages("alice", limit=limit)


def test_the_index_follows_updates_and_deletes(team, backend):
    backend.sql("UPDATE messages SET content = 'alice renamed everything' WHERE content = 'alice alone'")
    assert contents(team.search_messages("renamed")) == ["alice renamed everything"]
    assert team.search_messages("alone") == []

    team.delete_session("child_a")
    assert team.search_messages("benchmarks") == []


def test_existing_messages_are_indexed_when_search_arrives(backend):
    from loom_models.migrator import runner
    from loom_models.sessions import SessionRepository

    with SessionRepository.open(backend.target) as sessions:
        runner(sessions.database, "sessions").down("0003_search")  # back to before search
        sessions.save_session(Session(id="old"))
        _insert_messages(sessions.database, "old", ["written before search existed"])
        assert sessions.migrate() == [
            "0003_search",
            "0004_search_by_rowid",
            "0005_framework_items",
            "0006_counts",
            "0007_no_prefix_indexes",
            "0008_search_over_messages",
            "0009_index_in_batches",
        ]
        assert contents(sessions.search_messages("existed")) == ["written before search existed"]


def _insert_messages(database, session_id, contents, ids=None):
    """Messages as an older schema takes them: the reference's columns only (and the ids, if given)."""
    columns = ["session_id", "role", "content", "session_context", "timestamp", "token_count", "cost_usd"]
    for index, content in enumerate(contents):
        values = [session_id, "user", content, "direct", 1_790_000_000, 0, 0.0] + ([ids[index]] if ids else [])
        database.execute_sql(
            "INSERT INTO messages (%s) VALUES (%s)"
            % (", ".join(columns + (["id"] if ids else [])), ", ".join([database.param] * len(values))),
            values,
        )


def test_without_fts5_search_says_so_and_the_rest_works(tmp_path):
    from loom_models.sessions import SessionRepository

    with SessionRepository.open(tmp_path / "s.db") as sessions:
        sessions.database.execute_sql("DROP TABLE messages_fts5")  # as on a build without FTS5
        for name in ("insert", "update", "delete"):
            sessions.database.execute_sql("DROP TRIGGER messages_fts5_%s" % name)
        sessions.save_session(Session(id="s"))
        sessions.save_message("s", Message(role="user", content="still fine"))
        with pytest.raises(LoomStorageError, match="FTS5"):
            sessions.search_messages("fine")
        assert contents(sessions.load_messages("s")) == ["still fine"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text())
def test_arbitrary_text_never_raises(team, query):
    assert isinstance(team.search_messages(query, limit=5), list)


def _steps_to_delete_a_session(sessions, others: int) -> int:
    """SQLite VM steps (in thousands) to delete a 20-message session among `others` messages."""
    sessions.save_session(Session(id="others"))
    sessions.save_messages("others", [Message(role="user", content="filler %d" % i) for i in range(others)])
    sessions.save_session(Session(id="gone"))
    sessions.save_messages("gone", [Message(role="user", content="short lived %d" % i) for i in range(20)])
    steps = []
    sessions.database.connection().set_progress_handler(lambda: steps.append(1), 1000)
    try:
        sessions.delete_session("gone")
    finally:
        sessions.database.connection().set_progress_handler(None, 0)
    return len(steps)


def test_deleting_a_session_does_not_scan_the_whole_index(tmp_path):
    # The reference triggers found a message's index row by an unindexed column:
    # every deleted message read every row of the index.
    from loom_models.sessions import SessionRepository

    with SessionRepository.open(tmp_path / "small.db") as small, SessionRepository.open(tmp_path / "big.db") as big:
        few, many = _steps_to_delete_a_session(small, 100), _steps_to_delete_a_session(big, 5000)
    assert many < 2 * few + 10, (few, many)


def test_index_rows_keyed_otherwise_are_rekeyed_and_the_reference_triggers_come_back_on_down(tmp_path):
    import sqlite3

    from loom_models.migrator import runner
    from loom_models.sessions import SessionRepository

    with SessionRepository.open(tmp_path / "s.db") as sessions:
        # The reference's triggers, which leave rowids to FTS5.
        runner(sessions.database, "sessions").down("0004_search_by_rowid")
        sessions.save_session(Session(id="s"))
        _insert_messages(sessions.database, "s", ["alpha", "beta", "gamma"])
        sessions.database.execute_sql("DELETE FROM messages_fts5 WHERE content = 'alpha'")
        sessions.database.execute_sql(
            "INSERT INTO messages_fts5 (message_id, session_id, role, content, timestamp)"
            " SELECT id, session_id, role, content, timestamp FROM messages WHERE content = 'alpha'"
        )
        assert sessions.migrate() == [
            "0004_search_by_rowid",
            "0005_framework_items",
            "0006_counts",
            "0007_no_prefix_indexes",
            "0008_search_over_messages",
            "0009_index_in_batches",
        ]

        assert sessions.database.execute_sql(
            "SELECT rowid, message_id FROM messages_fts5 ORDER BY rowid"
        ).fetchall() == [(m.id, m.id) for m in sessions.load_messages("s")]
        sessions.delete_session("s")
        assert sessions.database.execute_sql("SELECT COUNT(*) FROM messages_fts5").fetchone() == (0,)

        runner(sessions.database, "sessions").down("0004_search_by_rowid")
    with sqlite3.connect(tmp_path / "s.db") as db:
        triggers = [sql for (sql,) in db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")]
    assert len(triggers) == 3 and all("WHERE message_id = old.id" in t or "VALUES (new.id," in t for t in triggers)


def _fts5_checked(database) -> None:
    """FTS5's own check of the index against the rows it reads (an error when they differ)."""
    database.execute_sql("INSERT INTO messages_fts5 (messages_fts5, rank) VALUES ('integrity-check', 1)")


def test_the_index_keeps_no_copy_of_the_content_and_answers_the_reference_queries(tmp_path):
    import sqlite3

    from loom_models.sessions import SessionRepository

    with SessionRepository.open(tmp_path / "s.db") as sessions:
        sessions.save_session(Session(id="s"))
        saved = sessions.save_message("s", Message(role="user", content="the courier lost my parcel"))
        _insert_messages(sessions.database, "s", ["a parcel written as the reference writes it"])
        assert contents(sessions.search_messages("parcel")) == [
            "the courier lost my parcel",
            "a parcel written as the reference writes it",
        ]
    with sqlite3.connect(tmp_path / "s.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # The reference implementation reads the index's columns by name.
        found = db.execute(
            "SELECT message_id, session_id, role, content, timestamp FROM messages_fts5"
            " WHERE messages_fts5 MATCH 'courier'"
        ).fetchall()
    assert "messages_fts5_content" not in tables  # FTS5's copy of every row it indexes
    assert found == [(saved.id, "s", "user", "the courier lost my parcel", int(saved.timestamp.timestamp()))]


def test_every_change_of_messages_keeps_the_index_in_step(team, backend):
    if backend.name != "sqlite":
        pytest.skip("PostgreSQL's index is an expression index: the server keeps it")
    team.search_messages("plan")  # the team's messages indexed; the next ones wait for a batch
    team.save_message("alone", Message(role="user", content="alice waits"))
    team.save_message("child_b", Message(role="user", content="bob waits too"))
    backend.sql("UPDATE messages SET content = 'alice renamed everything' WHERE content = 'alice alone'")
    backend.sql("UPDATE messages SET content = 'alice renamed while waiting' WHERE content = 'alice waits'")
    team.add_usage("alone", token_count=5, cost_usd=0.5)  # an update of other columns than content
    team.pop_message("child_b")  # a waiting one
    team.clear_messages("coord")  # indexed ones
    assert contents(team.search_messages("renamed")) == ["alice renamed everything", "alice renamed while waiting"]
    _fts5_checked(team.database)
    assert team.search_messages("alone too plan") == []


def test_down_brings_back_the_index_with_its_own_copy_and_up_takes_it_away_with_the_same_hits(tmp_path):
    from loom_models.migrator import runner
    from loom_models.sessions import SessionRepository

    with SessionRepository.open(tmp_path / "s.db") as sessions:
        sessions.save_session(Session(id="s"))
        sessions.save_messages("s", [Message(role="user", content="refund %d for the parcel" % i) for i in range(30)])
        hits = [m.id for m in sessions.search_messages("refund parcel", limit=30)]

        assert runner(sessions.database, "sessions").down() == ["0009_index_in_batches"]
        assert runner(sessions.database, "sessions").down() == ["0008_search_over_messages"]
        assert "messages_fts5_content" in sessions.database.get_tables()
        _fts5_checked(sessions.database)
        assert [m.id for m in sessions.search_messages("refund parcel", limit=30)] == hits

        assert sessions.migrate() == ["0008_search_over_messages", "0009_index_in_batches"]
        assert "messages_fts5_content" not in sessions.database.get_tables()
        _fts5_checked(sessions.database)
        assert [m.id for m in sessions.search_messages("refund parcel", limit=30)] == hits
        sessions.save_message("s", Message(role="user", content="one more refund"))
        assert len(sessions.search_messages("refund", limit=50)) == 31


def _in_the_index(database, word: str) -> list[int]:
    """The ids of the messages the index itself finds for `word`, queried as the reference implementation does."""
    found = database.execute_sql("SELECT message_id FROM messages_fts5 WHERE messages_fts5 MATCH ?", (word,))
    return sorted(i for (i,) in found.fetchall())


def _mark(database) -> int:
    return database.execute_sql("SELECT upto FROM messages_fts5_indexed").fetchone()[0]


def test_new_messages_are_indexed_a_hundred_at_a_time_and_a_search_finds_them_first(tmp_path):
    from loom_models.sessions import SessionRepository

    with SessionRepository.open(tmp_path / "s.db") as sessions:
        sessions.save_session(Session(id="s"))
        first = sessions.save_messages("s", [Message(role="user", content="parcel %d" % i) for i in range(99)])
        assert _in_the_index(sessions.database, "parcel") == [] and _mark(sessions.database) == 0

        hundredth = sessions.save_message("s", Message(role="user", content="parcel 99"))
        assert _in_the_index(sessions.database, "parcel") == [m.id for m in first] + [hundredth.id]
        assert _mark(sessions.database) == hundredth.id

        newest = sessions.save_message("s", Message(role="user", content="the newest parcel"))
        assert newest.id not in _in_the_index(sessions.database, "parcel")
        assert sessions.search_messages("newest") == [newest]
        assert _mark(sessions.database) == newest.id
        assert len(sessions.search_messages("parcel", limit=200)) == 101
        _fts5_checked(sessions.database)


def test_a_message_given_an_id_behind_the_mark_is_indexed_at_once(tmp_path):
    from loom_models.sessions import SessionRepository

    with SessionRepository.open(tmp_path / "s.db") as sessions:
        sessions.save_session(Session(id="s"))
        saved = sessions.save_messages("s", [Message(role="user", content="note %d" % i) for i in range(3)])
        sessions.search_messages("note")  # indexes them: the mark is at the third
        sessions.database.execute_sql("DELETE FROM messages WHERE id = ?", (saved[1].id,))
        _insert_messages(sessions.database, "s", ["a courier came"], ids=[saved[1].id])

        assert _in_the_index(sessions.database, "courier") == [saved[1].id]
        _fts5_checked(sessions.database)


def test_down_indexes_what_waits_and_brings_back_an_index_kept_at_each_commit(tmp_path):
    from loom_models.migrator import runner
    from loom_models.sessions import SessionRepository

    with SessionRepository.open(tmp_path / "s.db") as sessions:
        sessions.save_session(Session(id="s"))
        waiting = sessions.save_messages("s", [Message(role="user", content="refund %d" % i) for i in range(5)])

        assert runner(sessions.database, "sessions").down() == ["0009_index_in_batches"]
        assert _in_the_index(sessions.database, "refund") == [m.id for m in waiting]
        assert "messages_fts5_indexed" not in sessions.database.get_tables()
        one_more = sessions.save_message("s", Message(role="user", content="refund again"))
        assert one_more.id in _in_the_index(sessions.database, "refund")
        _fts5_checked(sessions.database)

        assert sessions.migrate() == ["0009_index_in_batches"]
        assert _mark(sessions.database) == one_more.id
        assert len(sessions.search_messages("refund")) == 6

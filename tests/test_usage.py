"""SessionRepository.usage: messages' tokens and cost summed per UTC day, agent or session, on every backend.

The expected sums are read through raw SQL, not through the repository under test.
"""

import datetime

import pytest

from loom_models import ValidationError
from loom_models.sessions import Message, Session

UTC = datetime.timezone.utc
TODAY = datetime.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
MONTH = datetime.timedelta(days=30)


def put(sessions, session_id, agent_id, *messages):
    """A session of `agent_id` with messages (days ago, seconds into that day, tokens, cost)."""
    sessions.save_session(Session(id=session_id, agent_id=agent_id))
    sessions.save_messages(
        session_id,
        [
            Message(
                role="user",
                content="m",
                timestamp=TODAY - datetime.timedelta(days=days) + datetime.timedelta(seconds=second),
                token_count=tokens,
                cost_usd=cost,
            )
            for days, second, tokens, cost in messages
        ],
    )


@pytest.fixture
def filled(sessions):
    put(sessions, "s1", "support", (0, 10, 100, 0.1), (1, 86399, 50, 0.2), (1, 0, 25, 0.000001))
    put(sessions, "s2", "billing", (0, 5, 7, 0.7), (40, 0, 1000, 9.0))
    put(sessions, "s3", None, (2, 3600, 3, 0.3))
    return sessions


def summed(backend, key_sql, since):
    rows = backend.sql(
        "SELECT %s, SUM(m.token_count), SUM(m.cost_usd), COUNT(*) FROM messages m"
        " JOIN sessions s ON s.id = m.session_id WHERE m.timestamp >= ? GROUP BY 1" % key_sql,
        int(since.timestamp()),
    )
    return {key: (int(tokens), float(cost), count) for key, tokens, cost, count in rows}


def test_per_day_is_the_messages_sum_of_each_utc_day_oldest_first(filled, backend):
    usage = filled.usage(by="day", since=MONTH)
    since = datetime.datetime.now(UTC) - MONTH
    # psycopg2 reads a bare % as a placeholder
    modulo = "%%" if backend.name == "postgres" else "%"
    expected = summed(backend, "m.timestamp - m.timestamp %s 86400" % modulo, since)
    assert [u.key for u in usage] == [(TODAY - datetime.timedelta(days=d)).date() for d in (2, 1, 0)]
    got = {int(datetime.datetime(*u.key.timetuple()[:3], tzinfo=UTC).timestamp()): u for u in usage}
    assert {k: (u.tokens, u.cost_usd, u.messages) for k, u in got.items()} == expected
    assert [(u.tokens, u.messages) for u in usage] == [(3, 1), (75, 2), (107, 2)]


def test_per_agent_uses_the_sessions_agent_costliest_first(filled, backend):
    usage = filled.usage(by="agent", since=MONTH)
    expected = summed(backend, "s.agent_id", datetime.datetime.now(UTC) - MONTH)
    assert {u.key: (u.tokens, u.cost_usd, u.messages) for u in usage} == expected
    assert [u.key for u in usage] == ["billing", "support", None]  # $0.300001 before $0.3


def test_per_session_and_since_leaves_older_messages_out(filled, backend):
    usage = filled.usage(by="session", since=datetime.timedelta(days=60))
    expected = summed(backend, "m.session_id", datetime.datetime.now(UTC) - datetime.timedelta(days=60))
    assert {u.key: (u.tokens, u.cost_usd, u.messages) for u in usage} == expected
    assert usage[0].key == "s2" and usage[0].tokens == 1007
    assert {u.key: u.tokens for u in filled.usage(by="session", since=MONTH)} == {"s1": 175, "s2": 7, "s3": 3}


def test_a_day_ends_at_midnight_utc(sessions):
    put(sessions, "s1", "a", (1, 86399, 1, 0.0), (0, 0, 2, 0.0))
    assert [(u.key, u.tokens) for u in sessions.usage(since=MONTH)] == [
        ((TODAY - datetime.timedelta(days=1)).date(), 1),
        (TODAY.date(), 2),
    ]


def test_no_messages_no_rows(sessions):
    assert sessions.usage(by="agent", since=MONTH) == []


def test_an_unknown_grouping_or_a_future_since_is_refused(sessions):
    with pytest.raises(ValidationError, match="by"):
        sessions.usage(by="week", since=MONTH)
    with pytest.raises(ValidationError):
        sessions.usage(since=datetime.datetime.now(UTC) + MONTH)

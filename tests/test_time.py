"""Times: an aware datetime is the moment it says; a naive one is local time, as
`datetime.timestamp()` reads it; the store gives back aware UTC."""

import datetime

import pytest

from loom_models import ValidationError
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session

UTC = datetime.timezone.utc
NOON_IN_NEW_YORK = datetime.datetime(2026, 1, 15, 12, 0)  # naive: 17:00 UTC in winter
SAME_MOMENT = datetime.datetime(2026, 1, 15, 17, 0, tzinfo=UTC)


def test_a_naive_time_is_local_time(sessions, backend, new_york):
    sessions.save_session(Session(id="s", created_at=NOON_IN_NEW_YORK))
    saved = sessions.save_message("s", Message(role="user", content="hi", timestamp=NOON_IN_NEW_YORK))

    assert saved.timestamp == SAME_MOMENT and saved.timestamp.tzinfo is not None
    assert backend.sql("SELECT timestamp FROM messages") == [(int(SAME_MOMENT.timestamp()),)]
    assert backend.sql("SELECT created_at FROM sessions") == [(int(SAME_MOMENT.timestamp()),)]


def test_now_in_local_time_keeps_the_conversation_in_order(sessions, new_york):
    sessions.save_session(Session(id="s"))
    sessions.save_message("s", Message(role="user", content="first", timestamp=datetime.datetime.now(UTC)))
    sessions.save_message("s", Message(role="assistant", content="second", timestamp=datetime.datetime.now()))

    assert [m.content for m in sessions.load_messages("s")] == ["first", "second"]


def test_aware_times_are_unchanged_whatever_the_local_zone(sessions, backend, new_york):
    tokyo = datetime.timezone(datetime.timedelta(hours=9))
    sessions.save_session(Session(id="s"))
    sessions.save_message("s", Message(role="user", timestamp=SAME_MOMENT.astimezone(tokyo)))

    assert backend.sql("SELECT timestamp FROM messages") == [(int(SAME_MOMENT.timestamp()),)]


def test_a_naive_iso_string_is_local_time_too(sessions, new_york):
    sessions.save_session({"id": "s"})
    saved = sessions.save_message("s", {"role": "user", "timestamp": "2026-01-15T12:00:00"})

    assert saved.timestamp == SAME_MOMENT


def test_naive_request_times_and_cutoffs_are_local(hitl, sessions, backend, new_york):
    request = hitl.store(HumanRequest(agent_id="a", session_id="s", question="ok?", created_at=NOON_IN_NEW_YORK))
    assert request.created_at == SAME_MOMENT
    assert backend.sql("SELECT created_at FROM human_requests") == [(int(SAME_MOMENT.timestamp()) * 1000,)]

    sessions.save_session(Session(id="old"))
    backend.sql("UPDATE sessions SET updated_at = ?", int(SAME_MOMENT.timestamp()))
    assert sessions.delete_sessions_older_than(NOON_IN_NEW_YORK) == 0  # the same moment: not older
    assert sessions.delete_sessions_older_than(NOON_IN_NEW_YORK + datetime.timedelta(seconds=1)) == 1


def test_naive_times_at_the_ends_of_the_calendar(sessions, backend, new_york):
    sessions.save_session(Session(id="s"))
    with pytest.raises(ValidationError, match="timestamp"):  # in UTC: the year 10000
        sessions.save_message("s", Message(role="user", timestamp=datetime.datetime(9999, 12, 31, 23, 59)))
    assert sessions.delete_sessions_older_than(datetime.datetime(1, 1, 1)) == 0  # 05:00 UTC that day

    assert sessions.save_message(
        "s", Message(role="user", timestamp=datetime.datetime(9999, 12, 31, 18, 59))
    ).timestamp == (datetime.datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
    assert backend.sql("SELECT COUNT(*) FROM sessions") == [(1,)]

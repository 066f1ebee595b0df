"""The retry helper: bounded attempts, backoff with jitter, only for retryable errors."""

import threading
import time

import pytest

from loom_models import DatabaseLockedError, DiskFullError, NotFoundError, ValidationError
from loom_models.retry import retry
from loom_models.sessions import Message, Session, SessionRepository


class Flaky:
    def __init__(self, *errors):
        self.errors, self.calls = list(errors), 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_retryable_errors_are_retried_with_growing_jittered_pauses():
    call, pauses = Flaky(DatabaseLockedError("locked"), DiskFullError("full"), DatabaseLockedError("locked")), []

    assert retry(call, base_delay=0.1, max_delay=0.3, sleep=pauses.append, jitter=lambda: 0.5) == "done"

    assert call.calls == 4
    assert pauses == [0.05, 0.1, 0.15]  # half (the jitter) of 0.1, 0.2, then the 0.3 cap


def test_other_errors_are_raised_at_once():
    call, pauses = Flaky(NotFoundError("gone")), []

    with pytest.raises(NotFoundError):
        retry(call, sleep=pauses.append)
    assert (call.calls, pauses) == (1, [])


def test_the_last_attempts_error_is_raised():
    call = Flaky(*[DatabaseLockedError("locked %d" % i) for i in range(5)])

    with pytest.raises(DatabaseLockedError, match="locked 2"):
        retry(call, attempts=3, sleep=lambda s: None)
    assert call.calls == 3


@pytest.mark.parametrize("attempts", [0, -1, 1.5, True])
def test_attempts_must_be_positive(attempts):
    with pytest.raises(ValidationError):
        retry(lambda: None, attempts=attempts)


def test_a_write_held_up_by_another_writer_gets_through(backend):
    with SessionRepository.open(backend.target) as owner:
        owner.save_session(Session(id="s"))
    repo = SessionRepository(backend.database(lock_timeout_ms=50))
    holding = threading.Event()

    def hold():
        with backend.write_lock():
            holding.set()
            time.sleep(0.4)  # eight lock timeouts

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    try:
        saved = retry(
            lambda: repo.save_message("s", Message(role="user", content="patient")),
            attempts=20,
            base_delay=0.05,
            max_delay=0.2,
        )
    finally:
        holder.join()
    assert saved.content == "patient"
    repo.database.close()

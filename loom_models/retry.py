"""Calling again after a passing failure: a locked database, a disk being freed.

    from loom_models.retry import retry

    saved = retry(lambda: storage.sessions.save_message("sess_1", message))
    retry(storage.hitl.expire_overdue, attempts=10, max_delay=5.0)

Only errors whose `retryable` is true are retried (DatabaseLockedError,
DiskFullError, DatabaseUnavailableError); any other error, or the last attempt's, is raised as it is.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import LoomStorageError, ValidationError

T = TypeVar("T")


def retry(
    call: Callable[[], T],
    *,
    attempts: int = 5,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
    sleep: Callable[[float], object] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """`call()`, tried up to `attempts` times with exponential backoff and full jitter.

    Before attempt n+1 it sleeps a random time up to min(max_delay, base_delay * 2**(n-1)):
    callers that collided once spread out instead of colliding again.
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValidationError({"attempts": ["Must be a positive integer."]})
    for attempt in range(1, attempts):
        try:
            return call()
        except LoomStorageError as error:
            if not error.retryable:
                raise
            sleep(min(max_delay, base_delay * 2 ** (attempt - 1)) * jitter())
    return call()  # the last attempt: what it raises, the caller gets

"""Ids as loom-db shows and takes them: listings show a generated id's start, and a command takes any start of one id.

    short_ids(["req_0bc286e6a5c4464e8161ef6e3b1c2a6a", "approval-42"])   # ['req_0bc286e6a5c4', 'approval-42']
    full_id(storage.hitl, "req_0bc2", "request")     # 'req_0bc286e6a5c4464e8161ef6e3b1c2a6a'

As git's short commit ids: a generated id (a prefix and 32 random hex digits,
or a SHA-256) is unique long before its end, and a table of whole 37-character
ids does not fit an 80-column terminal. An id a person chose is shown whole: its
start may be another id, or the start of many.
"""

from __future__ import annotations

import itertools
import re

from ..errors import NotFoundError, ValidationError

# A listing shows at least this many characters of a generated id: its prefix and 11 or 12 hex digits.
SHORT_ID = 16
_GENERATED = re.compile(r"([a-z]+_)?[0-9a-f]{32,64}")


def short_ids(ids: list[str], keep: int = SHORT_ID) -> list[str]:
    """Each generated id's start, `keep` characters or as many more as tell it from the others listed.

    short_ids(["req_0bc286e6a5c4464e...", "req_0bc286e6a5c4ffff..."])   # ['req_0bc286e6a5c44', 'req_0bc286e6a5c4f']

    A start shared with an id not listed is refused by full_id, never taken for the other.
    """
    length = {full: keep if _GENERATED.fullmatch(full) else len(full) for full in ids}
    for one, other in itertools.pairwise(sorted(length)):  # an id shares the most with its neighbours
        needed = _shared(one, other) + 1
        length[one], length[other] = max(length[one], needed), max(length[other], needed)
    return [full[: length[full]] for full in ids]


def _shared(one: str, other: str) -> int:
    """How many characters two ids share at their start."""
    return next((i for i, (a, b) in enumerate(zip(one, other, strict=False)) if a != b), min(len(one), len(other)))


def full_id(repository, given: str, noun: str) -> str:
    """The id that `given` is, or that it alone starts, among the repository's (its ids_starting)."""
    if repository.ids_starting(given, limit=1) == [given]:  # an id: found by its key alone
        return given
    found = repository.ids_starting(given, limit=2)
    if not found:
        raise NotFoundError("%s not found: %s" % (noun, given))
    if len(found) > 1:
        raise ValidationError({"id": ["%s starts more than one %s's id: give more of it." % (given, noun)]})
    return found[0]

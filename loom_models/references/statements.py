"""The statements of the references domain: store, resolve, retain and release, built once.

    sql = ReferenceStatements(refs.Reference)        # a repository's bound model
    sql.store.models(**row, now=utc_now())          # [the stored row, without its bytes]
    sql.retain.rows(id=reference_id, now=utc_now())  # [(new count,)], or [] if not live

Each statement's parameters convert their values as their fields do
(statements.param): a time in, an integer of seconds bound.
"""

from __future__ import annotations

import datetime

import peewee
from peewee import EXCLUDED, SQL, Case

from ..statements import Statement, param
from .models import Reference


def expired(R: type[Reference], now: datetime.datetime | peewee.Node) -> peewee.Expression:
    """Whether a row has expired at `now` (an expiry of 0 is never)."""
    return (R.expires_at != SQL("0")) & (R.expires_at <= now)


class ReferenceStatements:
    def __init__(self, R: type[Reference]) -> None:
        self.metadata = [f for f in R._meta.sorted_fields if f.name != "data"]  # all but the bytes
        now, reference_id, zero, one = param(R.expires_at, "now"), param(R.id), SQL("0"), SQL("1")
        # A row expired or released to 0 but not yet collected is content nobody
        # holds: stored again, it starts afresh, as if it had been collected.
        stale = expired(R, now) | (R.ref_count <= zero)
        never = (R.expires_at == zero) | (EXCLUDED.expires_at == zero)
        later = Case(None, [(never, zero), (EXCLUDED.expires_at > R.expires_at, EXCLUDED.expires_at)], R.expires_at)
        store = R.insert({f: param(f) for f in R._meta.sorted_fields}).on_conflict(
            conflict_target=[R.id],
            update={
                R.ref_count: Case(None, [(stale, one)], R.ref_count + one),
                R.created_at: Case(None, [(stale, EXCLUDED.created_at)], R.created_at),
                R.type: Case(None, [(stale, EXCLUDED.type)], R.type),
                R.expires_at: later,
            },
        )
        live = (R.id == reference_id) & (R.ref_count > zero) & ~expired(R, now)
        self.store = Statement(store.returning(*self.metadata))
        self.resolve = Statement(R.select(R.data, R.expires_at, R.ref_count).where(R.id == reference_id))
        self.retain = Statement(R.update(ref_count=R.ref_count + one).where(live).returning(R.ref_count))
        # The last reference deletes the row outright, never rewriting it first.
        self.delete_last = Statement(R.delete().where(R.id == reference_id, R.ref_count <= one))
        self.release = Statement(
            R.update(ref_count=R.ref_count - one).where(R.id == reference_id).returning(R.ref_count)
        )

"""StoreItemRepository: the items of LangGraph's long-term memory store (BaseStore), in checkpoints.db.

    from langgraph.store.base import GetOp, PutOp
    from loom_models import open_storage
    from loom_models.checkpoints.items import StoreItemRepository

    with open_storage("./loom-data") as storage:
        items = StoreItemRepository(storage.checkpoints.database, storage.checkpoints.tracer)
        items.batch([PutOp(("users", "u1"), "prefs", {"theme": "dark"}, ttl=60), GetOp(("users", "u1"), "seen")])
        items.get(("users", "u1"), "prefs").value                 # {'theme': 'dark'}
        items.search(("users",), filter={"theme": {"$ne": "light"}}, limit=10, offset=10)
        items.list_namespaces(prefix=("users", "*"), max_depth=2)
        items.sweep_expired()                                      # how many expired rows went

The ops and the results are LangGraph's own (langgraph.store.base: this module
needs the `langgraph` extra); integrations.langgraph.LoomStore is the
BaseStore over it. A value is stored as JSON text; a namespace as its labels
joined by "." (migrations/checkpoints/0002_store_items.py says why).

An expired item is never read, whether or not a sweep has removed it yet. A
read that refreshes TTLs (an op's `refresh_ttl`) extends only the items it
returned that have a TTL and have not expired meanwhile: it never brings one back.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard, cast

import peewee
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)
from peewee import EXCLUDED, Case, Tuple

from ..base import bind_models
from ..calls import repository_call
from ..columns import corrupt, utc_now
from ..errors import ValidationError
from ..repository import Repository
from ..validation import check_time, storable
from .models import StoreItem

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

# Keys looked up in one statement (two bound values each), rows per INSERT (seven
# each): well under every backend's limit on bound parameters.
_KEYS_PER_QUERY = 200
_ROWS_PER_INSERT = 100
# Rows a filtered search reads at a time, newest first, until it has its page.
_SEARCH_PAGE = 100
# Rows a sweep deletes in one transaction: it never holds the write lock for long.
SWEEP_BATCH = 200

# A filter key is a path of member names joined by "." (nested members), as
# LangGraph's SQL stores take it; anything else is refused, never guessed at.
_FILTER_KEY = re.compile(r"[\w-]+(?:\.[\w-]+)*")
_ORDERED = ("$gt", "$gte", "$lt", "$lte")
_MISSING = object()  # a member the value does not have


class StoreInputError(ValidationError, ValueError):
    """Bad input to the store: a loom ValidationError, and the ValueError LangGraph's own stores raise for it."""


class _Search(NamedTuple):
    prefix: tuple[str, ...]
    conditions: list[tuple[list[str], Any]]  # (path, what its value must be)
    limit: int
    offset: int


class _Listing(NamedTuple):
    conditions: list[MatchCondition]
    max_depth: int | None
    limit: int
    offset: int


class StoreItemRepository(Repository):
    domain = "checkpoints"
    file = "checkpoints.db"
    table = "graph_store_items"
    span_prefix = "graph_store"

    def __init__(self, database: peewee.Database, tracer: Tracer | None = None):
        super().__init__(database, tracer)
        (self.Item,) = bind_models(database, [StoreItem])

    @repository_call()
    def batch(self, ops: Iterable[Op], *, now: datetime.datetime | None = None) -> list[Result]:
        """Run LangGraph's ops in one transaction; a result for each, in order (None for a put).

        items.batch([GetOp(("users", "u1"), "prefs"), PutOp(("users", "u1"), "seen", {"n": 1})])

        Reads see the store as it was before the batch's writes, as LangGraph's
        own stores do, and of two writes to one key the later wins. Every op is
        checked before anything runs: a bad namespace label raises LangGraph's
        InvalidNamespaceError, any other bad input a ValidationError
        (StoreInputError), and nothing is written. `now` is the clock's time
        for the batch (its writes' times and expiries, what has expired).
        """
        ops = list(ops)
        moment = utc_now() if now is None else check_time(now, "now")
        prepared = [self._prepared(op, moment) for op in ops]
        writes = {(row["namespace"], row["key"]): row for row in prepared if isinstance(row, dict)}
        if not writes:
            with self.backend.snapshot():
                results, stale = self._read(ops, prepared, moment)
            # A refresh, when one is due, is a short write of its own after the
            # reads: reads take no write lock unless an item they return has a TTL.
            if stale:
                with self.backend.write():
                    self._refresh(stale, moment)
            return results
        with self.backend.write():
            results, stale = self._read(ops, prepared, moment)
            self._refresh(stale, moment)
            self._write(list(writes.values()), moment)
        return results

    @repository_call()
    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool = False) -> Item | None:
        """The live item at `key` of `namespace`, or None.

        items.get(("users", "u1"), "prefs", refresh_ttl=True)   # and its TTL starts again
        """
        return cast("Item | None", self.batch([GetOp(tuple(namespace), key, refresh_ttl)])[0])

    @repository_call()
    def search(
        self,
        namespace_prefix: tuple[str, ...] = (),
        *,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool = False,
    ) -> list[SearchItem]:
        """Live items in `namespace_prefix` and below whose values pass `filter`, newest first.

        items.search(("docs",), filter={"status": "published", "score": {"$gte": 4}}, limit=20)

        Each filter key is a member's name, or a path of names joined by "."; its
        value is what the member must equal (an object: the members it names, each
        equal), or operators: $eq, $ne, $gt, $gte, $lt, $lte (ordering numbers
        with numbers, texts with texts). Items updated at the same moment come
        by namespace and key, both descending: `offset` pages never overlap.
        """
        found = self.batch([SearchOp(tuple(namespace_prefix), filter, limit, offset, None, refresh_ttl)])[0]
        return cast("list[SearchItem]", found)

    @repository_call()
    def list_namespaces(
        self,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """The namespaces that hold live items, in order, each cut to `max_depth` labels.

        items.list_namespaces(prefix=("users", "*", "memories"), max_depth=3)

        A "*" label in `prefix` or `suffix` stands for any one label.
        """
        conditions = [MatchCondition("prefix", tuple(prefix))] if prefix else []
        conditions += [MatchCondition("suffix", tuple(suffix))] if suffix else []
        found = self.batch([ListNamespacesOp(tuple(conditions), max_depth, limit, offset)])[0]
        return cast("list[tuple[str, ...]]", found)

    @repository_call()
    def sweep_expired(self, now: datetime.datetime | None = None, *, batches: int | None = None) -> int:
        """Delete the expired items, SWEEP_BATCH a transaction; return how many went.

        items.sweep_expired()             # until none is left
        items.sweep_expired(batches=1)    # one short transaction, for a sweeper that gives way
        """
        if batches is not None and (isinstance(batches, bool) or not isinstance(batches, int) or batches < 1):
            raise StoreInputError({"batches": ["Must be a positive integer, or None."]})
        S = self.Item
        expired = S.expires_at <= (utc_now() if now is None else check_time(now, "now"))
        removed, done = 0, 0
        while batches is None or done < batches:
            with self.backend.write():
                query = self.backend.skip_locked(S.select(S.namespace, S.key).where(expired).limit(SWEEP_BATCH))
                keys = [tuple(key) for key in query.tuples()]
                # The condition again: an item written anew meanwhile has not expired.
                removed += S.delete().where(Tuple(S.namespace, S.key).in_(keys), expired).execute() if keys else 0
            done += 1
            if len(keys) < SWEEP_BATCH:
                break
        return removed

    # -- checking ------------------------------------------------------------------------------

    def _prepared(self, op: Op, moment: datetime.datetime) -> Any:
        """The checked form of an op: a row to write, a key, a search or a listing."""
        if not isinstance(op, (GetOp, PutOp, SearchOp, ListNamespacesOp)):
            raise StoreInputError(
                {"ops": ["Expected LangGraph's GetOp, PutOp, SearchOp or ListNamespacesOp, got %r." % (op,)]}
            )
        validate_op_namespace(op)
        if isinstance(op, ListNamespacesOp):
            return _listing(op)
        if isinstance(op, SearchOp):
            prefix = _labels(op.namespace_prefix)
            return _Search(prefix, _conditions(op.filter), _count(op.limit, "limit"), _count(op.offset, "offset"))
        namespace, key = _namespace_text(_labels(op.namespace)), _key(op.key)
        if isinstance(op, GetOp):
            return (namespace, key)
        if not op.namespace:
            raise InvalidNamespaceError("Namespace cannot be empty.")
        if op.value is None:
            return {"namespace": namespace, "key": key, "value": None}
        return item_row(namespace, key, op.value, op.ttl, moment)

    # -- reading -------------------------------------------------------------------------------

    def _read(self, ops: list[Op], prepared: list[Any], moment: datetime.datetime) -> tuple[list[Result], list]:
        """Each op's result (None for a write), and the rows whose TTL the reads are to refresh."""
        keys = [key for op, key in zip(ops, prepared, strict=True) if isinstance(op, GetOp)]
        found = self._rows(keys, moment)
        results: list[Result] = []
        stale = []
        for op, plan in zip(ops, prepared, strict=True):
            if isinstance(op, GetOp):
                row = found.get(plan)
                results.append(None if row is None else _item(row, _decoded(row), Item))
                rows = [] if row is None else [row]
            elif isinstance(op, SearchOp):
                pairs = self._search(plan, moment)
                results.append([_item(row, value, SearchItem) for row, value in pairs])
                rows = [row for row, _ in pairs]
            elif isinstance(op, ListNamespacesOp):
                results.append(self._namespaces(plan, moment))
                rows = []
            else:
                results.append(None)
                rows = []
            if getattr(op, "refresh_ttl", False):
                stale += [row for row in rows if row.ttl_minutes is not None]
        return results, stale

    def _rows(self, keys: list[tuple[str, str]], moment: datetime.datetime) -> dict[tuple[str, str], StoreItem]:
        S = self.Item
        unique = sorted(set(keys))
        found = {}
        for start in range(0, len(unique), _KEYS_PER_QUERY):
            query = S.select().where(
                Tuple(S.namespace, S.key).in_(unique[start : start + _KEYS_PER_QUERY]), _live(S, moment)
            )
            found.update({(row.namespace, row.key): row for row in query})
        return found

    def _search(self, search: _Search, moment: datetime.datetime) -> list[tuple[StoreItem, dict]]:
        """The page of live items the search asks for, each with its value decoded."""
        S = self.Item
        if search.limit == 0:
            return []
        query = S.select().where(_live(S, moment), *_within(S.namespace, search.prefix))
        order = (S.updated_at, S.namespace, S.key)
        query = query.order_by(*(field.desc() for field in order))
        if not search.conditions:
            return [(row, _decoded(row)) for row in query.limit(search.limit).offset(search.offset)]
        # The filter is applied here, the same on both backends (JSON in SQL is
        # each backend's own): read newest first, a page at a time, until the
        # page asked for is full.
        wanted = search.offset + search.limit
        matched: list[tuple[StoreItem, dict]] = []
        last: tuple | None = None
        while len(matched) < wanted:
            page = (
                query
                if last is None
                else query.where(Tuple(*order) < Tuple(*(f.db_value(v) for f, v in zip(order, last, strict=True))))
            )
            rows = list(page.limit(_SEARCH_PAGE))
            decoded = [(row, _decoded(row)) for row in rows]
            matched += [(row, value) for row, value in decoded if _passes(value, search.conditions)]
            if len(rows) < _SEARCH_PAGE:
                break
            last = (rows[-1].updated_at, rows[-1].namespace, rows[-1].key)
        return matched[search.offset : wanted]

    def _namespaces(self, listing: _Listing, moment: datetime.datetime) -> list[tuple[str, ...]]:
        S = self.Item
        if listing.limit == 0:
            return []
        query = S.select(S.namespace).distinct().where(_live(S, moment)).order_by(S.namespace)
        prefix = next((c.path for c in listing.conditions if c.match_type == "prefix"), ())
        literal = _literal_start(prefix)
        query = query.where(*_within(S.namespace, literal))
        if listing.max_depth is None and all(
            c.match_type == "prefix" and c.path == literal for c in listing.conditions
        ):
            # A plain prefix, or none: SQL pages the listing itself.
            return [_namespace_of(text) for (text,) in query.limit(listing.limit).offset(listing.offset).tuples()]
        # A "*" label or a suffix: matched label by label here.
        chosen = set()
        for (text,) in query.tuples():
            namespace = _namespace_of(text)
            if all(_matches(condition, namespace) for condition in listing.conditions):
                chosen.add(namespace[: listing.max_depth] if listing.max_depth else namespace)
        ordered = sorted(chosen, key=_namespace_text)  # as SQL orders the joined text
        return ordered[listing.offset : listing.offset + listing.limit]

    # -- writing -------------------------------------------------------------------------------

    def _refresh(self, rows: list[StoreItem], moment: datetime.datetime) -> None:
        """Start the TTL of these items again, unless one has expired (it stays so) or expires later already."""
        S = self.Item
        by_ttl: dict[float, set[tuple[str, str]]] = {}
        for row in rows:
            if row.ttl_minutes is not None:
                by_ttl.setdefault(row.ttl_minutes, set()).add((row.namespace, row.key))
        for ttl, keys in by_ttl.items():
            expiry, ordered = _expiry(moment, ttl), sorted(keys)
            for start in range(0, len(ordered), _KEYS_PER_QUERY):
                S.update(expires_at=expiry).where(
                    Tuple(S.namespace, S.key).in_(ordered[start : start + _KEYS_PER_QUERY]),
                    S.ttl_minutes == ttl,
                    S.expires_at > moment,
                    S.expires_at < expiry,
                ).execute()

    def _write(self, rows: list[dict], moment: datetime.datetime) -> None:
        S = self.Item
        doomed = [(row["namespace"], row["key"]) for row in rows if row["value"] is None]
        for start in range(0, len(doomed), _KEYS_PER_QUERY):
            S.delete().where(Tuple(S.namespace, S.key).in_(doomed[start : start + _KEYS_PER_QUERY])).execute()
        kept = [row for row in rows if row["value"] is not None]
        # An item put over an expired one is a new item: it is created now.
        changed = {
            field: getattr(EXCLUDED, field.column_name)
            for field in (S.value, S.updated_at, S.expires_at, S.ttl_minutes)
        }
        changed[S.created_at] = Case(None, [(S.expires_at <= moment, EXCLUDED.created_at)], S.created_at)
        for start in range(0, len(kept), _ROWS_PER_INSERT):
            batch = kept[start : start + _ROWS_PER_INSERT]
            S.insert_many(batch).on_conflict(conflict_target=[S.namespace, S.key], update=changed).execute()


def item_row(namespace: str, key: str, value: Any, ttl: Any, moment: datetime.datetime) -> dict:
    """The row of an item put at `moment`; StoreInputError unless `value` is a JSON object and `ttl` minutes or None.

    item_row("users.u1", "prefs", {"theme": "dark"}, 60, utc_now())["expires_at"]
    """
    ttl = _ttl(ttl)
    return {
        "namespace": namespace,
        "key": key,
        "value": _json_object(value),
        "created_at": moment,
        "updated_at": moment,
        "expires_at": None if ttl is None else _expiry(moment, ttl),
        "ttl_minutes": ttl,
    }


def _live(S: type[StoreItem], moment: datetime.datetime) -> peewee.Expression:
    return S.expires_at.is_null() | (S.expires_at > moment)


def _within(column: peewee.Field, prefix: Sequence[str]) -> list[peewee.Expression]:
    """The condition that a namespace is `prefix` or under it: a range of the key, no LIKE (labels hold % and _)."""
    if not prefix:
        return []
    text = _namespace_text(prefix)
    return [(column == text) | ((column >= text + ".") & (column < text + "/"))]


def _literal_start(path: Sequence[str]) -> tuple[str, ...]:
    """The labels of a pattern before its first "*"."""
    labels = list(path)
    return tuple(labels[: labels.index("*")] if "*" in labels else labels)


def _matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    labels = namespace[: len(path)] if condition.match_type == "prefix" else namespace[len(namespace) - len(path) :]
    return all(wanted in ("*", label) for wanted, label in zip(path, labels, strict=True))


def _item(row: StoreItem, value: dict, kind: Callable[..., Item]) -> Any:
    return kind(
        namespace=_namespace_of(row.namespace),
        key=row.key,
        value=value,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _decoded(row: StoreItem) -> dict:
    try:
        value = json.loads(row.value)
    except (TypeError, ValueError):
        raise corrupt(StoreItem.value, "JSON", row.value) from None
    if not isinstance(value, dict):
        raise corrupt(StoreItem.value, "a JSON object", row.value)
    return value


def _namespace_text(namespace: Sequence[str]) -> str:
    return ".".join(namespace)


def _namespace_of(text: str) -> tuple[str, ...]:
    return tuple(text.split("."))


# -- input -------------------------------------------------------------------------------------


def _labels(namespace: Sequence[str]) -> tuple[str, ...]:
    """A namespace whose labels LangGraph's check passed, which both backends store as they are."""
    for label in namespace:
        if not storable(label):
            raise InvalidNamespaceError("Invalid namespace label %r found in %r: lone surrogates." % (label, namespace))
    return tuple(namespace)


def _key(key: object) -> str:
    if not isinstance(key, str) or not storable(key):
        raise StoreInputError({"key": ["Must be a string without NUL characters or lone surrogates."]})
    return key


def _json_object(value: object) -> str:
    if not isinstance(value, Mapping):
        raise StoreInputError({"value": ["Must be a mapping (a JSON object), got %s." % type(value).__name__]})
    try:
        text = json.dumps(dict(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as error:
        raise StoreInputError({"value": ["Must be JSON: %s." % error]}) from None
    if not _string_keys(value):
        raise StoreInputError({"value": ["Every key of an object must be a string."]})
    # A lone surrogate is escaped, as \udXXX: stored as it is, it would not be valid text.
    return text if storable(text) else json.dumps(dict(value), allow_nan=False, separators=(",", ":"))


def _string_keys(value: object) -> bool:
    if isinstance(value, Mapping):
        return all(isinstance(key, str) and _string_keys(member) for key, member in value.items())
    if isinstance(value, (list, tuple)):
        return all(_string_keys(member) for member in value)
    return True


def _ttl(ttl: object) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise StoreInputError({"ttl": ["Must be a number of minutes above 0, or None (never expires)."]})
    return float(ttl)


def _expiry(moment: datetime.datetime, ttl: float) -> datetime.datetime:
    # Whole milliseconds on disk: rounded up, so an item lives at least its TTL.
    try:
        end = moment + datetime.timedelta(minutes=ttl)
    except OverflowError:
        raise StoreInputError({"ttl": ["%g minutes from now is past the year 9999." % ttl]}) from None
    whole = end.replace(microsecond=end.microsecond // 1000 * 1000)
    return whole if whole == end else whole + datetime.timedelta(milliseconds=1)


def _count(value: object, name: str) -> int:
    """A limit or an offset: an int of 0 or more (a limit of 0 gives nothing, never everything)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StoreInputError({name: ["Must be an integer of 0 or more."]})
    return value


def _listing(op: ListNamespacesOp) -> _Listing:
    conditions = []
    for condition in op.match_conditions or ():
        if not isinstance(condition, MatchCondition) or condition.match_type not in ("prefix", "suffix"):
            raise StoreInputError(
                {"match_conditions": ["Expected a prefix or suffix MatchCondition, got %r." % (condition,)]}
            )
        if condition.path:  # an empty path constrains nothing
            conditions.append(MatchCondition(condition.match_type, tuple(condition.path)))
    depth = op.max_depth
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise StoreInputError({"max_depth": ["Must be a positive integer, or None."]})
    return _Listing(conditions, depth, _count(op.limit, "limit"), _count(op.offset, "offset"))


def _conditions(filter: object) -> list[tuple[list[str], Any]]:
    """A search filter, checked: (path, what the member there must be) for each of its keys."""
    if filter is None:
        return []
    if not isinstance(filter, Mapping):
        raise StoreInputError(
            {"filter": ["Must be a mapping of member names to values, got %s." % type(filter).__name__]}
        )
    for key, expected in filter.items():
        if not isinstance(key, str) or not _FILTER_KEY.fullmatch(key):
            raise StoreInputError(
                {
                    "filter": [
                        "Invalid filter key: %r; a key is names of letters, digits, _ and - joined by '.'." % (key,)
                    ]
                }
            )
        _check_expected(expected)
    return [(key.split("."), expected) for key, expected in filter.items()]


def _check_expected(expected: object) -> None:
    if _operators(expected):
        for operator, operand in expected.items():
            if operator in _ORDERED and (isinstance(operand, bool) or not isinstance(operand, (int, float, str))):
                raise StoreInputError(
                    {"filter": ["%s compares with a number or a text, not %r." % (operator, operand)]}
                )
            if operator not in _ORDERED and operator not in ("$eq", "$ne"):
                raise StoreInputError(
                    {"filter": ["Unsupported operator: %r; expected $eq, $ne, $gt, $gte, $lt or $lte." % (operator,)]}
                )
            if operator in ("$eq", "$ne"):
                _check_expected(operand)
    elif isinstance(expected, Mapping):
        for member in expected.values():
            _check_expected(member)
    elif isinstance(expected, (list, tuple)):
        for member in expected:
            _check_expected(member)
    elif expected is not None and not isinstance(expected, (str, int, float)):
        raise StoreInputError({"filter": ["Values must be JSON: %r is not." % (expected,)]})


def _operators(expected: object) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(expected, Mapping) and any(isinstance(key, str) and key.startswith("$") for key in expected)


def _passes(value: dict, conditions: list[tuple[list[str], Any]]) -> bool:
    return all(_holds(_member(value, path), expected) for path, expected in conditions)


def _member(value: Any, path: list[str]) -> Any:
    for name in path:
        if not isinstance(value, dict) or name not in value:
            return _MISSING
        value = value[name]
    return value


def _holds(actual: Any, expected: Any) -> bool:
    """Whether a member's value is what a filter asks of it (a missing member is null)."""
    if _operators(expected):
        return all(_compares(actual, operator, operand) for operator, operand in expected.items())
    if isinstance(expected, Mapping):
        return isinstance(actual, dict) and all(_holds(actual.get(k, _MISSING), v) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_holds(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if expected is None:
        return actual is None or actual is _MISSING
    # JSON's types must agree too: true is not 1, nor "1".
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and actual == expected
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and actual == expected
    return isinstance(actual, str) and actual == expected


def _compares(actual: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return _holds(actual, operand)
    if operator == "$ne":
        return not _holds(actual, operand)
    if isinstance(operand, str):
        if not isinstance(actual, str):
            return False
    elif isinstance(actual, bool) or not isinstance(actual, (int, float)):
        return False
    if operator == "$gt":
        return actual > operand
    if operator == "$gte":
        return actual >= operand
    if operator == "$lt":
        return actual < operand
    return actual <= operand

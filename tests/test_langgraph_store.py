"""LoomStore and AsyncLoomStore, LangGraph's long-term memory store on loom, on whichever backend `backend` gives.

Rows are checked through raw SQL (data_store.sql); times are moved by writing
through the repository with `now=` in the past, never by waiting.
"""

import asyncio
import datetime
import json
import math
import os
import threading
import time

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, MatchCondition, PutOp, SearchOp

from loom_models import LoomStorageError, ValidationError, aio, open_storage
from loom_models.checkpoints.items import SWEEP_BATCH, StoreInputError, StoreItemRepository
from loom_models.integrations.langgraph.store import AsyncLoomStore, LoomStore

UTC = datetime.timezone.utc


def ago(**delta):
    return datetime.datetime.now(UTC) - datetime.timedelta(**delta)


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture
def storage(data_store):
    with open_storage(**data_store.location, gc_interval=0) as opened:
        yield opened


@pytest.fixture
def store(storage):
    with LoomStore(storage) as opened:
        yield opened


@pytest.fixture
def items(storage):
    return StoreItemRepository(storage.checkpoints.database, storage.checkpoints.tracer)


def rows(data_store, where="1 = 1", *params):
    return data_store.sql(
        "checkpoints",
        "SELECT namespace, key, value, created_at, updated_at, expires_at, ttl_minutes FROM graph_store_items"
        " WHERE %s ORDER BY namespace, key" % where,
        *params,
    )


def namespaces(found):
    return [item.namespace for item in found]


# -- put, get, delete --------------------------------------------------------------------------


def test_an_item_is_one_row_of_json_under_its_joined_namespace(store, data_store):
    before = now_ms()
    store.put(("users", "u1"), "prefs", {"theme": "dark", "sizes": [1, 2.5], "nested": {"ok": True, "none": None}})

    [(namespace, key, value, created, updated, expires, ttl)] = rows(data_store)
    assert (namespace, key, expires, ttl) == ("users.u1", "prefs", None, None)
    assert json.loads(value) == {"theme": "dark", "sizes": [1, 2.5], "nested": {"ok": True, "none": None}}
    assert before <= created == updated <= now_ms()
    item = store.get(("users", "u1"), "prefs")
    assert (item.namespace, item.key, item.value) == (("users", "u1"), "prefs", json.loads(value))
    assert item.created_at == datetime.datetime.fromtimestamp(created / 1000, UTC)
    assert store.storage.checkpoints.stats()["store_items"] == 1  # loom-db stats counts them


def test_a_put_again_replaces_the_value_and_keeps_the_creation_time(store, items, data_store):
    items.batch([PutOp(("docs",), "d1", {"v": 1})], now=ago(minutes=5))
    store.put(("docs",), "d1", {"v": 2})

    [(_, _, value, created, updated, _, _)] = rows(data_store)
    assert json.loads(value) == {"v": 2} and created < updated
    item = store.get(("docs",), "d1")
    assert item.value == {"v": 2} and item.created_at < item.updated_at


def test_delete_removes_the_row_and_get_finds_nothing(store, data_store):
    store.put(("docs",), "d1", {"v": 1})
    store.put(("docs",), "d2", {"v": 2})
    store.delete(("docs",), "d1")
    store.delete(("docs",), "never-there")

    assert [key for _, key, *_ in rows(data_store)] == ["d2"]
    assert store.get(("docs",), "d1") is None
    assert store.get(("other",), "d2") is None


def test_a_batch_reads_before_its_writes_and_the_later_write_to_a_key_wins(store, data_store):
    store.put(("docs",), "d1", {"v": "old"})

    results = store.batch(
        [
            PutOp(("docs",), "d1", {"v": "first"}),
            GetOp(("docs",), "d1"),
            SearchOp(("docs",)),
            PutOp(("docs",), "d1", {"v": "last"}),
            PutOp(("docs",), "d2", {"v": 2}),
            PutOp(("docs",), "d2", None),
            ListNamespacesOp(),
        ]
    )

    assert results[0] is None and results[3] is None
    assert results[1].value == {"v": "old"} and [i.value for i in results[2]] == [{"v": "old"}]
    assert results[6] == [("docs",)]
    assert [(key, json.loads(value)) for _, key, value, *_ in rows(data_store)] == [("d1", {"v": "last"})]


def test_values_come_back_exactly_lone_surrogates_and_all(store):
    value = {"text": "naïve 中文 \U0001f600", "odd": "\ud800 alone", "nul": "a\x00b", "big": 10**30, "neg": -0.5}
    store.put(("docs",), "d1", value)

    assert store.get(("docs",), "d1").value == value


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        GetOp(("foo.bar",), "k"),
        GetOp(("foo", ""), "k"),
        PutOp(("foo", 1), "k", {"v": 1}),
        PutOp(("foo", "\ud800"), "k", {"v": 1}),
        PutOp((), "k", {"v": 1}),
        PutOp(("foo.bar",), "k", None),
        SearchOp(("foo.bar",)),
        ListNamespacesOp((MatchCondition("suffix", ("a.b",)),)),
    ],
)
def test_a_bad_namespace_is_refused_before_anything_in_the_batch_is_applied(store, data_store, op):
    store.put(("foo", "bar"), "k", {"original": True})

    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("valid",), "k", {"v": 1}), PutOp(("foo", "bar"), "k", None), op])

    assert [(namespace, key) for namespace, key, *_ in rows(data_store)] == [("foo.bar", "k")]


@pytest.mark.parametrize(
    "value",
    [
        {"when": datetime.datetime(2026, 1, 1)},
        {"x": math.nan},
        {"x": {1, 2}},
        {"nested": {1: "int key"}},
        ["not", "a", "mapping"],
        "text",
    ],
)
def test_a_value_that_is_no_json_object_is_refused_and_nothing_is_stored(store, data_store, value):
    with pytest.raises(ValidationError) as error:
        store.batch([PutOp(("docs",), "good", {"v": 1}), PutOp(("docs",), "bad", value)])

    assert isinstance(error.value, StoreInputError) and isinstance(error.value, ValueError)
    assert "value" in error.value.messages
    assert rows(data_store) == []


@pytest.mark.parametrize(
    "op, field",
    [
        (PutOp(("docs",), "k", {"v": 1}, ttl=0), "ttl"),
        (PutOp(("docs",), "k", {"v": 1}, ttl=-1), "ttl"),
        (PutOp(("docs",), "k", {"v": 1}, ttl=math.inf), "ttl"),
        (PutOp(("docs",), "k", {"v": 1}, ttl=1e15), "ttl"),
        (PutOp(("docs",), "a\x00b", {"v": 1}), "key"),
        (SearchOp(("docs",), limit=-1), "limit"),
        (SearchOp(("docs",), offset=-1), "offset"),
        (SearchOp(("docs",), limit=True), "limit"),
        (SearchOp(("docs",), filter={"v": {"$like": 1}}), "filter"),
        (SearchOp(("docs",), filter={"v": {"$gt": [1]}}), "filter"),
        (SearchOp(("docs",), filter={"v') OR 1=1 --": 1}), "filter"),
        (SearchOp(("docs",), filter={"": 1}), "filter"),
        (SearchOp(("docs",), filter=["v", 1]), "filter"),
        (ListNamespacesOp(max_depth=0), "max_depth"),
        (ListNamespacesOp(limit=-1), "limit"),
        (ListNamespacesOp((MatchCondition("infix", ("a",)),)), "match_conditions"),
    ],
)
def test_other_bad_input_is_a_validation_error_naming_it_and_nothing_is_stored(store, data_store, op, field):
    with pytest.raises(StoreInputError) as error:
        store.batch([PutOp(("docs",), "good", {"v": 1}), op])

    assert field in error.value.messages
    assert rows(data_store) == []


def test_a_bad_filter_key_is_the_value_error_langgraphs_stores_raise(store):
    with pytest.raises(ValueError, match="Invalid filter key"):
        store.search(("docs",), filter={"access') = 'public' OR '1'='1": "x"})


def test_vector_search_is_refused_with_a_clear_error(storage):
    with pytest.raises(NotImplementedError, match="vector search is not supported"):
        LoomStore(storage, index={"dims": 3, "embed": lambda texts: [[0.0] * 3 for _ in texts]})


@pytest.mark.parametrize(
    "ttl", [{"default_ttl": 0}, {"default_ttl": "1"}, {"refresh_on_read": 1}, {"ttl_minutes": 5}, ["default_ttl"]]
)
def test_a_bad_ttl_config_is_refused(storage, ttl):
    with pytest.raises(ValidationError, match="ttl"):
        LoomStore(storage, ttl=ttl)


# -- search ------------------------------------------------------------------------------------


def test_search_scopes_by_whole_labels_literally_and_case_sensitively(store):
    for namespace in [("foo",), ("foo", "child"), ("foobar",), ("Foo",), ("user_1",), ("userX1",), ("a%b",), ("axb",)]:
        store.put(namespace, "k", {"v": 1})

    def found(prefix):
        return set(namespaces(store.search(prefix, limit=100)))

    assert found(("foo",)) == {("foo",), ("foo", "child")}
    assert found(("fo",)) == set()
    assert found(("Foo",)) == {("Foo",)}
    assert found(("user_1",)) == {("user_1",)}
    assert found(("a%b",)) == {("a%b",)}
    assert len(found(())) == 8


def test_search_with_a_query_and_no_index_ignores_the_query(store):
    store.put(("docs",), "d1", {"text": "hello"})

    [item] = store.search(("docs",), query="something else entirely")
    assert item.key == "d1" and item.score is None


@pytest.fixture
def priced(store):
    values = {
        "a": {"price": 10, "name": "apple", "tags": ["red"], "meta": {"owner": "ann", "level": 1}},
        "b": {"price": 20.5, "name": "banana", "tags": ["yellow", "long"], "meta": {"owner": "bob", "level": 2}},
        "c": {"price": 30, "name": "cherry", "tags": ["red"], "active": True},
        "d": {"price": "cheap", "name": "date", "active": 1, "meta": None},
        "e": {"price": None, "name": "elder"},
    }
    for key, value in values.items():
        store.put(("shop",), key, value)
    return store


@pytest.mark.parametrize(
    "filter, keys",
    [
        ({"name": "apple"}, "a"),
        ({"price": {"$eq": 10}}, "a"),
        ({"price": 10.0}, "a"),
        ({"price": {"$ne": 10}}, "bcde"),
        ({"price": {"$gt": 10}}, "bc"),
        ({"price": {"$gte": 10}}, "abc"),
        ({"price": {"$lt": 30}}, "ab"),
        ({"price": {"$lte": 30, "$gt": 10}}, "bc"),
        ({"price": {"$lt": math.inf}}, "abc"),
        ({"price": {"$gt": -math.inf}}, "abc"),
        ({"price": {"$lt": 10**100}}, "abc"),
        ({"price": {"$eq": math.nan}}, ""),
        ({"name": {"$gte": "c"}}, "cde"),
        ({"name": {"$lt": "banana"}}, "a"),
        ({"price": None}, "e"),
        ({"active": None}, "abe"),
        ({"active": True}, "c"),
        ({"active": 1}, "d"),
        ({"tags": ["red"]}, "ac"),
        ({"tags": ["yellow"]}, ""),
        ({"meta": {"owner": "ann"}}, "a"),
        ({"meta.owner": "bob"}, "b"),
        ({"meta.level": {"$gte": 1}}, "ab"),
        ({"meta": {"level": {"$gt": 1}}}, "b"),
        ({"meta.owner.deeper": None}, "abcde"),
        ({"name": "apple", "price": 20.5}, ""),
        ({"missing": {"$ne": "x"}}, "abcde"),
        ({"name": "apple') OR ('1'='1"}, ""),
    ],
)
def test_filters_and_their_operators(priced, filter, keys):
    assert sorted(item.key for item in priced.search(("shop",), filter=filter, limit=100)) == list(keys)


def test_offset_pages_are_deterministic_when_items_share_their_time(items, store):
    moment = ago(seconds=1)
    puts = [PutOp(("p", str(n % 3)), "k%02d" % n, {"n": n, "even": n % 2 == 0}) for n in range(30)]
    items.batch(puts, now=moment)
    everything = [(item.namespace, item.key) for item in store.search(("p",), limit=100)]

    # Newest first; items of one moment by namespace, then key, descending.
    assert everything == sorted(everything, reverse=True) and len(everything) == 30
    pages = [store.search(("p",), limit=7, offset=offset) for offset in range(0, 30, 7)]
    assert [(item.namespace, item.key) for page in pages for item in page] == everything
    even = [(item.namespace, item.key) for item in store.search(("p",), filter={"even": True}, limit=100)]
    assert even == [key for key in everything if int(key[1][1:]) % 2 == 0]
    assert [(i.namespace, i.key) for i in store.search(("p",), filter={"even": True}, limit=4, offset=5)] == even[5:9]


def test_filtered_pages_reach_past_the_rows_read_at_a_time(items, store):
    items.batch([PutOp(("big",), "k%03d" % n, {"n": n, "pick": n % 5 == 0}) for n in range(260)], now=ago(seconds=1))

    picked = store.search(("big",), filter={"pick": True}, limit=10, offset=45)
    assert [item.key for item in picked] == ["k%03d" % n for n in range(255, -1, -5)][45:52]
    assert store.search(("big",), filter={"pick": True}, limit=0) == []


def test_a_newer_item_comes_first(items, store):
    items.batch([PutOp(("docs",), "old", {"v": 1})], now=ago(minutes=2))
    items.batch([PutOp(("docs",), "new", {"v": 1})], now=ago(minutes=1))

    assert [item.key for item in store.search(("docs",))] == ["new", "old"]


# -- namespaces --------------------------------------------------------------------------------

NAMESPACES = [
    ("test", "documents", "public"),
    ("test", "documents", "private"),
    ("test", "images", "public"),
    ("prod", "documents", "public"),
    ("prod", "documents", "some", "nesting", "public"),
    ("uid", "users", "alice"),
    ("uid", "users", "malice"),
    ("uid", "a", "b", "alice"),
    ("star*",),
    ("starX",),
    ("user_1", "child"),
]


@pytest.fixture
def spread(store):
    for namespace in NAMESPACES:
        store.put(namespace, "k", {"v": 1})
    return store


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"prefix": ("test",)}, [NAMESPACES[1], NAMESPACES[0], NAMESPACES[2]]),
        ({"prefix": ("test", "documents")}, [NAMESPACES[1], NAMESPACES[0]]),
        ({"prefix": ("tes",)}, []),
        ({"suffix": ("public",)}, [NAMESPACES[3], NAMESPACES[4], NAMESPACES[0], NAMESPACES[2]]),
        ({"suffix": ("alice",)}, [NAMESPACES[7], NAMESPACES[5]]),
        ({"prefix": ("uid", "*", "alice")}, [NAMESPACES[5]]),
        ({"prefix": ("*", "documents")}, [NAMESPACES[3], NAMESPACES[4], NAMESPACES[1], NAMESPACES[0]]),
        ({"suffix": ("some", "*", "public")}, [NAMESPACES[4]]),
        ({"prefix": ("test",), "suffix": ("public",)}, [NAMESPACES[0], NAMESPACES[2]]),
        ({"prefix": ("star*",)}, [("star*",)]),
        ({"prefix": ("user_1",)}, [("user_1", "child")]),
        ({"max_depth": 1}, [("prod",), ("star*",), ("starX",), ("test",), ("uid",), ("user_1",)]),
        ({"max_depth": 2, "prefix": ("uid",)}, [("uid", "a"), ("uid", "users")]),
        (
            {"max_depth": 3, "prefix": ("*", "documents")},
            [("prod", "documents", "public"), ("prod", "documents", "some"), NAMESPACES[1], NAMESPACES[0]],
        ),
        ({"prefix": ("uid",), "limit": 2}, [NAMESPACES[7], NAMESPACES[5]]),
        ({"prefix": ("uid",), "offset": 2}, [NAMESPACES[6]]),
        ({"max_depth": 1, "limit": 2, "offset": 1}, [("star*",), ("starX",)]),
        ({"suffix": ("public",), "limit": 2, "offset": 1}, [NAMESPACES[4], NAMESPACES[0]]),
        ({"limit": 0}, []),
    ],
)
def test_list_namespaces(spread, options, expected):
    assert spread.list_namespaces(**options) == expected


def test_namespaces_are_in_code_point_order_on_every_backend(store):
    for namespace in [("a", "b"), ("a-x",), ("B",), ("é",), ("a",)]:
        store.put(namespace, "k", {"v": 1})

    # By the joined text: "a-x" before "a.b", as "-" comes before ".".
    assert store.list_namespaces() == [("B",), ("a",), ("a-x",), ("a", "b"), ("é",)]


# -- TTL ---------------------------------------------------------------------------------------


def test_a_ttl_is_stored_as_minutes_and_an_expiry_in_milliseconds(storage, data_store):
    with LoomStore(storage, ttl={"default_ttl": 60}) as store:
        before = now_ms()
        store.put(("docs",), "default", {"v": 1})
        store.put(("docs",), "own", {"v": 1}, ttl=0.5)
        store.put(("docs",), "forever", {"v": 1}, ttl=None)

    stored = {key: (created, expires, ttl) for _, key, _, created, _, expires, ttl in rows(data_store)}
    assert stored["forever"][1:] == (None, None)
    # The expiry rounded up to the millisecond, the creation time down.
    assert stored["default"][2] == 60 and 0 <= stored["default"][1] - stored["default"][0] - 3_600_000 <= 1
    assert stored["own"][2] == 0.5 and 0 <= stored["own"][1] - stored["own"][0] - 30_000 <= 1
    assert stored["own"][0] >= before


def test_expired_items_are_never_read_even_before_a_sweep(store, items, data_store):
    items.batch(
        [PutOp(("old", "x"), "gone", {"v": 1}, ttl=30), PutOp(("mixed",), "gone", {"v": 1}, ttl=30)], now=ago(hours=1)
    )
    store.put(("mixed",), "kept", {"v": 2}, ttl=30)

    assert len(rows(data_store)) == 3  # not swept yet
    assert store.get(("old", "x"), "gone") is None
    assert store.batch([GetOp(("mixed",), "gone", refresh_ttl=False)]) == [None]
    assert [item.key for item in store.search(("mixed",))] == ["kept"]
    assert store.search(("mixed",), filter={"v": 1}) == []
    assert store.search(("old",)) == []
    assert store.list_namespaces() == [("mixed",)]
    assert store.list_namespaces(suffix=("x",)) == [] and store.list_namespaces(max_depth=1) == [("mixed",)]


def test_a_read_refreshes_a_live_items_ttl_and_never_brings_an_expired_one_back(store, items, data_store):
    items.batch([PutOp(("docs",), "live", {"v": 1}, ttl=60)], now=ago(minutes=30))
    items.batch([PutOp(("docs",), "dead", {"v": 1}, ttl=60)], now=ago(minutes=90))
    (_, _, _, _, _, dead_expiry, _), (_, _, _, _, _, live_expiry, _) = rows(data_store)

    before = now_ms()
    assert store.get(("docs",), "live", refresh_ttl=True).key == "live"
    assert store.get(("docs",), "dead", refresh_ttl=True) is None
    assert [item.key for item in store.search(("docs",), refresh_ttl=True)] == ["live"]

    (_, _, _, _, _, dead_after, _), (_, _, _, _, _, live_after, _) = rows(data_store)
    assert dead_after == dead_expiry
    assert live_after >= before + 3_600_000 > live_expiry


def test_whether_a_read_refreshes_is_the_calls_else_the_configs_else_no(storage, items, data_store):
    def expiry():
        items.batch([PutOp(("docs",), "k", {"v": 1}, ttl=60)], now=ago(minutes=30))
        return lambda: rows(data_store)[0][5]

    with LoomStore(storage, ttl={"refresh_on_read": False}) as store:
        stored = expiry()
        before = stored()
        store.get(("docs",), "k")
        store.search(("docs",))
        assert stored() == before
        store.search(("docs",), refresh_ttl=True)
        assert stored() > before
    for config in (None, {"default_ttl": 60}):  # as SqliteStore: no refresh unless asked
        with LoomStore(storage, ttl=config) as store:
            stored = expiry()
            before = stored()
            store.get(("docs",), "k")
            store.search(("docs",))
            assert stored() == before
            store.get(("docs",), "k", refresh_ttl=True)
            assert stored() > before
    with LoomStore(storage, ttl={"refresh_on_read": True}) as store:
        stored = expiry()
        before = stored()
        store.get(("docs",), "k", refresh_ttl=False)
        assert stored() == before
        store.get(("docs",), "k")
        assert stored() > before


def test_a_put_over_an_expired_item_makes_a_new_item(store, items, data_store):
    items.batch([PutOp(("docs",), "k", {"v": "old"}, ttl=1)], now=ago(hours=1))
    before = now_ms()
    store.put(("docs",), "k", {"v": "new"})

    [(_, _, value, created, updated, expires, ttl)] = rows(data_store)
    assert (json.loads(value), expires, ttl) == ({"v": "new"}, None, None)
    assert created == updated >= before


def test_a_sweep_deletes_only_expired_items_a_batch_at_a_time(store, items, data_store):
    expired = [PutOp(("old", str(n % 4)), "k%d" % n, {"n": n}, ttl=1) for n in range(2 * SWEEP_BATCH + 50)]
    items.batch(expired, now=ago(hours=1))
    store.put(("old", "0"), "fresh", {"v": 1}, ttl=60)
    store.put(("old", "1"), "forever", {"v": 1})

    assert items.sweep_expired(batches=1) == SWEEP_BATCH
    assert store.sweep_ttl() == SWEEP_BATCH + 50
    assert store.sweep_ttl() == 0
    assert [key for _, key, *_ in rows(data_store)] == ["fresh", "forever"]


def test_the_sweeper_thread_sweeps_until_stopped(storage, items, data_store):
    items.batch([PutOp(("docs",), "k", {"v": 1}, ttl=1)], now=ago(hours=1))
    with LoomStore(storage, ttl={"sweep_interval_minutes": 0.001}) as store:
        stopped = store.start_ttl_sweeper()
        deadline = time.monotonic() + 30
        while rows(data_store) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rows(data_store) == []
        assert store.stop_ttl_sweeper(timeout=30) is True
        assert stopped.result(timeout=30) is None
        assert store.stop_ttl_sweeper() is True  # safe twice


def test_a_sweeper_ends_when_its_storage_closes(data_store):
    storage = open_storage(**data_store.location, gc_interval=0)
    store = LoomStore(storage, ttl={"sweep_interval_minutes": 0.001})
    stopped = store.start_ttl_sweeper()
    storage.close()  # before the store: its sweeper must not open the database again
    assert stopped.result(timeout=30) is None
    with pytest.raises(LoomStorageError, match="closed"):
        store.get(("docs",), "k")


def test_the_storages_collector_sweeps_the_items_of_its_stores(data_store):
    def expired_item(storage):
        items = StoreItemRepository(storage.checkpoints.database, storage.checkpoints.tracer)
        items.batch([PutOp(("docs",), "k", {"v": 1}, ttl=1)], now=ago(hours=1))

    with open_storage(**data_store.location, gc_interval=0.01) as storage:
        with LoomStore(storage):  # no sweeper of its own
            expired_item(storage)
            deadline = time.monotonic() + 30
            while rows(data_store) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert rows(data_store) == []
        expired_item(storage)  # a closed store's items are its own business again
        runs = storage.references.stats().gc_runs
        while storage.references.stats().gc_runs < runs + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(rows(data_store)) == 1

    async def with_an_async_store():
        async with aio.open_storage(**data_store.location, gc_interval=0.01) as storage, AsyncLoomStore(storage):
            deadline = time.monotonic() + 30
            while rows(data_store) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    asyncio.run(with_an_async_store())
    assert rows(data_store) == []


# -- lifecycle ---------------------------------------------------------------------------------


def test_a_store_over_a_storage_leaves_it_open(storage):
    with LoomStore(storage) as store:
        store.put(("docs",), "k", {"v": 1})
    assert not storage.checkpoints.closed
    with pytest.raises(LoomStorageError, match="closed"):
        store.get(("docs",), "k")


def test_a_store_over_a_closed_storage_refuses(data_store):
    with open_storage(**data_store.location, gc_interval=0) as storage:
        store = LoomStore(storage)
    with pytest.raises(LoomStorageError, match="closed"):
        store.get(("docs",), "k")


def test_open_owns_its_storage_and_closes_it(data_store):
    with LoomStore.open(**data_store.location) as store:
        store.put(("docs",), "k", {"v": 1})
        storage = store.storage
        assert store.get(("docs",), "k").value == {"v": 1}
    assert storage.checkpoints.closed and storage.references.closed
    with pytest.raises(LoomStorageError, match="closed"):
        store.get(("docs",), "k")
    with LoomStore.open(**data_store.location) as again:  # the data stayed
        assert again.get(("docs",), "k").value == {"v": 1}


def test_from_conn_string_of_memory_is_a_temporary_directory_removed_on_leaving():
    with LoomStore.from_conn_string(":memory:") as store:
        store.put(("docs",), "k", {"v": 1})
        directory = os.path.dirname(store.storage.checkpoints.backend.path())
        assert os.path.exists(os.path.join(directory, "checkpoints.db"))
    assert not os.path.exists(directory)
    with LoomStore.from_conn_string(":memory:") as store:  # each one new
        assert store.get(("docs",), "k") is None


def test_from_conn_string_of_a_path_or_a_url(data_store, tmp_path):
    where = data_store.target if not data_store.sqlite else str(tmp_path / "memories.db")
    with LoomStore.from_conn_string(where) as store:
        store.setup()
        store.put(("docs",), "k", {"v": 1})
    if data_store.sqlite:
        assert os.path.exists(where + ".loom/checkpoints.db")
    with LoomStore.from_conn_string(where) as store:
        assert store.get(("docs",), "k").value == {"v": 1}


def test_the_sync_store_has_no_async_calls(store):
    with pytest.raises(NotImplementedError, match="AsyncLoomStore"):
        asyncio.run(store.aget(("docs",), "k"))


# -- async -------------------------------------------------------------------------------------


def run(coroutine):
    return asyncio.run(coroutine)


def test_the_async_store_reads_and_writes_as_the_sync_one(data_store):
    async def main():
        async with AsyncLoomStore.open(**data_store.location) as store:
            await store.setup()
            await store.aput(("users", "u1"), "prefs", {"theme": "dark"})
            await store.aput(("users", "u2"), "prefs", {"theme": "light"}, ttl=60)
            got = await store.aget(("users", "u1"), "prefs")
            found = await store.asearch(("users",), filter={"theme": {"$ne": "dark"}})
            listed = await store.alist_namespaces(prefix=("users",))
            await store.adelete(("users", "u1"), "prefs")
            gone = await store.aget(("users", "u1"), "prefs")
            gathered = await asyncio.gather(*(store.aput(("many",), str(n), {"n": n}) for n in range(20)))
            counted = await store.asearch(("many",), limit=100)
            return got, found, listed, gone, gathered, counted, store.storage

    got, found, listed, gone, gathered, counted, storage = run(main())
    assert got.value == {"theme": "dark"} and [item.key for item in found] == ["prefs"]
    assert listed == [("users", "u1"), ("users", "u2")] and gone is None
    assert gathered == [None] * 20 and sorted(item.value["n"] for item in counted) == list(range(20))
    assert storage.sync.checkpoints.closed  # open() closed what it opened
    rows_left = data_store.sql("checkpoints", "SELECT COUNT(*) FROM graph_store_items")
    assert rows_left == [(21,)]


def test_the_async_stores_sync_methods_refuse_on_its_loop_and_serve_other_threads(data_store):
    async def main():
        async with AsyncLoomStore.open(**data_store.location) as store:
            with pytest.raises(asyncio.InvalidStateError):
                store.put(("docs",), "k", {"v": 1})
            with pytest.raises(asyncio.InvalidStateError):
                store.get(("docs",), "k")
            await asyncio.to_thread(store.put, ("docs",), "k", {"v": 1})
            return await asyncio.to_thread(store.get, ("docs",), "k")

    assert run(main()).value == {"v": 1}


def test_a_bad_value_fails_only_its_own_async_call(data_store):
    async def main():
        async with AsyncLoomStore.open(**data_store.location) as store:
            return await asyncio.gather(
                store.aput(("docs",), "good", {"v": 1}),
                store.aput(("docs",), "bad", {"when": datetime.datetime(2026, 1, 1)}),
                store.aget(("docs",), "other"),
                store.aget(("docs.x",), "k"),
                return_exceptions=True,
            )

    good, bad, other, invalid = run(main())
    assert good is None and other is None
    assert isinstance(bad, StoreInputError) and isinstance(invalid, InvalidNamespaceError)
    assert [key for _, key, *_ in rows(data_store)] == ["good"]


def test_the_async_store_over_a_given_storage_leaves_it_open_and_sweeps(data_store, items):
    items.batch([PutOp(("docs",), "k", {"v": 1}, ttl=1)], now=ago(hours=1))

    async def main():
        async with aio.open_storage(**data_store.location, gc_interval=0) as storage:
            async with AsyncLoomStore(storage, ttl={"sweep_interval_minutes": 0.001}) as store:
                assert await store.sweep_ttl() == 1
                await store.aput(("docs",), "k2", {"v": 1}, ttl=1)
                items.batch([PutOp(("docs",), "k3", {"v": 1}, ttl=1)], now=ago(hours=1))
                task = await store.start_ttl_sweeper()
                assert await store.start_ttl_sweeper() is task
                for _ in range(3000):
                    if len(rows(data_store)) == 1:
                        break
                    await asyncio.sleep(0.01)
                assert await store.stop_ttl_sweeper(timeout=30) is True
            assert not storage.sync.checkpoints.closed
            with pytest.raises(LoomStorageError, match="closed"):
                await store.aget(("docs",), "k2")
            return task

    task = run(main())
    assert task.done()
    assert [key for _, key, *_ in rows(data_store)] == ["k2"]


def test_the_async_store_over_a_sync_storage_closes_only_its_own_threads(storage):
    async def main():
        async with AsyncLoomStore(storage) as store:
            await store.aput(("docs",), "k", {"v": 1})
        with pytest.raises(LoomStorageError, match="closed"):  # its threads
            await store.storage.stats()

    run(main())
    assert not storage.checkpoints.closed
    assert LoomStore(storage).get(("docs",), "k").value == {"v": 1}


def test_the_async_store_refuses_an_index_before_it_starts_anything(data_store):
    async def main():
        async with aio.open_storage(**data_store.location, gc_interval=0) as storage:
            with pytest.raises(NotImplementedError, match="vector search"):
                AsyncLoomStore(storage, index={"dims": 3})
            with pytest.raises(NotImplementedError, match="vector search"):
                async with AsyncLoomStore.open(**data_store.location, index={"dims": 3}):
                    pass

    run(main())


def test_the_sweeper_of_a_sync_store_runs_in_a_thread_of_its_own(storage):
    with LoomStore(storage, ttl={"sweep_interval_minutes": 60}) as store:
        store.start_ttl_sweeper()
        names = [thread.name for thread in threading.enumerate()]
        assert "loom-store-ttl" in names
    assert "loom-store-ttl" not in [thread.name for thread in threading.enumerate()]

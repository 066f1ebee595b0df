"""A pytest plugin: the store tests of langgraph-checkpoint-sqlite, with LoomStore and AsyncLoomStore as its stores.

    cd langgraph_checkpoint_sqlite-3.1.2 && python -m pytest -p langgraph_store_swap tests/test_store.py ...

(run_langgraph.py does this from the source package.) Its test modules name
`SqliteStore` and `AsyncSqliteStore` as module globals and open them with
`from_conn_string(path or ":memory:", ttl=..., index=...)`; here those are
loom's stores, on a fresh store per connection string (throwaway.py). Its
`create_vector_store` helper serves tests that never search by vector too:
those get a store without an index. Vector search is not loom's: the tests
that need it are deselected, each for the reason written below.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from guards import AtLeastPassed, Deselected
from throwaway import POSTGRES_URL, ThrowawayStores

from loom_models.integrations.langgraph import AsyncLoomStore, LoomStore

STORES = ThrowawayStores("loom_store_")
# Of langgraph-checkpoint-sqlite 3.1.2's store tests, this many must pass.
AT_LEAST_PASSED = 121

VECTORS = "needs vector search (index=), which loom's stores do not have"
DESELECTED = {
    "test_vector_store_initialization": VECTORS + "; it also reads SqliteStore's connection",
    "test_vector_insert_with_auto_embedding": VECTORS,
    "test_vector_update_with_embedding": VECTORS,
    "test_vector_search_with_filters": VECTORS,
    "test_vector_search_pagination": VECTORS,
    "test_vector_search_edge_cases": VECTORS,
    "test_embed_with_path": VECTORS,
    "test_embed_with_path_operation_config": VECTORS,
    "test_scores": VECTORS,
    "test_non_ascii": VECTORS + ": it ranks by similarity to a query",
    "test_nonnull_migrations": "tests SqliteStore's internals: its MIGRATIONS list of SQL",
}


class SwappedStore(LoomStore):
    @classmethod
    @contextlib.contextmanager
    def from_conn_string(cls, conn_string: str, *, ttl: Any = None, index: Any = None) -> Iterator[LoomStore]:
        with cls.open(**STORES.location(conn_string), ttl=ttl, index=index) as store:
            yield store


class SwappedAsyncStore(AsyncLoomStore):
    @classmethod
    @contextlib.asynccontextmanager
    async def from_conn_string(
        cls, conn_string: str, *, ttl: Any = None, index: Any = None
    ) -> AsyncIterator[AsyncLoomStore]:
        async with cls.open(**STORES.location(conn_string), ttl=ttl, index=index) as store:
            yield store


@contextlib.contextmanager
def store_without_index(*args: Any, **kwargs: Any) -> Iterator[LoomStore]:
    with SwappedStore.from_conn_string(":memory:") as store:
        yield store


@contextlib.asynccontextmanager
async def async_store_without_index(*args: Any, **kwargs: Any) -> AsyncIterator[AsyncLoomStore]:
    async with SwappedAsyncStore.from_conn_string(":memory:") as store:
        yield store


def pytest_configure(config: pytest.Config) -> None:
    # pytest-retry's mark, which is not installed: a test marked flaky gets one run, as every other.
    config.addinivalue_line("markers", "flaky(retries): retried where pytest-retry is installed; not here")
    for plugin in (STORES, Deselected("not loom's", DESELECTED), AtLeastPassed(AT_LEAST_PASSED)):
        config.pluginmanager.register(plugin)


def pytest_report_header() -> str:
    return "SqliteStore is loom_models' LoomStore, on %s" % ("PostgreSQL" if POSTGRES_URL else "SQLite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for name, module in list(sys.modules.items()):
        if name.startswith("tests.test_"):
            if hasattr(module, "SqliteStore"):
                module.SqliteStore = SwappedStore
            if hasattr(module, "AsyncSqliteStore"):
                module.AsyncSqliteStore = SwappedAsyncStore
            if hasattr(module, "create_vector_store"):
                asynchronous = hasattr(module, "AsyncSqliteStore")
                module.create_vector_store = async_store_without_index if asynchronous else store_without_index

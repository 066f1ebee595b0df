"""A pytest plugin: LangGraph's own graph tests, with LoomSaver and AsyncLoomSaver as their "sqlite" checkpointers.

    cd langgraph-1.2.24 && NO_DOCKER=true python -m pytest -p langgraph_swap tests -k "sqlite and not sqlite_aes"

(run_langgraph.py does this from LangGraph's source package.) LangGraph's
tests/conftest.py makes the checkpointers its fixtures hand out by calling
`_checkpointer_sqlite()` and `_checkpointer_sqlite_aio()`, globals of that
module, when each test runs; here those make a loom saver on a fresh store
(throwaway.py: a data directory, or a PostgreSQL schema with
LOOM_TEST_DATABASE_URL), with the serializer LangGraph's own would get.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from unittest import mock

import pytest
from guards import AtLeastPassed
from throwaway import POSTGRES_URL, ThrowawayStores

from loom_models.integrations.langgraph import AsyncLoomSaver, LoomSaver

STORES = ThrowawayStores("loom_graph_")
MADE = {"LoomSaver": 0, "AsyncLoomSaver": 0}
# The "sqlite" tests there are, at langgraph 1.2.24; fewer passing means a swap that did not take.
AT_LEAST_PASSED = 640


# Some tests count on uuid4() giving a set sequence from a mock their fixture
# installs before the checkpointer's; the migrations that make a new store name
# their savepoints with uuid4() (peewee), and must not draw from that sequence.
REAL_UUID4 = uuid.uuid4


@contextlib.contextmanager
def loom_saver() -> Iterator[LoomSaver]:
    with contextlib.ExitStack() as stack:
        with mock.patch("uuid.uuid4", REAL_UUID4):
            saver = stack.enter_context(LoomSaver.open(**STORES.location()))
        _with_langgraphs_serializer(saver)
        MADE["LoomSaver"] += 1
        yield saver


@contextlib.asynccontextmanager
async def async_loom_saver() -> AsyncIterator[AsyncLoomSaver]:
    async with contextlib.AsyncExitStack() as stack:
        with mock.patch("uuid.uuid4", REAL_UUID4):
            saver = await stack.enter_async_context(AsyncLoomSaver.open(**STORES.location()))
        _with_langgraphs_serializer(saver)
        MADE["AsyncLoomSaver"] += 1
        yield saver


def _with_langgraphs_serializer(saver: LoomSaver) -> None:
    # LANGGRAPH_STRICT_MSGPACK=true gives its savers a strict serializer: ours too.
    sys.modules["tests.conftest_checkpointer"]._apply_strict_msgpack(saver)


def pytest_configure(config: pytest.Config) -> None:
    for plugin in (STORES, AtLeastPassed(AT_LEAST_PASSED)):
        config.pluginmanager.register(plugin)


def pytest_report_header() -> str:
    return "the sqlite checkpointers are loom_models' savers, on %s" % ("PostgreSQL" if POSTGRES_URL else "SQLite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Collected by now, LangGraph's conftest is a module whose globals its fixtures look up.
    conftest = sys.modules["tests.conftest"]
    conftest._checkpointer_sqlite = loom_saver
    conftest._checkpointer_sqlite_aio = async_loom_saver


def pytest_terminal_summary(terminalreporter) -> None:
    terminalreporter.write_line("loom savers made: %(LoomSaver)d LoomSaver, %(AsyncLoomSaver)d AsyncLoomSaver" % MADE)

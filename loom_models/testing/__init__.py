"""Test data for the projects that use loom_models: factories, JSON fixtures, a pytest plugin.

    from loom_models.testing import SessionFactory, load_fixture

    session = SessionFactory.create(storage=storage, messages=3)
    load_fixture(storage, "tests/data/sample.json")    # a document of records (documents.py)

    def test_reply(loom_storage, session_factory):    # the plugin's fixtures, in any project
        session = session_factory.create(messages=2)
        assert loom_storage.sessions.get_stats().message_count == 2

factories.py has the factories, plugin.py the pytest fixtures (installed as a
pytest11 entry point); a JSON fixture is a document of loom_models.documents,
loaded by load_fixture.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# A JSON fixture is a document of records: what an application imports, a test loads.
from ..documents import LoadedDocument as LoadedFixture
from ..documents import load_document as load_fixture

if TYPE_CHECKING:
    from .factories import *  # noqa: F403

# Imported on first use: pytest imports this package (for the plugin) in every run
# of every project that has loom_models installed, and factory_boy with Faker takes
# half a second to import.
_FROM_FACTORIES = (
    "bind",
    "HumanRequestFactory",
    "MessageFactory",
    "ReferenceFactory",
    "SessionFactory",
    "ToolExecutionFactory",
)

__all__ = ["LoadedFixture", "load_fixture", *_FROM_FACTORIES]


def __getattr__(name: str) -> Any:
    if name not in _FROM_FACTORIES:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    return getattr(importlib.import_module(".factories", __name__), name)

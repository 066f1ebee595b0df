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
    from .factories import (
        HumanRequestFactory,
        MessageFactory,
        ReferenceFactory,
        SessionFactory,
        ToolExecutionFactory,
        bind,
    )

# Each name -> the module that defines it, imported on first use: pytest imports
# this package (for the plugin) in every run of every project that has
# loom_models installed, and factory_boy with Faker takes half a second to import.
_HOMES = {
    "HumanRequestFactory": "factories",
    "MessageFactory": "factories",
    "ReferenceFactory": "factories",
    "SessionFactory": "factories",
    "ToolExecutionFactory": "factories",
    "bind": "factories",
}

__all__ = [
    "HumanRequestFactory",
    "LoadedFixture",
    "MessageFactory",
    "ReferenceFactory",
    "SessionFactory",
    "ToolExecutionFactory",
    "bind",
    "load_fixture",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    return getattr(importlib.import_module("." + _HOMES[name], __name__), name)

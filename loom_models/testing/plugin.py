"""The pytest plugin of loom_models: a fresh store per test, its repositories and factories.

    import pytest

    def test_reply(loom_storage, session_factory, message_factory):
        session = session_factory.create(messages=2)
        message_factory.create(session=session, role="user", content="Thanks!")
        assert loom_storage.sessions.get_stats().message_count == 3

    @pytest.mark.loom_fixture("data/sample.json")    # relative to the test's file
    def test_sample(session_repository):
        assert session_repository.load_session("sess_1").messages

`loom_storage` is a new store in the test's temporary directory or, when
LOOM_TEST_DATABASE_URL names a PostgreSQL database, in a schema of its own
there, dropped afterwards; its reference collector is off. `session_repository`,
`hitl_repository` and `reference_repository` are its repositories, and
`session_factory`, `message_factory`, `tool_execution_factory`,
`human_request_factory` and `reference_factory` the factories of
loom_models.testing.factories writing to it: `create()` needs no `storage=`.

pip installs this plugin with loom_models (a pytest11 entry point), so pytest
imports it in every run of every project of that environment: factory_boy and
Faker, slow to import, are imported only when a test asks for a factory.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import peewee
import pytest

from loom_models import LoomStorageError, Storage, open_storage
from loom_models.db import open_database, redact
from loom_models.documents import load_document

if TYPE_CHECKING:
    from loom_models.hitl import HumanRequestRepository
    from loom_models.references import ReferenceRepository
    from loom_models.sessions import SessionRepository

DATABASE_URL_VARIABLE = "LOOM_TEST_DATABASE_URL"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "loom_fixture(*paths): load these JSON fixtures (relative to the test's file) into loom_storage"
    )


@pytest.fixture
def loom_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A new store for this test, with the loom_fixture files of its marks loaded."""
    url = os.environ.get(DATABASE_URL_VARIABLE)
    with _schema_of_its_own(url) if url else contextlib.nullcontext() as schema_url:
        data_dir = None if schema_url else tmp_path / "loom-data"
        with open_storage(data_dir, database_url=schema_url, gc_interval=0) as storage:
            # The module's marks first, the test's own last.
            for mark in reversed(list(request.node.iter_markers("loom_fixture"))):
                for path in mark.args:
                    load_document(storage, request.path.parent / path)
            yield storage


@contextlib.contextmanager
def _schema_of_its_own(url: str) -> Iterator[str]:
    """The URL of a new schema in the PostgreSQL database at `url`; the schema is dropped afterwards."""
    schema = "loom_test_" + uuid.uuid4().hex[:12]
    database = _create_schema(url, schema)
    try:
        yield "%s%soptions=%s" % (url, "&" if "?" in url else "?", quote("-csearch_path=%s" % schema))
    finally:
        database.execute_sql("DROP SCHEMA IF EXISTS %s CASCADE" % schema)
        database.close()


def _create_schema(url: str, schema: str) -> peewee.Database:
    """The database at `url`, with `schema` made in it; a test error of one line if it cannot be.

    The URL is shown without its password, and without a traceback: pytest's
    would show it whole, in every frame it was passed through.
    """
    try:
        database = open_database(url)
        database.execute_sql("CREATE SCHEMA %s" % schema)
        return database
    except (LoomStorageError, peewee.PeeweeException) as error:
        problem = "%s=%s: %s" % (DATABASE_URL_VARIABLE, redact(url), " ".join(str(error).split()))
    pytest.fail(problem, pytrace=False)


@pytest.fixture
def session_repository(loom_storage: Storage) -> SessionRepository:
    """loom_storage's SessionRepository."""
    return loom_storage.sessions


@pytest.fixture
def hitl_repository(loom_storage: Storage) -> HumanRequestRepository:
    """loom_storage's HumanRequestRepository."""
    return loom_storage.hitl


@pytest.fixture
def reference_repository(loom_storage: Storage) -> ReferenceRepository:
    """loom_storage's ReferenceRepository."""
    return loom_storage.references


def _factory_fixture(name: str, factory_name: str, example: str) -> Any:
    """A fixture `name` giving the factory `factory_name` bound to loom_storage."""

    def bound_factory(loom_storage: Storage) -> Any:
        # Imported on first use: factory_boy and Faker would slow every pytest run down.
        from loom_models.testing import factories

        return factories.bind(getattr(factories, factory_name), loom_storage)

    bound_factory.__doc__ = "%s writing to loom_storage: `%s`." % (factory_name, example)
    return pytest.fixture(name=name)(bound_factory)


session_factory = _factory_fixture("session_factory", "SessionFactory", "session_factory.create(messages=3)")
message_factory = _factory_fixture("message_factory", "MessageFactory", "message_factory.create(session=session)")
tool_execution_factory = _factory_fixture(
    "tool_execution_factory", "ToolExecutionFactory", "tool_execution_factory.create(failed=True)"
)
human_request_factory = _factory_fixture(
    "human_request_factory", "HumanRequestFactory", "human_request_factory.create(approved=True)"
)
reference_factory = _factory_fixture("reference_factory", "ReferenceFactory", "reference_factory.create(expiring=True)")

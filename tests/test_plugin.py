"""The pytest plugin, used as another project uses it: a test file of its own, run by pytester.

The plugin comes from the package's pytest11 entry point, as in any project where
loom_models is installed: the inner runs load it without `-p` or conftest. They run
on the suite's backend, as LOOM_TEST_DATABASE_URL is passed on to them.
"""

import json
import os
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

POSTGRES_URL = os.environ.get("LOOM_TEST_DATABASE_URL")

A_PROJECTS_TESTS = """
import threading

from loom_models import Storage


def test_fixtures_share_one_fresh_store(loom_storage, session_repository, hitl_repository, reference_repository):
    assert isinstance(loom_storage, Storage)
    assert session_repository is loom_storage.sessions
    assert hitl_repository is loom_storage.hitl and reference_repository is loom_storage.references
    assert session_repository.get_stats().session_count == 0
    assert "loom-references-gc" not in [thread.name for thread in threading.enumerate()]


def test_factories_write_to_the_store(loom_storage, session_factory, message_factory, tool_execution_factory,
                                      human_request_factory, reference_factory):
    session = session_factory.create(messages=2)
    message_factory.create(session=session, role="user", content="Thanks!")
    tool_execution_factory.create(session=session, failed=True)
    human_request_factory.create(session=session, approved=True)
    reference = reference_factory.create(expiring=True)

    stats = loom_storage.sessions.get_stats()
    assert (stats.session_count, stats.message_count, stats.tool_execution_count) == (1, 3, 1)
    assert loom_storage.hitl.list_by_session(session.id)[0].status == "approved"
    assert loom_storage.references.resolve(reference.id) == reference.data


def test_the_next_test_starts_empty(loom_storage, session_factory):
    assert loom_storage.sessions.get_stats().session_count == 0
    session_factory.create()
"""


@pytest.fixture
def project(pytester):
    """A project's test directory; the runs in it inherit LOOM_TEST_DATABASE_URL, if set."""
    return pytester


def test_a_project_gets_the_fixtures_from_the_entry_point(project):
    project.makepyfile(test_agent=A_PROJECTS_TESTS)

    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")

    result.assert_outcomes(passed=3)


def test_the_fixtures_are_listed(project):
    result = project.runpytest("--fixtures", "-p", "no:cacheprovider")

    assert result.ret == 0
    for name in ("loom_storage", "session_repository", "session_factory", "human_request_factory"):
        result.stdout.fnmatch_lines(["%s -- *loom_models/testing/plugin.py:*" % name])


def test_loom_fixture_marks_load_json_fixtures_into_the_store(project):
    project.mkdir("data")
    (project.path / "data" / "module.json").write_text(json.dumps({"sessions": [{"id": "sess_module"}]}))
    (project.path / "data" / "test.json").write_text(
        json.dumps(
            {
                "requests": [{"id": "req_1", "agent_id": "a", "session_id": "sess_module", "question": "Ship?"}],
                "references": [{"data": "hello", "type": "TOOL_RESULT"}],
            }
        )
    )
    project.makepyfile(
        test_sample="""
        import pytest

        pytestmark = pytest.mark.loom_fixture("data/module.json")

        @pytest.mark.loom_fixture("data/test.json")
        def test_both_files(loom_storage):
            assert [s.id for s in loom_storage.sessions.list_sessions()] == ["sess_module"]
            assert loom_storage.hitl.get("req_1").status == "pending"
            assert loom_storage.references.list()[0].size_bytes == 5

        def test_module_file_only(session_repository, hitl_repository):
            assert session_repository.load_session("sess_module").messages == []
            assert hitl_repository.list_pending() == []
    """
    )

    result = project.runpytest("-p", "no:cacheprovider", "--strict-markers")

    result.assert_outcomes(passed=2)


def test_a_bad_fixture_file_fails_the_test_that_marks_it(project):
    (project.path / "bad.json").write_text(json.dumps({"requests": [{"question": "?"}]}))
    project.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.loom_fixture("bad.json")
        def test_marked(loom_storage):
            pass

        def test_unmarked(loom_storage):
            pass
    """
    )

    result = project.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ValidationError: invalid input: requests: 0: *agent_id*"])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://loom:s3cret-pa55@127.0.0.1:1/loom?connect_timeout=2",  # nothing listens on port 1
        "postgresql://loom:s3cret-pa55@127.0.0.1:99999/loom",
        "postgresql://loom:s3cret-pa55@[::1/loom",
    ],
)
def test_a_database_url_that_does_not_work_is_one_line_without_the_password(project, monkeypatch, url):
    monkeypatch.setenv("LOOM_TEST_DATABASE_URL", url)
    project.makepyfile(test_store="def test_store(loom_storage):\n    pass\n")

    result = project.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    output = result.stdout.str() + result.stderr.str()
    assert "s3cret-pa55" not in output and "Traceback" not in output
    assert "LOOM_TEST_DATABASE_URL=postgresql://loom:***@" in output
    assert len(result.stdout.lines) < 30, result.stdout.str()


def test_without_a_database_url_the_store_is_in_the_tests_temporary_directory(project, monkeypatch):
    monkeypatch.delenv("LOOM_TEST_DATABASE_URL", raising=False)
    project.makepyfile(
        test_where="""
        def test_where(loom_storage, tmp_path):
            assert (tmp_path / "loom-data" / "sessions.db").exists()
            assert repr(loom_storage) == "<Storage %s>" % (tmp_path / "loom-data")
    """
    )

    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_each_test_has_a_store_of_its_own(project):
    project.makepyfile(
        test_stores="""
        def test_one(loom_storage, tmp_path_factory):
            database = loom_storage.sessions.database
            where = database.execute_sql("SELECT current_schema()").fetchone()[0] if database.param == "%s" \\
                else database.database
            (tmp_path_factory.getbasetemp() / "stores").open("a").write(where + "\\n")

        test_two = test_one
    """
    )

    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)

    stores = (project.path.parent / "basetemp" / "stores").read_text().split()
    assert len(set(stores)) == 2
    if POSTGRES_URL:  # schemas of their own, dropped afterwards
        import psycopg2

        assert all(store.startswith("loom_test_") for store in stores)
        with psycopg2.connect(POSTGRES_URL) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (stores,))
            assert cursor.fetchall() == []
    else:
        assert all(store.endswith("loom-data/sessions.db") for store in stores)


def test_importing_the_plugin_imports_no_factories():
    # pytest imports the plugin in every run of every project of the environment.
    code = "import sys, loom_models.testing.plugin; print(sorted({'factory', 'faker'} & set(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_the_package_declares_the_plugin_and_factory_boy_as_the_testing_extra():
    from importlib.metadata import entry_points, requires

    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert plugins["loom_models"] == "loom_models.testing.plugin"
    factory_boy = [r for r in requires("loom-models") if r.startswith("factory-boy>=3.3")]
    assert factory_boy and all("extra ==" in r for r in factory_boy)
    assert any('extra == "testing"' in r for r in factory_boy)

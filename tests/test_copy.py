"""Copying a whole store into another database and back (transfer.copy_store, loom-db copy).

The source is a SQLite data directory; the target is the backend under test: a
PostgreSQL schema when the suite runs there, else another data directory.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from langgraph.graph import END, START, StateGraph
from test_cli import SCRIPT
from test_langgraph_saver import Notes, thread

from loom_models import ConflictError, open_storage
from loom_models.integrations.langgraph import LoomSaver, LoomStore
from loom_models.sessions import Message
from loom_models.testing import factories
from loom_models.transfer import copy_store

BIG = 3 << 20  # a reference of megabytes: batches shrink to what a few megabytes hold


def fill(storage, sessions=12):
    for index in range(sessions):
        session = factories.SessionFactory.create(storage=storage, messages=4, tool_executions=1)
        factories.HumanRequestFactory.create(storage=storage, session=session)
        factories.ReferenceFactory.create(storage=storage, expiring=index % 2 == 1)
    storage.sessions.save_message(session.id, Message(role="user", content="where is the kettle descaler"))
    storage.references.store(b"\x00\xff" * (BIG // 2))
    builder = StateGraph(Notes)
    builder.add_node("note", lambda state: {"notes": ["note %d" % len(state["notes"])]})
    builder.add_edge(START, "note")
    builder.add_edge("note", END)
    builder.compile(checkpointer=LoomSaver(storage)).invoke({"notes": ["start"]}, thread())
    LoomStore(storage).put(("users", "ada"), "prefs", {"tea": "green"})


def rows(storage) -> dict[str, list[tuple]]:
    """Every table's rows, as the database holds them, in key order."""
    tables = {}
    for repository in storage.repositories:
        for model in repository.models:
            bound = model._meta.table_name
            key = ", ".join('"%s"' % name for name in _key_columns(model))
            cursor = repository.database.execute_sql('SELECT * FROM "%s" ORDER BY %s' % (bound, key))
            tables[bound] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cursor]
    return tables


def _key_columns(model):
    key = model._meta.primary_key
    names = key.field_names if hasattr(key, "field_names") else (key.name,)
    return [model._meta.fields[name].column_name for name in names]


@pytest.fixture
def source(tmp_path):
    with open_storage(tmp_path / "source", gc_interval=0) as storage:
        fill(storage)
        yield storage


@pytest.fixture
def target(data_store):
    with open_storage(**data_store.location, gc_interval=0) as storage:
        yield storage


def test_every_table_is_copied_as_it_is_and_verified(source, target):
    copies = copy_store(source, target)

    assert rows(target) == rows(source)
    by_name = {copy.name: copy for copy in copies}
    assert set(by_name) == set(rows(source))
    for name, copy in by_name.items():
        assert copy.verified and copy.rows == copy.written == copy.found == len(rows(source)[name]) > 0, name
        assert copy.checksum == copy.target_checksum
    assert [hit.session_id for hit in target.sessions.search_messages("descaler")]
    assert LoomSaver(target).get_tuple(thread()).checkpoint["channel_values"]["notes"] == ["start", "note 1"]


def test_a_message_saved_after_the_copy_gets_an_id_after_the_copied_ones(source, target):
    copy_store(source, target)
    session_id = source.sessions.list_sessions(limit=1)[0].id
    highest = max(message.id for message in source.sessions.load_session(session_id).messages)
    for _ in range(3):  # each a new id, none taken by a copied message
        saved = target.sessions.save_message(session_id, Message(role="user", content="after the move"))
    assert saved.id > highest
    assert len({row[0] for row in rows(target)["messages"]}) == len(rows(target)["messages"])


def test_a_second_run_writes_nothing_and_verifies_again(source, target):
    copy_store(source, target)
    again = copy_store(source, target)

    assert all(copy.written == 0 and copy.verified for copy in again)
    assert rows(target) == rows(source)


def test_an_interrupted_copy_is_finished_by_running_it_again(source, target):
    handled = 0

    def interrupt_midway(count, total=None):
        nonlocal handled
        handled += count
        if handled > 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_store(source, target, progress=interrupt_midway)
    partial = rows(target)
    assert 0 < sum(map(len, partial.values())) < sum(map(len, rows(source).values()))

    finished = copy_store(source, target)

    assert rows(target) == rows(source)
    assert sum(copy.written for copy in finished) == sum(map(len, rows(source).values())) - sum(
        map(len, partial.values())
    )


def test_a_target_holding_other_rows_is_refused_before_anything_is_written(source, target):
    factories.SessionFactory.create(storage=target, id="theirs", messages=1)
    before = rows(target)

    with pytest.raises(ConflictError, match="not the source's"):
        copy_store(source, target)

    assert rows(target) == before


def test_append_adds_the_source_beside_the_target_s_own_rows(source, target):
    factories.SessionFactory.create(storage=target, id="theirs", messages=0)

    copy_store(source, target, append=True)

    assert target.sessions.load_session("theirs").id == "theirs"
    assert rows(target)["messages"] == rows(source)["messages"]
    assert len(rows(target)["sessions"]) == len(rows(source)["sessions"]) + 1


def test_a_key_whose_row_differs_is_a_conflict_and_nothing_is_copied_over_it(source, target):
    copy_store(source, target)
    changed = source.sessions.list_sessions(limit=1)[0].id
    target.sessions.save_session({"id": changed, "name": "renamed in the target"})
    factories.SessionFactory.create(storage=source, id="newer", messages=2)

    with pytest.raises(ConflictError, match="sessions %s differs" % changed):
        copy_store(source, target, append=True)

    assert target.sessions.load_session(changed).name == "renamed in the target"
    assert "newer" not in {row[0] for row in rows(target)["sessions"]}


def test_a_row_changed_while_the_copy_runs_fails_its_verification(source, target):
    changed = source.sessions.list_sessions(limit=1)[0].id
    seen, passes = 0, {}

    def a_writer_meanwhile(count, total=None):
        nonlocal seen
        passes.setdefault("rows", total)  # copy_store says the total first: copying, then reading back
        seen += count
        if seen >= passes["rows"] // 2:  # the copy is over; the reading back begins
            target.sessions.save_session({"id": changed, "name": "written meanwhile"})

    with pytest.raises(ConflictError, match="did not read back the same: sessions"):
        copy_store(source, target, progress=a_writer_meanwhile)


def test_a_copy_back_gives_the_same_rows(source, target, tmp_path):
    copy_store(source, target)
    with open_storage(tmp_path / "back", gc_interval=0) as back:
        copy_store(target, back)
        assert rows(back) == rows(source)
        assert [hit.session_id for hit in back.sessions.search_messages("descaler")]  # the index filled as rows came


# -- loom-db copy ---------------------------------------------------------------------------


def loom_db(*args):
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=120)


def place_option(data_store):
    location = data_store.location
    return location.get("database_url") or location["data_dir"]


def test_loom_db_copy_to_and_from_prints_each_table_verified(source, data_store, tmp_path):
    source_dir, there = str(tmp_path / "source"), place_option(data_store)

    to = loom_db("--data-dir", source_dir, "--json", "copy", "--to", there)
    assert to.returncode == 0, to.stderr
    document = json.loads(to.stdout)
    assert {table["name"]: table["written"] for table in document["tables"]}["messages"] == 49
    assert all(table["verified"] for table in document["tables"])

    back = loom_db("--data-dir", str(tmp_path / "back"), "copy", "--from", there)
    assert back.returncode == 0, back.stderr
    assert "every row read back the same" in back.stdout
    assert [line.split()[:4] for line in back.stdout.splitlines() if line.startswith("messages")] == [
        ["messages", "49", "49", "49"]
    ]


def test_loom_db_copy_exits_5_on_a_target_with_rows_of_its_own(source, target, data_store, tmp_path):
    factories.SessionFactory.create(storage=target, id="theirs", messages=0)

    refused = loom_db("--data-dir", str(tmp_path / "source"), "copy", "--to", place_option(data_store))

    assert refused.returncode == 5
    assert "not the source's" in refused.stderr and "Traceback" not in refused.stderr
    appended = loom_db("--data-dir", str(tmp_path / "source"), "copy", "--to", place_option(data_store), "--append")
    assert appended.returncode == 0, appended.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["copy"], "give --to or --from"),
        (["copy", "--to", "a", "--from", "b"], "give --to or --from"),
        (["copy", "--to", "SAME"], "cannot be copied into itself"),
    ],
)
def test_loom_db_copy_usage_errors(source, tmp_path, args, message):
    source_dir = str(tmp_path / "source")
    result = loom_db("--data-dir", source_dir, *[source_dir if arg == "SAME" else arg for arg in args])
    assert result.returncode == 2 and message in result.stderr

"""open_storage: the data directory, its permissions, URLs, closing, and the README."""

import gc
import os
import stat
import threading
import weakref
from pathlib import Path

import pytest

from loom_models import LoomStorageError, open_storage
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session, SessionRepository

ROOT = Path(__file__).resolve().parent.parent


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_creates_a_private_data_directory(tmp_path):
    data_dir = tmp_path / "new" / "loom-data"

    with open_storage(data_dir) as storage:
        storage.sessions.save_session(Session(id="s"))
        storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="ok?"))

    assert mode(data_dir) == 0o700
    for name in ("sessions.db", "hitl.db", "references.db"):
        assert mode(data_dir / name) == 0o600


def test_defaults_to_the_environment_then_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_storage():
        pass
    assert (tmp_path / "loom-data" / "sessions.db").exists()

    monkeypatch.setenv("LOOM_DATA_DIR", str(tmp_path / "from-env"))
    with open_storage():
        pass
    assert (tmp_path / "from-env" / "sessions.db").exists()


def test_a_database_url_holds_every_domain(backend):
    url = backend.target if "://" in backend.target else "sqlite:///" + backend.target

    with open_storage(database_url=url) as storage:
        storage.sessions.save_session(Session(id="via_url"))
        storage.hitl.store(HumanRequest(id="req_url", agent_id="a", session_id="via_url", question="ok?"))

    assert backend.sql("SELECT id FROM sessions") == [("via_url",)]
    assert backend.sql("SELECT id FROM human_requests") == [("req_url",)]
    assert backend.sql("SELECT COUNT(*) FROM schema_migration_hitl") == [(4,)]


def test_close_twice(tmp_path):
    storage = open_storage(tmp_path)
    storage.sessions.save_session(Session(id="s"))
    storage.close()
    storage.close()

    with open_storage(tmp_path) as again:
        assert again.sessions.load_session("s").id == "s"


def test_a_closed_storage_refuses_calls_instead_of_opening_again(data_store):
    storage = open_storage(**data_store.location, gc_interval=0)
    storage.sessions.save_session(Session(id="s"))
    other_thread = []
    worker = threading.Thread(target=lambda: other_thread.append(storage.sessions.load_session("s")))
    worker.start()
    worker.join()
    storage.close()

    for call in (
        lambda: storage.sessions.load_session("s"),
        lambda: storage.sessions.save_session(Session(id="t")),
        lambda: list(storage.sessions.iter_messages("s")),
        lambda: storage.hitl.list_pending(),
        lambda: storage.references.store(b"x"),
    ):
        with pytest.raises(LoomStorageError, match="is closed"):
            call()
    worker = threading.Thread(target=lambda: other_thread.append(_error_of(lambda: storage.hitl.get_stats())))
    worker.start()
    worker.join()
    assert "is closed" in str(other_thread[-1])
    assert data_store.sql("sessions", "SELECT id FROM sessions") == [("s",)]


def test_a_closed_repository_refuses_calls(backend):
    repository = SessionRepository.open(backend.target)
    repository.close()

    with pytest.raises(LoomStorageError, match=r"^<SessionRepository .*> is closed$"):
        repository.get_stats()


def test_a_closed_storage_leaves_nothing_alive(data_store):
    storage = open_storage(**data_store.location, gc_interval=0)
    storage.sessions.save_session(Session(id="s"))
    storage.sessions.save_messages("s", [Message(role="user", content="hi")])
    storage.hitl.list_pending(limit=5)
    kept = [weakref.ref(storage.sessions._sql), weakref.ref(storage.hitl._sql), weakref.ref(storage.sessions.database)]
    storage.close()

    del storage
    gc.collect()

    assert [ref() for ref in kept] == [None, None, None]


def _error_of(call):
    try:
        call()
    except LoomStorageError as error:
        return error

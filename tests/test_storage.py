"""open_storage: the data directory, its permissions, URLs, closing, and the README."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from loom_models import LoomStorageError, ValidationError, open_storage
from loom_models.hitl import HumanRequest
from loom_models.sessions import Session

ROOT = Path(__file__).resolve().parent.parent


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_creates_a_private_data_directory(tmp_path):
    data_dir = tmp_path / "new" / "loom-data"

    with open_storage(data_dir) as storage:
        storage.sessions.save_session(Session(id="s"))
        storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="ok?"))

    assert mode(data_dir) == 0o700
    for name in ("sessions.db", "hitl.db"):
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
    assert backend.sql("SELECT COUNT(*) FROM schema_migration_hitl") == [(2,)]


def test_close_twice(tmp_path):
    storage = open_storage(tmp_path)
    storage.sessions.save_session(Session(id="s"))
    storage.close()
    storage.close()

    with open_storage(tmp_path) as again:
        assert again.sessions.load_session("s").id == "s"


def test_the_readme_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"## Use\n\n```python\n(.*?)```", readme, re.S).group(1)

    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "12 ['Where is my order?', 'On its way.']\n"
    assert (tmp_path / "loom-data" / "sessions.db").exists()


def test_a_database_url_must_be_a_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError):
        open_storage(database_url="nonsense")
    assert list(tmp_path.iterdir()) == []


def test_a_data_directory_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(LoomStorageError):
        open_storage(tmp_path / "file")


def test_a_sqlite_url_file_is_private_too(tmp_path):
    with open_storage(database_url="sqlite:///%s" % (tmp_path / "all.db")):
        pass
    assert mode(tmp_path / "all.db") == 0o600

"""open_storage: the data directory, its permissions, URLs, closing, and the README."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from loom_models import open_storage
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
    assert backend.sql("SELECT COUNT(*) FROM schema_migration_hitl") == [(3,)]


def test_close_twice(tmp_path):
    storage = open_storage(tmp_path)
    storage.sessions.save_session(Session(id="s"))
    storage.close()
    storage.close()

    with open_storage(tmp_path) as again:
        assert again.sessions.load_session("s").id == "s"


def test_the_readme_examples_run(tmp_path):
    readme = (ROOT / "README.md").read_text()
    usage = readme.split("## Use\n", 1)[1].split("\n## ", 1)[0]
    examples = "\n".join(re.findall(r"```python\n(.*?)```", usage, re.S))

    result = subprocess.run([sys.executable, "-c", examples], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "12 ['Where is my order?', 'On its way.']\napproved\n"
    assert (tmp_path / "loom-data" / "sessions.db").exists()

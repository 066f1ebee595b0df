"""Private files, and no password in any message, repr or log line."""

import logging
import os
import stat

import pytest

from loom_models import DatabaseUnavailableError, open_storage
from loom_models.db import redact
from loom_models.sessions import Message, Session, SessionRepository

SECRET = "s3cret-pa55"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_data_directory_and_every_file_are_private(tmp_path):
    with open_storage(tmp_path / "data", gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="s"))
        files = [f for f in os.listdir(tmp_path / "data")]
        assert any(f.endswith("-wal") for f in files) and any(f.endswith("-shm") for f in files)
        assert {f: mode(tmp_path / "data" / f) for f in files} == dict.fromkeys(files, 0o600)
    assert mode(tmp_path / "data") == 0o700


def test_an_existing_directory_open_to_others_gets_a_warning(tmp_path):
    (tmp_path / "shared").mkdir(mode=0o755)
    os.chmod(tmp_path / "shared", 0o755)

    with pytest.warns(UserWarning, match="mode 0755"):
        open_storage(tmp_path / "shared", gc_interval=0).close()

    os.chmod(tmp_path / "shared", 0o700)
    with open_storage(tmp_path / "shared", gc_interval=0):
        pass  # no warning: pytest's filterwarnings would not hide one (see the test below)


def test_a_private_directory_gets_no_warning(tmp_path, recwarn):
    (tmp_path / "private").mkdir(mode=0o700)
    open_storage(tmp_path / "private", gc_interval=0).close()
    assert [w for w in recwarn if "mode" in str(w.message)] == []


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            "postgresql://loom:%s@db:5432/loom?sslmode=disable" % SECRET,
            "postgresql://loom:***@db:5432/loom?sslmode=disable",
        ),
        ("postgresql://loom@db/loom", "postgresql://loom@db/loom"),
        ("postgresql://loom:p%40ss@db/loom", "postgresql://loom:***@db/loom"),
        ("postgresql://loom:p@ss@db/loom?x=1", "postgresql://loom:***@db/loom?x=1"),
        ("postgresql://loom:pass@[::1/loom", "postgresql://loom:***@[::1/loom"),
        ("postgresql://:pass@db/loom", "postgresql://:***@db/loom"),
        ("sqlite:////srv/a:b@c.db", "sqlite:////srv/a:b@c.db"),
        ("postgresql://loom:pa/ss@db/loom", "postgresql://loom:***@db/loom"),
        ("postgresql://loom:pa?s#s@db/loom", "postgresql://loom:***@db/loom"),
    ],
)
def test_redact(url, shown):
    assert redact(url) == shown


def test_a_password_never_reaches_a_message_a_repr_or_a_log(caplog):
    caplog.set_level(logging.DEBUG)
    url = "postgresql://loom:%s@127.0.0.1:1/loom?connect_timeout=2" % SECRET  # nothing listens on port 1

    with pytest.raises(DatabaseUnavailableError) as caught:
        open_storage(database_url=url, gc_interval=0)

    assert caught.value.retryable and (caught.value.code, caught.value.http_status) == ("unavailable", 503)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert SECRET not in caplog.text


def test_reprs_and_logs_name_the_place_without_credentials(backend, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    if backend.name == "postgres":  # trust authentication takes any password
        url = backend.target.replace("postgres@", "postgres:%s@" % SECRET, 1)
    else:
        url = "sqlite:///" + backend.target
    with open_storage(database_url=url, gc_interval=0) as storage:
        storage.sessions.save_session(Session(id="s"))
        storage.sessions.save_message("s", Message(role="user"))
        shown = repr(storage) + repr(storage.sessions) + repr(storage.hitl) + repr(storage.references)
    assert SECRET not in shown and SECRET not in caplog.text
    if backend.name == "postgres":
        assert "***" in repr(storage)
    with SessionRepository.open(tmp_path / "s.db") as repo:
        assert repr(repo) == "<SessionRepository %s>" % (tmp_path / "s.db")

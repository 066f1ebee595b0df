"""Every Python block of the README runs on its own, in a directory of its own, as a reader would paste it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
# The README's own PostgreSQL URL names a server a reader has; the suite's is this one.
README_URL = "postgresql://loom@127.0.0.1:5432/loom"
SUITE_URL = os.environ.get("LOOM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def python(code: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_readme_has_its_examples():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("block", BLOCKS, ids=[block.splitlines()[-1][:40] for block in BLOCKS])
def test_a_python_block_runs_on_its_own(block, tmp_path):
    if "@pytest.mark" in block:  # a test of a project's suite: pytest runs it, with its sample data
        (tmp_path / "data").mkdir()
        shutil.copy(ROOT / "tests" / "data" / "sample.json", tmp_path / "data")
        (tmp_path / "test_example.py").write_text(block)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return
    if README_URL in block:
        with schema_of_its_own() as url:
            done = python(block.replace(README_URL, url) + "\nstorage.close()\n", tmp_path)
    else:
        done = python(block, tmp_path)

    assert done.returncode == 0, done.stderr
    printed = {
        "print(session.total_tokens": "12 ['Where is my order?', 'On its way.']\n",
        "wait_for_response": "approved\n",
    }
    for call, output in printed.items():
        if call in block:
            assert done.stdout == output


@contextlib.contextmanager
def schema_of_its_own() -> Iterator[str]:
    """The URL of a throw-away schema in the suite's PostgreSQL database."""
    import psycopg2

    schema = "loom_readme_" + uuid.uuid4().hex[:12]
    with contextlib.closing(psycopg2.connect(SUITE_URL.split("?")[0])) as connection:
        connection.autocommit = True
        connection.cursor().execute("CREATE SCHEMA %s" % schema)
        try:
            yield "%s%soptions=%s" % (SUITE_URL, "&" if "?" in SUITE_URL else "?", quote("-csearch_path=%s" % schema))
        finally:
            connection.cursor().execute("DROP SCHEMA %s CASCADE" % schema)

"""A wheel carries the migrations inside the package and can migrate a database."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import loom_models, sqlite3, sys
from loom_models import open_storage
assert loom_models.__file__.startswith(sys.argv[1]), loom_models.__file__
with open_storage(sys.argv[2]) as storage:
    for domain in ("sessions", "hitl", "references"):
        database = getattr(storage, domain).database
        applied = database.execute_sql("SELECT name FROM schema_migration_%s ORDER BY name" % domain)
        print(domain, [name for name, in applied])
"""


def run(*command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_wheel_install_migrates_a_fresh_database(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".ci-venv", ".tox", "build", "dist", "*.egg-info", "__pycache__"
        ),
    )
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source))
    (wheel,) = (tmp_path / "dist").glob("loom_models-*.whl")
    site = tmp_path / "site"
    run(sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel))

    for domain in ("sessions", "hitl", "references"):
        assert (site / "loom_models" / "migrations" / domain / "0001_reference_schema.py").exists()
    assert not (site / "migrations").exists()  # no top-level package of that name
    assert (site / "loom_models" / "py.typed").exists()  # type checkers of other projects use our hints
    for page in ("web/templates/inbox.html", "web/templates/_rows.html", "web/static/loom.css", "web/static/inbox.js"):
        assert (site / "loom_models" / page).exists(), page  # loom-db serve's pages

    output = run(
        sys.executable,
        "-c",
        CHILD,
        str(site),
        str(tmp_path / "data"),
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert output.splitlines() == [
        "sessions ['0001_reference_schema', '0002_query_indexes', '0003_search', '0004_search_by_rowid',"
        " '0005_framework_items', '0006_counts', '0007_no_prefix_indexes',"
        " '0008_search_over_messages', '0009_index_in_batches']",
        "hitl ['0001_reference_schema', '0002_pending_indexes', '0003_decided_index', '0004_no_prefix_indexes']",
        "references ['0001_reference_schema', '0002_listing_index']",
    ]


def test_the_library_and_its_command_line_import_no_test_library(tmp_path):
    imported = run(
        sys.executable,
        "-c",
        "import sys, loom_models, loom_models.cli, loom_models.documents\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'factory', 'faker', 'pytest'}))",
    )
    assert imported.strip() == "[]"


def test_demo_without_the_testing_extra_says_how_to_install_it(tmp_path):
    script = (
        "import sys\n"
        "sys.modules['factory'] = None  # as if factory_boy were not installed\n"
        "from loom_models.cli import main\n"
        "main(['--data-dir', sys.argv[1], 'demo'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data")], capture_output=True, text=True)

    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "pip install 'loom-models[testing]'" in done.stderr
    assert not (tmp_path / "data").exists()

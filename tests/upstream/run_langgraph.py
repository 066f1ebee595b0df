"""Run LangGraph's own tests against loom's savers and store, from LangGraph's source packages.

    python tests/upstream/run_langgraph.py   # on SQLite, then on PostgreSQL when LOOM_TEST_DATABASE_URL is set

Three suites, on each backend:
- the checkpointer conformance kit (langgraph-checkpoint-conformance) against AsyncLoomSaver;
- LangGraph's graph tests (the `langgraph` source package ships tests/), whose
  "sqlite" checkpointers become LoomSaver and AsyncLoomSaver (langgraph_swap.py);
- the store tests of the `langgraph-checkpoint-sqlite` source package, whose
  SqliteStore and AsyncSqliteStore become LoomStore and AsyncLoomStore (langgraph_store_swap.py).
The source packages of the installed versions are downloaded into a temporary
directory: nothing of LangGraph is kept in this repository. `tox -e langgraph` runs it.
"""

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

from sources import HERE, backends, source

GRAPH_TESTS = ["tests", "-k", "sqlite and not sqlite_aes"]
STORE_TESTS = ["tests/test_store.py", "tests/test_async_store.py", "tests/test_ttl.py"]
# What LangGraph's tests import besides LangGraph (tox.ini's langgraph environment pins them).
NEEDED = ("pytest_asyncio", "pytest_mock", "syrupy", "langgraph.checkpoint.conformance", "langgraph.checkpoint.sqlite")


def main() -> int:
    missing = [module for module in NEEDED if importlib.util.find_spec(module) is None]
    if missing:
        print("missing %s: run `tox -e langgraph`, which installs them" % ", ".join(missing), file=sys.stderr)
        return 2
    versions = {name: importlib.metadata.version(name) for name in ("langgraph", "langgraph-checkpoint-sqlite")}
    with tempfile.TemporaryDirectory(prefix="langgraph-") as work:
        graphs = source("langgraph", versions["langgraph"], work)
        stores = source("langgraph-checkpoint-sqlite", versions["langgraph-checkpoint-sqlite"], work)
        for root in (graphs, stores):
            # Their tests import the installed langgraph, not the copy beside them.
            shutil.rmtree(os.path.join(root, "langgraph"))
        pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q"]
        failed = False
        for backend, env in backends():
            runs = [
                (
                    "the checkpointer conformance kit",
                    [sys.executable, os.path.join(HERE, "langgraph_conformance.py")],
                    work,
                ),
                (
                    "langgraph %(langgraph)s's graph tests" % versions,
                    [*pytest, "-p", "langgraph_swap", *GRAPH_TESTS],
                    graphs,
                ),
                (
                    "langgraph-checkpoint-sqlite %(langgraph-checkpoint-sqlite)s's store tests" % versions,
                    [*pytest, "-p", "langgraph_store_swap", *STORE_TESTS],
                    stores,
                ),
            ]
            for suite, command, root in runs:
                print("== %s, against loom on %s" % (suite, backend), flush=True)
                failed |= subprocess.run(command, cwd=root, env={**env, "NO_DOCKER": "true"}).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

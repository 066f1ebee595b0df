"""Run the OpenAI Agents SDK's own session tests against LoomSession, from the SDK's source package.

    python tests/upstream/run_openai_agents.py   # on SQLite, then on PostgreSQL when LOOM_TEST_DATABASE_URL is set

The source package of the installed openai-agents (it ships its tests/) is
downloaded into a temporary directory and its session tests run there, with
openai_agents_swap.py as a pytest plugin: nothing of the SDK is kept in this
repository. Arguments go to pytest. `tox -e openai-agents` runs it.
"""

import importlib.metadata
import importlib.util
import subprocess
import sys
import tempfile

from sources import backends, source

TESTS = ["tests/memory/test_session.py", "tests/memory/test_session_limit.py"]


# What the SDK's tests need besides the SDK (tox.ini's openai-agents environment pins them).
NEEDED = ("pytest_asyncio", "pytest_mock", "inline_snapshot")


def main(pytest_args: list[str]) -> int:
    missing = [module for module in NEEDED if importlib.util.find_spec(module) is None]
    if missing:  # without them every async test fails, which says nothing of LoomSession
        print("missing %s: run `tox -e openai-agents`, which installs them" % ", ".join(missing), file=sys.stderr)
        return 2
    version = importlib.metadata.version("openai-agents")
    with tempfile.TemporaryDirectory(prefix="openai-agents-") as work:
        root = source("openai-agents", version, work)
        failed = False
        for backend, env in backends():
            print("== openai-agents %s's session tests, against LoomSession on %s" % (version, backend), flush=True)
            command = [sys.executable, "-m", "pytest", "-p", "openai_agents_swap", "-p", "no:cacheprovider"]
            failed |= subprocess.run([*command, *TESTS, *pytest_args], cwd=root, env=env).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

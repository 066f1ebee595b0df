"""What the upstream runners share: another project's source package, and the backends to run its tests on.

root = source("openai-agents", "0.24.0", work)   # downloaded and extracted under `work`
for backend, env in backends(): ...             # SQLite, then PostgreSQL if LOOM_TEST_DATABASE_URL is set
"""

import glob
import os
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))


def source(distribution: str, version: str, work: str) -> str:
    """The source package of `distribution` at `version`, extracted under `work`; its root."""
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "--dest", work]
    subprocess.run([*pip, "%s==%s" % (distribution, version)], check=True)
    name = distribution.replace("-", "_")
    (archive,) = glob.glob(os.path.join(work, "%s-%s.tar.gz" % (name, version)))
    with tarfile.open(archive) as sdist:
        sdist.extractall(work, filter="data")  # no path outside `work`, no device files
    return os.path.join(work, "%s-%s" % (name, version))


def backends():
    """(name, environment) of each backend to run on; the plugins here are importable in it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))}
    url = env.pop("LOOM_TEST_DATABASE_URL", None)
    yield "SQLite", env
    if url:
        yield "PostgreSQL", {**env, "LOOM_TEST_DATABASE_URL": url}

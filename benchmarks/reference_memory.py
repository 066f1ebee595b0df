"""Peak memory of storing, resolving and retaining one large reference.

    python benchmarks/reference_memory.py [--megabytes 50] [--database-url postgresql://...]

Each operation runs in a fresh process, so each peak (resident set, which also
counts SQLite's page cache and mapped pages) is that operation's own. Figures are
printed in MB above the process's state before the call, and in copies of the payload.
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from urllib.parse import quote

from loom_models.db import open_database

CHILD = """
import hashlib, resource, sys
from loom_models.references import ReferenceRepository
target, size, operation = sys.argv[1], int(sys.argv[2]), sys.argv[3]
repository = ReferenceRepository.open(target)
data = (b"%d-" % size) * (size // len(b"%d-" % size))  # the same payload in every process
reference_id = hashlib.sha256(data).hexdigest()
if operation == "setup":
    repository.store(data)
    sys.exit()
if operation != "store":
    del data
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = peak()
if operation == "store":
    repository.store(data)
elif operation == "resolve":
    repository.resolve(reference_id, verify=True)
else:
    repository.retain(reference_id)
print(peak() - base)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--database-url", help="a PostgreSQL URL; a new SQLite file by default")
    args = parser.parse_args()
    size = args.megabytes * 2**20
    print("backend: %s, payload %d MB" % ("postgresql" if args.database_url else "sqlite", args.megabytes))
    for operation in ("store", "resolve", "retain"):
        with _empty_store(args.database_url) as target:
            if operation != "store":
                _run(target, size, "setup")
            grown = int(_run(target, size, operation))
        print("%-8s peak +%5.0f MB  (%.1f copies)" % (operation, grown / 2**20, grown / size))


@contextlib.contextmanager
def _empty_store(database_url):
    """A new SQLite file, or a throw-away schema in the PostgreSQL database (dropped after)."""
    if not database_url:
        with tempfile.TemporaryDirectory() as directory:
            yield "%s/references.db" % directory
        return
    schema = "loom_bench_%d" % os.getpid()
    admin = open_database(database_url)
    admin.execute_sql("CREATE SCHEMA %s" % schema)
    try:
        separator = "&" if "?" in database_url else "?"
        yield "%s%soptions=%s" % (database_url, separator, quote("-csearch_path=%s" % schema))
    finally:
        admin.execute_sql("DROP SCHEMA %s CASCADE" % schema)
        admin.close()


def _run(target, size, operation):
    command = [sys.executable, "-c", CHILD, target, str(size), operation]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


if __name__ == "__main__":
    main()

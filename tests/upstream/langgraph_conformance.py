"""LangGraph's checkpointer conformance kit against AsyncLoomSaver: every capability, base and extended.

    python tests/upstream/langgraph_conformance.py   # on SQLite; on PostgreSQL with LOOM_TEST_DATABASE_URL

The kit (langgraph-checkpoint-conformance) gives each capability a fresh saver
from the generator registered here, and tests the async methods. Exits 1
unless every capability is detected and passes with at least AT_LEAST_PASSED
tests, so that a kit that tests less cannot pass in silence.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from langgraph.checkpoint.conformance import checkpointer_test, validate
from throwaway import POSTGRES_URL, ThrowawayStores

from loom_models.integrations.langgraph import AsyncLoomSaver

STORES = ThrowawayStores("loom_conformance_")
CAPABILITIES = {"put", "put_writes", "get_tuple", "list", "delete_thread", "copy_thread", "delete_for_runs", "prune"}
AT_LEAST_PASSED = 81  # langgraph-checkpoint-conformance 0.0.2: 58 base tests, 23 extended


@checkpointer_test(name="AsyncLoomSaver on %s" % ("PostgreSQL" if POSTGRES_URL else "SQLite"))
async def loom_saver() -> AsyncIterator[AsyncLoomSaver]:
    try:
        async with AsyncLoomSaver.open(**STORES.location()) as saver:
            yield saver
    finally:
        STORES.clean()


async def main() -> int:
    report = await validate(loom_saver)
    report.print_report()
    results = {str(getattr(capability, "value", capability)): result for capability, result in report.results.items()}
    missing = sorted(CAPABILITIES - {name for name, result in results.items() if result.detected and result.passed})
    passed = sum(result.tests_passed for result in results.values())
    failed = sum(result.tests_failed for result in results.values())
    print("%d passed, %d failed, %d skipped" % (passed, failed, sum(r.tests_skipped for r in results.values())))
    if missing or failed or passed < AT_LEAST_PASSED:
        print("not conformant: %s" % (", ".join(missing) or "%d passed, %d expected" % (passed, AT_LEAST_PASSED)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

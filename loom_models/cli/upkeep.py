"""loom-db stats, check, vacuum, analyze and checkpoint: what is in the store, and its upkeep."""

from __future__ import annotations

import click

from .. import maintenance
from . import main
from .output import emit, examples, label, money, progress, size, table

# -- what is in the store ------------------------------------------------------------------


@main.command(
    short_help="What the store holds: sessions, cost, requests, threads.",
    epilog=examples("loom-db stats", "loom-db stats --json | jq .sessions.total_cost_usd"),
)
@click.pass_obj
def stats(target):
    """Sessions, messages, cost and tokens; requests by status and priority; references; LangGraph checkpoints."""
    with target.storage() as storage:
        document = storage.stats()
    emit(target, document, stats_lines(document))


def stats_lines(document: dict) -> list[str]:
    sessions, requests = document["sessions"], document["requests"]
    rows = [
        ("sessions", sessions["session_count"]),
        ("messages", sessions["message_count"]),
        ("tool executions", sessions["tool_execution_count"]),
        ("total cost", money(sessions["total_cost_usd"])),
        ("total tokens", sessions["total_tokens"]),
    ]
    rows += [("requests %s" % status, n) for status, n in requests["by_status"].items()]
    rows += [("pending %s" % priority, n) for priority, n in requests["pending_by_priority"].items()]
    rows += [("references", document["references"]["count"]), ("reference size", size(document["references"]["bytes"]))]
    graphs = document["checkpoints"]
    rows += [
        ("graph threads", graphs["threads"]),
        ("checkpoints", graphs["checkpoints"]),
        ("checkpoint writes", graphs["writes"]),
        ("channel values", graphs["values"]),
        ("channel value size", size(graphs["value_bytes"])),
        ("graph store items", graphs["store_items"]),
    ]
    pool = document.get("pool")  # PostgreSQL's
    if pool:
        bound = "" if pool["size"] is None else " of %d" % pool["size"]
        rows += [
            ("pool connections", "%d%s (%d in use)" % (pool["open"], bound, pool["in_use"])),
            ("pool waits", "%d (%.3f s)" % (pool["waits"], pool["wait_seconds"])),
        ]
    return table(rows)


# -- maintenance ---------------------------------------------------------------------------


@main.command(
    short_help="Integrity, permissions, pragmas and schema of each database.",
    epilog=examples("loom-db check", "loom-db check && loom-db backup /srv/backups", "loom-db --json check | jq .ok"),
)
@click.pass_obj
def check(target):
    """Integrity, permissions, pragmas in force, fragmentation, schema version and copies left, of every database.

    Exits 9 when a database is damaged, 14 when a file cannot be written, 11 when
    a schema is not current, and 1 when a pragma is not in force.
    """
    # The store as it is: a check must report an old schema or a damaged file, not stop at it.
    with target.repositories() as storage:
        reports = [maintenance.check(database, repositories) for database, repositories in storage.by_database()]
    emit(target, {"ok": not any(r["problems"] for r in reports), "databases": reports}, _check_lines(reports))
    failure = maintenance.check_failure(reports)
    if failure is not None:
        raise failure


def _check_lines(reports: list[dict]) -> list[str]:
    rows = []
    for report in reports:
        rows.append((report["database"], "problem" if report["problems"] else "ok", _figures(report)))
        rows += [(report["database"], p["kind"], p["detail"]) for p in report["problems"]]
        rows += [(report["database"], "warning", w) for w in report["warnings"]]
    return table(rows, ("database", "result", "detail"))


def _figures(report: dict) -> str:
    figures = []
    if "sizes" in report:
        figures.append(size(report["sizes"]["database_bytes"]))
    if "sizes" in report and report["backend"] == "sqlite":
        figures.append("WAL %s" % size(report["sizes"]["wal_bytes"]))
    if "fragmentation" in report:
        figures.append("%(freelist_count)d of %(page_count)d pages free" % report["fragmentation"])
    return "; ".join(figures)


@main.command(short_help="Rewrite each database compactly.", epilog=examples("loom-db vacuum", "loom-db --json vacuum"))
@click.pass_obj
def vacuum(target):
    """Rewrite each database compactly (SQLite) or reclaim dead rows (PostgreSQL)."""
    rows = []
    with target.storage() as storage, progress("vacuum", len(storage.by_database())) as advance:
        for database, _ in storage.by_database():
            before = maintenance.sizes(database).database_bytes
            maintenance.vacuum(database)
            rows.append((label(database), before, maintenance.sizes(database).database_bytes))
            advance(1)
    document = [dict(zip(("database", "bytes_before", "bytes_after"), row, strict=True)) for row in rows]
    shown = [(name, size(before), size(after)) for name, before, after in rows]
    emit(target, {"databases": document}, table(shown, ("database", "size before", "size after")))


@main.command(epilog=examples("loom-db analyze", "loom-db --json analyze"))
@click.pass_obj
def analyze(target):
    """Refresh the query planner's statistics of each database."""
    names = []
    with target.storage() as storage:
        for database, _ in storage.by_database():
            maintenance.analyze(database)
            names.append(label(database))
    emit(target, {"analyzed": names}, ["Analyzed %s." % name for name in names])


@main.command(
    short_help="Fold each SQLite write-ahead log into its database.",
    epilog=examples("loom-db checkpoint", "loom-db --json checkpoint"),
)
@click.pass_obj
def checkpoint(target):
    """Copy each SQLite database's write-ahead log into it and truncate the log."""
    with target.storage() as storage:
        rows = [
            (label(database), *maintenance.wal_checkpoint(database, mode="TRUNCATE"))
            for database, _ in storage.by_database()
        ]
    document = [dict(zip(("database", "busy", "log_pages", "checkpointed_pages"), row, strict=True)) for row in rows]
    emit(target, {"databases": document}, table(rows, ("database", "busy", "log pages", "checkpointed")))

"""loom-db usage, refs list and refs show, through the installed script, on the suite's backend.

Expected numbers are read through raw SQL (Store.sql), not through the repositories.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re

import click
import pytest
import test_cli
from click.testing import CliRunner

from loom_models.cli import main
from loom_models.cli.output import at, copy_progress, more, shortened, size, span
from loom_models.cli.usage import money
from loom_models.references import ReferenceType
from loom_models.sessions import Message, Session

UTC = datetime.timezone.utc
TODAY = datetime.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
BLOCKS = " ▏▎▍▌▋▊▉█"

store = test_cli.store  # the fixture: an initialised store on the suite's backend
script = test_cli.script


def loom(store, *args, code=0):
    done = script(*store.args, *args, capture_output=True, text=True)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


def loom_json(store, *args):
    return json.loads(loom(store, "--json", *args).stdout)


def put(store, session_id, agent_id, *messages):
    """A session of `agent_id` with messages (days ago, tokens, cost), each a second into its UTC day."""
    with store.storage() as storage:
        storage.sessions.save_session(Session(id=session_id, agent_id=agent_id))
        storage.sessions.save_messages(
            session_id,
            [
                Message(
                    role="user",
                    content="m",
                    timestamp=TODAY - datetime.timedelta(days=days, seconds=-1),
                    token_count=tokens,
                    cost_usd=cost,
                )
                for days, tokens, cost in messages
            ],
        )


@pytest.fixture
def spent(store):
    put(store, "s1", "support", (0, 100, 0.1), (0, 50, 0.2), (2, 25, 0.000001))
    put(store, "s2", "billing", (2, 7, 0.6), (40, 1000, 9.0))
    put(store, "s3", None, (1, 3, 0.3))
    return store


def raw_usage(store, key_sql, days):
    since = int((datetime.datetime.now(UTC) - datetime.timedelta(days=days)).timestamp())
    rows = store.sql(
        "sessions",
        "SELECT %s, COUNT(*), SUM(m.token_count), SUM(m.cost_usd) FROM messages m"
        " JOIN sessions s ON s.id = m.session_id WHERE m.timestamp >= ? GROUP BY 1" % key_sql,
        since,
    )
    return {key: {"messages": n, "tokens": int(t), "cost_usd": round(c, 6)} for key, n, t, c in rows}


def by_key(document, key):
    return {row[key]: {k: v for k, v in row.items() if k != key} for row in document["rows"]}


# -- usage -----------------------------------------------------------------------------------


def test_usage_per_agent_and_session_are_the_messages_sums(spent):
    agents = loom_json(spent, "usage", "--by", "agent")
    expected = raw_usage(spent, "s.agent_id", 30)
    assert by_key(agents, "agent") == expected
    assert [row["agent"] for row in agents["rows"]] == ["billing", "support", None]  # costliest first
    assert agents["total"] == {"messages": 5, "tokens": 185, "cost_usd": 1.200001}

    sessions = loom_json(spent, "usage", "--by", "session")
    assert by_key(sessions, "session") == raw_usage(spent, "m.session_id", 30)


def test_usage_per_day_is_each_utc_days_sum_oldest_first_with_empty_days_at_zero(spent):
    document = loom_json(spent, "usage")
    days = [(TODAY - datetime.timedelta(days=n)).date().isoformat() for n in (2, 1, 0)]
    assert [row["day"] for row in document["rows"]] == days and document["timezone"] == "UTC"
    assert by_key(document, "day") == {
        days[0]: {"messages": 2, "tokens": 32, "cost_usd": 0.600001},
        days[1]: {"messages": 1, "tokens": 3, "cost_usd": 0.3},
        days[2]: {"messages": 2, "tokens": 150, "cost_usd": 0.3},  # 0.1 + 0.2, not 0.30000000000000004
    }
    put(spent, "s4", "support", (5, 1, 0.5))
    rows = loom_json(spent, "usage")["rows"]
    assert [row["day"] for row in rows][:4] == [
        (TODAY - datetime.timedelta(days=n)).date().isoformat() for n in (5, 4, 3, 2)
    ]
    assert rows[1] == {"day": rows[1]["day"], "messages": 0, "tokens": 0, "cost_usd": 0}


def test_usage_since_leaves_older_messages_out(spent):
    assert loom_json(spent, "usage", "--by", "session")["total"]["tokens"] == 185
    older = loom_json(spent, "usage", "--by", "session", "--since", "60d")
    assert older["total"] == {"messages": 6, "tokens": 1185, "cost_usd": 10.200001}
    assert by_key(older, "session") == raw_usage(spent, "m.session_id", 60)
    assert loom_json(spent, "usage", "--since", "1s")["rows"] == []


def test_usage_as_a_table_money_a_bar_proportional_to_cost_and_a_total(spent):
    put(spent, "s5", "research", (0, 10, 2.4))  # the largest: 2.4 is twice billing's 1.2
    put(spent, "s6", "billing", (0, 1, 0.6))
    lines = loom(spent, "usage", "--by", "agent").stdout.splitlines()
    assert re.fullmatch(r"Usage per agent since \d{4}-\d\d-\d\d \d\d:\d\d UTC", lines[0])
    assert lines[1].split() == ["agent", "messages", "tokens", "cost"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == ["research", "billing", "support", "(no", "total"]
    assert "$2.40" in rows["research"] and "$1.20" in rows["billing"] and "$0.300001" in rows["support"]
    assert "0.30000000000000004" not in "\n".join(lines)
    assert rows["total"].split()[1:] == ["7", "196", "$4.200001"]
    bars = {agent: bar_eighths(line) for agent, line in rows.items()}
    assert bars["total"] == 0 and bars["research"] >= 8 * 10
    assert bars["billing"] * 2 == pytest.approx(bars["research"], abs=1)
    assert bars["support"] / bars["research"] == pytest.approx(0.300001 / 2.4, abs=1 / bars["research"])
    assert max(len(line) for line in lines) <= 80


def bar_eighths(line: str) -> int:
    bar = line[len(line.rstrip(BLOCKS[1:])) :]
    return sum(BLOCKS.index(block) for block in bar)


def test_usage_on_an_empty_store(store):
    lines = loom(store, "usage").stdout.splitlines()
    assert lines[0].startswith("Usage per day (UTC) since ") and lines[1:] == ["No messages."]
    document = loom_json(store, "usage", "--by", "agent")
    assert document["rows"] == [] and document["total"] == {"messages": 0, "tokens": 0, "cost_usd": 0}


def test_usage_refuses_an_unknown_grouping(store):
    done = loom(store, "usage", "--by", "week", code=2)
    assert done.stderr.startswith("Error: ") and "week" in done.stderr


def test_money_to_the_micro_dollar():
    assert money(0.23947499999999974) == "$0.239475"
    assert money(0.23950000000000002) == "$0.2395"
    assert money(0.0000004) == "$0.00"
    assert money(1234.5) == "$1,234.50"


# -- refs ----------------------------------------------------------------------------------


@pytest.fixture
def stored(store):
    """Three references, the newest (by raw SQL) first: 1.2 MB, 10 bytes expiring, 2 bytes held twice."""
    blobs = [b"a" * 1_234_567, b"0123456789", b"hi"]
    with store.storage() as storage:
        storage.references.store(blobs[0], type=ReferenceType.TOOL_RESULT)
        storage.references.store(blobs[1], ttl=3600)
        storage.references.store(blobs[2], type=ReferenceType.LARGE_PAYLOAD)
        storage.references.store(blobs[2], type=ReferenceType.LARGE_PAYLOAD)
    for age, blob in enumerate(reversed(blobs)):
        store.sql(
            "references",
            "UPDATE reference_store SET created_at = created_at - ? WHERE id = ?",
            age * 60,
            hashlib.sha256(blob).hexdigest(),
        )
    return store, [hashlib.sha256(blob).hexdigest() for blob in reversed(blobs)], list(reversed(blobs))


def test_refs_list_newest_first_with_human_sizes_counts_and_expiry(stored):
    store, ids, _ = stored
    lines = loom(store, "refs", "list").stdout.splitlines()
    assert lines[0].split() == ["id", "type", "size", "refs", "created", "(UTC)", "expires"]
    assert [line.split()[0] for line in lines[1:]] == [i[:12] for i in ids]
    assert lines[1].split()[1:5] == ["large_payload", "2", "bytes", "2"] and lines[1].endswith("never")
    assert re.search(r"10 bytes +1 +\d{4}-\d\d-\d\d \d\d:\d\d +in (5\d|60)m$", lines[2])  # an hour's TTL, a moment ago
    assert lines[3].split()[1:4] == ["tool_result", "1.2", "MB"]

    document = loom_json(store, "refs", "list")
    assert [r["id"] for r in document["references"]] == ids and document["more"] is False
    assert document["references"][0]["ref_count"] == 2 and document["references"][2]["size_bytes"] == 1_234_567
    assert document["references"][1]["expires_at"].endswith("+00:00")
    assert document["references"][0]["expires_at"] is None


def test_refs_list_says_when_there_are_more(stored):
    store, ids, _ = stored
    lines = loom(store, "refs", "list", "--limit", "2").stdout.splitlines()
    assert [line.split()[0] for line in lines[1:3]] == [i[:12] for i in ids[:2]]
    assert lines[3] == "... and more (--limit 20 lists more)"
    document = loom_json(store, "refs", "list", "--limit", "2")
    assert len(document["references"]) == 2 and document["more"] is True
    assert loom(store, "refs", "list", "--limit", "0", code=2).stderr.startswith("Error: ")


def test_refs_list_of_none(store):
    assert loom(store, "refs", "list").stdout == "No references.\n"
    assert loom_json(store, "refs", "list") == {"references": [], "more": False}


def test_refs_show_by_id_or_its_start(stored):
    store, ids, _ = stored
    shown = loom(store, "refs", "show", ids[2][:12]).stdout.splitlines()
    assert shown[0] == "id:      " + ids[2]
    assert shown[1:4] == ["type:    tool_result", "size:    1.2 MB", "refs:    1"]
    assert shown[-1] == "expires: never"
    assert loom_json(store, "refs", "show", ids[1])["size_bytes"] == 10


def test_refs_show_output_writes_the_bytes_and_never_overwrites_unless_forced(stored, tmp_path):
    store, ids, blobs = stored
    target = tmp_path / "out.bin"
    done = loom(store, "refs", "show", ids[2][:8], "--output", target)
    assert target.read_bytes() == blobs[2] and done.stdout.splitlines()[-1] == "Wrote 1.2 MB to %s." % target

    refused = loom(store, "refs", "show", ids[0], "--output", target, code=5)
    assert refused.stdout == "" and refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert target.read_bytes() == blobs[2]

    document = loom_json(store, "refs", "show", ids[0], "--output", target, "--force")
    assert target.read_bytes() == blobs[0] and document["output"] == str(target)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_refs_show_of_a_missing_reference_or_directory_exits_3(stored, tmp_path):
    store, ids, _ = stored
    for missing in ("0" * 64, "beef"):
        done = loom(store, "refs", "show", missing, "--output", tmp_path / "x", code=3)
        assert done.stderr.startswith("Error: reference not found: ") and done.stdout == ""
    assert not (tmp_path / "x").exists()
    nowhere = loom(store, "refs", "show", ids[0], "--output", tmp_path / "no" / "x", code=3)
    assert nowhere.stderr.startswith("Error: no directory ") and nowhere.stderr.count("\n") == 1
    assert "Error: " in loom(store, "refs", "show", "not-an-id", code=4).stderr


def every_command(group=main, path=()):
    """The path of every command and group under `group`: ("sessions",), ("sessions", "list"), ..."""
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))


def help_of(*path: str) -> str:
    done = CliRunner(env={"COLUMNS": "80"}).invoke(main, [*path, "--help"])
    assert done.exit_code == 0, done.output
    return done.output


def test_the_help_of_every_command_ends_with_two_or_three_examples():
    paths = list(every_command())
    assert len(paths) > 30 and ("requests", "approve") in paths
    for path in paths:
        text = help_of(*path)
        examples = text.rsplit("Examples:", 1)[-1].strip().splitlines()
        assert "Examples:" in text and 2 <= len(examples) <= 3, text
        assert all(line.strip().startswith("loom-db ") for line in examples), text
        assert max(map(len, text.splitlines())) <= 80, text


def test_the_top_level_help_lists_every_command_once_by_group():
    text = help_of()
    sections = re.findall(r"\n(\S[^\n]*):\n((?:  \S[^\n]*\n)+)", text)
    listed = {title: [line.split()[0] for line in body.splitlines()] for title, body in sections}

    assert list(listed)[1:] == ["Look at the store", "Act on it", "Look after the files"]  # after Options
    commands = [name for title, names in listed.items() if title != "Options" for name in names]
    assert sorted(commands) == sorted(main.commands)  # each once, none left to "Other commands"
    assert "..." not in text.split("\n", 1)[1]  # a summary cut short reads as a fault (the usage line has one)


def test_sizes_for_people():
    assert [size(n) for n in (0, 1, 999, 1000, 1_234_567, 252_862_464, 10**13)] == [
        "0 bytes",
        "1 byte",
        "999 bytes",
        "1.0 kB",
        "1.2 MB",
        "252.9 MB",
        "10.0 TB",
    ]


def test_spans_of_time_at_a_glance_as_kubectl_prints_ages():
    seconds = [
        0,
        45,
        120,
        200,
        600,
        3599,
        3600,
        4 * 3600 - 1,
        8 * 3600,
        48 * 3600 - 1,
        50 * 3600,
        8 * 86400,
        30 * 86400,
    ]
    assert [span(n) for n in seconds] == [
        "0s",
        "45s",
        "2m",
        "3m20s",
        "10m",
        "59m",
        "60m",
        "3h59m",
        "8h",
        "47h",
        "2d2h",
        "8d",
        "30d",
    ]
    assert span(-5) == "0s"  # past already, by the time it is printed


def test_a_naive_time_is_local_time_as_everywhere_in_loom():
    naive = datetime.datetime(2026, 12, 7, 9, 30)
    assert at(naive) == at(naive.astimezone(UTC)) and at(naive).endswith(" UTC")
    assert at(datetime.datetime(2026, 12, 7, 9, 30, 5, tzinfo=UTC), seconds=True) == "2026-12-07 09:30:05 UTC"


def test_shortened_cuts_at_a_word_and_counts_wide_characters_as_two_cells():
    assert shortened("Refund the order of 249.99 EUR?", 20) == "Refund the order of…"
    assert shortened("  many   spaces  ", 20) == "many spaces"
    assert shortened("退款 订单 四四一一 金额", 12) == "退款 订单…"  # 10 cells and the ellipsis
    assert shortened("Supercalifragilistic", 8) == "Superca…"  # one word too long: cut, as nothing fits


def test_more_says_how_many_and_the_limit_that_shows_them():
    assert more(0, 20) == []
    assert more(35, 4) == ["... and 35 more (--limit 39 lists them all)"]
    assert more(5000, 20) == ["... and 5,000 more (--limit 1000 lists more)"]
    assert more(5000, 1000) == ["... and 5,000 more (1000 is the most one listing shows)"]
    assert more(None, 50) == ["... and more (--limit 500 lists more)"]


def test_a_copy_moves_the_bar_by_the_bytes_of_its_pages_database_after_database():
    moved = []
    report = copy_progress(moved.append)
    for remaining, total in ((10, 20), (0, 20), (5, 5), (0, 5)):  # a database of 20 pages, then one of 5
        report(remaining, total)
    assert moved == [10 * 4096, 10 * 4096, 0, 5 * 4096] and sum(moved) == 25 * 4096

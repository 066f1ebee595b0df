"""loom-db sessions list, show, search and delete, on the suite's backend.

Most run through click's runner (test_cli's `store`); what needs a terminal, or
none, runs the installed script. Results are checked through raw SQL or --json.
"""

# test_cli's `store` fixture is imported: pytest passes it to each test by its parameter's name.
# ruff: noqa: F811
from __future__ import annotations

import json
import os
import pty

import pytest
from test_cli import fails, ok, script, store  # noqa: F401

from loom_models.cli.sessions import money
from loom_models.sessions import Message, Session

# 2026-12-07 04:30:00 UTC, and a minute and two minutes later.
T0 = 1796617800


def put(store, session_id: str, agent: str, costs=(), *, updated_at: int = T0, contents=None, **message):
    """A session of `agent` with one message per cost (or per content), updated at `updated_at`."""
    contents = contents or ["message %d" % i for i in range(len(costs))]
    costs = costs or [0.0] * len(contents)
    with store.storage() as storage:
        storage.sessions.save_session(Session(id=session_id, agent_id=agent, name="Talk " + session_id))
        rows = [
            Message(role="user", content=text, token_count=10, cost_usd=cost, **message)
            for text, cost in zip(contents, costs, strict=True)
        ]
        storage.sessions.save_messages(session_id, rows)
    store.sql("sessions", "UPDATE sessions SET updated_at = ? WHERE id = ?", updated_at, session_id)


def ok_json_of(store, *args):
    return json.loads(ok(store("--json", *args)).stdout)


def session_ids(store) -> list[str]:
    return [row[0] for row in store.sql("sessions", "SELECT id FROM sessions ORDER BY id")]


# -- money --------------------------------------------------------------------------------


def test_money_is_rounded_to_the_micro_dollar():
    assert money(0.23947499999999974) == "$0.239475"
    assert money(0.2 + 0.0395) == "$0.2395"
    assert money(12.5) == "$12.50"
    assert money(0) == "$0.00"
    assert money(0.0000004) == "$0.00"


# -- list ---------------------------------------------------------------------------------


def test_list_shows_the_newest_first_with_money_and_times_in_utc(store):
    put(store, "old", "support", [0.2, 0.0395], updated_at=T0)
    put(store, "new", "triage", [0.5], updated_at=T0 + 120)
    put(store, "mid", "support", [], updated_at=T0 + 60)

    lines = ok(store("sessions", "list")).stdout.splitlines()

    assert lines[0].split() == ["id", "agent", "messages", "tokens", "cost", "updated"]
    assert [line.split()[0] for line in lines[1:]] == ["new", "mid", "old"]
    assert lines[1].split() == ["new", "triage", "1", "10", "$0.50", "2026-12-07", "04:32", "UTC"]
    assert lines[3].split() == ["old", "support", "2", "20", "$0.2395", "2026-12-07", "04:30", "UTC"]
    assert lines[2].split()[:5] == ["mid", "support", "0", "0", "$0.00"]
    assert len({line.index("UTC") for line in lines[1:]}) == 1  # the columns line up


def test_list_as_json_rounds_the_cost(store):
    put(store, "s1", "support", [0.1, 0.2, 0.3, 0.00000049])

    document = ok_json_of(store, "sessions", "list")

    assert document["more"] == 0
    (listed,) = document["sessions"]
    assert listed["id"] == "s1" and listed["agent_id"] == "support" and listed["name"] == "Talk s1"
    assert (listed["messages"], listed["total_tokens"]) == (4, 40)
    assert listed["total_cost_usd"] == 0.6  # not 0.6000000000000001, nor the half micro-dollar
    assert listed["updated_at"] == "2026-12-07T04:30:00+00:00"


def test_list_says_how_many_more_there_are_and_how_to_see_them(store):
    for n in range(5):
        put(store, "s%d" % n, "support" if n % 2 else "triage", [0.01], updated_at=T0 + n)

    lines = ok(store("sessions", "list", "--limit", "2")).stdout.splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["s4", "s3"]
    assert lines[-1] == "... and 3 more (--limit 5 lists them all)"

    document = ok_json_of(store, "sessions", "list", "--limit", "2")
    assert [s["id"] for s in document["sessions"]] == ["s4", "s3"] and document["more"] == 3

    everything = ok(store("sessions", "list", "--limit", "5")).stdout.splitlines()
    assert len(everything) == 6 and "more" not in everything[-1]


def test_list_filters_by_agent_and_pages_within_it(store):
    for n in range(5):
        put(store, "s%d" % n, "support" if n % 2 else "triage", [0.01], updated_at=T0 + n)

    document = ok_json_of(store, "sessions", "list", "--agent", "triage")
    assert [s["id"] for s in document["sessions"]] == ["s4", "s2", "s0"] and document["more"] == 0

    lines = ok(store("sessions", "list", "--agent", "triage", "--limit", "1")).stdout.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["s4"]
    assert lines[-1] == "... and 2 more (--limit 3 lists them all)"
    assert ok(store("sessions", "list", "--agent", "nobody")).stdout == "No sessions of agent nobody.\n"


def test_an_empty_store_lists_no_sessions(store):
    assert ok(store("sessions", "list")).stdout == "No sessions.\n"
    assert ok_json_of(store, "sessions", "list") == {"sessions": [], "more": 0}


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "many"])
def test_a_limit_out_of_bounds_is_a_usage_error(store, limit):
    fails(store("sessions", "list", "--limit", limit), 2)


def test_list_shows_the_start_of_a_long_id_which_show_export_and_delete_take(store):
    long_id = "sess_fd62ed538a6a4a51a1c2c4a3b0f1d2e3"
    put(store, long_id, "support", [0.1])
    put(store, "sess_fd6", "support", [0.2], updated_at=T0 - 60)  # starts like it, but is shorter

    listed = [line.split()[0] for line in ok(store("sessions", "list")).stdout.splitlines()[1:]]
    assert listed == ["sess_fd62ed538a6", "sess_fd6"]
    assert ok_json_of(store, "sessions", "list")["sessions"][0]["id"] == long_id  # JSON: whole ids

    assert ok_json_of(store, "sessions", "show", "sess_fd62ed538a6")["id"] == long_id
    assert ok_json_of(store, "sessions", "show", "sess_fd6")["id"] == "sess_fd6"  # an id is itself first
    assert json.loads(ok(store("export", "sess_fd62")).stdout)["id"] == long_id
    ambiguous = fails(store("sessions", "show", "sess_f"), 4)
    assert "sess_f starts more than one session's id: give more of it" in ambiguous.stderr
    assert ok(store("sessions", "delete", "sess_fd62ed", "--yes")).stdout == "Deleted session %s with 1 message.\n" % (
        long_id
    )
    assert session_ids(store) == ["sess_fd6"]


def test_an_id_a_person_chose_is_listed_whole(store):
    for chosen in ("sess_import_2024_001", "sess_import_2024_002", "sess_1234567890a"):
        put(store, chosen, "support", [0.1])
    listed = {line.split()[0] for line in ok(store("sessions", "list")).stdout.splitlines()[1:]}
    assert listed == {"sess_import_2024_001", "sess_import_2024_002", "sess_1234567890a"}
    assert ok_json_of(store, "sessions", "show", "sess_1234567890a")["id"] == "sess_1234567890a"


# -- show ---------------------------------------------------------------------------------


def conversation(store) -> None:
    with store.storage() as storage:
        storage.sessions.save_session(Session(id="sess_1", agent_id="support", name="Order"))
        storage.sessions.save_messages(
            "sess_1",
            [
                Message(role="user", content="Where is my order?", token_count=7, cost_usd=0.25),
                Message(
                    role="assistant",
                    content="",
                    token_count=5,
                    cost_usd=0.0395,
                    tool_calls=[
                        {"ID": "c1", "Name": "lookup_order", "Input": {"order": 42}},
                        {"id": "c2", "type": "function", "function": {"name": "notes", "arguments": '{"q": "x"}'}},
                        {"name": "summarise", "args": {"text": "word " * 100}},
                    ],
                ),
                Message(role="tool", content="shipped", tool_use_id="c1", token_count=1),
                Message(role="assistant", content="It shipped.\n\nAnything else? " + "More " * 40, token_count=9),
            ],
        )


def test_show_prints_the_conversation_in_order_and_its_totals(store):
    conversation(store)

    lines = ok(store("sessions", "show", "sess_1")).stdout.splitlines()

    assert lines[0] == 'Session sess_1 (agent support, "Order")'
    assert lines[1].startswith("Created 20") and lines[1].endswith(" UTC.")
    assert lines[3].endswith(" UTC")  # the day the messages are of
    turns = [line for line in lines[4:] if line[:2].isdigit()]
    assert [turn.split()[1] for turn in turns] == ["user", "assistant", "tool", "assistant"]
    assert turns[0].endswith("user       Where is my order?")
    calls = ["->" + line.split("->", 1)[1] for line in lines if "-> " in line]
    assert "assistant  -> lookup_order" in turns[1]  # a message of tool calls alone
    assert calls[:2] == ['-> lookup_order({"order": 42})', '-> notes({"q": "x"})']
    assert calls[2].startswith('-> summarise({"text": "word word') and calls[2].endswith("…")
    assert all(len(line) <= 100 for line in lines), [line for line in lines if len(line) > 100]
    assert "More More" in lines[-4] and lines[-4].startswith(" " * 21)  # long content wraps, indented
    assert lines[-1] == "Total: 4 messages, 22 tokens, $0.2895."


def test_show_as_json(store):
    conversation(store)

    document = ok_json_of(store, "sessions", "show", "sess_1")

    assert (document["id"], document["messages"], document["total_tokens"]) == ("sess_1", 4, 22)
    assert document["total_cost_usd"] == 0.2895
    assert [m["role"] for m in document["conversation"]] == ["user", "assistant", "tool", "assistant"]
    assert document["conversation"][1]["tool_calls"][0]["Name"] == "lookup_order"
    assert document["conversation"][2]["tool_use_id"] == "c1"


# -- search -------------------------------------------------------------------------------


def test_search_shows_the_best_match_first_with_its_session(store):
    put(store, "a", "support", contents=["benchmark", "nothing to see"])
    put(store, "b", "triage", contents=["benchmark benchmark benchmarks, the benchmark suite " + "x" * 200])

    lines = ok(store("sessions", "search", "benchmarks")).stdout.splitlines()

    assert lines[0].split() == ["session", "role", "time", "message"]
    assert [line.split()[0] for line in lines[1:]] == ["b", "a"]
    assert lines[1].split()[1] == "user" and lines[1].split()[4] == "UTC"
    assert "benchmark benchmark" in lines[1] and lines[1].endswith("…")
    assert all(len(line) <= 100 for line in lines)

    document = ok_json_of(store, "sessions", "search", "benchmarks", "--limit", "1")
    assert document["query"] == "benchmarks"
    assert [(hit["session_id"], hit["content"][:9]) for hit in document["hits"]] == [("b", "benchmark")]
    assert ok(store("sessions", "search", "zebra")).stdout == 'No message matches "zebra".\n'


# -- delete -------------------------------------------------------------------------------


def test_delete_with_yes_deletes_the_session_and_its_messages(store):
    put(store, "s1", "support", [0.1, 0.2])
    put(store, "s2", "support", [0.1])

    assert ok(store("sessions", "delete", "s1", "--yes")).stdout == "Deleted session s1 with 2 messages.\n"
    assert session_ids(store) == ["s2"]
    assert store.sql("sessions", "SELECT COUNT(*) FROM messages WHERE session_id = 's1'") == [(0,)]

    assert ok_json_of(store, "sessions", "delete", "s2", "-y") == {"deleted": "s2", "messages": 1}
    assert session_ids(store) == []


def test_delete_without_yes_and_without_a_terminal_refuses(store):
    put(store, "s1", "support", [0.1])

    result = fails(store("sessions", "delete", "s1", input="y\n"), 2)
    assert "--yes" in result.stderr

    piped = script(*store.args, "sessions", "delete", "s1", input="y\n", capture_output=True, text=True)
    assert piped.returncode == 2 and "--yes" in piped.stderr and piped.stdout == ""
    assert session_ids(store) == ["s1"]


def on_a_terminal(store, answer: bytes, *args):
    """The installed loom-db with a terminal for stdin, on which `answer` is typed."""
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer)
        return script(*store.args, *args, stdin=follower, capture_output=True, text=True)
    finally:
        os.close(follower)
        os.close(leader)


def test_delete_asks_on_a_terminal(store):
    put(store, "s1", "support", [0.25])

    refused = on_a_terminal(store, b"n\n", "sessions", "delete", "s1")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "Delete session s1 (support, 1 message, $0.25)? [y/N]" in refused.stderr
    assert "Nothing deleted." in refused.stderr
    assert session_ids(store) == ["s1"]

    agreed = on_a_terminal(store, b"y\n", "sessions", "delete", "s1")
    assert agreed.returncode == 0 and agreed.stdout == "Deleted session s1 with 1 message.\n"
    assert session_ids(store) == []


# -- errors and help ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [["show"], ["delete"], ["delete", "--yes"]])
def test_a_missing_session_exits_3(store, command):
    result = fails(store("sessions", command[0], "nope", *command[1:]), 3)
    assert result.stderr.startswith("Error: session not found: nope")


def test_a_missing_session_exits_3_from_the_installed_script(store):
    missing = script(*store.args, "--json", "sessions", "show", "nope", capture_output=True, text=True)
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr.startswith("Error: session not found: nope") and missing.stderr.count("\n") == 1


@pytest.mark.parametrize("command", [[], ["list"], ["show"], ["search"], ["delete"]])
def test_help_ends_with_examples(store, command):
    help_text = ok(store("sessions", *command, "--help")).stdout
    examples = help_text.split("Examples:")[-1].strip().splitlines()
    assert 2 <= len(examples) <= 3 and all(line.strip().startswith("loom-db ") for line in examples)
    assert help_text.rstrip().endswith(examples[-1].strip())

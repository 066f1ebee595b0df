"""loom-db as a person sees it: tmux runs it in an 80-column pane, and the pane is read back.

A line that wrapped is one line of more than 80 characters once tmux joins it
back (capture-pane -J); a question cut short must end at a word, with an ellipsis.
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import subprocess
import time
import uuid

import pytest
import test_cli
from rich.cells import cell_len
from test_cli import SCRIPT

from loom_models.cli.ids import short_ids
from loom_models.cli.output import money
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session

store = test_cli.store  # the fixture: an initialised store on the suite's backend

COLUMNS = 80
UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC)


@pytest.fixture(scope="module")
def tmux() -> str:
    found = shutil.which("tmux")
    if found is None:
        if os.environ.get("CI"):  # .ci/run installs it: missing there, the test must not pass unseen
            pytest.fail("tmux is not installed")
        pytest.skip("tmux is not installed (apt-get install tmux)")
    return found


def on_a_terminal(tmux: str, tmp_path, *args, columns: int = COLUMNS) -> list[str]:
    """What the pane shows after `loom-db args` ran in a tmux window so wide, wrapped lines joined."""
    server = ["tmux", "-L", "loom-test-%s" % uuid.uuid4().hex, "-f", os.devnull]
    done = tmp_path / ("done-%s" % uuid.uuid4().hex)
    command = "%s; touch %s; sleep 600" % (shlex.join([SCRIPT, *map(str, args)]), shlex.quote(str(done)))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX", "LOOM_DATA_DIR")}
    subprocess.run(
        [*server, "new-session", "-d", "-x", str(columns), "-y", "100", command], env=env, check=True, timeout=30
    )
    try:
        deadline = time.monotonic() + 60
        while not done.exists():
            assert time.monotonic() < deadline, "loom-db did not finish in the pane"
            time.sleep(0.05)
        width = subprocess.run([*server, "display", "-p", "#{pane_width}"], capture_output=True, text=True).stdout
        assert width.strip() == str(columns)
        shown = subprocess.run([*server, "capture-pane", "-p", "-J", "-S", "-"], capture_output=True, text=True)
    finally:
        subprocess.run([*server, "kill-server"], capture_output=True, timeout=30)
    lines = shown.stdout.rstrip("\n").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.rstrip() for line in lines]


def test_usage_fits_80_columns_with_every_day_and_its_money(tmux, store, tmp_path):
    with store.storage() as storage:
        for index, agent in enumerate(("support", "billing", "a-research-agent-with-a-long-name")):
            storage.sessions.save_session(Session(id="sess_%d" % index, agent_id=agent))
            storage.sessions.save_messages(
                "sess_%d" % index,
                [
                    Message(
                        role="assistant",
                        content="m",
                        timestamp=NOW - datetime.timedelta(days=days),
                        token_count=123_456 * (days + 1),
                        cost_usd=1.234567 * (days + index + 1),
                    )
                    for days in range(0, 12, 1 + index)
                ],
            )
    for by in ("day", "agent"):
        shown = on_a_terminal(tmux, tmp_path, *store.args, "usage", "--by", by)
        document = test_cli.ok_json(*store.args, "--json", "usage", "--by", by)

        assert shown[0].startswith("Usage per ") and shown[0].endswith(" UTC")
        assert all(cell_len(line) <= COLUMNS for line in shown), shown  # nothing wrapped
        rows = {line.split()[0]: line for line in shown[2:]}
        for row in document["rows"]:
            line = rows[row[by]]  # every key whole, at the start of its line
            cells = line.split()
            assert f"{row['tokens']:,}" in cells and money(row["cost_usd"]) in cells, line
            assert line.rstrip().endswith(("█", "▏", "▎", "▍", "▌", "▋", "▊", "▉")), line  # and its bar
        assert rows["total"].split()[1:4] == [
            f"{document['total']['messages']:,}",
            f"{document['total']['tokens']:,}",
            money(document["total"]["cost_usd"]),
        ]


def test_requests_list_fits_80_columns_cutting_questions_only_at_a_word(tmux, store, tmp_path):
    questions = [
        "Refund the customer's order #4411 of 249.99 EUR, which arrived broken, to the card it was paid with?",
        "Deploy the release candidate to production tonight?",
        "Which of the three suppliers should receive the purchase order for the replacement compressors?",
        "Ok?",
        "请 确认 是否 把 订单 四四一一 的 全部 金额 退回 到 客户 原来 的 支付 卡 上",  # two cells a character
    ]
    with store.storage() as storage:
        for index, question in enumerate(questions):
            request = HumanRequest(
                question=question,
                agent_id=("billing", "deployment-agent", "procurement", "x", "support")[index],
                session_id="sess_%d" % index,
                priority=("critical", "high", "medium", "low", "low")[index],
                timeout_ms=(index + 1) * 3_600_000,
            )
            storage.hitl.store(request)

    shown = on_a_terminal(tmux, tmp_path, *store.args, "requests", "list")
    document = test_cli.ok_json(*store.args, "--json", "requests", "list")

    assert all(cell_len(line) <= COLUMNS for line in shown), shown  # nothing wrapped
    assert shown[0].split() == ["id", "agent", "question", "priority", "left"]
    assert len(shown) == 1 + len(questions)  # a row is one line
    for line, request in zip(shown[1:], document["requests"], strict=True):
        cells = line.split()
        assert request["id"].startswith(cells[0]) and cells[1] == request["agent_id"], line
        assert cells[-2] == request["priority"] and cells[-1][-1] in "smhd", line  # its time left
        words, whole = cells[2:-2], request["question"].split()
        if words == whole:
            continue
        assert words[-1].endswith("…") and len(words) <= len(whole), line  # shortened, and says so
        kept = [*words[:-1], words[-1].removesuffix("…")]
        assert kept == whole[: len(kept)], line  # every word whole: cut between two words


def test_a_terminal_too_narrow_for_a_table_wraps_its_rows_whole(tmux, store, tmp_path):
    """Rich would crop what cannot break (an id, a number): the rows are left for the terminal to wrap."""
    ids = ["sess_" + uuid.uuid4().hex for _ in range(3)]
    with store.storage() as storage:
        for session_id in ids:
            storage.sessions.save_session(Session(id=session_id, agent_id="an-agent-with-a-rather-long-name"))
            storage.sessions.save_messages(session_id, [Message(role="user", content="m", token_count=123_456)])

    shown = on_a_terminal(tmux, tmp_path, *store.args, "sessions", "list", columns=50)

    assert any(cell_len(line) > 50 for line in shown), shown  # the terminal wrapped them
    firsts = [line.split()[0] for line in shown[1:] if line.startswith("sess_")]
    assert sorted(firsts) == sorted(short_ids(ids))  # each id's start whole, on its row's line
    assert sum("123,456" in line for line in shown) == len(ids)  # and each number

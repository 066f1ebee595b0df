"""The review inbox in a real browser: Playwright driving Debian's Chromium against `loom-db serve`'s app.

A screenshot of each page is written under tests/artifacts/ for a person to look at.
Without Chromium (`apt-get install chromium`) these tests are skipped, except under
CI=true, where .ci/run installs it and they must run.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loom_models import open_storage
from loom_models.aio import AsyncStorage
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session
from loom_models.web import create_app

CHROMIUM = os.environ.get("LOOM_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).parent / "artifacts"
TOKEN = "a-token-of-sixteen-or-more"
# Low, so that a full-page screenshot is as tall as the page's content.
VIEWPORT = {"width": 1100, "height": 300}

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip("no Chromium: `apt-get install chromium` (CI installs it)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def store(data_store):
    storage = open_storage(**data_store.location, gc_interval=0)
    yield storage
    storage.close()


@pytest.fixture
def serve(store):
    """A function: the inbox over `store` served on a free port of 127.0.0.1 (create_app's options); its address."""
    import uvicorn

    servers = []

    def start(**options) -> str:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(create_app(AsyncStorage.over(store), **options), port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return "http://127.0.0.1:%d" % port

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def inbox(serve):
    """The inbox on 127.0.0.1 without a token, deciding as alice; its address."""
    return serve(user="alice")


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / ("%s.png" % name)), full_page=True)


def request_of(store, request_id: str, **values) -> HumanRequest:
    values = {"agent_id": "billing", "session_id": "sess_1", "question": "Refund $120 to order 42?", **values}
    return store.hitl.store(HumanRequest(id=request_id, **values))


def a_conversation(store) -> None:
    store.sessions.save_session(Session(id="sess_1", agent_id="billing", name="Order 42 refund"))
    store.sessions.save_messages(
        "sess_1",
        [
            Message(role="user", content="I was charged twice for order 42.", token_count=14, cost_usd=0.0002),
            Message(
                role="assistant",
                content="Let me look it up.",
                tool_calls=[{"name": "lookup_order", "args": {"order": 42}}],
                token_count=40,
                cost_usd=0.0011,
            ),
            Message(role="tool", tool_use_id="call_1", tool_result={"charges": [120, 120]}, token_count=12),
            Message(role="assistant", content="I see two charges of $120. I'll ask for a refund.", token_count=30),
        ],
    )


def others_waiting(store) -> None:
    """More requests, of every priority and kind: the inbox a person sees on a busy day."""
    request_of(store, "req_2", agent_id="deploy-bot", question="Roll out v2.4 to production now?", priority="critical")
    request_of(
        store,
        "req_3",
        agent_id="support",
        question="Which carrier for the replacement parcel?",
        request_type="selection",
        priority="medium",
        context={"options": ["DHL", "UPS", "La Poste"]},
        timeout_ms=3 * 3600 * 1000,
    )
    request_of(
        store,
        "req_4",
        agent_id="research",
        question="What tone should the quarterly summary take?",
        request_type="input",
        priority="low",
        timeout_ms=2 * 86400 * 1000,
    )


def test_an_approval_in_the_browser_reaches_an_agent_waiting_in_another_process(browser, inbox, store, data_store):
    a_conversation(store)
    request_of(store, "req_1", request_type="approval", priority="high", context={"order": 42, "amount": 120})
    others_waiting(store)
    location = "data_dir=%r" % data_store.target if data_store.sqlite else "database_url=%r" % data_store.target
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from loom_models import open_storage\n"
            "with open_storage(%s, gc_interval=0) as s:\n"
            "    r = s.hitl.wait_for_response('req_1', timeout=60, poll_interval=0.1)\n"
            "    print(r.status, r.responded_by, r.response)" % location,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(inbox)
    shot(page, "inbox")
    page.get_by_role("link", name="Refund $120 to order 42?").click()
    expect(page.get_by_text("I was charged twice for order 42.")).to_be_visible()
    shot(page, "request")
    page.get_by_label("Note for the agent").fill("Refund one of them")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("approved by alice")).to_be_visible()

    output, _ = waiting.communicate(timeout=60)
    assert output.split() == ["approved", "alice", "Refund", "one", "of", "them"]


def test_two_people_answering_one_request_one_wins_and_the_other_sees_who(browser: Browser, serve, store):
    request_of(store, "req_1", request_type="approval")
    inbox = serve(token=TOKEN)
    carol, dave = browser.new_context(viewport=VIEWPORT).new_page(), browser.new_context(viewport=VIEWPORT).new_page()
    for page, name in ((carol, "carol"), (dave, "dave")):
        page.goto(inbox + "/requests/req_1")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        shot(page, "sign-in")
        page.get_by_label("Your name").fill(name)
        page.get_by_label("Token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Refund $120 to order 42?")).to_be_visible()  # back where it was

    carol.get_by_role("button", name="Reject").click()
    dave.get_by_role("button", name="Approve").click()

    expect(carol.get_by_text("rejected by carol")).to_be_visible()
    expect(dave.get_by_role("alert")).to_have_text("carol answered it first: rejected.")
    shot(dave, "request-answered-first")
    assert (store.hitl.get("req_1").status, store.hitl.get("req_1").responded_by) == ("rejected", "carol")


def test_a_request_that_expired_while_its_page_was_open_cannot_be_answered(browser, inbox, store):
    request_of(store, "req_1", request_type="input", timeout_ms=1500)
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(inbox + "/requests/req_1")
    page.get_by_label("Your answer").fill("Too late")
    time.sleep(1.6)

    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("alert")).to_have_text("This request expired before it was answered.")
    assert store.hitl.get("req_1").status == "expired"


def test_a_question_holding_a_script_shows_as_text_and_runs_nothing(browser, inbox, store):
    request_of(store, "req_1", question="<script>alert('pwned')</script> Approve?")
    page = browser.new_page(viewport=VIEWPORT)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(inbox)
    expect(page.get_by_role("link", name="<script>alert('pwned')</script> Approve?")).to_be_visible()
    page.goto(inbox + "/requests/req_1")
    expect(page.get_by_role("heading", name="<script>alert('pwned')</script> Approve?")).to_be_visible()

    assert dialogs == []


def test_a_new_request_appears_in_the_open_inbox_and_an_expired_one_leaves(browser, inbox, store):
    request_of(store, "req_soon", question="Expires soon?", timeout_ms=3000)
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(inbox)
    expect(page.get_by_text("Expires soon?")).to_be_visible()

    request_of(store, "req_new", question="Filed while you look?")

    expect(page.get_by_text("Filed while you look?")).to_be_visible(timeout=10_000)
    expect(page.get_by_text("Expires soon?")).to_be_hidden(timeout=10_000)


def test_the_usage_chart_shows_the_stores_totals(browser, inbox, store):
    a_conversation(store)
    store.sessions.save_session(Session(id="sess_2", agent_id="support"))
    store.sessions.save_message("sess_2", Message(role="user", content="Hello", token_count=500, cost_usd=0.25))
    stats = store.sessions.get_stats()
    page = browser.new_page(viewport=VIEWPORT)

    page.goto(inbox + "/usage")
    shot(page, "usage")
    cost, tokens = (
        page.eval_on_selector_all("#%s-chart rect" % chart, "bars => bars.map(bar => Number(bar.dataset.value))")
        for chart in ("cost", "tokens")
    )

    assert len(cost) == len(tokens) == 30
    assert sum(cost) == pytest.approx(stats.total_cost_usd) and sum(tokens) == stats.total_tokens
    assert page.locator("#total-tokens").inner_text() == f"{stats.total_tokens:,}"


def test_the_sessions_pages(browser, inbox, store):
    a_conversation(store)
    page = browser.new_page(viewport=VIEWPORT)

    page.goto(inbox + "/sessions")
    shot(page, "sessions")
    page.get_by_role("link", name="Order 42 refund").click()
    expect(page.get_by_text("I see two charges of $120.")).to_be_visible()
    expect(page.get_by_text('"lookup_order"')).to_be_hidden()  # folded
    page.get_by_text("tool calls").click()
    expect(page.get_by_text('"lookup_order"')).to_be_visible()
    shot(page, "session")

    page.goto(inbox + "/sessions?q=charged")
    expect(page.get_by_text("I was charged twice for order 42.")).to_be_visible()


def test_a_request_past_its_deadline_is_listed_as_expired(browser, inbox, store):
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    request_of(store, "req_1", created_at=past, timeout_ms=1000)
    page = browser.new_page(viewport=VIEWPORT)

    page.goto(inbox + "/?status=expired")

    expect(page.get_by_text("Refund $120 to order 42?")).to_be_visible()
    expect(page.locator("tbody tr td").last).to_have_text("expired")

"""The review inbox over HTTP (Starlette's TestClient): what a person sees, and what their decisions do."""

import datetime
import re

import pytest
from starlette.testclient import TestClient

from loom_models import open_storage
from loom_models.aio import AsyncStorage
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session
from loom_models.web import create_app

TOKEN = "a-token-of-sixteen-or-more"


@pytest.fixture
def store(data_store):
    storage = open_storage(**data_store.location, gc_interval=0)
    yield storage
    storage.close()


def client(store, **options) -> TestClient:
    return TestClient(create_app(AsyncStorage.over(store), **options), follow_redirects=False)


def request_of(store, request_id: str, **values) -> HumanRequest:
    values = {"agent_id": "billing", "session_id": "sess_1", "question": "Refund $120?", **values}
    return store.hitl.store(HumanRequest(id=request_id, **values))


def form_token(page: str) -> str:
    return re.search(r'name="form_token" value="([0-9a-f]+)"', page)[1]


def decide(browser: TestClient, request_id: str, **fields):
    token = form_token(browser.get("/requests/%s" % request_id).text)
    return browser.post("/requests/%s/decision" % request_id, data={"form_token": token, **fields})


def test_the_inbox_lists_what_waits_critical_first_then_oldest(store):
    request_of(store, "req_low", priority="low", question="Archive old tickets?")
    request_of(store, "req_crit", priority="critical", question="Stop the deploy?")
    request_of(store, "req_high", priority="high", question="Refund $120?")
    store.hitl.respond_to_request("req_low", "approved", "", responded_by="bob")

    page = client(store, user="alice").get("/").text

    assert page.index("Stop the deploy?") < page.index("Refund $120?")
    assert "Archive old tickets?" not in page  # decided: not waiting any more
    assert "alice" in page


def test_the_inbox_filters_by_agent_and_status(store):
    request_of(store, "req_1", agent_id="billing", question="From billing?")
    request_of(store, "req_2", agent_id="support", question="From support?")
    store.hitl.respond_to_request("req_2", "rejected", "no", responded_by="bob")
    browser = client(store, user="alice")

    assert "From support?" not in browser.get("/?agent=support").text
    rejected = browser.get("/?status=rejected&agent=support").text
    assert "From support?" in rejected and "From billing?" not in rejected


def test_an_approval_from_the_page_is_recorded_with_who_made_it(store):
    store.sessions.save_session(Session(id="sess_1"))
    store.sessions.save_message("sess_1", Message(role="user", content="I was charged twice"))
    request_of(store, "req_1", request_type="approval", context={"order": 42, "amount": 120})
    browser = client(store, user="alice")

    page = browser.get("/requests/req_1").text
    assert "I was charged twice" in page and "&#34;order&#34;: 42" in page
    answered = decide(browser, "req_1", answer="approved", note="Go ahead")

    assert answered.status_code == 303
    decided = store.hitl.get("req_1")
    assert (decided.status, decided.response, decided.responded_by) == ("approved", "Go ahead", "alice")
    assert "approved by <strong>alice</strong>" in browser.get("/requests/req_1").text


def test_a_selection_takes_one_of_its_options_only(store):
    request_of(store, "req_1", request_type="selection", context={"options": ["Paris", "Lyon"]})
    browser = client(store, user="alice")

    assert decide(browser, "req_1", answer="responded", choice="Berlin").status_code == 400
    assert store.hitl.get("req_1").status == "pending"
    assert decide(browser, "req_1", answer="responded", choice="Lyon").status_code == 303
    assert store.hitl.get("req_1").response == "Lyon"


def test_of_two_people_answering_at_once_one_wins_and_the_other_sees_who(store):
    request_of(store, "req_1", request_type="approval")
    alice, bob = client(store, user="alice"), client(store, user="bob")
    alice_form, bob_form = (form_token(b.get("/requests/req_1").text) for b in (alice, bob))

    first = alice.post("/requests/req_1/decision", data={"form_token": alice_form, "answer": "approved"})
    second = bob.post("/requests/req_1/decision", data={"form_token": bob_form, "answer": "rejected"})

    assert first.status_code == 303 and second.status_code == 409
    assert "alice answered it first: approved." in second.text
    assert store.hitl.get("req_1").responded_by == "alice"


def test_an_expired_request_cannot_be_answered(store):
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    request_of(store, "req_1", request_type="approval", created_at=past, timeout_ms=1000)
    browser = client(store, user="alice")

    page = browser.get("/requests/req_1").text
    assert 'name="answer"' not in page
    request_of(store, "req_2", request_type="approval")
    token = form_token(browser.get("/requests/req_2").text)  # this browser's, from a page with a form
    refused = browser.post("/requests/req_1/decision", data={"form_token": token, "answer": "approved"})
    assert refused.status_code == 409 and "expired before it was answered" in refused.text
    assert store.hitl.get("req_1").status == "expired"


def test_what_the_agent_wrote_is_shown_as_text_never_run(store):
    store.sessions.save_session(Session(id="sess_1"))
    store.sessions.save_message("sess_1", Message(role="assistant", content="<img src=x onerror=alert(2)>"))
    request_of(store, "req_1", question="<script>alert(1)</script>", context={"<b>": "</pre><script>"})
    browser = client(store, user="alice")

    for page in (browser.get("/").text, browser.get("/requests/req_1").text):
        assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in browser.get("/requests/req_1").text
    assert "script-src" not in browser.get("/").headers["content-security-policy"]  # no inline script allowed


def test_a_decision_without_the_page_form_token_is_refused(store):
    request_of(store, "req_1", request_type="approval")
    browser = client(store, user="alice")
    browser.get("/")  # the browser has its cookie, but the attacker's form cannot know the token

    forged = browser.post("/requests/req_1/decision", data={"form_token": "é" * 64, "answer": "approved"})
    without_cookie = TestClient(browser.app).post("/requests/req_1/decision", data={"answer": "approved"})

    assert forged.status_code == 403 and without_cookie.status_code == 403
    assert store.hitl.get("req_1").status == "pending"


def test_with_a_token_every_page_asks_to_sign_in_and_the_name_given_decides(store):
    request_of(store, "req_1", request_type="approval")
    browser = client(store, token=TOKEN)

    assert browser.get("/").headers["location"].endswith("/sign-in?next=%2F")
    assert browser.get("/requests/req_1").headers["location"].endswith("/sign-in?next=%2Frequests%2Freq_1")
    sign_in = browser.get("/sign-in").text
    wrong = browser.post("/sign-in", data={"form_token": form_token(sign_in), "token": "nope", "name": "mallory"})
    assert wrong.status_code == 403 and browser.get("/").status_code == 303

    signed = browser.post("/sign-in", data={"form_token": form_token(sign_in), "token": TOKEN, "name": "carol"})
    assert signed.status_code == 303 and browser.get("/").status_code == 200
    pages = [sign_in, wrong.text] + [browser.get(path).text for path in ("/", "/requests/req_1", "/usage", "/sessions")]
    assert not [page for page in pages if TOKEN in page]  # the secret is never shown back
    assert decide(browser, "req_1", answer="rejected", note="Not today").status_code == 303
    assert store.hitl.get("req_1").responded_by == "carol"


FORGED = ["YWRtaW4=:" + "0" * 64, "admin:" + "0" * 64, "%%%:zz", "YWRtaW4=:abc", "/w==:" + "0" * 64]


@pytest.mark.parametrize("forged", FORGED)
def test_a_forged_sign_in_cookie_is_not_taken(store, forged):
    browser = client(store, token=TOKEN)
    browser.cookies.set("loom_signed_in", forged)

    assert browser.get("/").status_code == 303


def test_any_name_signs_in_and_is_recorded_as_given(store):
    request_of(store, "req_1", request_type="input")
    browser = client(store, token=TOKEN)
    token = form_token(browser.get("/sign-in").text)
    browser.post("/sign-in", data={"form_token": token, "token": TOKEN, "name": "Zoë <b>:ops"})

    assert "Zoë &lt;b&gt;:ops" in browser.get("/").text
    assert decide(browser, "req_1", answer="responded", note="ok").status_code == 303
    assert store.hitl.get("req_1").responded_by == "Zoë <b>:ops"


def test_no_page_shows_the_database_location(store, data_store):
    request_of(store, "req_1")
    browser = client(store, user="alice")

    for path in ("/", "/requests/req_1", "/requests/nope", "/?status=all"):
        assert data_store.target not in browser.get(path).text
    assert browser.get("/requests/nope").status_code == 404


def test_without_a_token_there_is_no_sign_in(store):
    assert client(store, user="alice").get("/sign-in").headers["location"].endswith("/")


@pytest.mark.parametrize(
    "arguments, refusal",
    [
        (["--host", "0.0.0.0"], "needs --token"),
        (["--host", "192.168.1.20", "--token", "short"], "at least 16 characters"),
        (["--port", "0"], "0 is not in the range"),
    ],
)
def test_serve_refuses_an_open_address_without_a_token(tmp_path, arguments, refusal):
    from click.testing import CliRunner

    from loom_models.cli import main

    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "serve", *arguments])

    assert result.exit_code == 2 and refusal in result.output


def test_serve_answers_in_a_browser_from_another_process(store, data_store):
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    request_of(store, "req_1", question="Ship it?")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    location = ["--data-dir", data_store.target] if data_store.sqlite else ["--database-url", data_store.target]
    server = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "loom-db"),
            *location,
            "serve",
            "--port",
            str(port),
            "--user",
            "dana",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().startswith("Inbox at http://127.0.0.1:%d/" % port)
        deadline = time.monotonic() + 20
        while True:
            try:
                page = httpx.get("http://127.0.0.1:%d/" % port)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.05)
        assert page.status_code == 200 and "Ship it?" in page.text and "dana" in page.text
    finally:
        server.terminate()
        server.wait(10)


def test_the_inbox_rows_it_refreshes_take_in_new_requests_and_drop_expired_ones(store):
    browser = client(store, user="alice")
    page = browser.get("/").text
    rows_url = re.search(r'data-rows="([^"]+)"', page)[1].replace("&amp;", "&")
    assert "Nothing waits for you" in browser.get(rows_url).text

    request_of(store, "req_new", question="Just filed?")
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    request_of(store, "req_old", question="Too late?", created_at=past, timeout_ms=1000)
    rows = browser.get(rows_url).text

    assert "Just filed?" in rows and "Too late?" not in rows
    assert "<html" not in rows  # the rows alone, to put in the page
    assert '/static/inbox.js" defer></script>' in page


def test_sessions_list_what_they_cost_and_a_search_finds_their_messages(store):
    store.sessions.save_session(Session(id="sess_1", agent_id="billing", name="Refund for order 42"))
    store.sessions.save_messages(
        "sess_1",
        [
            Message(role="user", content="I want a refund", token_count=1200, cost_usd=0.5),
            Message(role="assistant", content="Looking it up", tool_calls=[{"name": "lookup", "args": {"order": 42}}]),
            Message(role="tool", content="", tool_use_id="call_1", tool_result={"status": "shipped"}),
        ],
    )
    store.sessions.save_tool_execution("sess_1", {"tool_name": "lookup", "input": {"order": 42}, "error": "<b>x</b>"})
    store.sessions.save_session(Session(id="sess_2", agent_id="support"))
    browser = client(store, user="alice")

    listed = browser.get("/sessions").text
    assert "Refund for order 42" in listed and "1,200" in listed and "$0.5" in listed and ">3<" in listed
    assert "sess_2" not in browser.get("/sessions?agent=billing").text
    found = browser.get("/sessions?q=refund").text
    assert "I want a refund" in found and "/sessions/sess_1" in found and "Looking it up" not in found

    transcript = browser.get("/sessions/sess_1").text
    assert transcript.count("<details>") == 2 and "&#34;order&#34;: 42" in transcript  # tool calls folded
    assert "&lt;b&gt;x&lt;/b&gt;" in transcript and "<b>x</b>" not in transcript
    assert browser.get("/sessions/nope").status_code == 404


def test_the_usage_chart_adds_up_to_the_stores_totals(store):
    for session_id, agent in (("sess_1", "billing"), ("sess_2", "support")):
        store.sessions.save_session(Session(id=session_id, agent_id=agent))
        store.sessions.save_messages(
            session_id, [Message(role="user", content="x", token_count=n * 100, cost_usd=n / 7) for n in (1, 2, 3)]
        )
    stats = store.sessions.get_stats()

    page = client(store, user="alice").get("/usage").text
    cost, tokens = (
        re.findall(r'data-day="([\d-]+)" data-value="([\d.e-]+)"', page[page.index(chart) :])[:30]
        for chart in ('id="cost-chart"', 'id="tokens-chart"')
    )

    assert len(cost) == 30 and cost[-1][0] == datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    assert sum(float(value) for _, value in cost) == pytest.approx(stats.total_cost_usd)
    assert sum(float(value) for _, value in tokens) == stats.total_tokens
    assert "1,200" in re.search(r'id="total-tokens">([^<]+)<', page)[1]
    per_agent = page[page.index("Per agent") :]
    assert re.findall(r"<td>(\w+)</td><td class=\"number\">3</td>", per_agent) == ["billing", "support"]
    assert per_agent.count("$0.8571") == 2  # (1 + 2 + 3) / 7 each


@pytest.mark.parametrize("elsewhere", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_signing_in_goes_back_to_a_page_of_this_server_only(store, elsewhere):
    browser = client(store, token=TOKEN)
    token = form_token(browser.get("/sign-in").text)

    retry = browser.post("/sign-in", data={"form_token": token, "token": "wrong", "name": "erin", "next": "/usage"})
    assert 'name="next" value="/usage"' in retry.text  # a second try still goes back there
    back = browser.post("/sign-in", data={"form_token": token, "token": TOKEN, "name": "erin", "next": "/usage"})
    away = browser.post("/sign-in", data={"form_token": token, "token": TOKEN, "name": "erin", "next": elsewhere})

    assert back.headers["location"] == "/usage"
    assert away.headers["location"] == "http://testserver/"


def test_a_message_dated_after_today_stays_off_the_chart(store):
    store.sessions.save_session(Session(id="sess_1"))
    tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    store.sessions.save_message("sess_1", Message(role="user", content="x", token_count=5, timestamp=tomorrow))

    page = client(store, user="alice").get("/usage")

    assert page.status_code == 200 and 'id="total-tokens">0<' in page.text

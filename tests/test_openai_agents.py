"""LoomSession, the OpenAI Agents SDK's Session on loom, on whichever backend `backend` gives.

The SDK's own session tests run against it too: tests/upstream/ (tox -e openai-agents).
"""

import asyncio
import copy
import json
import math

import pytest
from agents import Agent, Runner, SessionSettings, function_tool, set_tracing_disabled
from agents.memory import Session as SessionProtocol
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.usage import Usage

from loom_models import LoomStorageError, ValidationError, aio, open_storage
from loom_models.integrations.openai_agents import LoomSession

# One of each kind of item the SDK hands over, as it hands them over.
ITEMS = [
    {"role": "developer", "content": "Answer briefly."},
    {"role": "system", "content": "You are support."},
    {"role": "user", "content": "Where is order 42? ✈ «ünïcødé» '; DROP TABLE messages; --"},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and 43?"}]},
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "Look both orders up."}],
        "encrypted_content": "gAAAA...",
    },
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "order_status",
        "arguments": '{"order": 42}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "shipped"},
    {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "loom"}},
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Order 42 has shipped.", "annotations": [], "logprobs": []}],
    },
    {"type": "item_reference", "id": "msg_0"},
    {"type": "compaction", "id": "cmp_1", "encrypted_content": "opaque", "extra": {"nested": [1, 2.5, None, True]}},
]


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture(autouse=True)
def no_traces():
    set_tracing_disabled(True)  # the SDK would export runs' traces to OpenAI
    yield
    set_tracing_disabled(False)


@pytest.fixture
def session(data_store):
    made = LoomSession("conv_1", **data_store.location)
    yield made
    made.close()


def test_it_is_the_sdks_session(session):
    assert isinstance(session, SessionProtocol)  # the SDK's runtime-checkable protocol
    assert "agents" not in _modules_imported_by("import loom_models, loom_models.aio")


def _modules_imported_by(statement):
    import subprocess
    import sys

    code = "%s; import sys; print(' '.join(sys.modules))" % statement
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_every_kind_of_item_comes_back_exactly(session):
    given = copy.deepcopy(ITEMS)

    run(session.add_items(given))

    assert given == ITEMS  # not changed in place
    assert run(session.get_items()) == ITEMS
    assert run(session.get_items(limit=3)) == ITEMS[-3:]
    assert run(session.pop_item()) == ITEMS[-1]
    assert run(session.get_items()) == ITEMS[:-1]


def test_an_sdk_conversation_is_a_loom_conversation(session, data_store):
    run(session.add_items(ITEMS))

    with open_storage(**data_store.location, gc_interval=0) as storage:
        messages = storage.sessions.load_session("conv_1").messages
        found = storage.sessions.search_messages("shipped")
        exported = storage.sessions.export_session("conv_1")

    seen = [(m.role, m.content) for m in messages]
    assert seen[:5] == [
        ("system", "Answer briefly."),
        ("system", "You are support."),
        ("user", ITEMS[2]["content"]),
        ("user", "and 43?"),
        ("assistant", "Look both orders up."),
    ]
    call, output, search = messages[5], messages[6], messages[7]
    assert call.tool_calls == [{"ID": "call_1", "Name": "order_status", "Input": {"order": 42}}]
    assert (output.role, output.tool_use_id, output.content) == ("tool", "call_1", "shipped")
    assert output.tool_result is None  # the output is in content and in the item: not a third copy
    assert search.tool_calls == [
        {"ID": "ws_1", "Name": "web_search_call", "Input": {"type": "search", "query": "loom"}}
    ]
    assert seen[8] == ("assistant", "Order 42 has shipped.")
    assert [m.content for m in found] == ["shipped", "Order 42 has shipped."]
    assert [m["item"] for m in exported["messages"]] == ITEMS
    # As the reference implementation reads them: content never NULL, tool calls its JSON.
    rows = data_store.sql("sessions", "SELECT content, tool_calls_json FROM messages ORDER BY id")
    assert all(content is not None for content, _ in rows)
    assert json.loads(rows[5][1]) == [{"ID": "call_1", "Name": "order_status", "Input": {"order": 42}}]


def test_messages_loom_wrote_read_as_items(data_store):
    with open_storage(**data_store.location, gc_interval=0) as storage:
        storage.sessions.save_session({"id": "conv_1"})
        storage.sessions.save_messages(
            "conv_1",
            [
                {"role": "user", "content": "Hi"},
                {"role": "tool", "content": "42", "tool_use_id": "call_9"},
            ],
        )
        session = LoomSession("conv_1", storage)
        items = run(session.get_items())
        session.close()
    assert items == [
        {"role": "user", "content": "Hi"},
        {"type": "function_call_output", "call_id": "call_9", "output": "42"},
    ]


def test_get_items_limits(session):
    run(session.add_items([{"role": "user", "content": str(i)} for i in range(5)]))

    assert [i["content"] for i in run(session.get_items(2))] == ["3", "4"]
    assert run(session.get_items(0)) == []
    assert len(run(session.get_items(50))) == 5
    with pytest.raises(ValidationError):
        run(session.get_items(-1))
    session.session_settings = SessionSettings(limit=3)
    assert [i["content"] for i in run(session.get_items())] == ["2", "3", "4"]
    assert len(run(session.get_items(4))) == 4  # an explicit limit wins


def test_session_settings_as_given(data_store):
    plain, limited = (
        LoomSession("a", **data_store.location),
        LoomSession("b", **data_store.location, session_settings={"limit": 7}),
    )
    assert (plain.session_settings, limited.session_settings.limit) == (SessionSettings(), 7)
    plain.close()
    limited.close()


def test_pop_item_takes_the_usage_of_its_item_off_the_totals(session, data_store):
    run(session.add_items([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]))
    run(session.record_usage(_result(input_tokens=100, output_tokens=20), pricing={"input": 2.0, "output": 8.0}))
    assert _totals(data_store) == (120, pytest.approx(0.00036))

    assert run(session.pop_item()) == {"role": "assistant", "content": "Hello"}

    assert _totals(data_store) == (0, 0)
    assert run(session.pop_item()) == {"role": "user", "content": "Hi"}
    assert run(session.pop_item()) is None


def test_clear_session_keeps_the_session_and_zeroes_its_totals(session, data_store):
    run(session.add_items([{"role": "user", "content": "Hi"}]))
    run(session.record_usage(_result(input_tokens=5, output_tokens=5)))

    run(session.clear_session())

    assert run(session.get_items()) == []
    assert data_store.sql("sessions", "SELECT id, total_tokens, total_cost_usd FROM sessions") == [("conv_1", 0, 0)]
    run(LoomSession("never_used", session.storage).clear_session())  # nothing to clear, no error


def test_record_usage_prices_a_run_as_the_application_says(session, data_store):
    assert run(session.record_usage(_result(input_tokens=1, output_tokens=1))) is None  # no item yet
    run(session.add_items([{"role": "user", "content": "Hi"}]))

    charged = run(session.record_usage(_result(input_tokens=1_000, output_tokens=500), pricing={"output": 10.0}))
    run(session.record_usage(_result(input_tokens=10, output_tokens=0), pricing=lambda usage: usage.input_tokens * 0.1))

    assert (charged.token_count, charged.cost_usd) == (1_500, 0.005)
    assert _totals(data_store) == (1_510, pytest.approx(1.005))


@pytest.mark.parametrize(
    "pricing",
    [{"inptu": 2.0}, {"input": "2.0"}, {"input": None}, {"input": -2.0}, lambda usage: math.nan, lambda usage: "1"],
)
def test_a_pricing_that_gives_no_cost_is_refused_and_changes_nothing(session, data_store, pricing):
    run(session.add_items([{"role": "user", "content": "Hi"}]))

    with pytest.raises(ValidationError) as error:
        run(session.record_usage(_result(input_tokens=10, output_tokens=10), pricing=pricing))

    assert "pricing" in error.value.messages
    assert _totals(data_store) == (0, 0)


@pytest.mark.parametrize(
    "item",
    [
        "not an item",
        {"role": "user", "content": object()},  # not JSON
        {"type": 5},
        {"type": None, "content": "x"},
        {"role": ["user"], "content": "x"},
        {"role": "user", "content": float("nan")},
    ],
)
def test_items_that_are_not_items_are_refused_and_nothing_is_written(session, data_store, item):
    with pytest.raises(ValidationError):
        run(session.add_items([{"role": "user", "content": "fine"}, item]))
    assert data_store.sql("sessions", "SELECT COUNT(*) FROM messages") == [(0,)]


def test_odd_but_valid_items_round_trip(session):
    nested = "[" * 5_000 + "]" * 5_000  # arguments too deep to read as JSON: kept as text
    items = [
        {"type": "function_call", "call_id": "c" * 300, "name": "f", "arguments": nested},
        {"type": "function_call_output", "call_id": "c" * 300, "output": [{"type": "input_text", "text": "a\x00b"}]},
        {"role": "user", "content": "lone \ud800 surrogate"},
        {"role": "critic", "content": "a role the SDK may grow"},
    ]

    run(session.add_items(items))

    assert run(session.get_items()) == items


@pytest.mark.parametrize(
    "where",
    [{}, {"data_dir": "x", "database_url": "postgresql://h/db"}, {"storage": "./loom-data"}],
    ids=["none", "two", "not a storage"],
)
def test_exactly_one_store_is_given(where):
    with pytest.raises(ValidationError) as error:
        LoomSession("conv_1", **where)
    assert "storage" in error.value.messages


def test_sessions_share_an_async_storage_and_closing_one_leaves_it_open(data_store):
    async def main():
        async with aio.open_storage(**data_store.location, gc_interval=0) as storage:
            first, second = LoomSession("one", storage), LoomSession("two", storage)
            await asyncio.gather(
                first.add_items([{"role": "user", "content": "1"}]),
                second.add_items([{"role": "user", "content": "2"}]),
            )
            first.close()
            with pytest.raises(LoomStorageError, match="closed"):
                await first.add_items([])
            return await second.get_items(), len(await storage.sessions.list_sessions())

    assert run(main()) == ([{"role": "user", "content": "2"}], 2)


def test_sessions_of_one_location_share_its_store_until_the_last_closes(data_store):
    first = LoomSession("one", **data_store.location)
    second = LoomSession("two", **data_store.location)
    assert first.storage is second.storage

    first.close()
    first.close()  # twice: still one user fewer, not two
    run(second.add_items([{"role": "user", "content": "still open"}]))
    storage = second.storage
    second.close()

    with pytest.raises(LoomStorageError, match="closed"):
        run(storage.sessions.load_messages("two"))
    third = LoomSession("two", **data_store.location)  # a new store for a new first session
    assert run(third.get_items()) == [{"role": "user", "content": "still open"}]
    third.close()


def test_a_forked_child_opens_a_store_of_its_own(data_store, in_a_forked_child):
    parents = LoomSession("conv_1", **data_store.location)
    run(parents.add_items([{"role": "user", "content": "from the parent"}]))

    def child():
        session = LoomSession("conv_1", **data_store.location)
        run(session.add_items([{"role": "user", "content": "from the child"}]))
        return session.storage is not parents.storage

    assert in_a_forked_child(child) == 0
    assert [i["content"] for i in run(parents.get_items())] == ["from the parent", "from the child"]
    parents.close()


def test_over_a_sync_storage(data_store):
    with open_storage(**data_store.location, gc_interval=0) as storage:
        session = LoomSession("conv_1", storage)
        run(session.add_items([{"role": "user", "content": "Hi"}]))
        session.close()
        assert [m.content for m in storage.sessions.load_messages("conv_1")] == ["Hi"]  # still open


def test_a_runner_keeps_its_conversation_in_loom(session, data_store):
    @function_tool
    def order_status(order: int) -> str:
        """Where an order is."""
        return "order %d shipped" % order

    model = ScriptedModel(
        [
            [function_call("order_status", {"order": 42}, call_id="call_1")],
            [assistant_message("Order 42 has shipped.")],
            [assistant_message("You asked about order 42.")],
        ]
    )
    agent = Agent(name="support", model=model, tools=[order_status])

    first = run(Runner.run(agent, "Where is order 42?", session=session))
    run(session.record_usage(first, pricing={"input": 1.0, "output": 1.0}))
    run(Runner.run(agent, "What did I ask?", session=session))

    assert model.last_call.input[0] == {"role": "user", "content": "Where is order 42?"}  # the history was read
    items = run(session.get_items())
    assert [i.get("type", "message") for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
        "message",
    ]
    with open_storage(**data_store.location, gc_interval=0) as storage:
        stored = storage.sessions.load_session("conv_1")
    assert [m.role for m in stored.messages] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert stored.total_tokens == first.context_wrapper.usage.total_tokens


def _result(input_tokens, output_tokens):
    """What record_usage reads of a RunResult."""

    class Result:
        class context_wrapper:
            usage = Usage(
                requests=1,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            )

    return Result


def _totals(data_store):
    ((tokens, cost),) = data_store.sql("sessions", "SELECT total_tokens, total_cost_usd FROM sessions")
    return tokens, cost

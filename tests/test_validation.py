"""FieldwiseLoader: a schema's load, field by field, with the same results and the same errors."""

import datetime

import marshmallow
import pytest
from conftest import anything
from hypothesis import example, given, settings
from hypothesis import strategies as st

from loom_models import ValidationError
from loom_models.references.schemas import StoreSchema, load_store
from loom_models.sessions.schemas import MessageSchema, load_message
from loom_models.validation import FieldwiseLoader, load

valid = {
    "role": st.sampled_from(["user", "assistant", "tool", "system"]),
    "content": st.text(),
    "tool_calls": st.none() | st.lists(st.dictionaries(st.text(), st.integers())),
    "tool_use_id": st.none() | st.text(min_size=1, max_size=300),
    "session_context": st.sampled_from(["direct", "shared", "coordinator"]),
    "timestamp": st.datetimes(timezones=st.none() | st.timezones()),
    "token_count": st.none() | st.integers(-1, 2**31) | st.floats(0, 2**31),
    "cost_usd": st.none() | st.floats(-1, 2e9),
    "item": st.none() | st.dictionaries(st.text(), st.integers() | st.text()),
}
# Every field, the store's own (id, session_id) and an unknown key: each valid, or anything at all.
fields = [*valid, "tool_result", "agent_id", "id", "session_id", "unknown"]
messages = st.fixed_dictionaries(
    {}, optional={name: anything | valid[name] if name in valid else anything for name in fields}
)


def outcome(call, data):
    try:
        return call(data)
    except ValidationError as error:
        return ("refused", error.messages)


@settings(max_examples=400, deadline=None)
@given(message=messages)
@example(message={"role": "user", "content": None, "token_count": None, "cost_usd": None})
@example(message={"role": "user", "timestamp": None})
@example(message={"content": "no role"})
def test_a_message_loads_as_the_schema_loads_it(message):
    expected = outcome(lambda data: load(MessageSchema(), data), message)
    loaded = outcome(load_message, message)
    if "timestamp" not in message and isinstance(expected, dict):
        # Both default to the time of the call: the same second, or the next one.
        gap = loaded.pop("timestamp") - expected.pop("timestamp")
        assert datetime.timedelta(0) <= gap <= datetime.timedelta(seconds=1)
    assert loaded == expected


@settings(max_examples=200, deadline=None)
@given(
    data=anything | st.binary(max_size=3) | st.builds(bytearray, st.binary(max_size=3)),
    type_=anything | st.integers(-1, 9),
    ttl=anything | st.floats(-1, 4e9) | st.timedeltas(),
)
def test_what_store_takes_loads_as_the_schema_loads_it(data, type_, ttl):
    given = {"data": data, "type": type_, "ttl": ttl}
    assert outcome(load_store, given) == outcome(lambda values: load(StoreSchema(), values), given)


def test_the_fields_defaults_fill_what_is_missing_and_none_means_the_default():
    loaded = load_message({"role": "user", "content": None, "token_count": None})

    assert loaded["content"] == "" and loaded["token_count"] == 0 and loaded["cost_usd"] == 0.0
    assert loaded["session_context"] == "direct" and loaded["tool_calls"] is None
    assert loaded["timestamp"].tzinfo is datetime.timezone.utc and loaded["timestamp"].microsecond == 0


def test_a_refused_message_says_what_the_schema_says():
    with pytest.raises(ValidationError) as error:
        load_message({"role": "nobody", "content": "\x00", "unknown": 1})

    assert set(error.value.messages) == {"role", "content", "unknown"}


def test_a_schema_with_hooks_the_loader_would_skip_is_refused():
    class Checked(marshmallow.Schema):
        n = marshmallow.fields.Integer()

        @marshmallow.validates_schema
        def _whole(self, data, **kwargs):
            pass

    class Prepared(marshmallow.Schema):
        n = marshmallow.fields.Integer()

        @marshmallow.pre_load
        def _prepared(self, data, **kwargs):
            return data

    with pytest.raises(TypeError, match="validates_schema"):
        FieldwiseLoader(Checked())
    with pytest.raises(TypeError, match="pre_load"):
        FieldwiseLoader(Prepared())  # its pre_load not given again
    assert FieldwiseLoader(Prepared(), prepare=dict)({"n": 1}) == {"n": 1}

"""LoomSaver and AsyncLoomSaver, LangGraph's checkpointers on loom, on whichever backend `backend` gives.

LangGraph's own suites run against them too: tests/upstream/ (tox -e langgraph).
"""

import asyncio
import datetime
import json
import operator
import subprocess
import sys
import threading
import uuid
from typing import Annotated, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import ERROR, INTERRUPT, create_checkpoint, empty_checkpoint
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, interrupt

from loom_models import LoomStorageError, ValidationError, aio, open_storage
from loom_models.integrations.langgraph import AsyncLoomSaver, LoomSaver
from loom_models.integrations.langgraph import saver as saver_module


class Notes(TypedDict):
    notes: Annotated[list, operator.add]


def note_taker():
    builder = StateGraph(Notes)
    builder.add_node("note", lambda state: {"notes": ["note %d" % len(state["notes"])]})
    builder.add_edge(START, "note")
    builder.add_edge("note", END)
    return builder


def thread(thread_id="thread-1", **configurable):
    return {"configurable": {"thread_id": thread_id, **configurable}}


@pytest.fixture
def storage(data_store):
    with open_storage(**data_store.location, gc_interval=0) as opened:
        yield opened


@pytest.fixture
def saver(storage):
    return LoomSaver(storage)


def put(saver, config, values=None, metadata=None, parent=None):
    """A checkpoint of `values` (every channel new) under `config`, after `parent`'s config if given."""
    checkpoint = create_checkpoint(empty_checkpoint(), None, 1)
    checkpoint["channel_values"] = dict(values or {})
    checkpoint["channel_versions"] = {channel: saver.get_next_version(None) for channel in checkpoint["channel_values"]}
    config = parent or config
    return saver.put(config, checkpoint, metadata or {}, checkpoint["channel_versions"])


def test_importing_loom_models_imports_no_langgraph():
    code = "import loom_models, loom_models.aio, sys; print(' '.join(sys.modules))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not [name for name in imported if name.startswith(("langgraph", "langchain"))]


def test_a_graph_keeps_its_state_across_savers(data_store):
    graph = note_taker()
    with LoomSaver.open(**data_store.location) as saver:
        graph.compile(checkpointer=saver).invoke({"notes": ["start"]}, thread())
    with LoomSaver.open(**data_store.location) as saver:  # another process's, after a restart
        compiled = graph.compile(checkpointer=saver)
        compiled.invoke({"notes": ["again"]}, thread())
        assert compiled.get_state(thread()).values == {"notes": ["start", "note 1", "again", "note 3"]}
        assert compiled.get_state(thread("thread-2")).values == {}


def test_an_interrupted_graph_resumes_with_the_answer(saver):
    def ask(state):
        return {"notes": ["approved: %s" % interrupt("Deploy?")]}

    builder = StateGraph(Notes)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    graph = builder.compile(checkpointer=saver)

    paused = graph.invoke({"notes": []}, thread())
    assert paused["__interrupt__"][0].value == "Deploy?"
    assert graph.get_state(thread()).next == ("ask",)
    assert graph.invoke(Command(resume="yes"), thread()) == {"notes": ["approved: yes"]}


def test_time_travel_forks_a_thread_and_each_branch_keeps_its_own_values(saver):
    graph = note_taker().compile(checkpointer=saver)
    for word in ("a", "b", "c"):
        graph.invoke({"notes": [word]}, thread())
    history = list(graph.get_state_history(thread()))
    after_first = next(s for s in reversed(history) if s.values.get("notes") == ["a", "note 1"])

    forked = graph.invoke({"notes": ["x"]}, after_first.config)

    assert forked == {"notes": ["a", "note 1", "x", "note 3"]}
    assert graph.get_state(after_first.config).values == {"notes": ["a", "note 1"]}
    assert graph.get_state(thread()).values == {"notes": ["a", "note 1", "x", "note 3"]}
    main_line = [s for s in history if s.values.get("notes", [])[:3] == ["a", "note 1", "b"]]
    assert graph.get_state(main_line[0].config).values["notes"][-1] == "note 5"


def test_a_growing_list_costs_its_new_items_not_a_copy_a_step(saver, storage):
    builder = StateGraph(MessagesState)
    builder.add_node("reply", lambda state: {"messages": [AIMessage("reply %d " % len(state["messages"]) + "x" * 200)]})
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    graph = builder.compile(checkpointer=saver)

    for turn in range(100):  # 200 steps, each adding a message
        graph.invoke({"messages": [HumanMessage("question %d" % turn)]}, thread())

    messages = graph.get_state(thread()).values["messages"]
    assert [m.content[:9] for m in messages[-2:]] == ["question ", "reply 199"]
    final_size = len(saver.serde.dumps_typed(messages)[1])
    # Stored a copy a step, the values would take about 100 times the final list.
    assert storage.checkpoints.stats()["value_bytes"] < 3 * final_size


def test_a_list_that_does_not_only_grow_is_stored_whole(saver):
    first = put(saver, thread(), {"items": [1, 2, 3]})
    checkpoint = saver.get_tuple(first).checkpoint
    for values in ([1, 2, 3, 4], [9, 2, 3, 4], [9], [], [9, 8]):
        checkpoint = create_checkpoint(checkpoint, None, 2)
        checkpoint["channel_values"] = {"items": values}
        version = saver.get_next_version(checkpoint["channel_versions"]["items"])
        checkpoint["channel_versions"] = {"items": version}
        config = saver.put(first, checkpoint, {}, {"items": version})
        assert saver.get_tuple(config).checkpoint["channel_values"] == {"items": values}


def test_a_list_whose_base_another_process_pruned_is_stored_whole(storage, data_store):
    saver = LoomSaver(storage)
    graph = note_taker().compile(checkpointer=saver)
    graph.invoke({"notes": ["a"]}, thread())
    with LoomSaver.open(**data_store.location) as other:
        other.prune(["thread-1"], strategy="delete")

    graph.invoke({"notes": ["b"]}, thread())

    assert graph.get_state(thread()).values == {"notes": ["b", "note 1"]}


def test_versions_keep_their_order_and_never_repeat(saver):
    first = saver.get_next_version(None)
    second = saver.get_next_version(first)
    assert first < second and int(second.split(".")[0]) == 2
    assert saver.get_next_version(first) != second  # a fork's next version is another
    assert saver.get_next_version(7).startswith("%032d." % 8)


def test_pending_writes_come_back_in_task_order_and_special_writes_replace(saver):
    config = put(saver, thread(), {"a": 1})
    saver.put_writes(config, [("x", "first"), ("y", 2)], task_id="task-b", task_path="~b")
    saver.put_writes(config, [("x", "second")], task_id="task-b", task_path="~b")  # the first stays
    saver.put_writes(config, [("z", 3)], task_id="task-a", task_path="~b")
    saver.put_writes(config, [("w", 4)], task_id="task-c", task_path="~a")
    saver.put_writes(config, [(ERROR, "boom")], task_id="task-c", task_path="~a")
    saver.put_writes(config, [(ERROR, "boom again")], task_id="task-c", task_path="~a")  # replaces
    saver.put_writes(config, [(INTERRUPT, "ask"), (INTERRUPT, "ask again")], task_id="task-a", task_path="~b")

    assert saver.get_tuple(config).pending_writes == [
        ("task-c", ERROR, "boom again"),
        ("task-c", "w", 4),
        ("task-a", INTERRUPT, "ask again"),  # one at an index: the last
        ("task-a", "z", 3),
        ("task-b", "x", "first"),
        ("task-b", "y", 2),
    ]


def test_list_filters_on_metadata_exactly(saver):
    metadata = [
        {"source": "input", "step": 1, "flag": True, "nested": {"a": [1, 2]}, "none": None},
        {"source": "loop", "step": 2, "flag": 1, "nested": {"a": [1]}, "order": {"b": 1, "a": 2}},
        {"source": "loop", "step": "2", "my-key.2": "x"},
    ]
    configs = [put(saver, thread(), {"v": i}, metadata=m) for i, m in enumerate(metadata)]

    def found(**where):
        return [c.config["configurable"]["checkpoint_id"] for c in saver.list(thread(), filter=where)]

    ids = [config["configurable"]["checkpoint_id"] for config in configs]
    assert found(source="loop") == [ids[2], ids[1]]
    assert found(step=2) == [ids[1]]  # not "2"
    assert found(step=2.0) == [ids[1]]  # a number is a number, on both backends
    assert found(order={"a": 2, "b": 1}) == [ids[1]]  # an object's keys in any order
    assert found(flag=True) == [ids[0]]  # not 1
    assert found(nested={"a": [1, 2]}) == [ids[0]]
    assert found(none=None) == [ids[0]]  # a key that is absent is not None
    assert found(**{"my-key.2": "x"}) == [ids[2]]
    assert found(**{"source') OR 1=1 --": "x"}) == []
    assert found(source="loop", step=2) == [ids[1]]
    with pytest.raises(ValidationError):
        list(saver.list(thread(), filter={"source": object()}))


def test_list_pages_through_every_thread_newest_first(saver):
    configs = [
        put(saver, thread("t%d" % (i % 3)), {"i": i}, metadata={"i": i}) for i in range(2 * saver_module.PAGE + 5)
    ]
    newest_first = [config["configurable"]["checkpoint_id"] for config in reversed(configs)]

    assert [c.config["configurable"]["checkpoint_id"] for c in saver.list(None)] == newest_first
    assert [c.metadata["i"] for c in saver.list(None, limit=30)] == list(range(54, 24, -1))
    assert [c.metadata["i"] for c in saver.list(thread("t1"), before=configs[10], limit=2)] == [7, 4]
    assert len(list(saver.list(thread("t0")))) == 19
    assert list(saver.list(None, limit=0)) == []
    with pytest.raises(ValidationError):
        list(saver.list(None, limit="3"))


def test_namespaces_are_kept_apart(saver):
    put(saver, thread(), {"v": "root"})
    child = put(saver, thread(checkpoint_ns="child:1"), {"v": "child"})

    assert saver.get_tuple(thread()).checkpoint["channel_values"] == {"v": "root"}
    assert saver.get_tuple(child).checkpoint["channel_values"] == {"v": "child"}
    assert len(list(saver.list(thread()))) == 2  # no namespace given: all of them
    assert len(list(saver.list(thread(checkpoint_ns="")))) == 1


def test_prune_keeps_the_newest_checkpoint_of_each_namespace_with_its_writes(saver, storage):
    graph = note_taker().compile(checkpointer=saver)
    for word in ("a", "b"):
        graph.invoke({"notes": [word]}, thread())
        graph.invoke({"notes": [word]}, thread("other"))
    child = put(saver, thread(checkpoint_ns="child:1"), {"v": 1})
    put(saver, thread(checkpoint_ns="child:1"), {"v": 2}, parent=child)
    newest = saver.get_tuple(thread())
    saver.put_writes(newest.config, [("notes", ["pending"])], task_id="t")

    saver.prune(["thread-1"])

    assert [c.config for c in saver.list(thread())] == [
        saver.get_tuple(thread(checkpoint_ns="child:1")).config,
        newest.config,
    ]
    assert saver.get_tuple(thread()).checkpoint == newest.checkpoint
    assert saver.get_tuple(thread()).pending_writes == [("t", "notes", ["pending"])]
    assert len(list(saver.list(thread("other")))) == 6
    assert graph.invoke({"notes": ["c"]}, thread())["notes"] == ["a", "note 1", "b", "note 3", "c", "note 5"]

    saver.prune(["thread-1", "other"], strategy="delete")
    assert list(saver.list(None)) == []
    assert storage.checkpoints.stats() == {
        "threads": 0,
        "checkpoints": 0,
        "writes": 0,
        "values": 0,
        "value_bytes": 0,
        "store_items": 0,
    }
    with pytest.raises(ValidationError):
        saver.prune(["other"], strategy="everything")
    with pytest.raises(ValidationError):
        saver.prune("other")  # a thread id, not a list of them


def test_delete_and_copy_threads(saver, storage):
    graph = note_taker().compile(checkpointer=saver)
    graph.invoke({"notes": ["a"]}, thread(run_id=str(uuid.uuid4())))  # as LangGraph Platform names runs
    graph.invoke({"notes": ["b"]}, thread("keep"))

    first_run = list(saver.list(thread()))[-1].metadata["run_id"]
    saver.copy_thread("thread-1", "copy")
    assert graph.get_state(thread("copy")).values == graph.get_state(thread()).values
    assert len(list(saver.list(thread("copy")))) == len(list(saver.list(thread())))

    saver.delete_thread("thread-1")
    assert saver.get_tuple(thread()) is None
    assert graph.invoke({"notes": ["c"]}, thread("copy"))["notes"] == ["a", "note 1", "c", "note 3"]

    saver.delete_for_runs([first_run])
    assert [c.metadata.get("run_id") == first_run for c in saver.list(None)] == [False] * 6
    assert graph.get_state(thread("copy")).values == {"notes": ["a", "note 1", "c", "note 3"]}
    assert graph.get_state(thread("keep")).values == {"notes": ["b", "note 1"]}


def test_an_encrypting_serializer_is_used_for_everything_stored(storage, data_store):
    saver = LoomSaver(storage, serde=EncryptedSerializer.from_pycryptodome_aes(key=b"k" * 16))
    graph = note_taker().compile(checkpointer=saver)
    graph.invoke({"notes": ["top secret"]}, thread())

    assert graph.get_state(thread()).values == {"notes": ["top secret", "note 1"]}
    stored = data_store.sql("checkpoints", "SELECT type, value FROM graph_channel_values")
    assert stored and all(kind.endswith("+aes") for kind, _ in stored if kind != "empty")
    assert not any(b"top secret" in bytes(value) for _, value in stored)


@pytest.mark.parametrize(
    "metadata",
    [{"when": object()}, {"score": float("nan")}, {"note": {"text": "a\x00b"}}, {"notes": ["\ud800"]}],
    ids=["not JSON", "NaN", "NUL", "lone surrogate"],
)
def test_metadata_that_would_break_a_filter_later_is_refused(saver, storage, metadata):
    good = put(saver, thread(), {"v": 1}, metadata={"source": "input"})
    with pytest.raises(ValidationError, match="metadata"):
        put(saver, thread(), {"v": 2}, metadata=metadata, parent=good)
    assert [c.config for c in saver.list(None, filter={"source": "input"})] == [good]
    assert storage.checkpoints.stats()["checkpoints"] == 1


def test_bad_input_is_refused_and_stores_nothing(saver, storage):
    config = put(saver, thread(), {"v": 1})
    checkpoint = saver.get_tuple(config).checkpoint
    refused = [
        lambda: saver.get_tuple({"configurable": {}}),
        lambda: saver.get_tuple(None),
        lambda: saver.get_tuple(thread("a\x00b")),
        lambda: saver.get_tuple(thread(checkpoint_ns="ns\x00")),
        lambda: saver.put(thread(), {**checkpoint, "id": None}, {}, {}),
        lambda: saver.put(thread(), {**checkpoint, "channel_versions": None}, {}, {}),
        lambda: saver.put(thread(), checkpoint, None, {}),
        lambda: saver.put_writes(thread(), [("x", 1)], task_id="t"),  # no checkpoint to write on
        lambda: saver.put_writes(config, [("x", 1)], task_id=None),
        lambda: saver.put_writes(config, [1], task_id="t"),
        lambda: saver.put_writes(config, [(None, 1)], task_id="t"),
        lambda: saver.delete_for_runs("run-1"),  # a run id, not a list of them
        lambda: saver.copy_thread("thread-1", None),
        lambda: saver.get_next_version("abc"),
    ]
    for call in refused:
        with pytest.raises(ValidationError):
            call()
    assert storage.checkpoints.stats()["checkpoints"] == 1
    assert saver.get_tuple(config).pending_writes == []


def test_a_copy_of_a_forked_thread_is_the_same_and_new(saver, storage):
    graph = note_taker().compile(checkpointer=saver)
    for word in ("a", "b", "c"):
        graph.invoke({"notes": [word]}, thread())
    first = list(graph.get_state_history(thread()))[-2]
    graph.invoke({"notes": ["fork"]}, first.config)  # its list extends one of a later version
    C = storage.checkpoints.Checkpoint
    C.update(created_at=C.created_at.db_value(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))).execute()

    saver.copy_thread("thread-1", "copy")

    def states(name):
        return [(s.values, s.config["configurable"]["checkpoint_id"]) for s in graph.get_state_history(thread(name))]

    assert states("copy") == states("thread-1")
    a_year_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=365)
    assert storage.checkpoints.threads_idle_since(a_year_ago) == ["thread-1"]  # the copy is new


def test_puts_and_prunes_of_the_same_threads_at_once_lose_nothing(saver, data_store):
    failures, stop = [], threading.Event()

    def steps(name):
        config, items = thread(name), []
        try:
            for step in range(30):
                items = [*items, "%s-%d" % (name, step)]
                parent = saver.get_tuple(config) if step else None
                checkpoint = create_checkpoint(parent.checkpoint if parent else empty_checkpoint(), None, step)
                versions = checkpoint["channel_versions"]
                new_versions = {"items": saver.get_next_version(versions.get("items")), "step": str(step)}
                checkpoint["channel_versions"] = {**versions, **new_versions}
                checkpoint["channel_values"] = {"items": items, "step": step}
                config = saver.put(config, checkpoint, {"step": step}, new_versions)
                if saver.get_tuple(config).checkpoint["channel_values"] != {"items": items, "step": step}:
                    failures.append((name, step, "another value came back"))
        except Exception as error:  # pragma: no cover - what the test is about
            failures.append((name, step, error))

    def prunes(other):
        while not stop.is_set():
            try:
                other.prune(["t0", "t1", "t2"])
            except Exception as error:  # pragma: no cover - what the test is about
                failures.append(("prune", error))

    with LoomSaver.open(**data_store.location) as other:  # another process's
        pruner = threading.Thread(target=prunes, args=(other,))
        pruner.start()
        workers = [threading.Thread(target=steps, args=("t%d" % i,)) for i in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stop.set()
        pruner.join()
    assert failures == []


def test_a_closed_storage_refuses(storage):
    saver = LoomSaver(storage)
    storage.close()
    with pytest.raises(LoomStorageError, match="closed"):
        saver.get_tuple(thread())


def test_many_threads_share_one_saver(saver):
    graph = note_taker().compile(checkpointer=saver)
    failures = []

    def run(name):
        try:
            for word in ("a", "b", "c"):
                graph.invoke({"notes": [word]}, thread(name), durability="async")
        except Exception as error:  # pragma: no cover - what the test is about
            failures.append(error)

    workers = [threading.Thread(target=run, args=("t%d" % i,)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert failures == []
    for i in range(8):
        assert graph.get_state(thread("t%d" % i)).values["notes"][-1] == "note 5"


GRAPH_IN_A_PROCESS = """
import json, operator, sys
from typing import Annotated, TypedDict
from langgraph.graph import END, START, StateGraph
from loom_models.integrations.langgraph import LoomSaver

class Notes(TypedDict):
    notes: Annotated[list, operator.add]

builder = StateGraph(Notes)
builder.add_node("note", lambda state: {"notes": ["note %d" % len(state["notes"])]})
builder.add_edge(START, "note")
builder.add_edge("note", END)
location, name, durability = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with LoomSaver.open(**location) as saver:
    graph = builder.compile(checkpointer=saver)
    for step in range(40):
        graph.invoke({"notes": [step]}, {"configurable": {"thread_id": name}}, durability=durability)
"""


def test_two_processes_run_graphs_on_one_store(data_store):
    with open_storage(**data_store.location, gc_interval=0):
        pass  # made and migrated, as a deployment does before it starts workers
    children = [
        subprocess.Popen(
            [sys.executable, "-c", GRAPH_IN_A_PROCESS, json.dumps(data_store.location), name, durability],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, durability in (("sync-thread", "sync"), ("async-thread", "async"))
    ]
    errors = [child.communicate(timeout=120)[1] for child in children]

    assert [child.returncode for child in children] == [0, 0], errors
    with LoomSaver.open(**data_store.location) as saver:
        for name in ("sync-thread", "async-thread"):
            history = list(saver.list(thread(name)))
            assert len(history) == 120  # input, loop step, and the node's, for each of 40 runs
            assert all(c.checkpoint["channel_values"] is not None for c in history)
            assert len(saver.get_tuple(thread(name)).checkpoint["channel_values"]["notes"]) == 80


def test_the_async_saver_runs_a_graph_and_keeps_its_loop_free(data_store):
    async def main():
        async with AsyncLoomSaver.open(**data_store.location) as saver:
            graph = note_taker().compile(checkpointer=saver)
            for word in ("a", "b", "c"):
                await graph.ainvoke({"notes": [word]}, thread())
            state = await graph.aget_state(thread())
            with pytest.raises(asyncio.InvalidStateError, match="aget_tuple"):
                saver.get_tuple(thread())
            # A paused reader holds nothing: a write goes through meanwhile.
            listing = saver.alist(thread())
            first = await anext(listing)
            await graph.ainvoke({"notes": ["d"]}, thread())
            rest = [c async for c in listing]
            await saver.aprune(["thread-1"])
            pruned = [c async for c in saver.alist(None)]
            return state.values, first, rest, pruned, await saver.aget_tuple(thread())

    values, first, rest, pruned, newest = asyncio.run(main())
    assert values == {"notes": ["a", "note 1", "b", "note 3", "c", "note 5"]}
    assert first.metadata["step"] == 7 and len(rest) == 8
    assert [c.config for c in pruned] == [newest.config]
    assert newest.checkpoint["channel_values"]["notes"][-1] == "note 7"


def test_the_async_saver_on_a_view_of_a_sync_storage_and_from_another_thread(storage):
    with pytest.raises(ValidationError, match="aio storage"):
        AsyncLoomSaver(storage)
    view = aio.AsyncStorage.over(storage)
    saver = AsyncLoomSaver(view)
    config = asyncio.run(saver.aput(*_first_checkpoint(saver)))
    assert saver.get_tuple(config).checkpoint["channel_values"] == {"v": 1}  # no loop here: the sync call serves
    asyncio.run(view.close())
    assert not storage.checkpoints.closed  # a view: the storage it was given stays open


def _first_checkpoint(saver):
    checkpoint = create_checkpoint(empty_checkpoint(), None, 1)
    checkpoint["channel_values"] = {"v": 1}
    checkpoint["channel_versions"] = {"v": saver.get_next_version(None)}
    return thread(), checkpoint, {"source": "input", "step": -1}, checkpoint["channel_versions"]

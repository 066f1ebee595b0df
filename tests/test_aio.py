"""loom_models.aio: the sync contract as coroutines, on whichever backend `backend` gives.

Each test runs its own event loop (asyncio.run): no plugin is needed to run them.
"""

import asyncio
import inspect
import math
import os
import threading
import time
import uuid

import pytest

from loom_models import LoomStorageError, NotFoundError, ValidationError, aio, open_storage
from loom_models.hitl import HumanRequest
from loom_models.sessions import Message, Session
from loom_models.storage import DOMAINS


def run(coroutine):
    return asyncio.run(coroutine)


def opened(data_store, **options):
    return aio.open_storage(**data_store.location, **{"gc_interval": 0, **options})


@pytest.mark.parametrize("domain, sync", DOMAINS.items())
def test_every_public_method_is_a_coroutine_of_the_same_signature(data_store, domain, sync):
    async def main():
        async with opened(data_store) as storage:
            return getattr(storage, domain)

    repository = run(main())
    public = {name for name, _ in inspect.getmembers(sync, inspect.isfunction) if not name.startswith("_")}
    public -= {"close", "iter_messages"}
    assert public
    for name in public:
        method = getattr(repository, name)
        assert inspect.iscoroutinefunction(method), name
        assert inspect.signature(method) == inspect.signature(getattr(sync, name).__get__(object())), name
        if name not in type(repository).__dict__:  # bridged, not written anew
            assert method.__doc__ == getattr(sync, name).__doc__


def test_results_and_errors_are_the_sync_ones(data_store):
    async def main():
        async with opened(data_store) as storage:
            saved = await storage.sessions.save_session(Session(id="sess_1", agent_id="a"))
            await storage.sessions.save_messages("sess_1", [Message(role="user", content="hi", token_count=2)])
            loaded = await storage.sessions.load_session("sess_1")
            with pytest.raises(NotFoundError, match="nobody"):
                await storage.sessions.load_session("nobody")
            with pytest.raises(ValidationError) as error:
                await storage.sessions.save_message("sess_1", {"role": "robot"})
            request = await storage.hitl.store(HumanRequest(agent_id="a", session_id="sess_1", question="Deploy?"))
            reference = await storage.references.store(b"payload")
            return saved, loaded, error.value, request, await storage.references.resolve(reference)

    saved, loaded, error, request, payload = run(main())
    assert isinstance(saved, Session) and saved.agent_id == "a"
    assert (loaded.total_tokens, [m.content for m in loaded.messages]) == (2, ["hi"])
    assert "role" in error.messages
    assert request.status == "pending" and payload == b"payload"


def test_awaited_then_closed_by_hand_and_refusing_after(data_store):
    async def main():
        storage = await opened(data_store)
        await storage.sessions.save_session(Session(id="sess_1"))
        await storage.close()
        await storage.close()  # twice is fine
        with pytest.raises(LoomStorageError, match="closed"):
            await storage.sessions.load_session("sess_1")
        return repr(storage), repr(storage.sessions)

    storage_repr, sessions_repr = run(main())
    assert storage_repr.startswith("<AsyncStorage ") and sessions_repr.startswith("<AsyncSessionRepository ")
    with open_storage(**data_store.location, gc_interval=0) as storage:
        assert storage.sessions.load_session("sess_1").id == "sess_1"


def bridge_threads():
    return {thread for thread in threading.enumerate() if thread.name.startswith("loom-aio")}


def test_an_error_while_opening_is_the_sync_one_and_leaves_nothing_open(tmp_path):
    (tmp_path / "data").write_text("a file, not a directory")
    before = bridge_threads()

    async def main():
        await aio.open_storage(tmp_path / "data", gc_interval=0)

    with pytest.raises(LoomStorageError):
        run(main())
    assert bridge_threads() == before


def test_fifty_tasks_saving_to_one_session_keep_exact_totals(data_store):
    async def writer(storage, task):
        for turn in range(20):
            await storage.sessions.save_message(
                "shared", Message(role="user", content="%d/%d" % (task, turn), token_count=task + 1, cost_usd=0.001)
            )

    async def main():
        async with opened(data_store) as storage:
            await storage.sessions.save_session(Session(id="shared"))
            await asyncio.gather(*(writer(storage, task) for task in range(50)))
            return await storage.sessions.load_session("shared")

    session = run(main())
    assert len(session.messages) == 1_000
    assert len({m.content for m in session.messages}) == 1_000
    assert session.total_tokens == sum(20 * (task + 1) for task in range(50)) == 25_500
    assert math.isclose(session.total_cost_usd, 1.0)
    assert session.total_tokens == sum(m.token_count for m in session.messages)
    assert data_store.integrity_problems() == {}


@pytest.mark.parametrize("cancels", [1, 3])
def test_a_cancelled_write_completes_before_the_caller_sees_the_cancel(data_store, cancels):
    async def main():
        async with opened(data_store) as storage:
            await storage.sessions.save_session(Session(id="sess_1"))
            with data_store.write_lock():  # the write waits for it, in its thread
                saving = asyncio.create_task(
                    storage.sessions.save_message("sess_1", Message(role="user", content="kept", token_count=9))
                )
                await asyncio.sleep(0)  # the task has begun the call
                for _ in range(cancels):
                    saving.cancel()
                    await asyncio.sleep(0.05)
                assert not saving.done()  # it waits for the write, which waits for the lock
            with pytest.raises(asyncio.CancelledError):
                await saving
            return await storage.sessions.load_session("sess_1")

    session = run(main())
    assert [m.content for m in session.messages] == ["kept"]
    assert session.total_tokens == 9


def test_a_sync_and_an_async_storage_see_each_others_writes(data_store):
    async def main(sync):
        async with opened(data_store) as storage:
            await storage.sessions.save_session(Session(id="sess_1"))
            sync.sessions.save_message("sess_1", Message(role="user", content="from sync", token_count=1))
            seen_by_async = [m.content for m in await storage.sessions.load_messages("sess_1")]
            await storage.sessions.save_message("sess_1", Message(role="assistant", content="from async"))
            return seen_by_async, [m.content for m in sync.sessions.load_messages("sess_1")]

    with open_storage(**data_store.location, gc_interval=0) as sync:
        seen_by_async, seen_by_sync = run(main(sync))
    assert seen_by_async == ["from sync"]
    assert seen_by_sync == ["from sync", "from async"]


def test_iter_messages_fetches_a_page_then_yields_it_holding_nothing(data_store):
    async def main():
        async with opened(data_store) as storage:
            await storage.sessions.save_session(Session(id="sess_1"))
            await storage.sessions.save_messages("sess_1", [Message(role="user", content=str(i)) for i in range(25)])
            pool = storage.sync.sessions.database
            seen, in_use_between = [], set()
            async for message in storage.sessions.iter_messages("sess_1", batch_size=4):
                seen.append(message.content)
                in_use_between.add(len(pool._in_use))  # connections checked out of the pool
            with pytest.raises(ValidationError):
                storage.sessions.iter_messages("sess_1", batch_size=0)  # checked at once
            return seen, in_use_between

    seen, in_use_between = run(main())
    assert seen == [str(i) for i in range(25)]
    assert in_use_between == {0}


def test_no_connection_outlives_the_call_nor_the_storage(data_store, backend):
    if backend.name == "sqlite":
        store = os.path.realpath(data_store.target)
        location = data_store.location

        def open_connections():  # of the sessions database
            return [p for p in map(_link, os.listdir("/proc/self/fd")) if p == os.path.join(store, "sessions.db")]
    else:
        name = "loom_aio_" + uuid.uuid4().hex[:8]
        location = {"database_url": data_store.target + "&application_name=" + name}

        def open_connections():
            return backend.sql("SELECT state FROM pg_stat_activity WHERE application_name = ?", name)

    async def main():
        async with aio.open_storage(**location, gc_interval=0) as storage:
            await storage.sessions.save_session(Session(id="sess_1"))
            await asyncio.gather(*(storage.sessions.load_session("sess_1") for _ in range(40)))
            pool = storage.sync.sessions.database
            during = (len(pool._in_use), len(open_connections()))
        return during

    in_use, open_during = run(main())
    assert in_use == 0  # every thread gave its connection back
    assert 0 < open_during <= aio.THREADS + 1
    assert _eventually(open_connections) == []  # a server ends its backends soon after the client closed them


def _eventually(look, seconds=10.0):
    """What `look()` gives once it is empty, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while (found := look()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _link(fd):
    try:
        return os.readlink("/proc/self/fd/" + fd)
    except OSError:
        return ""


def test_wait_for_response_waits_without_a_thread(data_store):
    async def main():
        async with opened(data_store) as storage:
            request = await storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="Deploy?"))
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            ticking = asyncio.create_task(ticker())
            answering = asyncio.create_task(_answer_later(data_store, request.id))
            decided = await storage.hitl.wait_for_response(request.id, timeout=30, poll_interval=0.05)
            await answering
            ticking.cancel()
            still_pending = await storage.hitl.store(HumanRequest(agent_id="a", session_id="s", question="Again?"))
            gave_up = await storage.hitl.wait_for_response(still_pending.id, timeout=0.1, poll_interval=0.05)
            with pytest.raises(ValidationError):
                await storage.hitl.wait_for_response(request.id, poll_interval=0)
            return decided, ticks, gave_up

    decided, ticks, gave_up = run(main())
    assert (decided.status, decided.responded_by) == ("approved", "ops")
    assert ticks > 5  # the loop ran other tasks meanwhile
    assert gave_up.status == "pending"


async def _answer_later(data_store, request_id):
    await asyncio.sleep(0.2)

    def answer():
        with open_storage(**data_store.location, gc_interval=0) as storage:
            storage.hitl.respond_to_request(request_id, "approved", "go", responded_by="ops")

    await asyncio.to_thread(answer)


def test_over_a_sync_storage_closes_its_own_connection_and_leaves_the_storage_open(data_store):
    with open_storage(**data_store.location, gc_interval=0) as sync:
        before = bridge_threads()
        view = aio.AsyncStorage.over(sync)

        async def main():
            await view.sessions.save_session(Session(id="sess_1"))
            await asyncio.gather(*(view.sessions.load_session("sess_1") for _ in range(10)))
            await view.close()
            with pytest.raises(LoomStorageError, match="closed"):
                await view.sessions.load_session("sess_1")

        run(main())
        assert bridge_threads() == before
        assert sync.sessions.load_session("sess_1").id == "sess_1"  # still open


def test_close_now_from_sync_code(data_store):
    storage = aio.open_now(**data_store.location, gc_interval=0)
    run(storage.sessions.save_session(Session(id="sess_1")))

    storage.close_now()
    storage.close_now()

    with pytest.raises(LoomStorageError, match="closed"):
        run(storage.sessions.load_session("sess_1"))


def test_the_collectors_short_lock_wait_stays_with_the_collector(data_store):
    # The collector waits only 500 ms for a lock; a call on a connection it used must wait as long as any.
    async def main():
        async with opened(data_store, gc_interval=0.01) as storage:
            while (await storage.references.stats()).gc_runs < 3:
                await asyncio.sleep(0.01)
            with data_store.write_lock("references"):
                storing = asyncio.create_task(storage.references.store(b"waits its turn"))
                await asyncio.sleep(1.5)
            return await storing

    assert run(main()).size_bytes == len(b"waits its turn")


def test_a_call_racing_close_is_refused_as_closed(data_store, monkeypatch):
    async def main():
        storage = await opened(data_store)

        def closed_meanwhile(submit):  # close() runs between the call's look and its submit
            def submitting(*args, **kwargs):
                storage.close_now()
                return submit(*args, **kwargs)

            return submitting

        for executor in set(storage._bridge._executors.values()):
            monkeypatch.setattr(executor, "submit", closed_meanwhile(executor.submit))
        with pytest.raises(LoomStorageError, match="closed"):
            await storage.sessions.load_session("sess_1")

    run(main())


def test_open_storage_is_a_coroutine_like_any_other(data_store):
    storage = run(aio.open_storage(**data_store.location, gc_interval=0))
    storage.close_now()

    async def main():
        opening = asyncio.create_task(aio.open_storage(**data_store.location, gc_interval=0))
        storage = await opening
        await storage.close()
        return storage

    assert repr(run(main())).startswith("<AsyncStorage ")


def test_threads_using_the_sync_storage_underneath_take_no_connection_from_the_calls(data_store):
    async def main():
        async with opened(data_store) as storage:
            await storage.sessions.save_session(Session(id="sess_1"))
            threads = [
                threading.Thread(target=storage.sync.sessions.load_session, args=("sess_1",))
                for _ in range(3 * aio.THREADS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return await asyncio.gather(*(storage.sessions.load_session("sess_1") for _ in range(20)))

    assert {session.id for session in run(main())} == {"sess_1"}


def test_over_a_storage_of_a_pooled_sqlite_url(tmp_path):
    with open_storage(database_url="sqlite+pool:///%s" % (tmp_path / "all.db"), gc_interval=0) as sync:

        async def main():
            async with aio.AsyncStorage.over(sync) as storage:
                await storage.sessions.save_session(Session(id="sess_1"))
                return await asyncio.gather(*(storage.sessions.load_session("sess_1") for _ in range(20)))

        assert len(run(main())) == 20


def test_a_calls_span_is_a_child_of_the_awaiting_tasks_span(data_store):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("loom-tests")

    async def turn(storage, name):
        with tracer.start_as_current_span(name):
            await storage.sessions.save_session(Session(id=name))

    async def main():
        async with opened(data_store, tracer=tracer) as storage:
            await asyncio.gather(turn(storage, "turn_a"), turn(storage, "turn_b"))

    run(main())
    spans = {span.name + ":" + span.attributes.get("session_id", ""): span for span in exporter.get_finished_spans()}
    for name in ("turn_a", "turn_b"):
        saved, parent = spans["session_store.save_session:" + name], spans[name + ":"]
        assert saved.parent.span_id == parent.context.span_id


def test_a_storage_used_in_a_forked_child_says_so_and_does_not_hang(data_store, in_a_forked_child):
    storage = aio.open_now(**data_store.location, gc_interval=0)
    run(storage.sessions.save_session(Session(id="sess_1")))

    def use_the_parents():
        try:
            run(storage.sessions.load_session("sess_1"))
        except LoomStorageError as error:
            return "open a storage in each process" in str(error)
        return False

    def open_its_own():
        return run(_load_in_a_new_storage(data_store)).id == "sess_1"

    assert in_a_forked_child(use_the_parents) == 0
    assert in_a_forked_child(open_its_own) == 0
    assert run(storage.sessions.load_session("sess_1")).id == "sess_1"  # the parent's still works
    storage.close_now()


async def _load_in_a_new_storage(data_store):
    async with opened(data_store) as storage:
        return await storage.sessions.load_session("sess_1")

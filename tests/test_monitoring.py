"""The slow-call log and the metrics of open_storage(slow_call_ms=..., meter=...), on the suite's backend."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from conftest import POSTGRES_URL
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from loom_models import ValidationError, aio, open_storage
from loom_models.sessions import Message, Session


@pytest.fixture
def opened(backend, tmp_path):
    """open_storage on the suite's backend, with the keywords given."""

    def open_on_the_backend(**options):
        if backend.name == "postgres":
            return open_storage(database_url=backend.target, gc_interval=0, **options)
        return open_storage(tmp_path / "data", gc_interval=0, **options)

    return open_on_the_backend


@pytest.fixture
def metered():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider.get_meter("loom-test"), reader
    provider.shutdown()


def points(reader, name: str) -> list:
    data = reader.get_metrics_data()
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_a_slow_call_is_logged_with_its_sql_shape_and_never_a_value(opened, caplog):
    with opened(slow_call_ms=0) as storage, caplog.at_level(logging.WARNING, logger="loom_models.slow"):
        storage.sessions.save_session(Session(id="sess_secret_id"))
        caplog.clear()
        storage.sessions.save_message("sess_secret_id", Message(role="user", content="the customer's card 4111"))

    [record] = caplog.records  # save_message's own save_messages is part of it, not a call of its own
    text = record.getMessage()
    assert record.levelname == "WARNING" and text.startswith("slow call session_store.save_message: ")
    assert 'UPDATE "sessions" SET' in text  # its first statement, where it adds to the session's totals
    assert "sess_secret_id" not in text and "4111" not in text and "customer" not in text


def test_a_call_under_the_threshold_is_not_logged(opened, caplog):
    with opened(slow_call_ms=60_000) as storage, caplog.at_level(logging.WARNING, logger="loom_models.slow"):
        storage.sessions.save_session(Session(id="s1"))
        storage.sessions.get_stats()
    assert caplog.records == []


@pytest.mark.parametrize("bad", [-1, "fast", True, float("nan"), float("inf")])
def test_a_threshold_that_is_no_duration_is_refused(opened, bad):
    with pytest.raises(ValidationError, match="slow_call_ms"):
        opened(slow_call_ms=bad)


def test_every_call_is_a_duration_on_the_meter(opened, metered):
    meter, reader = metered
    with opened(meter=meter) as storage:
        storage.sessions.save_session(Session(id="s1"))
        for _ in range(3):
            storage.sessions.save_message("s1", Message(role="user", content="hi"))
        storage.sessions.get_stats()

    durations = {point.attributes["loom.call"]: point for point in points(reader, "loom.call.duration")}
    assert durations["session_store.save_message"].count == 3  # its save_messages is part of it
    assert durations["session_store.get_stats"].count == 1
    assert "session_store.save_messages" not in durations
    assert durations["session_store.save_message"].sum > 0


@pytest.mark.skipif(not POSTGRES_URL, reason="a PostgreSQL pool: runs with LOOM_TEST_DATABASE_URL")
def test_the_pool_figures_are_on_the_meter(opened, metered):
    meter, reader = metered
    with opened(meter=meter, pool_size=2) as storage:
        storage.sessions.save_session(Session(id="s1"))
        held, release = threading.Event(), threading.Event()

        def hold():
            with storage.sessions.database.atomic():
                storage.sessions.get_stats()
                held.set()
                release.wait(10)
            storage.sessions.database.close()

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(10)
        connections = {point.attributes["state"]: point.value for point in points(reader, "loom.pool.connections")}
        release.set()
        holder.join(10)

    assert connections["in_use"] == 1 and connections["in_use"] + connections["idle"] <= 2
    assert [point.value for point in points(reader, "loom.pool.waits")] == [0]


def test_the_async_storage_logs_and_meters_its_calls_too(backend, tmp_path, metered, caplog):
    meter, reader = metered
    where = {"database_url": backend.target} if backend.name == "postgres" else {"data_dir": tmp_path / "data"}

    async def calls():
        async with aio.open_storage(**where, gc_interval=0, slow_call_ms=0, meter=meter) as storage:
            await storage.sessions.save_session(Session(id="s1"))
            await storage.sessions.save_message("s1", Message(role="user", content="hi"))

    with caplog.at_level(logging.WARNING, logger="loom_models.slow"):
        asyncio.run(calls())

    assert {point.attributes["loom.call"] for point in points(reader, "loom.call.duration")} >= {
        "session_store.save_session",
        "session_store.save_message",
    }
    assert any(r.getMessage().startswith("slow call session_store.save_message: ") for r in caplog.records)

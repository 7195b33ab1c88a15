"""``ConnectorContract``: what every ``plantlink.connectors`` plugin must do against a real server
(``plantlink.connectors.base.Connector``).

The subclass provides the server as the async ``server`` fixture (an object with ``async start()`` and
``async stop()``: stop makes it go away, start brings it back on the same address), a connector for it, and a
way to change the value of the connector's first point on the server::

    class TestMyConnector(ConnectorContract):
        @pytest_asyncio.fixture
        async def server(self):
            srv = MyTestServer(port=free_port())
            await srv.start()
            yield srv
            await srv.stop()

        def make_connector(self, server, sink):
            plant = parse_plant(PLANT.format(port=server.port))
            points = [Point(i, t.path, t.tag, t.source) for i, t in enumerate(plant.tags, 1)]
            return MyConnector("dev", plant.devices["dev"].config, points, sink)

        async def set_value(self, server, value):
            await server.write("first-point-address", value)

The suite checks: ``start`` returns at once and the connector connects; every batch has the sample schema
(``samples.SAMPLE_SCHEMA``: ``tag_id`` uint32, ``ts`` timestamp[us, UTC], ``value`` float64, ``quality`` uint8,
``text`` string; a legacy four-column shape, ``value`` float64 or string, is still accepted: the runtime
conforms it at ingest) and only the connector's tag ids; a value set on the server arrives, good; when the
server goes away every point is marked bad and the device is not reported connected; when it comes back the
connector reconnects by itself and values flow again; a server that is down at start is no error (points bad,
connected once it is up); ``stop`` is clean: the device reads stopped and every task started since ``start``
has ended.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from plantlink.connectors.base import Connector, DeviceState
from plantlink.samples import SAMPLE_SCHEMA, Quality, conform, values_of
from plantlink.testing.waiting import TIMEOUT, wait_until

LEGACY_NAMES = ["tag_id", "ts", "value", "quality"]


class Collector:
    """A batch sink that keeps every batch."""

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []

    def __call__(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def rows(self) -> list[tuple[int, int, Any, int]]:
        """(tag_id, ts_us, value, quality) of every sample so far, in arrival order."""
        out: list[tuple[int, int, Any, int]] = []
        for b in map(conform, self.batches):
            out.extend(zip(b.column("tag_id").to_pylist(), b.column("ts").cast(pa.int64()).to_pylist(),
                           values_of(b), b.column("quality").to_pylist(), strict=True))
        return out

    def latest(self) -> dict[int, tuple[Any, int]]:
        """tag_id -> (value, quality) of its last sample."""
        return {tid: (v, q) for tid, _, v, q in self.rows()}


class ConnectorContract:
    """The connector suite. Provide the ``server`` fixture, ``make_connector`` and ``set_value``."""

    def make_connector(self, server: Any, sink: Callable[[pa.RecordBatch], None]) -> Connector:
        """A connector (not started) for ``server``, delivering into ``sink``; its first point is the one
        ``set_value`` changes."""
        raise NotImplementedError("a ConnectorContract subclass implements make_connector(server, sink)")

    async def set_value(self, server: Any, value: int) -> None:
        """Make the first point's value on ``server`` ``value`` (a small integer)."""
        raise NotImplementedError("a ConnectorContract subclass implements set_value(server, value)")

    # -- helpers ----------------------------------------------------------------------------------------------
    async def started(self, server: Any) -> tuple[Connector, Collector]:
        sink = Collector()
        conn = self.make_connector(server, sink)
        assert conn.points, "make_connector must give the connector at least one point"
        t0 = time.monotonic()
        await conn.start()
        assert time.monotonic() - t0 < 5, "start() must return at once, not wait for the device"
        return conn, sink

    @staticmethod
    def first(conn: Connector) -> int:
        return conn.points[0].tag_id

    async def reads(self, conn: Connector, sink: Collector, server: Any, value: int) -> None:
        """Set ``value`` on the server and wait until the first point reads it, good."""
        await self.set_value(server, value)
        await wait_until(lambda: sink.latest().get(self.first(conn)) == (float(value), Quality.GOOD),
                         f"the first point reads {value}, good")

    async def all_bad(self, conn: Connector, sink: Collector) -> None:
        ids = {p.tag_id for p in conn.points}
        await wait_until(lambda: {t: q for t, (_, q) in sink.latest().items() if t in ids} == dict.fromkeys(
            ids, Quality.BAD), "every point marked bad")
        await wait_until(lambda: conn.health.state != DeviceState.CONNECTED, "the device not reported connected")

    # -- the contract -----------------------------------------------------------------------------------------
    @pytest.mark.asyncio
    async def test_connects_and_batches_have_the_sample_schema(self, server: Any) -> None:
        conn, sink = await self.started(server)
        try:
            await wait_until(lambda: conn.health.state == DeviceState.CONNECTED, "connected")
            ids = {p.tag_id for p in conn.points}
            await wait_until(lambda: ids <= set(sink.latest()), "a sample of every point")
        finally:
            await conn.stop()
        for b in sink.batches:
            assert b.schema.names in (SAMPLE_SCHEMA.names, LEGACY_NAMES)
            assert conform(b).schema.equals(SAMPLE_SCHEMA)  # raises naming a column of the wrong type
            assert set(b.column("tag_id").to_pylist()) <= ids
        assert conn.health.samples == sum(b.num_rows for b in sink.batches)
        now_us = time.time() * 1e6
        assert all(0 < ts <= now_us + 60e6 for _, ts, _, _ in sink.rows())

    @pytest.mark.asyncio
    async def test_a_value_set_on_the_server_arrives_good(self, server: Any) -> None:
        conn, sink = await self.started(server)
        try:
            await self.reads(conn, sink, server, 42)
            await self.reads(conn, sink, server, 43)
        finally:
            await conn.stop()

    @pytest.mark.asyncio
    async def test_server_gone_marks_points_bad_and_reconnects_when_back(self, server: Any) -> None:
        conn, sink = await self.started(server)
        try:
            await self.reads(conn, sink, server, 11)
            await server.stop()
            await self.all_bad(conn, sink)
            assert conn.health.last_error, "the reason the device is not connected"
            await server.start()
            await wait_until(lambda: conn.health.state == DeviceState.CONNECTED, "reconnected")
            await self.reads(conn, sink, server, 12)
            assert conn.health.reconnects >= 1
        finally:
            await conn.stop()

    @pytest.mark.asyncio
    async def test_a_server_down_at_start_is_no_error(self, server: Any) -> None:
        await server.stop()
        conn, sink = await self.started(server)
        try:
            await self.all_bad(conn, sink)
            await server.start()
            await self.reads(conn, sink, server, 5)
            # a connector may deliver its first values while it still sets up (OPC UA: the subscription's
            # initial values arrive before it reports connected): connected follows, it need not precede
            await wait_until(lambda: conn.health.state == DeviceState.CONNECTED, "reported connected")
        finally:
            await conn.stop()

    @pytest.mark.asyncio
    async def test_stop_is_clean(self, server: Any) -> None:
        before = asyncio.all_tasks()
        conn, sink = await self.started(server)
        await self.reads(conn, sink, server, 3)
        await asyncio.wait_for(conn.stop(), TIMEOUT)
        assert conn.health.state == DeviceState.STOPPED
        me = asyncio.current_task()
        await wait_until(lambda: not asyncio.all_tasks() - before - {me}, "every task started since start() ended")
        n = len(sink.batches)
        await self.set_value(server, 4)
        await asyncio.sleep(0)
        assert len(sink.batches) == n, "a batch after stop()"

"""A network that goes silent between a polling connector and its server (no reset, no answer: a cable pulled),
through ``CutProxy.freeze``: shared by the connectors' tests."""

from __future__ import annotations

from collections.abc import Callable

from plantlink.connectors.base import Connector, DeviceState
from plantlink.samples import Quality
from tests.conftest import _free_port
from tests.connectors.modbus_cases import Collector
from tests.connectors.mosquitto import CutProxy
from tests.waiting import wait_for

Values = Callable[[Connector, Collector], dict[str, tuple[object, int]]]


async def silent_network_recovers(target: int, connect: Callable[[int, Collector], Connector], values: Values,
                                  tag: str, before: float, change: Callable[[], float]) -> None:
    """``connect(port, sink)`` through a proxy to ``target``: ``tag`` reads ``before``; the network goes silent:
    every point BAD, the device not connected; ``change()`` sets a new value on the server (and returns it); the
    network is back: the new value arrives good after a reconnect."""
    proxy = CutProxy(_free_port(), target)
    await proxy.start()
    sink = Collector()
    conn = connect(proxy.port, sink)
    await conn.start()
    try:
        await wait_for(lambda: values(conn, sink).get(tag) == (before, Quality.GOOD))
        proxy.freeze()
        await wait_for(lambda: all(q == Quality.BAD for _, q in values(conn, sink).values()), what="all BAD")
        assert conn.health.state in (DeviceState.RECONNECTING, DeviceState.DOWN)
        after = change()
        proxy.thaw()
        await wait_for(lambda: values(conn, sink).get(tag) == (after, Quality.GOOD), what="back after the outage")
        assert conn.health.state == DeviceState.CONNECTED and conn.health.reconnects >= 1
    finally:
        await conn.stop()
        await proxy.stop()

"""Both publishers (UNS and the Sparkplug edge node) of a running plantlink over TLS, ``mqtts://`` with the CA,
against a real Mosquitto with a TLS listener (certificates made at test time); a subscriber on the broker's plain
listener sees what they published. A wrong CA: nothing published, and the publisher's status says why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, numeric_batch
from tests.connectors.mosquitto import MosquittoServer, mosquitto
from tests.plants import plant_yaml
from tests.publish.subscriber import Subscriber
from tests.waiting import wait_for

PLANT = plant_yaml(
    enterprise="Acme", site="windsor", timezone="UTC", area="press",
    devices="plc: {protocol: mqtt, host: 127.0.0.1, enabled: false}",
    machines="""
    - name: p1
      tags:
        - {name: temp, unit: degC, source: {device: plc, topic: x/temp}}
    """)
T0_US = 1_795_000_000_000_000


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker", tls=True) as srv:
        yield srv


def publish_section(srv: MosquittoServer, ca: Path) -> str:
    return (f"publish:\n  mqtt: mqtts://127.0.0.1:{srv.tls_port}\n  tls: {{ca_file: {ca}}}\n  reconnect_min: 50ms\n"
            "  reconnect_max: 200ms\n  uns: {root: uns}\n  sparkplug: {group: Windsor, node: plantlink}\n")


async def test_both_publishers_publish_over_tls(broker: MosquittoServer, tmp_path: Path) -> None:
    assert broker.pki is not None
    sub = Subscriber(broker.port, "#")
    rt = Runtime(parse_plant(PLANT + publish_section(broker, broker.pki.ca)), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        await wait_for(lambda: all(p.status()["connected"] for p in rt.publishers), what="both publishers connected")
        rt.ingest(numeric_batch([rt.tag_ids["windsor/press/l1/p1/temp"]], T0_US, [181.5], Quality.GOOD))
        await wait_for(lambda: (sub.json("uns/Acme/windsor/press/l1/p1/temp") or {}).get("value") == 181.5,
                       what="the UNS value")
        await wait_for(lambda: "spBv1.0/Windsor/NBIRTH/plantlink" in sub.messages, what="the Sparkplug birth")
        statuses = [p.status() for p in rt.publishers]
        assert len(statuses) == 2 and all(s["tls"] and s["broker"] == f"127.0.0.1:{broker.tls_port}"
                                          for s in statuses)
    finally:
        await rt.stop()
        sub.close()


async def test_a_wrong_ca_publishes_nothing_and_says_why(broker: MosquittoServer, tmp_path: Path) -> None:
    assert broker.pki is not None
    sub = Subscriber(broker.port, "#")
    rt = Runtime(parse_plant(PLANT + publish_section(broker, broker.pki.other_ca)), tmp_path / "data")
    await rt.start()
    try:
        await wait_for(lambda: all(p.status()["last_error"] for p in rt.publishers), what="both publishers' errors")
        for p in rt.publishers:
            error = p.status()["last_error"]
            assert not p.status()["connected"] and "certificate verify failed" in error and "tls.ca_file" in error
        assert not any(t.startswith(("uns/", "spBv1.0/")) for t in sub.messages)
    finally:
        await rt.stop()
        sub.close()

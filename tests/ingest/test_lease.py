"""Site leases in JetStream's key-value store: one owner at a time, handed over when the owner stops renewing."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest

from plantlink.ingest.lease import Leases, open_bucket
from tests.ingest.natsserver import NatsServer
from tests.waiting import wait_for

pytestmark = pytest.mark.service

TTL = 1.5


async def test_one_owner_at_a_time_and_the_lease_moves_when_the_owner_dies(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    kv = await open_bucket(nc.jetstream(), TTL)
    events: list[tuple[str, str]] = []

    def hooks(who: str) -> dict[str, object]:
        async def acquire(site: str) -> None:
            events.append((who, f"+{site}"))

        async def release(site: str) -> None:
            events.append((who, f"-{site}"))

        return {"on_acquire": acquire, "on_release": release}

    a, b = Leases(kv, "a", TTL, **hooks("a")), Leases(kv, "b", TTL, **hooks("b"))  # type: ignore[arg-type]
    try:
        assert await a.try_acquire("s1")
        assert not await b.try_acquire("s1")
        # a's lease lapses locally (as when NATS was away for ttl/2) while its key is still there: a takes it back
        a.held["s1"] = (a.held["s1"][0], time.monotonic() - TTL)
        await a.expire_stale()
        assert not a.valid("s1")
        assert await a.try_acquire("s1") and a.valid("s1")
        assert not await b.try_acquire("s1")
        # a renews for two lease lifetimes; b keeps trying all along and never gets it
        until = time.monotonic() + 2 * TTL
        while time.monotonic() < until:
            await a.renew()
            assert not await b.try_acquire("s1")
            assert a.valid("s1")
            await asyncio.sleep(TTL / 8)
        assert (await b.owners(["s1"])) == {"s1": "a"}
        # a dies (stops renewing): b gets the site once a's key expired; a had stopped acting for it before
        last_renewal = a.held["s1"][1]
        await wait_for(lambda: b.try_acquire("s1"), timeout=4 * TTL, step=0.1, what="b takes the site")
        taken = time.monotonic()
        assert taken - last_renewal >= TTL / 2
        assert not a.valid("s1")
        await a.expire_stale()
        await a.renew()
        assert (await b.owners(["s1"])) == {"s1": "b"}
        assert events == [("a", "+s1"), ("a", "-s1"), ("a", "+s1"), ("b", "+s1"), ("a", "-s1")]
        # a clean stop hands the site over at once
        await b.release_all()
        assert await a.try_acquire("s1")
    finally:
        await nc.close()

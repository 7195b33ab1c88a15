"""Per-site leases in a JetStream key-value bucket: which worker owns a site (ingests it; hooks for its engines).

Bucket ``plantlink_leases`` (``ttl`` seconds: a key not written for that long expires), one key per site
(``site-<site>``) holding the owner's name, and one per live worker (``worker-<name>``, rewritten with the renewals:
how workers count each other). A worker takes a free site with ``create`` (only if the key does not exist) and keeps
it by rewriting the key every ``ttl / 4`` with ``update(last=revision)``: a compare-and-set on the revision it
wrote, which fails if anyone else wrote the key meanwhile. A worker that dies stops rewriting; its key expires
``ttl`` after its last renewal and the next worker that tries creates it. A clean stop deletes the keys at once. A
worker whose leases lapsed locally (NATS away for more than ``ttl / 2``) takes back at once a key that still names
it. Worker names must be unique (the default is the host name and process id).

Fencing by time: a worker acts for a site only while its last successful renewal is less than ``ttl / 2`` old
(:meth:`Leases.valid`). Nobody else can create the key before ``ttl`` after that renewal, so two workers never
act for a site at once as long as one step of work (a fetch and its storing) takes less than ``ttl / 2``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from plantlink.ingest.stream import token

log = logging.getLogger("plantlink.ingest.lease")

BUCKET = "plantlink_leases"
Hook = Callable[[str], Awaitable[None]]


def site_key(site: str) -> str:
    return f"site-{token(site)}"


def worker_key(owner: str) -> str:
    return f"worker-{token(owner)}"


async def _noop(_site: str) -> None:
    return None


async def open_bucket(js: Any, ttl: float) -> Any:
    """The lease bucket (created with ``ttl`` if missing; an existing bucket keeps its own ttl)."""
    from nats.js.errors import BucketNotFoundError, NotFoundError

    try:
        return await js.key_value(BUCKET)
    except (BucketNotFoundError, NotFoundError):
        return await js.create_key_value(bucket=BUCKET, ttl=ttl, history=1)


async def bucket_ttl(js: Any) -> float:
    info = await js.stream_info(f"KV_{BUCKET}")
    return float(info.config.max_age or 0.0)


class Leases:
    """The sites this worker owns. ``on_acquire(site)`` runs when it takes one, ``on_release(site)`` when it
    loses or gives one up (the hooks for the engines of the site)."""

    def __init__(self, kv: Any, owner: str, ttl: float, on_acquire: Hook = _noop, on_release: Hook = _noop,
                 on_lost: Hook | None = None):
        self.kv, self.owner, self.ttl = kv, owner, ttl
        self.on_acquire, self.on_release = on_acquire, on_release
        #: a lease lost (lapsed, or another worker wrote it): ``on_release`` unless given
        self.on_lost = on_lost or on_release
        self.held: dict[str, tuple[int, float]] = {}  # site -> (revision, monotonic time of the last renewal)
        self.acquired = 0
        self.lost = 0

    def _value(self) -> bytes:
        return json.dumps({"owner": self.owner, "ts": time.time()}).encode()

    async def announce(self) -> None:
        """This worker is alive (its key expires ``ttl`` after the last call): how workers count each other."""
        await self.kv.put(worker_key(self.owner), self._value())

    async def live_workers(self) -> int:
        from nats.js.errors import NoKeysError

        try:
            keys = await self.kv.keys()
        except NoKeysError:
            keys = []
        return max(1, sum(1 for k in keys if k.startswith("worker-")))

    def valid(self, site: str) -> bool:
        got = self.held.get(site)
        return got is not None and time.monotonic() - got[1] < self.ttl / 2

    async def try_acquire(self, site: str) -> bool:
        from nats.js.errors import KeyWrongLastSequenceError

        if site in self.held:
            return True
        now = time.monotonic()
        try:
            rev = await self.kv.create(site_key(site), self._value())
        except KeyWrongLastSequenceError:
            got = await self._reclaim(site)
            if got is None:
                return False  # owned by someone else
            rev = got
        self.held[site] = (rev, now)
        self.acquired += 1
        log.info("ingest %s: took the lease of site %s", self.owner, site)
        await self.on_acquire(site)
        return True

    async def _reclaim(self, site: str) -> int | None:
        """The key is still this worker's own (it lapsed locally while NATS was away, the key did not expire):
        take it back at once (compare-and-set on the revision read) instead of waiting for the expiry."""
        from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

        try:
            entry = await self.kv.get(site_key(site))
            if json.loads(entry.value or b"{}").get("owner") != self.owner:
                return None
            return int(await self.kv.update(site_key(site), self._value(), last=entry.revision))
        except (KeyNotFoundError, KeyDeletedError, KeyWrongLastSequenceError, ValueError):
            return None

    async def renew(self) -> None:
        """Rewrite every held key (compare-and-set on its revision); a site whose write fails is lost."""
        from nats.js.errors import KeyWrongLastSequenceError

        for site, (rev, _at) in list(self.held.items()):
            now = time.monotonic()
            try:
                new = await self.kv.update(site_key(site), self._value(), last=rev)
            except KeyWrongLastSequenceError:
                await self._lose(site, "another worker owns it now")
                continue
            self.held[site] = (new, now)

    async def expire_stale(self) -> None:
        """Give up (locally) the sites not renewed within ``ttl / 2``: NATS was unreachable too long."""
        for site in list(self.held):
            if not self.valid(site):
                await self._lose(site, "not renewed in time")

    async def _lose(self, site: str, why: str) -> None:
        self.held.pop(site, None)
        self.lost += 1
        log.warning("ingest %s: lost the lease of site %s (%s)", self.owner, site, why)
        await self.on_lost(site)

    async def release(self, site: str) -> None:
        """Give one site up now: ``on_release`` (the site's engines close their intervals) while the lease is
        still held, then delete its key (to balance the sites over the workers, or at a clean stop)."""
        got = self.held.get(site)
        if got is None:
            return
        try:
            await self.on_release(site)
        finally:
            got = self.held.pop(site, got)  # renewed meanwhile: its latest revision
        try:
            await self.kv.delete(site_key(site), last=got[0])
        except Exception as exc:  # NATS gone, or the key moved on: it expires or is someone else's
            log.info("ingest %s: lease of %s not deleted (%s)", self.owner, site, exc)
        log.info("ingest %s: gave up site %s", self.owner, site)

    async def release_all(self) -> None:
        """A clean stop: delete the keys (another worker may take the sites at once)."""
        for site in list(self.held):
            await self.release(site)
        try:
            await self.kv.delete(worker_key(self.owner))
        except Exception as exc:
            log.info("ingest %s: worker key not deleted (%s)", self.owner, exc)

    async def owners(self, sites: list[str]) -> dict[str, str | None]:
        """Who owns each site now, read from the bucket."""
        from nats.js.errors import KeyDeletedError, KeyNotFoundError

        out: dict[str, str | None] = {}
        for site in sites:
            try:
                entry = await self.kv.get(site_key(site))
                out[site] = json.loads(entry.value or b"{}").get("owner")
            except (KeyNotFoundError, KeyDeletedError):
                out[site] = None
        return out

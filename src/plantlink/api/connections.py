"""Connection limits of the web server: slow clients cannot take its descriptors, nor the devices'.

uvicorn waits for a request head as long as a client likes, and accepts as many connections as the process has
file descriptors: a thousand clients that never finish their headers used them all, and then normal requests
timed out and the OPC UA connector could not reconnect. Here the HTTP protocol (uvicorn's, subclassed) is guarded:

* **timeouts**: a request head must arrive within ``header_timeout_s`` of the connection (or of the first byte of
  the next request on a kept-alive connection); a request body must not stall for ``body_idle_timeout_s``; an
  idle kept-alive connection closes after ``keep_alive_s`` (uvicorn's own timer). Under TLS, the handshake must
  end within ``header_timeout_s``.
* **a budget**: at most ``max_connections`` at once (by default the open-file limit less a reserve for the
  devices, the stores and files), at most ``per_address`` from one address (trusted proxies excepted). When the
  budget is full, a new connection closes the oldest connection still waiting for its client (a slow client) of
  the address with the most of them, unless the newcomer's own address holds as many: a client that sends its
  request at once gets in, an address flooding the server competes only with itself. When nothing waits (every
  connection is busy with a request) the new one is refused (503).
* the process's **open-file limit** is raised to its hard limit at start (``raise_open_file_limit``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import resource
import ssl
import time
from asyncio import sslproto
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config

from plantlink.errors import PlantlinkError

log = logging.getLogger(__name__)
REPORT_EVERY_S = 60.0
PRUNE_EVERY_S = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    """How long the server waits for clients and how many connections it holds (see the module's text)."""

    header_timeout_s: float = 10.0
    body_idle_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    per_address: int = 128
    #: None: ``min(max_default, open-file limit - fd_reserve - 2 per device - 2 x backlog)``
    max_connections: int | None = None
    max_default: int = 4096
    #: descriptors kept out of the web server's budget: device connections, stores, logs, the event loop
    fd_reserve: int = 256
    #: a refused connection (over the address's share, server full) is answered after this long, so that a
    #: client reconnecting at once costs little; at most ``Budget.tarpit`` wait like this, others are closed
    refusal_delay_s: float = 1.0


@dataclass(frozen=True)
class Budget:
    max_connections: int
    backlog: int
    open_files: int
    #: refused connections held for ``refusal_delay_s`` at most
    tarpit: int


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard one when it is lower (allowed to every process); returns the
    (soft, hard) limits in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log.info("open-file limit raised from %d to %d", soft, hard)
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def budget(limits: ConnectionLimits, open_files: int, devices: int = 0) -> Budget:
    """The web server's share of ``open_files`` descriptors: what is left after the reserve (and the ``2 x
    backlog`` connections the event loop may accept before the guard sees them)."""
    free = open_files - limits.fd_reserve - 2 * devices
    backlog = max(16, min(2048, free // 8))
    usable = free - 2 * backlog
    tarpit = usable // 9
    most = usable - tarpit
    if most < 16:
        raise PlantlinkError(f"the open-file limit ({open_files}) leaves too few descriptors for the web server "
                             f"after the reserve of {limits.fd_reserve + 2 * devices}; raise it (ulimit -n)")
    most = min(most, limits.max_default if limits.max_connections is None else limits.max_connections)
    return Budget(most, backlog, open_files, min(tarpit, max(16, most // 8)))


class TrustedProxies:
    """Addresses and networks (``10.0.0.5``, ``10.1.0.0/16``) whose ``X-Forwarded-For`` is believed."""

    def __init__(self, entries: Iterable[str] = ()):
        self.entries = tuple(e.strip() for e in entries if e.strip())
        self._nets = []
        for entry in self.entries:
            try:
                self._nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise PlantlinkError(f"trusted proxy {entry!r} is not an IP address or network "
                                     "(e.g. 10.0.0.5 or 10.1.0.0/16)") from None

    def __bool__(self) -> bool:
        return bool(self._nets)

    def __contains__(self, address: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        return any(ip in net for net in self._nets)


def _canned(status: int, reason: str, code: str, message: str, retry_after: int | None = None) -> bytes:
    body = json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()
    extra = f"retry-after: {retry_after}\r\n" if retry_after is not None else ""
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"{extra}connection: close\r\n\r\n")
    return head.encode() + body


TIMEOUT_408 = _canned(408, "Request Timeout", "timeout", "the request did not arrive in time")


class ConnectionGuard:
    """The connections of one server: counted per address and in all, the waiting ones evictable, oldest first."""

    def __init__(self, limits: ConnectionLimits, max_connections: int, trusted: TrustedProxies,
                 tarpit: int = 16):
        self.limits, self.max_connections, self.trusted, self.tarpit = limits, max_connections, trusted, tarpit
        self._held = 0  # refused connections waiting for their answer
        self._conns: dict[asyncio.BaseTransport, str] = {}
        self._by_address: dict[str, set[asyncio.BaseTransport]] = {}
        #: per address, the connections waiting for their client (handshake, request head, next request), oldest
        #: first, with how to close each
        self._waiting: dict[str, dict[asyncio.BaseTransport, Callable[[], None]]] = {}
        self.stats: Counter[str] = Counter()
        self._reported: Counter[str] = Counter()
        self._report_at = time.monotonic() + REPORT_EVERY_S
        self._pruned_at = 0.0

    def __len__(self) -> int:
        return len(self._conns)

    @property
    def waiting_count(self) -> int:
        return sum(len(w) for w in self._waiting.values())

    def admit(self, transport: asyncio.BaseTransport) -> bytes | None:
        """Count a new connection; or the answer to send before closing it (None: admitted)."""
        address = _address(transport)
        if address not in self.trusted:
            mine = self._by_address.get(address)
            if mine is not None and len(mine) >= self.limits.per_address:
                self._prune(list(mine))
                if len(mine) >= self.limits.per_address:
                    return self._refuse("refused_per_address", _canned(
                        429, "Too Many Requests", "too_many_connections",
                        f"too many connections from {address} (at most {self.limits.per_address})", 5))
        if len(self._conns) >= self.max_connections:
            now = time.monotonic()
            if now - self._pruned_at >= PRUNE_EVERY_S:
                self._pruned_at = now
                self._prune(list(self._conns))
            if len(self._conns) >= self.max_connections and not self._evict_for(address):
                return self._refuse("refused_full", _canned(
                    503, "Service Unavailable", "server_full", "the server is at its connection limit", 1))
        self._conns[transport] = address
        self._by_address.setdefault(address, set()).add(transport)
        self.stats["accepted"] += 1
        return None

    def waiting(self, transport: asyncio.BaseTransport | None, close: Callable[[], None] | None) -> None:
        """Mark a connection as waiting for its client (evictable, newest last) or, with None, as busy."""
        if transport is None:
            return
        address = self._conns.get(transport)
        if address is None:
            return
        mine = self._waiting.setdefault(address, {})
        mine.pop(transport, None)
        if close is not None:
            mine[transport] = close
        elif not mine:
            del self._waiting[address]

    def release(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is None:
            return
        address = self._conns.pop(transport, None)
        if address is not None:
            waiting = self._waiting.get(address)
            if waiting is not None:
                waiting.pop(transport, None)
                if not waiting:
                    del self._waiting[address]
            mine = self._by_address.get(address)
            if mine is not None:
                mine.discard(transport)
                if not mine:
                    del self._by_address[address]

    def refuse_later(self, transport: asyncio.Transport, answer: bytes | None) -> None:
        """Answer a refused connection after ``refusal_delay_s`` (reading paused meanwhile), or at once when
        ``tarpit`` refused connections wait already; then close it (``answer`` None: abort, e.g. before TLS)."""
        def finish() -> None:
            self._held -= 1
            _answer(transport, answer)

        if self.limits.refusal_delay_s <= 0 or self._held >= self.tarpit or transport.is_closing():
            _answer(transport, answer)
            return
        self._held += 1
        transport.pause_reading()
        asyncio.get_running_loop().call_later(self.limits.refusal_delay_s, finish)

    def count(self, what: str) -> None:
        self.stats[what] += 1
        self._report()

    def _evict_for(self, newcomer: str) -> bool:
        """Make room for a connection from ``newcomer``: close the oldest waiting connection of the address that
        has the most waiting, unless the newcomer's address would then hold as many (an address flooding the
        server only ever competes with itself: it is refused, nobody else is closed). A trusted proxy speaks for
        many clients: it counts as a light address."""
        if not self._waiting:
            return False
        heaviest = max(self._waiting, key=lambda a: len(self._waiting[a]))
        held = 0 if newcomer in self.trusted else len(self._by_address.get(newcomer, ()))
        if held + 1 > len(self._waiting[heaviest]):
            return False
        transport, close = next(iter(self._waiting[heaviest].items()))
        self.release(transport)
        if not transport.is_closing():
            close()
            self.count("evicted")
        return True

    def _prune(self, transports: Sequence[asyncio.BaseTransport]) -> None:
        """Forget connections already closed whose protocol no longer tells (a WebSocket took it over)."""
        for t in transports:
            if t.is_closing():
                self.release(t)

    def _refuse(self, what: str, answer: bytes) -> bytes:
        self.count(what)
        return answer

    def _report(self) -> None:
        now = time.monotonic()
        if now < self._report_at:
            return
        self._report_at = now + REPORT_EVERY_S
        news = {k: v - self._reported[k] for k, v in self.stats.items() if k != "accepted" and v > self._reported[k]}
        self._reported = Counter(self.stats)
        if news:
            log.warning("web server connections in the last minute: %s (%d open, at most %d)",
                        ", ".join(f"{k} {v}" for k, v in sorted(news.items())), len(self._conns), self.max_connections)


def _answer(transport: asyncio.Transport, answer: bytes | None) -> None:
    if transport.is_closing():
        return
    if answer is None:
        transport.abort()
    else:
        transport.write(answer)
        transport.close()


def _address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple | list) and peer:
        return str(peer[0])
    return "local"


class _Guarded:
    """Mixin over uvicorn's HTTP protocols (httptools or h11): admission, timeouts, waiting/busy marks."""

    guard: ConnectionGuard
    limits: ConnectionLimits
    # from uvicorn's protocol
    transport: asyncio.Transport
    cycle: Any
    flow: Any
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        #: the TCP transport the guard counts (set by the TLS wrapper, which owns it, before connection_made)
        self.raw: asyncio.BaseTransport | None = None
        self._owns_raw = False
        self._refused = False
        self._upgraded = False
        self._timer: asyncio.TimerHandle | None = None
        self._seen_cycle: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if self.raw is None:
            refusal = self.guard.admit(transport)
            if refusal is not None:
                self._refused = True
                self.guard.refuse_later(transport, refusal)
                return
            self.raw, self._owns_raw = transport, True
        self._waiting_for_head()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)  # type: ignore[misc]
        if self._upgraded or self.transport.is_closing():
            self._disarm()
            return
        cycle = self.cycle
        if cycle is not self._seen_cycle:  # a request head arrived
            self._seen_cycle = cycle
            self._disarm()
            self.guard.waiting(self.raw, None)
        if cycle is None or cycle.response_complete:  # (the rest of) a head is awaited
            if self._timer is None:
                self._waiting_for_head()
        elif cycle.more_body and not self.flow.read_paused:  # a body is arriving: it must not stall
            self._arm(self.limits.body_idle_timeout_s, "body")
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():  # kept alive: idle until the next request (uvicorn's timer)
            self.guard.waiting(self.raw, self.transport.close)

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self._upgraded = True
        self._disarm()
        self.guard.waiting(self.raw, None)
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._owns_raw:
            self.guard.release(self.raw)
        super().connection_lost(exc)  # type: ignore[misc]

    def _waiting_for_head(self) -> None:
        self._arm(self.limits.header_timeout_s, "head")
        self.guard.waiting(self.raw, self.transport.close)

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expired, what)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, what: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        self.guard.count(f"timeout_{what}")
        if what == "head":
            self.transport.write(TIMEOUT_408)
        self.transport.close()


class _TlsGuard(sslproto.SSLProtocol):
    """TLS in front of a guarded HTTP protocol: counts the TCP connection from its first moment (the handshake
    included, which must end within the header timeout)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: _Guarded, context: ssl.SSLContext,
                 guard: ConnectionGuard, timeout: float):
        super().__init__(loop, app, context, None, server_side=True,  # type: ignore[arg-type]
                         ssl_handshake_timeout=timeout)  # type: ignore[arg-type]
        self._guarded_app, self._guard = app, guard
        self._raw: asyncio.BaseTransport | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._guard.admit(transport) is not None:  # no HTTP answer before TLS: just close (later)
            self._refused = True
            self._guard.refuse_later(transport, None)  # type: ignore[arg-type]
            return
        super().connection_made(transport)
        self._raw = self._guarded_app.raw = transport
        self._guard.waiting(transport, transport.abort)  # type: ignore[attr-defined]

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.release(self._raw)
        if not self._refused:  # (a refused one never started TLS)
            super().connection_lost(exc)


def guarded_protocol(guard: ConnectionGuard, context: ssl.SSLContext | None) -> Callable[..., Any]:
    """The ``http`` protocol factory for ``uvicorn.Config``: uvicorn's own protocol, guarded (and with TLS)."""
    try:
        import httptools  # noqa: F401
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # uvicorn without its [standard] extras
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]
    cls = type("GuardedHttpProtocol", (_Guarded, Base), {"guard": guard, "limits": guard.limits})

    def factory(*, config: Config, server_state: Any, app_state: dict[str, Any],
                _loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
        proto = cls(config=config, server_state=server_state, app_state=app_state, _loop=_loop)
        if context is None:
            return proto  # type: ignore[no-any-return]
        return _TlsGuard(proto.loop, proto, context, guard, guard.limits.header_timeout_s)  # type: ignore[return-value]

    return factory

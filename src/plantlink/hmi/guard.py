"""The one gate of every HMI socket frame and live refresh: nothing on a page acts unless the session that
built the page is still good, and only the socket of that session may speak for the page.

NiceGUI (3.18) dispatches a socket.io ``event`` by the ``client_id`` it names, whichever socket sent it, and a
socket that knows a page's client id may handshake into it. The guard replaces NiceGUI's handlers:

* ``connect``: the socket's own credential (the session or token the auth middleware found on its request)
  is checked against the store;
* ``handshake``: the socket must carry the credential of the request that built the page (a socket of another
  session is refused, and audited when it is another user's); the page is then watched
  (``plantlink.auth.watch``);
* ``event``: only from a socket that handshook into the page; the page's session is checked against the store
  (logged out, expired, idle, user disabled, roles changed) before the event reaches any handler, in the order
  the events came;
* ``javascript_response``, ``ack``, ``log``: only from a socket of the page;
* live refreshes (``live_timer``) run only while the page is open.

When the session ends, or the user's roles change, the page closes: every handler and refresh stops at once,
its sockets are told to reload (the browser lands on the login page, or on the page rebuilt with the new
roles) and are closed. A refused frame leaves a log line; the first refused event of a page, and every frame
sent for another user's page, an audit record ``hmi.frame_refused``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from plantlink.auth.live import Credential, Ended, credential_of
from plantlink.auth.watch import SessionWatch, Watched
from plantlink.identity import Principal

log = logging.getLogger("plantlink.hmi.guard")

#: the connect error on which NiceGUI's browser code reloads the page (then: login page, or a fresh page)
REFUSED = "Implicit handshake failed"
RELOAD = "window.location.reload()"
_SITE = re.compile(r"/(?:machine|line)/([^/]+)/")

#: For the page whose session ended between its request and its socket's: the auth middleware refuses the
#: socket's request before the guard can (HTTP 401, WebSocket close 4401), and NiceGUI's browser code reloads
#: only on the guard's refusal, so the page would retry for ever, stale. On any other connect error this asks
#: whether the session is still good (at most every 5 s) and reloads when it is not: the browser lands on login.
SESSION_CHECK_JS = """<script>
(() => {
  let last = 0;
  const check = async (err) => {
    if (!err || err.message === "Implicit handshake failed" || err.message === "timeout") return;
    if (Date.now() - last < 5000) return;
    last = Date.now();
    try {
      const r = await fetch("/api/v1/auth/me", {credentials: "same-origin", cache: "no-store"});
      if (r.status === 401) window.location.reload();
    } catch (e) { /* the server is away: socket.io keeps trying */ }
  };
  const hook = () => (window.socket ? window.socket.on("connect_error", check) : setTimeout(hook, 200));
  hook();
})();
</script>"""


@dataclass(eq=False)
class PageSession:
    """An open page: who built it (credential, principal at build time) and whether it was closed."""

    client_id: str
    path: str
    cred: Credential
    principal: Principal
    watched: Watched | None = None
    ended: Ended | None = None
    audited: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


Identity = tuple[Credential, Principal]


def _identity(scope: Any) -> Identity | None:
    return credential_of(scope.get("state")) if isinstance(scope, dict) else None


class PageGuard:
    def __init__(self) -> None:
        self.pages: dict[str, PageSession] = {}
        self.refused = 0
        self._sessions: Callable[[], SessionWatch] | None = None
        self._audit: Callable[[str, str, str | None, str, dict[str, Any]], None] | None = None

    def install(self, sessions: Callable[[], SessionWatch],
                audit: Callable[[str, str, str | None, str, dict[str, Any]], None]) -> None:
        """Put the guard in front of NiceGUI's socket handlers (again for a later app: the new callables)."""
        import nicegui.nicegui as ng

        self._sessions, self._audit = sessions, audit
        sio = ng.sio
        sio.on("connect", self.on_connect)
        sio.on("handshake", self.on_handshake)
        sio.on("event", self.on_event)
        for name, handler in (("javascript_response", ng._on_javascript_response), ("ack", ng._on_ack),
                              ("log", ng._on_log)):
            sio.on(name, self._owned(handler))

    # -- state ------------------------------------------------------------------------------------
    def live(self, client_id: str) -> bool:
        """Whether the page may refresh: handshaken, and its session not ended."""
        page = self.pages.get(client_id)
        return page is not None and page.ended is None

    def forget(self, client_id: str) -> None:
        page = self.pages.pop(client_id, None)
        if page is not None and page.watched is not None:
            page.watched.close()

    def _watch(self) -> SessionWatch:
        assert self._sessions is not None, "the guard is not installed"
        return self._sessions()

    # -- socket.io handlers -------------------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], _auth: Any = None) -> None:
        from socketio.exceptions import ConnectionRefusedError

        ident = _identity(environ.get("asgi.scope"))
        verdict = await self._watch().verify(*ident) if ident is not None else Ended("unauthenticated")
        if isinstance(verdict, Ended):
            log.info("HMI socket refused (%s)", verdict)
            raise ConnectionRefusedError(REFUSED)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items()}
        if query.get("implicit_handshake") == "true" and not await self.on_handshake(sid, query):
            raise ConnectionRefusedError(REFUSED)

    async def on_handshake(self, sid: str, data: Any) -> bool:
        import nicegui.nicegui as ng

        client = _client(data)
        if client is None:
            return False
        page = self.pages.get(client.id) or _new_page(client)
        sock = _identity((ng.sio.get_environ(sid) or {}).get("asgi.scope"))
        if page is None or page.ended is not None or sock is None:
            return False
        if sock[0] != page.cred:
            if sock[0].user != page.cred.user:
                await self._foreign(sid, sock, page, "handshake")
            else:  # the same user with another session (logged in again): the browser reloads the page
                log.info("HMI page %s of %s: a socket of another session of the user refused", page.path,
                         page.cred.user)
            return False
        verdict = await self._watch().verify(page.cred, page.principal)
        if isinstance(verdict, Ended) or dict(verdict.roles) != dict(page.principal.roles):
            self.end(page, verdict if isinstance(verdict, Ended) else Ended("roles_changed"))
            return False
        self._register(client, page)
        return bool(await ng._on_handshake(sid, data))

    async def on_event(self, sid: str, msg: Any) -> None:
        import nicegui.nicegui as ng

        client = _client(msg)
        if client is None:
            return
        page = self.pages.get(client.id)
        if client.id not in ng.sio.rooms(sid):
            await self._foreign(sid, _identity((ng.sio.get_environ(sid) or {}).get("asgi.scope")), page, "event",
                                msg)
            return
        if page is None:
            log.warning("HMI event refused: page %s was not opened through the guard", client.id)
            return
        async with page.lock:  # one event at a time per page, in the order they came
            if page.ended is None:
                verdict = await self._watch().verify(page.cred, page.principal, touch=True)
                if isinstance(verdict, Ended):
                    self.end(page, verdict)
                elif dict(verdict.roles) != dict(page.principal.roles):
                    self.end(page, Ended("roles_changed"))
            if page.ended is not None:
                await self._refused(page, msg)
                return
            ng._on_event(sid, msg)

    def _owned(self, handler: Callable[[str, dict[str, Any]], None]) -> Callable[[str, Any], None]:
        def on(sid: str, msg: Any) -> None:
            import nicegui.nicegui as ng

            client = _client(msg)
            if client is not None and client.id in ng.sio.rooms(sid) and self.live(client.id):
                handler(sid, msg)
        return on

    # -- closing --------------------------------------------------------------------------------------
    def _register(self, client: Any, page: PageSession) -> None:
        if client.id in self.pages:
            return
        self.pages[client.id] = page
        page.watched = self._watch().watch(page.cred, page.principal, on_end=lambda e: self.end(page, e),
                                           on_change=lambda _: self.end(page, Ended("roles_changed")),
                                           what=f"HMI page {page.path}")
        client.on_delete(lambda: self.forget(client.id))

    def end(self, page: PageSession, ended: Ended) -> None:
        """Close a page: nothing on it acts from now on; its sockets reload and close."""
        if page.ended is not None:
            return
        page.ended = ended
        if page.watched is None or page.watched.ended is None:  # (the watch logs what it ends)
            log.info("HMI page %s of %s closed: %s", page.path, page.cred.user, ended)
        if page.watched is not None:
            page.watched.close()
        asyncio.get_running_loop().create_task(self._close_page(page), name="hmi-page-close")

    async def _close_page(self, page: PageSession) -> None:
        import nicegui.nicegui as ng

        for sid, _ in list(ng.sio.manager.get_participants("/", page.client_id)):
            await _close_socket(sid, reload=True)

    async def _refused(self, page: PageSession, msg: Any) -> None:
        self.refused += 1
        reason = page.ended.code if page.ended is not None else "?"
        element = _element(page.client_id, msg)
        log.warning("HMI event refused (%s): %s on page %s of %s", reason, element, page.path, page.cred.user)
        if not page.audited:
            page.audited = True
            await self._record(page.cred.user, page.path, {"frame": "event", "reason": reason, "element": element})

    async def _foreign(self, sid: str, sock: Identity | None, page: PageSession | None, frame: str,
                       msg: Any = None) -> None:
        """A socket sent a frame for a page it does not own: refused, audited, and the socket closed."""
        self.refused += 1
        actor = sock[0].user if sock is not None else "anonymous"
        owner = page.cred.user if page is not None else "?"
        path = page.path if page is not None else "?"
        details = {"frame": frame, "reason": "foreign_client", "owner": owner}
        if msg is not None and page is not None:
            details["element"] = _element(page.client_id, msg)
        log.warning("HMI %s refused: a socket of %s sent it for page %s of %s", frame, actor, path, owner)
        await self._record(actor, path, details)
        await _close_socket(sid, reload=False)

    async def _record(self, actor: str, path: str, details: dict[str, Any]) -> None:
        found = _SITE.search(path)
        if self._audit is not None:
            try:
                await asyncio.to_thread(self._audit, "hmi.frame_refused", actor, found.group(1) if found else None,
                                        path, details)
            except Exception:
                log.exception("could not audit a refused HMI frame")


def _client(msg: Any) -> Any:
    from nicegui import Client

    if not isinstance(msg, dict):
        return None
    return Client.instances.get(str(msg.get("client_id")))


def _new_page(client: Any) -> PageSession | None:
    """The page's session from the request that built it (None: a page without one)."""
    try:
        scope = client.request.scope
    except (AttributeError, ValueError, RuntimeError):
        return None
    ident = _identity(scope)
    return PageSession(client.id, str(scope.get("path", "?")), *ident) if ident is not None else None


def _element(client_id: str, msg: Any) -> str:
    """The event's element, named by its test id (or tag) for the log and the audit."""
    from nicegui import Client

    client = Client.instances.get(client_id)
    ref = msg.get("id") if isinstance(msg, dict) else None
    el = client.elements.get(ref) if client is not None and isinstance(ref, int) else None
    if el is None:
        return f"element {ref!r:.20}"
    name = el.props.get("data-testid") or el.tag
    return f"{name} (element {el.id})"


async def _close_socket(sid: str, reload: bool) -> None:
    """Tell the browser to reload (optional), then close the socket and its transport."""
    import nicegui.nicegui as ng

    sio = ng.sio
    with contextlib.suppress(Exception):
        if reload:
            await sio.emit("run_javascript", {"code": RELOAD}, to=sid)
        eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            await asyncio.wait_for(sio.eio.disconnect(eio_sid), 5.0)


GUARD = PageGuard()


def live_timer(interval: float, callback: Callable[[], Awaitable[Any] | Any], *, immediate: bool = True) -> None:
    """``ui.timer`` for a page's live refresh: it runs only while the page is open (its session good); at once
    when the browser connects unless not ``immediate`` (then first after ``interval``).

    While the page is being built, the timer is made when the browser connects: a ``ui.timer`` waits for the
    connection at once, and NiceGUI then answers with the page as built so far and sends the rest over the
    socket after it connects (a second round trip, and the charts' code loaded late). Made at the connection,
    the page's first answer holds everything it shows."""
    from nicegui import context, ui

    client, slot = context.client, context.slot
    client_id = client.id

    async def tick() -> None:
        if not GUARD.live(client_id):
            return
        result = callback()
        if inspect.isawaitable(result):
            await result

    if client.has_socket_connection:
        ui.timer(interval, tick, immediate=immediate)
        return
    made = False

    def make() -> None:
        nonlocal made
        if made or slot.parent.is_deleted:
            return
        made = True
        with slot:
            ui.timer(interval, tick, immediate=immediate)

    client.on_connect(make)

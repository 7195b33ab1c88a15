"""WebSocket /api/v1/stream: live values and state changes (protocol in ``plantlink.api.live``).

The caller's session or token stays under watch while the stream is open (``plantlink.auth.watch``): when it
ends (logout, revoked, expired, user disabled) the stream stops delivering and closes with 4401 and the reason
(``<code>: <sentence>``, codes in ``plantlink.auth.live.REASONS``); when the caller's roles change, what it may
no longer view is unsubscribed (``access_changed``), or the stream closes with 4403 when no site is left. Each
subscribe/unsubscribe is checked against the store first."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from plantlink.api.live import Client, LiveHub
from plantlink.api.security import ws_principal
from plantlink.auth.live import Ended, credential_of
from plantlink.auth.watch import SessionWatch, Watched, sessions_of
from plantlink.errors import SubscriptionError, Unauthenticated
from plantlink.identity import Principal

router = APIRouter()
MAX_MESSAGE = 256 * 1024
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


@router.websocket("/api/v1/stream")
async def live_stream(ws: WebSocket) -> None:
    """Authenticate, then run a sender and a receiver until the client leaves or is dropped."""
    await ws.accept()
    try:
        who = await ws_principal(ws)
    except Unauthenticated as exc:
        await ws.close(CLOSE_UNAUTHENTICATED, exc.message[:120])
        return
    hub: LiveHub = ws.app.state.live
    await hub.start()
    if not hub.services.plant.visible_sites(who):
        await ws.close(CLOSE_FORBIDDEN, "you may view no site")
        return
    found = credential_of(ws.scope.get("state"))
    assert found is not None  # ws_principal found the principal
    client = hub.connect(who)
    watch = sessions_of(ws.app.state)
    watched = watch.watch(found[0], who, on_end=lambda e: client.drop(str(e), CLOSE_UNAUTHENTICATED),
                          on_change=lambda p: _rescope(hub, client, p), what="API stream")
    tasks = [asyncio.create_task(_send(ws, client, hub.send_timeout)),
             asyncio.create_task(_receive(ws, hub, client, watch, watched)), asyncio.create_task(client.gone.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watched.close()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        hub.disconnect(client)
    if client.dropped is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(client.close_code, client.dropped[:120]), 2.0)


def _rescope(hub: LiveHub, client: Client, who: Principal) -> None:
    """The caller's roles changed: keep only what it may view now, or close when it may view no site."""
    if not hub.services.plant.visible_sites(who):
        client.drop("no_site: with the new roles you may view no site", CLOSE_FORBIDDEN)
        return
    client.offer(hub.rescope(client, who))


async def _send(ws: WebSocket, client: Client, timeout: float) -> None:
    while True:
        msg = await client.queue.get()
        try:
            await asyncio.wait_for(ws.send_text(msg), timeout)
        except TimeoutError:
            client.drop(f"a send took longer than {timeout:g} s")
            return
        except Exception:  # the peer went away
            client.drop("connection lost")
            return
        client.sent += 1


async def _receive(ws: WebSocket, hub: LiveHub, client: Client, watch: SessionWatch, watched: Watched) -> None:
    """Each message is answered only after the caller's credential was checked again (a subscription counts
    as the session's activity, a ping does not)."""
    try:
        while True:
            text = await ws.receive_text()
            try:
                kind, body = _parse(text)
            except SubscriptionError as exc:
                replies = [_error(exc)]
            else:
                verdict = await watch.verify(watched.cred, watched.principal, touch=kind != "ping")
                if isinstance(verdict, Ended):
                    watched.end(verdict)
                    return
                watched.apply(verdict)  # roles changed: rescoped before the message is applied
                replies = _handle(hub, client, kind, body)
            for reply in replies:
                if not client.offer(reply):
                    return
    except (WebSocketDisconnect, RuntimeError):
        return


def _parse(text: str) -> tuple[str, Any]:
    if len(text) > MAX_MESSAGE:
        raise SubscriptionError("bad_request", f"messages are limited to {MAX_MESSAGE} bytes")
    try:
        msg: Any = json.loads(text)
    except ValueError:
        raise SubscriptionError("bad_request", "send JSON objects") from None
    if not isinstance(msg, dict) or len(msg) != 1:
        raise SubscriptionError("bad_request", 'send {"subscribe": ...}, {"unsubscribe": ...} or {"ping": ...}')
    (kind, body), = msg.items()
    if kind not in ("ping", "subscribe", "unsubscribe"):
        raise SubscriptionError("bad_request", f"unknown message {kind!r}", kind)
    return kind, body


def _error(exc: SubscriptionError) -> str:
    return json.dumps({"type": "error", "code": exc.code, "message": exc.message, "field": exc.field})


def _handle(hub: LiveHub, client: Client, kind: str, body: Any) -> list[str]:
    if kind == "ping":
        return [json.dumps({"type": "pong", "data": body})]
    try:
        return hub.change(client, body, add=kind == "subscribe")
    except SubscriptionError as exc:
        return [_error(exc)]

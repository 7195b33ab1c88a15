"""WebSocket /api/v1/stream: live values and state changes (protocol in ``plantlink.api.live``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from plantlink.api.errors import ApiError
from plantlink.api.live import CLOSE_TOO_SLOW, Client, LiveHub, SubscriptionError
from plantlink.api.security import ws_principal

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
    except ApiError as exc:
        await ws.close(CLOSE_UNAUTHENTICATED, exc.message[:120])
        return
    hub: LiveHub = ws.app.state.live
    await hub.start()
    from plantlink.api.scope import index

    if not index(hub.runtime).visible_sites(who):
        await ws.close(CLOSE_FORBIDDEN, "you may view no site")
        return
    client = hub.connect(who)
    tasks = [asyncio.create_task(_send(ws, client, hub.send_timeout)), asyncio.create_task(_receive(ws, hub, client)),
             asyncio.create_task(client.gone.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        hub.disconnect(client)
    if client.dropped is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(CLOSE_TOO_SLOW, client.dropped[:120]), 2.0)


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


async def _receive(ws: WebSocket, hub: LiveHub, client: Client) -> None:
    try:
        while True:
            text = await ws.receive_text()
            for reply in _handle(hub, client, text):
                if not client.offer(reply):
                    return
    except (WebSocketDisconnect, RuntimeError):
        return


def _handle(hub: LiveHub, client: Client, text: str) -> list[str]:
    try:
        if len(text) > MAX_MESSAGE:
            raise SubscriptionError("bad_request", f"messages are limited to {MAX_MESSAGE} bytes")
        try:
            msg: Any = json.loads(text)
        except ValueError:
            raise SubscriptionError("bad_request", "send JSON objects") from None
        if not isinstance(msg, dict) or len(msg) != 1:
            raise SubscriptionError("bad_request", 'send {"subscribe": ...}, {"unsubscribe": ...} or {"ping": ...}')
        (kind, body), = msg.items()
        if kind == "ping":
            return [json.dumps({"type": "pong", "data": body})]
        if kind not in ("subscribe", "unsubscribe"):
            raise SubscriptionError("bad_request", f"unknown message {kind!r}", kind)
        return hub.change(client, body, add=kind == "subscribe")
    except SubscriptionError as exc:
        return [exc.to_json()]

"""The WebSocket stream on a real uvicorn server: subscriptions by tag, machine and line, state changes,
site filtering, authentication, and a slow client dropped while a fast one keeps receiving."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from plantlink.api.live import LiveHub
from plantlink.api.server import ServerHandle, serve
from plantlink.runtime import Runtime
from plantlink.samples import concat, now_us, numeric_batch, text_batch
from tests.api.conftest import install_header_auth, principal_header, settle
from tests.waiting import wait_for

M1 = "windsor/a1/l1/m1"
M3 = "detroit/d1/l2/m3"


def ws_url(server: ServerHandle) -> str:
    return f"ws://127.0.0.1:{server.port}/api/v1/stream"


async def connect(server: ServerHandle, spec: str | None = "admin:*=admin", **kw: Any) -> ClientConnection:
    headers = principal_header(spec) if spec else {}
    return await websockets.connect(ws_url(server), additional_headers=headers, **kw)


async def recv(ws: ClientConnection, kind: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """The next message (of ``kind``, skipping snapshots and other kinds)."""
    while True:
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if kind is None or (msg["type"] == kind and not msg.get("snapshot")):
            return msg


async def subscribe(ws: ClientConnection, **spec: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"subscribe": spec}))
    return await recv(ws, "subscribed")


async def test_no_principal_is_closed_4401(server: ServerHandle) -> None:
    ws = await connect(server, None)
    with pytest.raises(websockets.ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4401


async def test_subscribe_by_tag_machine_line(server: ServerHandle, runtime: Runtime) -> None:
    ids = runtime.tag_ids
    async with await connect(server) as by_tag, await connect(server) as by_machine, \
            await connect(server) as by_line:
        ack = await subscribe(by_tag, tags=[f"{M1}/temp", ids[f"{M3}/temp"]])
        assert ack["tags"] == 2
        assert (await subscribe(by_machine, machines=[M1]))["tags"] == 4
        assert (await subscribe(by_line, lines=["windsor/a1/l1"]))["tags"] == 6
        t = now_us()
        every = [i for p, i in ids.items() if not p.endswith("recipe")]
        values = np.arange(len(every), dtype=np.float64) + 0.25
        runtime.bus.publish(numeric_batch(every, t, values, 192))
        expect = dict(zip(every, values.tolist(), strict=True))
        got_tag = (await recv(by_tag, "values"))["values"]
        assert [(v["tag"], v["value"]) for v in got_tag] == [
            (f"{M1}/temp", expect[ids[f"{M1}/temp"]]), (f"{M3}/temp", expect[ids[f"{M3}/temp"]])]
        assert got_tag[0]["quality"] == "good" and got_tag[0]["ts_ms"] == t // 1000
        got_machine = (await recv(by_machine, "values"))["values"]
        assert {v["tag"] for v in got_machine} == {f"{M1}/count", f"{M1}/reject", f"{M1}/temp"}
        got_line = (await recv(by_line, "values"))["values"]
        assert {v["tag"] for v in got_line} == {p for p in ids if p.startswith("windsor/") and "recipe" not in p}
        runtime.bus.publish(text_batch([ids[f"{M1}/recipe"]], t + 1, ["R-7"], 192))
        text = (await recv(by_machine, "values"))["values"]
        assert text == [{"tag": f"{M1}/recipe", "id": ids[f"{M1}/recipe"], "text": "R-7", "quality": "good",
                         "ts": text[0]["ts"], "ts_ms": (t + 1) // 1000}]
        await by_tag.send(json.dumps({"unsubscribe": {"tags": [f"{M1}/temp"]}}))
        assert (await recv(by_tag, "unsubscribed"))["tags"] == 1
        runtime.bus.publish(numeric_batch(every, t + 2, values + 1, 192))
        after = (await recv(by_tag, "values"))["values"]
        assert [v["tag"] for v in after] == [f"{M3}/temp"]


async def test_a_mixed_batch_at_ingest_is_stored_shown_and_streamed(server: ServerHandle, runtime: Runtime) -> None:
    """One batch of numbers and text (the one samples schema) through the runtime (log, bus): the historian
    stores both, the latest values show both, the live stream sends both (a text tag's value as its text)."""
    ids = runtime.tag_ids
    temp, recipe = ids[f"{M1}/temp"], ids[f"{M1}/recipe"]
    async with await connect(server) as ws:
        await subscribe(ws, tags=[f"{M1}/temp", f"{M1}/recipe"])
        t = now_us()
        runtime.ingest(concat([numeric_batch([temp], t, [21.5], 192), text_batch([recipe], t, ["R-9"], 192)]))
        got = (await recv(ws, "values"))["values"]
    assert [(v["tag"], v.get("value"), v.get("text")) for v in got] == [
        (f"{M1}/temp", 21.5, None), (f"{M1}/recipe", None, "R-9")]
    assert "value" not in got[1]
    await settle(runtime)
    want = {"tag_id": [temp, recipe], "value": [21.5, None], "text": [None, "R-9"], "quality": [192, 192]}
    for latest in (runtime.latest.table([temp, recipe]), runtime.historian.latest([temp, recipe])):
        assert latest.select(list(want)).to_pydict() == want
    assert runtime.historian.raw(temp, t, t + 1).column("value").to_pylist() == [21.5]
    assert runtime.historian.raw(recipe, t, t + 1).column("value").to_pylist() == ["R-9"]


async def test_ingest_conforms_legacy_batches_and_refuses_others(runtime: Runtime) -> None:
    """A connector that still sends a legacy four-column batch (``value`` float64 or string) keeps working;
    a batch that is no sample batch is refused at ingest, counted, and goes nowhere."""
    ids = runtime.tag_ids
    temp, recipe = ids[f"{M1}/temp"], ids[f"{M1}/recipe"]
    t = now_us()

    def legacy(tag: int, value: pa.Array) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([pa.array([tag], pa.uint32()), pa.array([t], pa.timestamp("us", "UTC")),
                                           value, pa.array([192], pa.uint8())], names=["tag_id", "ts", "value",
                                                                                         "quality"])

    runtime.ingest(legacy(temp, pa.array([3.5])))
    runtime.ingest(legacy(recipe, pa.array(["L-1"])))
    runtime.ingest(legacy(temp, pa.array([7], pa.int64())))  # value int64: no sample batch
    assert runtime.ingest_refused == 1 and runtime.status()["ingest_refused"] == 1
    await wait_for(lambda: runtime.latest.table([temp, recipe]).column("text").to_pylist() == [None, "L-1"])
    await settle(runtime)
    assert runtime.historian.raw(temp, t, t + 1).column("value").to_pylist() == [3.5]
    assert runtime.historian.raw(recipe, t, t + 1).column("value").to_pylist() == ["L-1"]
    assert runtime.status()["historian_status"]["errors"] == 0


async def test_snapshot_on_subscribe_and_errors(server: ServerHandle, runtime: Runtime) -> None:
    t = now_us()
    runtime.bus.publish(numeric_batch([runtime.tag_ids[f"{M1}/temp"]], t, [19.5], 192))
    await settle(runtime)
    async with await connect(server, "ann:windsor=viewer") as ws:
        await ws.send(json.dumps({"subscribe": {"tags": [f"{M1}/temp"]}}))
        assert (await recv(ws))["type"] == "subscribed"
        snap = await recv(ws)
        assert snap["snapshot"] and snap["values"][0]["value"] == 19.5
        await ws.send(json.dumps({"subscribe": {"machines": [M3], "tags": [f"{M1}/count"]}}))
        err = await recv(ws, "error")
        assert err["code"] == "forbidden" and "detroit" in err["message"]
        await ws.send(json.dumps({"subscribe": {"tags": ["windsor/a1/l1/m1/none"]}}))
        err = await recv(ws, "error")
        assert err["code"] == "not_found" and err["field"] == "tags"
        await ws.send("not json")
        assert (await recv(ws, "error"))["code"] == "bad_request"
        await ws.send(json.dumps({"subscribe": {"colours": ["red"]}}))
        assert (await recv(ws, "error"))["code"] == "bad_request"
        await ws.send(json.dumps({"ping": 7}))
        assert await recv(ws, "pong") == {"type": "pong", "data": 7}
        # the refused subscription changed nothing: still only m1/temp
        await ws.send(json.dumps({"subscribe": {}}))
        ack = await recv(ws, "subscribed")
        assert ack["tags"] == 1 and ack["subscriptions"]["tags"] == [f"{M1}/temp"]


async def test_state_messages(server: ServerHandle, runtime: Runtime) -> None:
    st = runtime.tag_ids[f"{M3}/st"]
    async with await connect(server, "dee:detroit=viewer") as all_states, \
            await connect(server, "ann:windsor=viewer") as windsor_only, await connect(server) as one_line:
        await subscribe(all_states, states=True)
        await subscribe(windsor_only, states=True)
        await subscribe(one_line, states=["detroit/d1/l2"])
        t = now_us()
        runtime.bus.publish(numeric_batch([st], t, [4.0], 192))
        for ws in (all_states, one_line):
            msg = await recv(ws, "state")
            assert (msg["machine"], msg["state"], msg["since_ms"], msg["line"]) == (
                M3, "faulted", t // 1000, "detroit/d1/l2")
            assert msg["previous"] == "unknown"
        await windsor_only.send(json.dumps({"ping": 1}))
        assert (await recv(windsor_only, "pong"))["data"] == 1
        other = [m for m in [json.loads(m) for m in _drain(windsor_only)] if m["type"] == "state"]
        assert all(m["site"] == "windsor" for m in other)


def _drain(ws: ClientConnection) -> list[str]:
    out = []
    while True:
        try:
            out.append(str(ws.recv_messages.get(block=False)))  # type: ignore[attr-defined]
        except Exception:
            return out


class RawClient:
    """A WebSocket client that stops reading after the handshake (tiny receive buffer): the slowest peer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, first: str) -> RawClient:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuning of the receive buffer
        sock.connect(("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**15)  # pauses reading at 64 KiB
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      "x-test-principal: slow:*=viewer\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        payload, mask = first.encode(), os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        writer.write(bytes([0x81, 0x80 | 126]) + struct.pack(">H", len(payload)) + mask + masked)
        await writer.drain()
        return cls(reader, writer)

    async def close_frame(self) -> tuple[int, str]:
        """Read everything the server sent until its close frame: (code, reason)."""
        while True:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), 20)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", await self.reader.readexactly(8))[0]
            data = await self.reader.readexactly(n)
            if b0 & 0x0F == 0x8:
                self.writer.close()
                return struct.unpack(">H", data[:2])[0], data[2:].decode()


async def test_slow_client_dropped_fast_one_keeps_receiving(runtime: Runtime) -> None:
    def small_queues(app: Any) -> None:
        install_header_auth(app)
        app.state.live = LiveHub(runtime, client_queue=4, send_timeout=2.0, bus_maxsize=1000)

    server = await serve(runtime, "127.0.0.1", 0, app_hook=small_queues)
    try:
        recipe = f"{M1}/recipe"
        fast = await connect(server)
        slow = await RawClient.open(server.port, json.dumps({"subscribe": {"tags": [recipe]}}))
        await subscribe(fast, tags=[recipe])
        hub: LiveHub = server.app.state.live
        got: list[str] = []

        async def reader() -> None:
            while True:
                msg = await recv(fast, "values", timeout=10)
                got.append(msg["values"][0]["text"][:8])

        reading = asyncio.create_task(reader())
        big = "x" * 64_000
        for i in range(400):
            runtime.bus.publish(text_batch([runtime.tag_ids[recipe]], now_us(), [f"{i:08d}{big}"], 192))
            await asyncio.sleep(0.002)
            if hub.dropped:
                break
        for _ in range(500):
            if hub.dropped:
                break
            await asyncio.sleep(0.01)
        assert hub.dropped == 1 and len(hub.clients) == 1
        runtime.bus.publish(text_batch([runtime.tag_ids[recipe]], now_us(), ["END!END!"], 192))
        for _ in range(500):
            if got and got[-1] == "END!END!":
                break
            await asyncio.sleep(0.01)
        assert got[-1] == "END!END!"
        sent = len(got) - 1
        assert got[:sent] == [f"{i:08d}" for i in range(sent)]  # the fast client missed nothing
        reading.cancel()
        await fast.close()
        assert await slow.close_frame() == (1013, "send queue full: the client reads too slowly")
    finally:
        await server.stop()

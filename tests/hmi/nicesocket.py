"""A NiceGUI page and its socket, driven frame by frame as an attacker would (no browser): fetch a page with a
session cookie, connect the page's socket.io WebSocket (Engine.IO 4) with that cookie, and send ``event``
frames for the page's elements by hand.

    page = HmiPage.open(served.url, cookie, "/hmi/machine/...")     # GET the page: its client id and elements
    sock = page.connect()                                           # the socket, handshaken implicitly
    sock.event(page.find(testid="sp-new", within=tag_path), "update:modelValue", 12)
    sock.event(page.find(testid="stage", within=tag_path), "click")

A reader thread answers the server's pings, keeps every event the server sends (``received``) and folds its
``update`` messages into ``page.elements``; ``sock.closed`` is set when the server closes the socket.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

_ELEMENTS = re.compile(r"parseElements\(String\.raw`(.*?)`\)", re.S)
_CLIENT_ID = re.compile(r"'client_id': '([0-9a-f-]{36})'")


@dataclass
class HmiPage:
    """A page as the server built it: its NiceGUI client id and its elements (id -> element JSON)."""

    base_url: str
    cookie: str = field(repr=False)
    path: str
    client_id: str
    elements: dict[str, dict[str, Any]] = field(repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # the reader thread merges updates

    @classmethod
    def open(cls, base_url: str, cookie: str, path: str) -> HmiPage:
        with httpx.Client(base_url=base_url, timeout=30, cookies={"plantlink_session": cookie}) as c:
            r = c.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        found, client = _ELEMENTS.search(r.text), _CLIENT_ID.search(r.text)
        assert found is not None and client is not None, "not a NiceGUI page"
        return cls(base_url, cookie, path, client.group(1), json.loads(found.group(1)))

    def find(self, within: str | None = None, **props: str) -> str:
        """The id of the one element whose props hold ``props`` (``testid`` means ``data-testid``), optionally
        inside the element whose ``data-setpoint``/``data-tag`` prop is ``within``."""
        found = self.find_all(within, **props)
        assert len(found) == 1, (props, within, found)
        return found[0]

    def find_all(self, within: str | None = None, **props: str) -> list[str]:
        want = {("data-testid" if k == "testid" else k.replace("_", "-")): v for k, v in props.items()}
        with self.lock:
            elements = dict(self.elements)
        scope = _subtree(elements, within) if within is not None else set(elements)
        return sorted((i for i in scope if all(elements[i].get("props", {}).get(k) == v for k, v in want.items())),
                      key=int)

    def listener(self, element_id: str, kind: str) -> str:
        with self.lock:
            events = list(self.elements[element_id].get("events", []))
        for ev in events:
            if ev["type"] == kind:
                return str(ev["listener_id"])
        raise AssertionError(f"element {element_id} has no {kind!r} listener")

    def merge(self, update: dict[str, Any]) -> None:
        """Fold an ``update`` message (elements added or changed by the server) in."""
        with self.lock:
            for i, e in update.items():
                if i.startswith("_"):  # the message id
                    continue
                if e is None:
                    self.elements.pop(i, None)
                else:
                    self.elements[i] = e

    def connect(self, cookie: str | None = None, client_id: str | None = None) -> NiceSocket:
        """Open a socket for this page (by default with the page's own cookie and client id)."""
        return NiceSocket(self, cookie or self.cookie, client_id or self.client_id)


def _subtree(elements: dict[str, dict[str, Any]], marker: str) -> set[str]:
    """The elements inside the one whose ``data-setpoint`` or ``data-tag`` is ``marker``."""
    todo = [i for i, e in elements.items() if marker in (e.get("props", {}).get("data-setpoint"),
                                                         e.get("props", {}).get("data-tag"))]
    out: set[str] = set()
    while todo:
        i = todo.pop()
        if i not in out and i in elements:
            out.add(i)
            todo.extend(str(ch) for ch in elements[i].get("children", []))
    return out


@dataclass
class NiceSocket:
    page: HmiPage = field(repr=False)
    cookie: str = field(repr=False)
    client_id: str
    received: list[tuple[str, list[Any]]] = field(default_factory=list, repr=False)  # (name, args) from the server
    closed: threading.Event = field(default_factory=threading.Event)
    refused: str | None = None
    close_code: int | None = None

    def __post_init__(self) -> None:
        self.tab_id = str(uuid.uuid4())
        query = {"client_id": self.client_id, "next_message_id": 0, "implicit_handshake": "true",
                 "document_id": str(uuid.uuid4()), "tab_id": self.tab_id, "EIO": 4, "transport": "websocket"}
        url = self.page.base_url.replace("http://", "ws://") + "/hmi/_nicegui_ws/socket.io/?" + urlencode(query)
        opening = connect(url, additional_headers={"cookie": f"plantlink_session={self.cookie}"}, open_timeout=20)
        self.ws: ClientConnection = opening.__enter__()  # closed by close() (or by the server)
        opened = self.ws.recv(timeout=20)
        assert isinstance(opened, str) and opened.startswith("0"), opened
        self.ws.send("40")
        self.connected = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True, name="nicesocket")
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                raw = self.ws.recv()
                assert isinstance(raw, str)
                if raw == "2":
                    self.ws.send("3")
                elif raw.startswith("40"):
                    self.connected.set()
                elif raw.startswith("44"):
                    self.refused = raw[2:]
                    self.connected.set()
                elif raw.startswith("41") or raw == "1":
                    break
                elif raw.startswith("42"):
                    name, *args = json.loads(raw[2:])
                    if name == "update":
                        self.page.merge(args[0])
                    self.received.append((name, args))
        except ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd is not None else None
        finally:
            self.closed.set()
            self.connected.set()  # wakes a waiter on a refused socket

    def wait_connected(self, timeout: float = 20.0) -> bool:
        """True when the server accepted the socket (False: refused or closed)."""
        self.connected.wait(timeout)
        return self.refused is None and not self.closed.is_set()

    def event(self, element_id: str, kind: str, *args: Any, page: HmiPage | None = None) -> bool:
        """Send the ``event`` frame a browser sends for ``kind`` on an element of ``page`` (default: this socket's
        page; another page's element is sent with that page's client id). False when the socket is closed."""
        of = page or self.page
        msg = {"id": int(element_id), "client_id": of.client_id,
               "listener_id": of.listener(element_id, kind), "args": [json.dumps(a) for a in args]}
        try:
            self.ws.send("42" + json.dumps(["event", msg]))
        except ConnectionClosed:
            return False
        return True

    def told_to_reload(self) -> bool:
        """Whether the server told the browser to reload the page."""
        return any(name == "run_javascript" and "location.reload()" in str(args) for name, args in self.received)

    def story(self) -> str:
        """What the socket saw, for assertion messages."""
        return f"close code {self.close_code}, refused {self.refused}, events {[n for n, _ in self.received][-8:]}"

    def wait_closed(self, timeout: float) -> float | None:
        """Seconds until the server closed the socket (None: still open after ``timeout``)."""
        t0 = time.monotonic()
        return time.monotonic() - t0 if self.closed.wait(timeout) else None

    def close(self) -> None:
        self.ws.close()
        self.reader.join(5)

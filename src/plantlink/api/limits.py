"""``BodyLimit``: refuse HTTP request bodies larger than a limit (default 1 MiB) with 413 and the JSON envelope.

A pure ASGI middleware. A request that announces a larger ``Content-Length`` is refused before its body is
read (the app never sees it); a body sent without a length (chunked) is counted as the app reads it, and
the first byte over the limit ends the request: whatever the app was about to answer is replaced by the 413.
A ``Content-Length`` that is not a number is refused with 400. WebSocket messages are bounded by the server
(``ws_max_size`` in ``plantlink.api.server``), not here.

    app.add_middleware(BodyLimit)                        # 1 MiB, or PLANTLINK_MAX_BODY_BYTES
    app.add_middleware(BodyLimit, max_bytes=64 * 1024)
"""

from __future__ import annotations

import os

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plantlink.api.errors import envelope

DEFAULT_MAX_BODY = 1024 * 1024
ENV_MAX_BODY = "PLANTLINK_MAX_BODY_BYTES"


def default_max_body() -> int:
    """``PLANTLINK_MAX_BODY_BYTES`` when set (a positive integer), else 1 MiB."""
    text = os.environ.get(ENV_MAX_BODY, "").strip()
    if not text:
        return DEFAULT_MAX_BODY
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{ENV_MAX_BODY} must be a positive number of bytes, got {text!r}")
    return int(text)


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (an HTTPException, so that frameworks
    re-raise it instead of reporting a body parse error)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")


#: Paths whose bodies may be larger: a whole plant model (plan / apply) is read up to the loader's own limit.
LARGER_BODIES: dict[str, int] = {"/api/v1/model/": 16 * 1024 * 1024}


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int | None = None, larger: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = default_max_body() if max_bytes is None else max_bytes
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")
        self.larger = LARGER_BODIES if larger is None else larger

    def _too_large(self) -> tuple[int, str, str]:
        return 413, "too_large", f"the request body is larger than the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        prefix = next((p for p in self.larger if str(scope.get("path", "")).startswith(p)), None)
        if prefix is not None and self.larger[prefix] > self.max_bytes:
            await BodyLimit(self.app, self.larger[prefix], {})(scope, receive, send)
            return
        lengths = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if lengths:
            text = lengths[0].decode("latin-1").strip()
            if len(set(lengths)) > 1 or not text.isdigit():
                await envelope(400, "bad_request", "invalid Content-Length header")(scope, receive, send)
                return
            if int(text) > self.max_bytes:
                await envelope(*self._too_large(), field="body")(scope, receive, send)
                return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen, over, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:  # the app answers after the overflow (e.g. an error page): the 413 replaces it
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await envelope(*self._too_large(), field="body")(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await envelope(*self._too_large(), field="body")(scope, receive, send)

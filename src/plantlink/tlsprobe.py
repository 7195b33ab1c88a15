"""Why a TLS broker ended an MQTT connection that the client libraries report only as a timeout or a lost
connection: under TLS 1.3 a broker that wants a client certificate, or does not trust the one shown, says so in
an alert after the handshake, which aiomqtt and paho log and drop. One more handshake here reads it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from plantlink.model.tls import explain


async def alert(host: str, port: int, ctx: ssl.SSLContext, timeout: float = 2.0) -> str | None:
    """The TLS alert the broker answers a session of ``ctx`` with (``tlsv13 alert certificate required``); None
    when it keeps the session open or cannot be reached (nothing more to say)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx, server_hostname=host),
                                                timeout)
    except ssl.SSLError as exc:
        return str(exc.reason or exc).replace("_", " ").lower()
    except (OSError, TimeoutError):
        return None
    try:
        await asyncio.wait_for(reader.read(1), timeout)
    except ssl.SSLError as exc:
        return str(exc.reason or exc).replace("_", " ").lower()
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    return None


async def connect_error(error: object, host: str, port: int, ctx: ssl.SSLContext | None) -> str:
    """An MQTT client's connection ``error``, with the broker's TLS alert and what to check when TLS is why."""
    text = str(error)
    low = text.lower()
    answered = any(k in low for k in ("[code:", "authori", "password", "ssl"))  # the broker or TLS said why
    if ctx is not None and not answered:
        said = await alert(host, port, ctx)
        if said:
            text = f"{text}: the broker ended the TLS session: {said}"
    return explain(text)

"""``plantlink doctor``'s MQTT check: a TLS handshake first when the broker is ``mqtts://`` (or a device has
``tls:``), told apart from the MQTT session (a certificate that is not trusted, a broker that wants a client
certificate, a port that does not speak TLS), then an MQTT CONNECT and DISCONNECT, which proves the
credentials."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from typing import TYPE_CHECKING

from plantlink.model.tls import client_context, explain

if TYPE_CHECKING:
    from plantlink.doctor import Endpoint, Finding

#: paho's own log lines (``failed to receive on socket: ...``) would be printed under the report: the findings
#: say it, once
_QUIET = logging.getLogger("plantlink.doctor.mqtt")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


async def mqtt_check(ep: Endpoint, timeout: float, ms: float) -> Finding:
    from plantlink.doctor import Finding

    where = f"{ep.host}:{ep.port}"
    ctx, tls_note = None, ""
    if ep.tls is not None:
        try:
            ctx = client_context(ep.tls)
        except ValueError as exc:
            return Finding(ep.check, "fail", f"{where}: {exc}", "correct tls: in the plant model")
        shaken = await _handshake(ep, ctx, timeout)
        if isinstance(shaken, Finding):
            return shaken
        tls_note = shaken
    problem = await _session(ep, ctx, timeout)
    if problem is not None:
        return problem
    user = f" as {ep.username}" if ep.username else ""
    detail = f"{where} accepts MQTT sessions{user}{tls_note} ({ms:.0f} ms to connect)"
    if ep.tls is not None and not ep.tls.verify:
        return Finding(ep.check, "warn", detail, "tls.verify: false accepts any server as the broker: give "
                                                 "tls.ca_file (the CA of the broker's certificate) instead")
    return Finding(ep.check, "ok", detail)


async def _handshake(ep: Endpoint, ctx: ssl.SSLContext, timeout: float) -> str | Finding:
    """`` over TLSv1.3, certificate verified`` or the failure, with its reason."""
    from plantlink.doctor import Finding

    assert ep.tls is not None
    where = f"{ep.host}:{ep.port}"
    name = ep.tls.server_name or ep.host
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port, ssl=ctx,
                                                                   server_hostname=name), timeout)
    except ssl.SSLCertVerificationError as exc:
        return Finding(ep.check, "fail", f"{where}: TLS certificate not accepted: {exc.verify_message}",
                       _fix(exc, "give tls.ca_file: the CA that signed the broker's certificate, and check that "
                                 f"the certificate names {name!r} (or set tls.server_name)"))
    except (ssl.SSLError, ConnectionError) as exc:
        return Finding(ep.check, "fail", f"{where}: TLS handshake failed: {exc}",
                       _fix(exc, "is this port the broker's TLS listener (8883)?"))
    except TimeoutError:
        return Finding(ep.check, "fail", f"{where}: no TLS handshake within {timeout:g} s",
                       "is this port the broker's TLS listener (8883)?")
    tls = writer.get_extra_info("ssl_object")
    version = tls.version() if tls is not None else "TLS"
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    checked = "certificate verified" if ep.tls.verify else "certificate NOT verified (tls.verify: false)"
    return f" over {version}, {checked}"


def _fix(exc: object, default: str) -> str:
    text = explain(exc)
    return text.split("(TLS: ", 1)[1].rstrip(")") if "(TLS: " in text else default


async def _session(ep: Endpoint, ctx: ssl.SSLContext | None, timeout: float) -> Finding | None:
    import aiomqtt

    from plantlink.doctor import Finding

    where = f"{ep.host}:{ep.port}"
    try:
        async with aiomqtt.Client(ep.host, ep.port, username=ep.username, password=ep.password,
                                  timeout=timeout, identifier=f"plantlink-doctor-{os.getpid()}", tls_context=ctx,
                                  logger=_QUIET):
            pass
    except aiomqtt.MqttCodeError as exc:
        text = str(exc)
        fix = ("check username and password in the model (the broker refused them)"
               if "authori" in text.lower() or "password" in text.lower() else "see the broker's log")
        return Finding(ep.check, "fail", f"{where} refused the MQTT connection: {text}", fix)
    except aiomqtt.MqttError as exc:
        if ctx is None:
            return Finding(ep.check, "fail", f"{where} accepts TCP but no MQTT session: {exc}",
                           "is it an MQTT broker on that port (not TLS only: then write mqtts://)?")
        from plantlink.tlsprobe import connect_error

        why = await connect_error(exc, ep.host, ep.port, ctx)
        fix = _fix(why, "does the broker want a client certificate (tls.cert_file, tls.key_file)? see its log")
        return Finding(ep.check, "fail", f"{where} accepts TLS but no MQTT session: {why.split(' (TLS: ')[0]}", fix)
    return None

"""``plantlink browse`` and ``plantlink discover``: what a device offers, printed as ready-to-paste plant-model
YAML (an OPC UA server's variables, a Logix controller's tags, a Sparkplug B group's births); ``plantlink
auto-tags``: the tags a running plantlink created from Sparkplug births, the same way. Registered in
``plantlink.cli``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from plantlink.cli_options import data_dir_option
from plantlink.datadir import DEFAULT_DATA_DIR
from plantlink.errors import PlantlinkError

if TYPE_CHECKING:
    import ssl

err = Console(stderr=True, emoji=False)


def browse(
    endpoint: Annotated[str, typer.Argument(
        help="OPC UA endpoint (opc.tcp://10.0.0.5:4840/) or Logix controller (logix://10.0.4.30[:port][/slot])")],
    device: Annotated[str, typer.Option(help="Device id to put in the generated YAML.")] = "opcua-1",
    root: Annotated[str | None, typer.Option(help="Node id to start from (default: the Objects folder).")] = None,
    depth: Annotated[int, typer.Option(help="How deep to walk.")] = 10,
    timeout: Annotated[float, typer.Option(help="Connect timeout in seconds.")] = 5.0,
    data_dir: Annotated[Path, data_dir_option(
        "Data directory whose pki/ holds plantlink's client certificate (as for plantlink run).")]
    = DEFAULT_DATA_DIR,
) -> None:
    """List an OPC UA server's variables as ready-to-paste plant-model tag YAML.

    First prints (as YAML comments) the device entry to paste under devices:, with the server certificate's
    subject and the server_certificate: sha256:... line that pins it (check the fingerprint on the server).
    Browses over the secure channel plantlink would use (SignAndEncrypt with Basic256Sha256 where offered),
    or without security when the server offers none. A logix:// endpoint lists a Logix controller's controller
    and program tags (docs/logix.md).
    """
    import asyncio

    if endpoint.startswith("logix://"):
        from plantlink.connectors.logix.browse import browse_text

        try:
            text, n = browse_text(endpoint, device, timeout)
        except PlantlinkError as exc:
            err.print(f"error {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        print(text, end="")
        err.print(f"{n} tag(s)")
        return

    from plantlink.connectors.opcua import browse as ua_browse
    from plantlink.connectors.opcua.security import redact_url

    async def main() -> None:
        server = await ua_browse.discover(endpoint, timeout=timeout)
        for note in server.notes():
            err.print(note, markup=False, highlight=False, soft_wrap=True)
        print(ua_browse.device_yaml(server, device), end="", flush=True)
        variables = await ua_browse.browse(endpoint, root=root, max_depth=depth, timeout=timeout,
                                           pki_dir=data_dir / "pki", server=server)
        print(ua_browse.to_yaml(variables, device), end="")
        err.print(f"{len(variables)} variable(s)")

    try:
        asyncio.run(main())
    except PlantlinkError as exc:  # its message names the endpoint
        err.print(f"error {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except (OSError, TimeoutError) as exc:
        err.print(f"error cannot browse {redact_url(endpoint)}: {exc or type(exc).__name__}", markup=False,
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def discover(
    mqtt: Annotated[str, typer.Option(help="MQTT broker, e.g. mqtt://10.0.0.5:1883")],
    group: Annotated[str, typer.Option(help="Sparkplug B group id to listen to.")],
    device: Annotated[str, typer.Option(help="Device id to put in the generated YAML.")] = "broker",
    under: Annotated[str, typer.Option(help="Place in the plant model the group belongs to (site/area/line).")] = "",
    wait: Annotated[float, typer.Option(help="Seconds to listen for births.")] = 5.0,
    rebirth: Annotated[bool, typer.Option(help="Ask nodes heard without a birth for one (NCMD Rebirth).")] = True,
    ca_file: Annotated[Path | None, typer.Option(help="mqtts://: PEM file of the CA of the broker's certificate "
                                                      "(default: the system's CAs).")] = None,
    cert_file: Annotated[Path | None, typer.Option(help="mqtts://: PEM client certificate (with --key-file).")]
    = None,
    key_file: Annotated[Path | None, typer.Option(help="mqtts://: PEM private key of --cert-file (encrypted: its "
                                                       "password in the variable --key-password-env names).")]
    = None,
    key_password_env: Annotated[str, typer.Option(help="mqtts://: the environment variable holding the password "
                                                       "of an encrypted --key-file (never on the command line).")]
    = "PLANTLINK_TLS_KEY_PASSWORD",
    server_name: Annotated[str | None, typer.Option(help="mqtts://: the name the broker's certificate carries, "
                                                         "when not the host.")] = None,
) -> None:
    """Print the metrics a Sparkplug B group's births announce as ready-to-paste plant-model tag YAML."""
    import asyncio

    from aiomqtt import MqttError

    from plantlink.connectors.mqtt import discover as spb
    from plantlink.tlsprobe import connect_error

    try:
        host, port = spb.broker_address(mqtt)
        tls = _discover_tls(mqtt, ca_file, cert_file, key_file, server_name, os.environ.get(key_password_env) or None)
        births = asyncio.run(spb.discover(host, port, group, wait, rebirth=rebirth, tls=tls))
    except (ValueError, OSError) as exc:
        err.print(f"error {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except MqttError as exc:  # the broker is unreachable or refused (with what TLS said, when it was TLS)
        why = asyncio.run(connect_error(exc, host, port, tls))
        err.print(f"error cannot listen to {mqtt}: {why}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    print(spb.to_yaml(births, device, group, under), end="")
    err.print(f"{len(births)} birth(s), {sum(len(m) for m in births.values())} metric(s)")


def _discover_tls(url: str, ca_file: Path | None, cert_file: Path | None, key_file: Path | None,
                  server_name: str | None, key_password: str | None = None) -> ssl.SSLContext | None:
    """The TLS context of ``discover`` (the plant model's ``tls:`` rules; a ValueError says what is wrong)."""
    from pydantic import ValidationError

    from plantlink.model.tls import TlsSettings, client_context

    options = {k: str(v) for k, v in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file),
                                     ("server_name", server_name)) if v is not None}
    if not url.startswith("mqtts://"):
        if options:
            raise ValueError(f"--{next(iter(options)).replace('_', '-')} is for TLS: write the broker as "
                             "mqtts://host[:port]")
        return None
    try:
        if key_password is not None and key_file is not None:
            options["key_password"] = key_password
        return client_context(TlsSettings.model_validate(options))
    except ValidationError as exc:
        raise ValueError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None


def auto_tags(
    data_dir: Annotated[Path, data_dir_option("Data directory of the plantlink run that created the tags.")]
    = DEFAULT_DATA_DIR,
) -> None:
    """Print the tags created from Sparkplug B births (auto_tags) as plant-model YAML to paste under their line."""
    from plantlink.autotags import AUTO_TAGS_FILE, load_overlay, paste_yaml

    path = data_dir / AUTO_TAGS_FILE
    overlay = load_overlay(path)
    print(paste_yaml(overlay), end="")
    n = sum(len(m["tags"]) for e in overlay.values() for m in e["machines"])
    err.print(f"{n} tag(s) created from births in {path}" if overlay else f"no tags created from births ({path})",
              markup=False, highlight=False)

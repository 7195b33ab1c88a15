"""Small plant models for tests: the enterprise / site / area / line skeleton they all repeat, in one place.

A test names only what it is about (its devices and its machines, as YAML at no indentation):

    PLANT = plant_yaml(devices="plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}",
                       machines='''
    - name: m1
      tags:
        - {name: t0, source: {device: plc, address: 0}}
    ''')

gives one site ``s1`` (UTC) with area ``a1`` and line ``l1``. The text is only concatenated, never formatted:
a template with ``{placeholders}`` (and doubled literal braces) stays one for ``str.format``.
"""

from __future__ import annotations

import textwrap

__all__ = ["plant_yaml", "site_yaml"]


def _block(yaml: str, indent: int) -> str:
    """``yaml`` (any common indentation, blank first line allowed) indented by ``indent`` spaces."""
    text = textwrap.dedent(yaml).strip("\n") + "\n"
    return textwrap.indent(text, " " * indent)


def site_yaml(machines: str, *, site: str = "s1", timezone: str = "UTC", area: str = "a1", line: str = "l1") -> str:
    """One entry of ``sites:``: a site with one area, one line and ``machines``."""
    return (f"  - name: {site}\n    timezone: {timezone}\n    areas:\n      - name: {area}\n        lines:\n"
            f"          - name: {line}\n            machines:\n{_block(machines, 14)}")


def plant_yaml(devices: str, machines: str = "", *, enterprise: str = "Test", sites: str = "",
               **site: str) -> str:
    """A whole plant model: ``enterprise``, ``devices`` and either one site of ``machines`` (``site`` names its
    site, area, line and time zone as :func:`site_yaml`) or ``sites`` already made by :func:`site_yaml`."""
    body = sites or site_yaml(machines, **site)
    return f"enterprise: {enterprise}\ndevices:\n{_block(devices, 2)}sites:\n{body}"

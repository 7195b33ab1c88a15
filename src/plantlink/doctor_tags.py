"""``plantlink doctor``: read every tag of the polled devices once (Modbus, S7, Logix), so a tag the device does
not have, an address past the end of a data block or a type that does not match the controller's is named
before ``plantlink run``, not only in the device's health once running (``plantlink check`` works offline and
cannot know them). Each device is read with its own connector (``PollingConnector.probe``): the same requests,
decoding and checks as at run time; nothing is written."""

from __future__ import annotations

import asyncio
from typing import Any

from plantlink.doctor import Finding, guarded

#: The protocols whose connectors can read every tag once (``PollingConnector.probe``).
PROBED = ("modbus", "s7", "logix")
#: Problems shown per device (the rest counted).
SHOWN = 5


def _discard(_batch: Any) -> None:
    return None


async def probe_device(plant: Any, name: str) -> Finding:
    """One device's tags read once: ``ok`` (every tag answered) or ``fail`` with the tags' problems."""
    from plantlink import plugins
    from plantlink.connectors.base import ConnectionLost
    from plantlink.reload import device_points

    dev = plant.devices[name]
    ids = {t.path: k + 1 for k, t in enumerate(plant.all_tags)}
    points = device_points(plant, ids, name)
    check = f"tags of device {name} ({dev.protocol})"
    conn = plugins.load(plugins.CONNECTORS, dev.protocol).connector(name, dev.config, points, _discard)
    try:
        problems = await conn.probe()
    except (ConnectionLost, TimeoutError) as exc:
        return Finding(check, "fail", f"not read: {exc or 'no answer in time'}",
                       "see the device's connection check above")
    if not problems:
        return Finding(check, "ok", f"{len(points)} tag{'' if len(points) == 1 else 's'} read as configured")
    shown = "; ".join(problems[:SHOWN]) + (f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else "")
    return Finding(check, "fail", f"{len(problems)} of {len(points)} tags: {shown}",
                   "correct the addresses or types in the plant model (plantlink browse lists a controller's tags)")


async def probe_tags(plant: Any, reachable: set[str]) -> list[Finding]:
    """Every enabled polled device in ``reachable`` (its connection check passed) with tags, read in parallel."""
    names = [n for n, d in plant.spec.devices.items()
             if d.enabled and d.protocol in PROBED and n in reachable and plant.tags_of_device(n)]
    checks = [f"tags of device {n} ({plant.spec.devices[n].protocol})" for n in names]
    return list(await asyncio.gather(*(guarded(c, probe_device(plant, n)) for c, n in zip(checks, names, strict=True))))

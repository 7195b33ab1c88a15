"""Loading a plant model is audited with the file's digest, so a changed configuration leaves a trace."""

from __future__ import annotations

import hashlib
from pathlib import Path

from plantlink.model import load_plant
from plantlink.runtime import Runtime

PLANT = """
enterprise: Acme
devices:
  plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}
sites:
  - name: windsor
    timezone: America/Toronto
    areas:
      - name: a
        lines:
          - name: l
            machines:
              - name: m
                tags:
                  - {name: t, source: {device: plc, address: 0}}
"""


async def test_config_load_is_audited_and_the_chain_verifies(tmp_path: Path) -> None:
    f = tmp_path / "plant.yaml"
    f.write_text(PLANT, encoding="utf-8")
    rt = Runtime(load_plant(f), tmp_path / "data")
    await rt.start()
    try:
        assert rt.audit is not None
        (rec,) = [r for r in rt.audit.query(kind="config.load")]
        assert rec.actor == "system" and rec.target == str(f)
        assert rec.details["sha256"] == hashlib.sha256(PLANT.encode()).hexdigest()
        assert rec.details["tags"] == 1
        assert rt.audit.verify().ok
    finally:
        await rt.stop()

"""Bad input at run time (issue 13): a running plantlink with an S7 PLC and a Logix PLC, each with tags the PLC
refuses (an address past the end of a DB, a DB that does not exist; a tag name the controller does not have, a
type that is not the controller's). Nothing crashes: both devices stay connected, their other tags keep flowing
(a value changed on each server arrives), the refused tags are BAD, and each device's health names a refused
tag."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from plantlink.connectors.base import DeviceState
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality
from tests.conftest import _free_port
from tests.connectors.logix_server import CmServer
from tests.connectors.s7_server import S7TestServer
from tests.plants import plant_yaml
from tests.waiting import wait_for

PLANT = plant_yaml(
    devices="""
    press: {{protocol: s7, host: 127.0.0.1, port: {s7}, poll: 50ms, timeout: 500ms}}
    conveyor: {{protocol: logix, host: 127.0.0.1, port: {logix}, poll: 50ms, timeout: 500ms}}
    """,
    machines="""
    - name: m
      tags:
        - {{name: mode, source: {{device: press, address: DB1.DBW0}}}}
        - {{name: near, source: {{device: press, address: DB1.DBD250, type: REAL}}}}
        - {{name: past, source: {{device: press, address: DB1.DBW256}}}}
        - {{name: nodb, source: {{device: press, address: DB9.DBW0}}}}
        - {{name: temp, source: {{device: conveyor, tag: Temp, type: REAL}}}}
        - {{name: ghost, source: {{device: conveyor, tag: NoSuchTag, type: REAL}}}}
        - {{name: wrong, source: {{device: conveyor, tag: Count, type: REAL}}}}
    """)
M = "s1/a1/l1/m/"


async def test_refused_tags_leave_both_devices_running(tmp_path: Path) -> None:
    s7 = await S7TestServer(_free_port()).start()
    logix = await CmServer(_free_port(), {"Temp": ("REAL", 1), "Count": ("DINT", 1)}).start()
    struct.pack_into(">h", s7.dbs[1], 0, 7)
    struct.pack_into(">f", s7.dbs[1], 250, 1.5)
    logix.controller.set_raw("Temp", struct.pack("<f", 21.5))
    rt = Runtime(parse_plant(PLANT.format(s7=s7.port, logix=logix.port), "plant.yaml"), tmp_path,
                 flush_interval=0.1)
    await rt.start()

    def latest() -> dict[str, tuple[object, int]]:
        names = ["mode", "near", "past", "nodb", "temp", "ghost", "wrong"]
        rows = rt.latest.table(np.array([rt.tag_ids[M + n] for n in names])).to_pylist()
        return {n: (r["value"], r["quality"]) for n, r in zip(names, rows, strict=True)}

    try:
        await wait_for(lambda: {k: q for k, (_, q) in latest().items()} == {
            "mode": Quality.GOOD, "near": Quality.GOOD, "past": Quality.BAD, "nodb": Quality.BAD,
            "temp": Quality.GOOD, "ghost": Quality.BAD, "wrong": Quality.BAD}, 30, "the good and the refused")
        struct.pack_into(">f", s7.dbs[1], 250, 2.5)
        logix.controller.set_raw("Temp", struct.pack("<f", 22.5))
        await wait_for(lambda: latest()["near"] == (2.5, Quality.GOOD) and latest()["temp"] == (22.5, Quality.GOOD),
                       30, "new values from both PLCs")
        press, conveyor = rt.connectors["press"].health, rt.connectors["conveyor"].health
        assert press.state == DeviceState.CONNECTED and conveyor.state == DeviceState.CONNECTED
        assert press.exception_replies >= 2 and conveyor.exception_replies >= 2
        assert (press.last_error or "").startswith((f"tag {M}past (DB1.DBW256)", f"tag {M}nodb (DB9.DBW0)"))
        assert (conveyor.last_error or "").startswith(("tag NoSuchTag", "tag Count is DINT"))
        # every refused tag is in the health at once (not only the last one), and in the health report's reasons
        assert sorted(i.split(" (")[0].split(":")[0] for i in press.issues) == [f"tag {M}nodb", f"tag {M}past"]
        assert sorted(i.split(":")[0].split(" is ")[0] for i in conveyor.issues) == ["tag Count", "tag NoSuchTag"]
        assert rt.services is not None
        report = rt.services.health.report(Principal("v", {"*": "viewer"}))
        assert report.status == "degraded"
        assert sum(r.startswith("device press: tag ") for r in report.reasons) == 2
        assert sum(r.startswith("device conveyor: tag ") for r in report.reasons) == 2
    finally:
        await rt.stop()
        await logix.stop()
        await s7.stop()


async def test_doctor_names_the_refused_tags_before_the_plant_runs(tmp_path: Path) -> None:
    """``plantlink doctor`` reads every tag of the S7 and Logix PLCs once: the tags they refuse are named per
    device (the offline ``plantlink check`` cannot know them); a device whose tags all answer is ok."""
    from plantlink.doctor import diagnose

    s7 = await S7TestServer(_free_port()).start()
    logix = await CmServer(_free_port(), {"Temp": ("REAL", 1), "Count": ("DINT", 1)}).start()
    try:
        model = tmp_path / "plant.yaml"
        model.write_text(PLANT.format(s7=s7.port, logix=logix.port))
        found = {f.check: f for f in await diagnose(model, tmp_path / "data", timeout=5)}
        press, conveyor = found["tags of device press (s7)"], found["tags of device conveyor (logix)"]
        assert press.status == "fail" and press.detail.startswith("2 of 4 tags: ")
        assert f"tag {M}past (DB1.DBW256)" in press.detail and f"tag {M}nodb (DB9.DBW0)" in press.detail
        assert f"tag {M}near" not in press.detail and f"tag {M}mode" not in press.detail
        assert conveyor.status == "fail" and conveyor.detail.startswith("2 of 3 tags: ")
        assert "tag NoSuchTag" in conveyor.detail and "tag Count is DINT" in conveyor.detail
        assert "Temp" not in conveyor.detail
        good = tmp_path / "good.yaml"  # only the tags the PLCs have
        good.write_text("\n".join(x for x in model.read_text().splitlines()
                                  if not any(f"name: {n}," in x for n in ("past", "nodb", "ghost", "wrong"))))
        ok = {f.check: f for f in await diagnose(good, tmp_path / "data2", timeout=5)}
        press_ok, conveyor_ok = ok["tags of device press (s7)"], ok["tags of device conveyor (logix)"]
        assert (press_ok.status, press_ok.detail) == ("ok", "2 tags read as configured")
        assert (conveyor_ok.status, conveyor_ok.detail) == ("ok", "1 tag read as configured")
    finally:
        await logix.stop()
        await s7.stop()

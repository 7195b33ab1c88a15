"""The simulated machine kinds and the signals (tag names) each provides.

Every kind provides the common signals of :mod:`plantlink.sim.machine` (``state``, ``state_name``,
``run_command`` (writable), ``fault``, ``fault_code``, ``cycle_count``, ``good_count``, ``reject_count``,
``cycle_time``, ``motor_current``, ``power_kw``, ``energy_kwh``) plus:

press      part_number, tonnage (t, peak of the last stroke), spm (strokes/min), spm_setpoint (writable),
           die_temperature (degC), lube_pressure (bar)
welder     part_number, weld_current (kA), weld_voltage (V), weld_count (welds, uint32), tip_wear (%),
           cooling_water_temp (degC), cooling_water_flow (l/min)
oven       part_number, zone1..zone4_temperature (degC), zone1..zone4_setpoint (degC, writable),
           exhaust_temperature (degC), gas_flow (m3/h)
cnc        part_number, spindle_speed (rpm), spindle_load (%), vibration (mm/s RMS), bearing_temperature
           (degC), coolant_temperature (degC), tool_number
conveyor   speed (m/min), speed_setpoint (m/min, writable)

The CNC spindle bearing wears while the spindle turns: vibration and bearing temperature grow over
simulated days until the bearing fails (fault 31, a long repair); the repair replaces the bearing and
vibration drops back to its baseline.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from plantlink.sim.machine import COMMON, PART_NUMBER, MachineSim, Params, Signal, lag

AMBIENT_C = 22.0
BEARING_FAILURE = 31


def _f(name: str, unit: str, description: str, ua: str = "", **kw: float) -> Signal:
    return Signal(name, "float", unit, description, ua=ua, **kw)  # type: ignore[arg-type]


def _sp(name: str, unit: str, description: str, lo: float, hi: float) -> Signal:
    return Signal(name, "float", unit, description, writable=True, lo=lo, hi=hi)


class Press(MachineSim):
    kind = "press"
    DEFAULTS = Params(cycle_time=3.75, mtbf_h=6.0, mttr_min=12.0, idle_kw=18.0, run_kw=95.0,
                      reject_rate=0.006, lot_size=4000, changeover_min=20.0)
    FAULTS: ClassVar[dict[int, str]] = {11: "die protection", 12: "overload", 13: "light curtain",
                                        14: "lube pressure low"}
    PARTS = ("GLC-4471-A", "GLC-4471-B", "GLC-5120-RH", "GLC-5120-LH")
    TONNAGE: ClassVar[tuple[float, ...]] = (420.0, 410.0, 365.0, 368.0)
    SIGNALS = (*COMMON, PART_NUMBER,
               _f("tonnage", "t", "peak tonnage of the last stroke (0 when not running)"),
               _f("spm", "1/min", "strokes per minute"),
               _sp("spm_setpoint", "1/min", "stroke rate setpoint", 4.0, 30.0),
               _f("die_temperature", "degC", "die temperature"),
               _f("lube_pressure", "bar", "lubrication pressure"))

    def init_process(self) -> None:
        self.setpoints["spm_setpoint"] = 16.0
        self.die_temp = 45.0
        self.tonnage = 0.0
        self.lube = 3.2

    def cycle_time(self) -> float:
        return 60.0 / self.setpoints["spm_setpoint"]

    def process(self, dt: float, running: bool, z: np.ndarray) -> None:
        nominal = self.TONNAGE[self.part_index % len(self.TONNAGE)]
        self.tonnage = nominal + 6.0 * z[0] if running else 0.0
        self.die_temp = lag(self.die_temp, 58.0 if running else AMBIENT_C, dt, 3600.0)
        self.lube = 3.2 + 0.05 * z[1] if running else 0.4
        spm = self.setpoints["spm_setpoint"]
        self.motor_kw = (22.0 + 4.6 * spm + 3.0 * z[2]) if running else 15.0
        self.power_kw = self.motor_kw + 3.0

    def reject_probability(self) -> float:
        nominal = self.TONNAGE[self.part_index % len(self.TONNAGE)]
        return self.reject_rate + 0.02 * max(abs(self.tonnage - nominal) - 12.0, 0.0)

    def publish_process(self) -> None:
        v = self.values
        v["tonnage"] = self.tonnage
        v["spm"] = self.setpoints["spm_setpoint"] if self.state == 1 else 0.0
        v["die_temperature"] = self.die_temp
        v["lube_pressure"] = self.lube


class Welder(MachineSim):
    kind = "welder"
    DEFAULTS = Params(cycle_time=48.0, mtbf_h=5.0, mttr_min=8.0, idle_kw=6.0, run_kw=60.0,
                      reject_rate=0.004, lot_size=300, changeover_min=15.0)
    FAULTS: ClassVar[dict[int, str]] = {21: "weld current out of window", 22: "tip dress failure",
                                        23: "robot collision", 24: "cooling water flow low"}
    PARTS = ("BIW-220-FRONT", "BIW-220-REAR")
    WELDS_PER_PART = 24
    DRESS_EVERY = 2400
    SIGNALS = (*COMMON, PART_NUMBER,
               _f("weld_current", "kA", "secondary current of the last weld (0 when idle)", ua="Float"),
               _f("weld_voltage", "V", "secondary voltage of the last weld", ua="Float"),
               Signal("weld_count", "int", "", "lifetime welds, uint32 that wraps", ua="UInt32"),
               _f("tip_wear", "%", "electrode tip wear since the last tip dress"),
               _f("cooling_water_temp", "degC", "cooling water temperature"),
               _f("cooling_water_flow", "l/min", "cooling water flow"))

    def init_process(self) -> None:
        self.welds = int(self.rng.integers(10_000_000, 60_000_000))
        self.since_dress = int(self.rng.integers(0, self.DRESS_EVERY))
        self.current = 0.0
        self.water = 26.0

    def process(self, dt: float, running: bool, z: np.ndarray) -> None:
        wear = self.since_dress / self.DRESS_EVERY
        self.current = 11.2 * (1.0 - 0.06 * wear) + 0.12 * z[0] if running else 0.0
        self.water = lag(self.water, 31.0 if running else 24.0, dt, 600.0)
        self.motor_kw = 9.0 + 1.5 * z[1] if running else 2.5
        self.power_kw = (self.DEFAULTS.run_kw + 4.0 * z[2]) if running else self.DEFAULTS.idle_kw

    def count(self, done: int) -> None:
        super().count(done)
        self.welds += done * self.WELDS_PER_PART
        self.since_dress += done * self.WELDS_PER_PART
        if self.since_dress >= self.DRESS_EVERY:
            self.since_dress = 0

    def reject_probability(self) -> float:
        return self.reject_rate + 0.03 * (self.since_dress / self.DRESS_EVERY) ** 4

    def publish_process(self) -> None:
        v = self.values
        v["weld_current"] = self.current
        v["weld_voltage"] = 1.65 * self.current / 11.2 if self.current else 0.0
        v["weld_count"] = self.welds & 0xFFFFFFFF
        v["tip_wear"] = 100.0 * self.since_dress / self.DRESS_EVERY
        v["cooling_water_temp"] = self.water
        v["cooling_water_flow"] = 12.0 if self.state != 4 else 3.5


class Oven(MachineSim):
    """A paint cure oven: four zones, each a first-order lag toward its setpoint (heaters on) or ambient."""

    kind = "oven"
    DEFAULTS = Params(cycle_time=20.0, mtbf_h=24.0, mttr_min=30.0, idle_kw=40.0, run_kw=40.0,
                      reject_rate=0.003, lot_size=900, changeover_min=10.0)
    FAULTS: ClassVar[dict[int, str]] = {41: "burner flame failure", 42: "exhaust fan fault",
                                        43: "carrier chain stall"}
    PARTS = ("E-COAT-BLK", "PRIMER-GRY")
    ZONES = 4
    RECIPE: ClassVar[tuple[float, ...]] = (160.0, 185.0, 195.0, 180.0)
    TAU: ClassVar[tuple[float, ...]] = (420.0, 360.0, 360.0, 300.0)
    NOISE = 4 + ZONES
    SIGNALS = (*COMMON, PART_NUMBER,
               *(_f(f"zone{i}_temperature", "degC", f"zone {i} air temperature") for i in range(1, 5)),
               *(_sp(f"zone{i}_setpoint", "degC", f"zone {i} setpoint", 20.0, 260.0) for i in range(1, 5)),
               _f("exhaust_temperature", "degC", "exhaust stack temperature"),
               _f("gas_flow", "m3/h", "natural gas flow to the burners"))

    #: Zone 1's thermocouple drifts for a few minutes each hour (simulated time) while heating: +2 degC, eight
    #: times its noise, so that the live SPC of ``zone1_temperature`` (demo plant) shows its rule alarms.
    DRIFT_EVERY_S, DRIFT_AT_S, DRIFT_FOR_S, DRIFT_C = 3600.0, 1200.0, 300.0, 2.0

    def step(self, dt: float, t: float) -> None:
        self.clock = t
        super().step(dt, t)

    def drift(self) -> float:
        into = getattr(self, "clock", 0.0) % self.DRIFT_EVERY_S - self.DRIFT_AT_S
        return self.DRIFT_C if self.heating() and 0.0 <= into < self.DRIFT_FOR_S else 0.0

    def init_process(self) -> None:
        for i, sp in enumerate(self.RECIPE, 1):
            self.setpoints[f"zone{i}_setpoint"] = sp
        self.tau = [t * float(self.rng.uniform(0.9, 1.1)) for t in self.TAU]
        self.temps = [sp + float(self.rng.normal(0.0, 0.2)) for sp in self.RECIPE]  # settled: SPC learns from it
        self.measured = list(self.temps)
        self.gas = 0.0

    def heating(self) -> bool:
        return self.run_cmd and self.fault_code != 41

    def targets(self) -> list[float]:
        if not self.heating():
            return [AMBIENT_C] * self.ZONES
        return [self.setpoints[f"zone{i}_setpoint"] for i in range(1, self.ZONES + 1)]

    def process(self, dt: float, running: bool, z: np.ndarray) -> None:
        heat_kw = 0.0
        for i, target in enumerate(self.targets()):
            t0 = self.temps[i]
            self.temps[i] = lag(t0, target, dt, self.tau[i])
            self.measured[i] = self.temps[i] + 0.25 * float(z[4 + i]) + (self.drift() if i == 0 else 0.0)
            if self.heating():
                heat_kw += min(max(0.15 * (t0 - AMBIENT_C) + 2.5 * (target - t0), 0.0), 120.0)
        self.gas = heat_kw / 10.5
        self.motor_kw = 30.0 + 1.0 * z[0] if self.run_cmd else 0.0
        self.power_kw = self.motor_kw + 6.0

    def reject_probability(self) -> float:
        dev = max(abs(t - r) for t, r in zip(self.temps, self.RECIPE, strict=True))
        return self.reject_rate + 0.3 * min(max((dev - 8.0) / 20.0, 0.0), 1.0)

    def publish_process(self) -> None:
        v = self.values
        for i in range(self.ZONES):
            v[f"zone{i + 1}_temperature"] = self.measured[i]
        v["exhaust_temperature"] = AMBIENT_C + 0.55 * (self.temps[-1] - AMBIENT_C)
        v["gas_flow"] = self.gas


class Cnc(MachineSim):
    """A machining centre whose spindle bearing wears out over simulated days (see the module docstring)."""

    kind = "cnc"
    DEFAULTS = Params(cycle_time=95.0, mtbf_h=10.0, mttr_min=15.0, idle_kw=4.0, run_kw=22.0,
                      reject_rate=0.005, lot_size=250, changeover_min=30.0)
    FAULTS: ClassVar[dict[int, str]] = {32: "tool breakage", 33: "coolant level low", 34: "axis following error"}
    ALL_FAULTS: ClassVar[dict[int, str]] = {BEARING_FAILURE: "spindle bearing failure", **FAULTS}
    PARTS = ("KNUCKLE-L-330", "KNUCKLE-R-330", "HUB-118")
    RPM: ClassVar[tuple[float, ...]] = (8000.0, 8000.0, 6000.0)
    SIGNALS = (*COMMON, PART_NUMBER,
               _f("spindle_speed", "rpm", "spindle speed"),
               _f("spindle_load", "%", "spindle load"),
               _f("vibration", "mm/s", "spindle vibration velocity, RMS (ISO 10816 alarm at 7.1)"),
               _f("bearing_temperature", "degC", "spindle front bearing temperature"),
               _f("coolant_temperature", "degC", "coolant temperature"),
               Signal("tool_number", "int", "", "tool in the spindle", ua="Int16"))

    def init_process(self) -> None:
        self.new_bearing()
        self.wear = float(self.rng.uniform(0.0, 0.5))
        self.rpm = 0.0
        self.bearing_temp = 35.0
        self.coolant = 24.0
        self.tool = 1
        self.vib = 0.0
        self.load = 0.0

    def new_bearing(self) -> None:
        """Fit a new bearing: wear 0 and a life of 4 to 7 days of spindle running time."""
        self.wear = 0.0
        self.bearing_life_s = float(self.rng.uniform(4.0, 7.0)) * 86400.0

    def process(self, dt: float, running: bool, z: np.ndarray) -> None:
        target = self.RPM[self.part_index % len(self.RPM)] if running else 0.0
        self.rpm = lag(self.rpm, target, dt, 1.5)
        if running:
            self.wear += dt / self.bearing_life_s
            self.tool = 1 + int(self.progress * 8)
        w = min(self.wear, 1.0)
        spin = self.rpm / 8000.0
        self.load = (42.0 + 10.0 * w + 4.0 * z[0]) * spin
        self.vib = 0.05 + spin * (0.9 + 7.5 * w**3) * (1.0 + 0.06 * z[1])
        self.bearing_temp = lag(self.bearing_temp, AMBIENT_C + spin * (16.0 + 30.0 * w**2), dt, 900.0)
        self.coolant = lag(self.coolant, 27.0 if running else AMBIENT_C, dt, 1800.0)
        self.motor_kw = 1.0 + 0.3 * max(self.load, 0.0)
        self.power_kw = self.DEFAULTS.idle_kw + self.motor_kw + (4.0 if running else 0.0)

    def wear_fault(self, dt: float) -> int:
        return BEARING_FAILURE if self.wear >= 1.0 else 0

    def repair_time(self, code: int) -> float:
        return 5.0 * 3600.0 if code == BEARING_FAILURE else self.mttr_s

    def repaired(self, code: int) -> None:
        if code == BEARING_FAILURE:
            self.new_bearing()

    def reject_probability(self) -> float:
        return self.reject_rate + 0.08 * max(self.wear - 0.6, 0.0)

    def publish_process(self) -> None:
        v = self.values
        v["spindle_speed"] = self.rpm
        v["spindle_load"] = max(self.load, 0.0)
        v["vibration"] = max(self.vib, 0.0)
        v["bearing_temperature"] = self.bearing_temp
        v["coolant_temperature"] = self.coolant
        v["tool_number"] = self.tool


class Conveyor(MachineSim):
    """A transfer conveyor; when it stops, machines before it on the line block and those after it starve."""

    kind = "conveyor"
    DEFAULTS = Params(cycle_time=10.0, mtbf_h=8.0, mttr_min=5.0, idle_kw=0.5, run_kw=6.0,
                      reject_rate=0.0, starved_every_h=0.0, blocked_every_h=0.0, idle_every_h=9.0)
    FAULTS: ClassVar[dict[int, str]] = {51: "drive overload", 52: "belt misalignment", 53: "emergency stop"}
    PITCH_M = 2.0
    SIGNALS = (*COMMON,
               _f("speed", "m/min", "belt speed", ua="Float"),
               _sp("speed_setpoint", "m/min", "belt speed setpoint", 0.0, 40.0))

    def init_process(self) -> None:
        self.setpoints["speed_setpoint"] = 12.0
        self.speed = 12.0

    def cycle_time(self) -> float:
        return self.PITCH_M / max(self.speed / 60.0, 0.1 / 60.0)

    def process(self, dt: float, running: bool, z: np.ndarray) -> None:
        self.speed = lag(self.speed, self.setpoints["speed_setpoint"] if running else 0.0, dt, 2.0)
        self.motor_kw = 0.4 + 0.22 * self.speed + (0.1 * z[0] if running else 0.0)
        self.power_kw = max(self.motor_kw, 0.0) + 0.3

    def publish_process(self) -> None:
        self.values["speed"] = self.speed


KINDS: dict[str, type[MachineSim]] = {k.kind: k for k in (Press, Welder, Oven, Cnc, Conveyor)}


def signal_names(kind: str) -> list[str]:
    """The tag names a machine of ``kind`` provides."""
    return [s.name for s in KINDS[kind].SIGNALS]


def fault_codes() -> dict[int, str]:
    """Every fault code any kind raises, with its meaning."""
    out: dict[int, str] = {}
    for k in KINDS.values():
        out.update(getattr(k, "ALL_FAULTS", k.FAULTS))
    return dict(sorted(out.items()))


__all__ = ["KINDS", "Cnc", "Conveyor", "Oven", "Press", "Welder", "fault_codes", "signal_names"]

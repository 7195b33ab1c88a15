"""The state machine every simulated machine shares, and the signals common to every kind.

State codes (the ``state`` tag):

====  ============  =========================================================
code  name          meaning
====  ============  =========================================================
0     idle          powered and ready, but no work (no order, operator away)
1     running       producing: cycles advance, counters count
2     starved       waiting for material from upstream
3     blocked       cannot discharge to downstream
4     faulted       stopped by a fault; ``fault`` is true and ``fault_code`` says which
5     planned_stop  stopped on purpose: a shift break or a stop command
6     changeover    changing die / fixture / program to the next part number
====  ============  =========================================================

Time is simulated: ``step(dt, t)`` advances one machine by ``dt`` seconds at simulated time ``t``; the machine
keeps its own ledger of simulated seconds per state (``seconds``) and of state changes (``changes``). A PLC
keeps its counters when the software reading it restarts: ``kept()`` and ``restore()`` carry the counters and
the energy meter across a restart of the simulator. Every
random draw comes from the machine's own numpy ``Generator``, so a machine's trajectory depends only on
its seed and the sequence of steps. Random durations (repairs, changeovers, short stops) are drawn when the
state is entered and hazards use ``1 - exp(-dt / mean)``, so results barely depend on the step size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Literal

import numpy as np

MASK32 = 0xFFFFFFFF
SHIFT_S = 8 * 3600.0
#: A 30-minute break 4 h into each 8 h shift: every machine goes to planned_stop (ovens keep heating).
BREAK_START_S, BREAK_END_S = 4 * 3600.0, 4.5 * 3600.0
VOLTS, POWER_FACTOR = 600.0, 0.88  # Canadian 600 V three-phase

SignalType = Literal["float", "int", "bool", "string"]
Value = float | int | bool | str


class State(IntEnum):
    IDLE = 0
    RUNNING = 1
    STARVED = 2
    BLOCKED = 3
    FAULTED = 4
    PLANNED_STOP = 5
    CHANGEOVER = 6


STATE_NAMES = {s.value: s.name.lower() for s in State}
_DEFAULT_UA = {"float": "Double", "int": "Int32", "bool": "Boolean", "string": "String"}


@dataclass(frozen=True)
class Signal:
    """One value a simulated machine provides; a tag binds to it by name."""

    name: str
    type: SignalType
    unit: str = ""
    description: str = ""
    writable: bool = False
    lo: float = -math.inf
    hi: float = math.inf
    #: OPC UA variant type served for this signal (default by ``type``).
    ua: str = ""

    @property
    def variant(self) -> str:
        return self.ua or _DEFAULT_UA[self.type]


COMMON: tuple[Signal, ...] = (
    Signal("state", "int", "", "state code 0..6 (see plantlink.sim.machine)", ua="Int16"),
    Signal("state_name", "string", "", "state as text: idle, running, starved, ..."),
    Signal("run_command", "bool", "", "write true to start, false to stop (planned stop)", writable=True),
    Signal("fault", "bool", "", "true while faulted"),
    Signal("fault_code", "int", "", "active fault code, 0 when none", ua="Int16"),
    Signal("cycle_count", "int", "", "lifetime cycles, uint32 that wraps", ua="UInt32"),
    Signal("good_count", "int", "", "lifetime good parts, uint32 that wraps", ua="UInt32"),
    Signal("reject_count", "int", "", "lifetime rejected parts, uint32 that wraps", ua="UInt32"),
    Signal("cycle_time", "float", "s", "nominal time of one cycle at the current settings"),
    Signal("motor_current", "float", "A", "main drive current (600 V, pf 0.88)"),
    Signal("power_kw", "float", "kW", "electrical power drawn"),
    Signal("energy_kwh", "float", "kWh", "energy meter, integrates power_kw", ua="Double"),
)
#: What a machine keeps across a restart of the simulator (see MachineSim.kept).
KEPT = ("cycles", "good", "rejects", "energy_kwh")
PART_NUMBER = Signal("part_number", "string", "", "part number (recipe) being produced")


@dataclass(frozen=True)
class Params:
    """Per-kind defaults; each machine jitters the reliability figures by +-20 % from its seed."""

    cycle_time: float
    mtbf_h: float
    mttr_min: float
    idle_kw: float
    run_kw: float
    reject_rate: float
    lot_size: int = 0  # parts between changeovers; 0 = never changes over
    changeover_min: float = 20.0
    idle_every_h: float = 7.0
    idle_min: float = 8.0
    starved_every_h: float = 3.0
    starved_min: float = 3.0
    blocked_every_h: float = 3.5
    blocked_min: float = 2.5


def _hazard(dt: float, mean_s: float) -> float:
    """Probability that an event with mean time ``mean_s`` between occurrences happens within ``dt``."""
    return -math.expm1(-dt / mean_s) if mean_s > 0 else 0.0


def lag(x: float, target: float, dt: float, tau: float) -> float:
    """Exact first-order lag step: ``x`` moves toward ``target`` with time constant ``tau``."""
    return target + (x - target) * math.exp(-dt / tau)


class MachineSim:
    """Base class: state machine, cycle/good/reject counters, power and energy. Kinds add process values."""

    kind: ClassVar[str] = ""
    SIGNALS: ClassVar[tuple[Signal, ...]] = COMMON
    DEFAULTS: ClassVar[Params]
    #: Fault codes a random fault picks from, with their meaning (kinds may add non-random ones).
    FAULTS: ClassVar[dict[int, str]] = {}
    PARTS: ClassVar[tuple[str, ...]] = ()
    NOISE: ClassVar[int] = 4  # standard normals drawn per step for process noise

    def __init__(self, path: str, rng: np.random.Generator):
        self.path = path
        self.rng = rng
        p = self.DEFAULTS
        j = rng.uniform(0.8, 1.2, size=3)
        self.mtbf_s = p.mtbf_h * 3600.0 * float(j[0])
        self.mttr_s = p.mttr_min * 60.0 * float(j[1])
        self.reject_rate = p.reject_rate * float(j[2])
        self.state = State.RUNNING
        self.run_cmd = True
        self.external: State | None = None  # blocked/starved imposed by the line (set by the plant)
        self.timer = 0.0
        self.fault_code = 0
        self.progress = float(rng.random())
        self.cycles = int(rng.integers(200_000, 4_000_000))
        self.rejects = int(self.cycles * self.reject_rate)
        self.good = self.cycles - self.rejects
        self.lot_done = int(rng.integers(0, max(p.lot_size, 1)))
        self.part_index = int(rng.integers(0, max(len(self.PARTS), 1)))
        self.energy_kwh = float(rng.uniform(2e4, 2e5))
        self.seconds = [0.0] * len(State)  # simulated seconds spent in each state (by code)
        self.changes = 0  # state changes so far
        self.power_kw = p.idle_kw
        self.motor_kw = 0.0
        self.values: dict[str, Value] = {}
        self.setpoints: dict[str, float] = {}
        self.init_process()
        self.publish()

    # ----- hooks for kinds -----
    def init_process(self) -> None:
        """Set initial process state and setpoints."""

    def cycle_time(self) -> float:
        return self.DEFAULTS.cycle_time

    def process(self, dt: float, running: bool, z: np.ndarray) -> None:
        """Advance process values by ``dt``; ``z`` holds NOISE standard normals. Sets power_kw/motor_kw."""
        self.power_kw = self.DEFAULTS.run_kw if running else self.DEFAULTS.idle_kw
        self.motor_kw = self.power_kw

    def reject_probability(self) -> float:
        return self.reject_rate

    def wear_fault(self, dt: float) -> int:
        """A fault code if slow wear made the machine fail during this step, else 0."""
        return 0

    def repaired(self, code: int) -> None:
        """Called when the repair of fault ``code`` completes."""

    def publish_process(self) -> None:
        """Write the kind's process values into ``self.values``."""

    # ----- the common machinery -----
    @property
    def part_number(self) -> str:
        return self.PARTS[self.part_index % len(self.PARTS)] if self.PARTS else ""

    def signal(self, name: str) -> Signal | None:
        return next((s for s in self.SIGNALS if s.name == name), None)

    def write(self, name: str, value: Value) -> None:
        """Apply a write to a writable signal (clamped to its range). Unknown or read-only names raise."""
        sig = self.signal(name)
        if sig is None or not sig.writable:
            writable = ", ".join(s.name for s in self.SIGNALS if s.writable)
            raise KeyError(f"{self.path}: {name!r} is not a writable signal of a {self.kind} (writable: {writable})")
        if name == "run_command":
            self.run_cmd = bool(value)
        else:
            v = float(value)
            if math.isnan(v):
                return
            self.setpoints[name] = min(max(v, sig.lo), sig.hi)
        self.publish()

    def kept(self) -> dict[str, float]:
        """What the machine's controller keeps across a restart: its counters and energy meter."""
        return {name: float(getattr(self, name)) for name in KEPT}

    def restore(self, kept: dict[str, float]) -> None:
        """Take back what ``kept()`` gave (names it does not know are ignored)."""
        for name in KEPT:
            if name in kept:
                value = kept[name]
                setattr(self, name, float(value) if name == "energy_kwh" else int(value))
        self.publish()

    def step(self, dt: float, t: float) -> None:
        """Advance this machine by ``dt`` simulated seconds; ``t`` is the simulated time at the step's start."""
        before = self.state
        self.update_state(dt, t)
        self.changes += self.state != before
        self.seconds[self.state] += dt
        running = self.state == State.RUNNING
        done = 0
        if running:
            self.progress += dt / max(self.cycle_time(), 1e-3)
            done = int(self.progress)
            self.progress -= done
        self.process(dt, running, self.rng.standard_normal(self.NOISE))
        if done:
            self.count(done)
        self.energy_kwh += self.power_kw * dt / 3600.0
        self.publish()

    def count(self, done: int) -> None:
        p = min(max(self.reject_probability(), 0.0), 1.0)
        bad = int(self.rng.binomial(done, p))
        self.cycles += done
        self.rejects += bad
        self.good += done - bad
        self.lot_done += done

    def enter(self, state: State, mean_s: float = 0.0) -> None:
        """Enter ``state``, with an exponentially distributed duration of mean ``mean_s`` if given."""
        self.state = state
        self.timer = max(float(self.rng.exponential(mean_s)), 10.0) if mean_s > 0 else 0.0

    def update_state(self, dt: float, t: float) -> None:
        self.timer -= dt
        if self.state == State.FAULTED:
            if self.timer > 0:
                return
            self.repaired(self.fault_code)
            self.fault_code = 0
            self.state = State.RUNNING
        if not self.run_cmd:
            self.state = State.PLANNED_STOP
            return
        if self.state == State.CHANGEOVER:
            if self.timer > 0:
                return
            self.part_index += 1
            self.lot_done = 0
            self.state = State.RUNNING
        if BREAK_START_S <= t % SHIFT_S < BREAK_END_S:
            self.state = State.PLANNED_STOP
        elif self.external is not None:
            self.state = self.external
        elif self.state in (State.IDLE, State.STARVED, State.BLOCKED) and self.timer > 0:
            return
        else:
            self.state = State.RUNNING
            self.running_events(dt)

    def running_events(self, dt: float) -> None:
        """Draw the events that can interrupt a running machine during ``dt``."""
        p = self.DEFAULTS
        code = self.wear_fault(dt)
        u = self.rng.random(4)
        if code == 0 and self.FAULTS and u[0] < _hazard(dt, self.mtbf_s):
            code = int(self.rng.choice(list(self.FAULTS)))
        if code:
            self.fault_code = code
            self.enter(State.FAULTED, self.repair_time(code))
        elif p.lot_size and self.lot_done >= p.lot_size:
            self.enter(State.CHANGEOVER, p.changeover_min * 60.0)
        elif u[1] < _hazard(dt, p.idle_every_h * 3600.0):
            self.enter(State.IDLE, p.idle_min * 60.0)
        elif u[2] < _hazard(dt, p.starved_every_h * 3600.0):
            self.enter(State.STARVED, p.starved_min * 60.0)
        elif u[3] < _hazard(dt, p.blocked_every_h * 3600.0):
            self.enter(State.BLOCKED, p.blocked_min * 60.0)

    def repair_time(self, code: int) -> float:
        """Mean repair time of fault ``code`` in seconds."""
        return self.mttr_s

    def publish(self) -> None:
        v = self.values
        v["state"] = int(self.state)
        v["state_name"] = STATE_NAMES[int(self.state)]
        v["run_command"] = self.run_cmd
        v["fault"] = self.state == State.FAULTED
        v["fault_code"] = self.fault_code
        v["cycle_count"] = self.cycles & MASK32
        v["good_count"] = self.good & MASK32
        v["reject_count"] = self.rejects & MASK32
        v["cycle_time"] = round(self.cycle_time(), 3)
        v["motor_current"] = self.motor_kw * 1000.0 / (math.sqrt(3.0) * VOLTS * POWER_FACTOR)
        v["power_kw"] = self.power_kw
        v["energy_kwh"] = self.energy_kwh
        if self.PARTS:
            v["part_number"] = self.part_number
        v.update(self.setpoints)
        self.publish_process()

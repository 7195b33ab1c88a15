"""The simulated plant: one simulated machine per machine of the plant model, tags bound to signals.

A tag binds to the signal of its machine's ``kind`` that has the tag's name (``zone1_temperature`` of an
oven, ``vibration`` of a cnc, ...). Every problem (unsupported kind, unknown tag name, a string signal on a
numeric tag, a writable tag on a read-only signal) is collected and raised as one ``ConfigError``.

Machines on one line are coupled through the line's conveyor: while a conveyor is faulted, idle or stopped
by command, the machines listed before it on the line are blocked and those after it are starved.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from plantlink.errors import ConfigError, ConfigProblem
from plantlink.model import Plant, TagInfo
from plantlink.sim.kinds import KINDS, Conveyor
from plantlink.sim.machine import MachineSim, Signal, State, Value


@dataclass(frozen=True)
class Binding:
    """A tag of the plant model bound to the signal of a simulated machine."""

    tag: TagInfo
    machine: MachineSim
    signal: Signal

    @property
    def path(self) -> str:
        return self.tag.path

    def value(self) -> Value:
        return self.machine.values[self.signal.name]


class PlantSim:
    """All simulated machines of a plant, stepped together on simulated time."""

    def __init__(self, plant: Plant, seed: int = 1):
        self.plant = plant
        self.seed = seed
        self.t = 0.0
        self.steps = 0
        self.machines: dict[str, MachineSim] = {}
        problems: list[ConfigProblem] = []
        for index, (path, m) in enumerate(plant.machines()):
            cls = KINDS.get(m.kind)
            if cls is None:
                known = ", ".join(sorted(KINDS))
                msg = f"machine kind {m.kind!r} cannot be simulated (simulated kinds: {known})"
                problems.append(ConfigProblem(plant.file, None, None, path, msg))
                continue
            self.machines[path] = cls(path, np.random.default_rng([seed, index]))
        self.bindings = self._bind(problems)
        if problems:
            raise ConfigError(problems)
        self.by_path = {b.path: b for b in self.bindings}
        self.lines = self._lines()
        self.pending: list[tuple[str, Value]] = []

    def _bind(self, problems: list[ConfigProblem]) -> list[Binding]:
        out: list[Binding] = []
        for t in self.plant.tags:
            machine = self.machines.get(t.path.rsplit("/", 1)[0])
            if machine is None:
                continue  # its kind is already reported
            problem = _check(t, machine)
            if problem:
                problems.append(ConfigProblem(self.plant.file, None, None, t.path, problem))
                continue
            sig = machine.signal(t.tag.name)
            assert sig is not None
            out.append(Binding(t, machine, sig))
        return out

    def _lines(self) -> list[list[MachineSim]]:
        lines: dict[str, list[MachineSim]] = defaultdict(list)
        for path, m in self.machines.items():
            lines[path.rsplit("/", 1)[0]].append(m)
        return [ms for ms in lines.values() if any(isinstance(m, Conveyor) for m in ms)]

    def machine(self, path: str) -> MachineSim:
        """The simulated machine at ``site/area/line/machine``."""
        return self.machines[path]

    def write(self, path: str, value: Value) -> None:
        """Queue a write to the tag at ``path``; it takes effect at the start of the next step."""
        b = self.by_path.get(path)
        if b is None:
            raise KeyError(f"no simulated tag {path!r}")
        if not b.signal.writable:
            raise KeyError(f"tag {path!r} ({b.signal.name}) is read-only in the simulation")
        self.pending.append((path, value))

    def apply_writes(self) -> None:
        pending, self.pending = self.pending, []
        for path, value in pending:
            b = self.by_path[path]
            b.machine.write(b.signal.name, value)

    def step(self, dt: float, n: int = 1) -> None:
        """Advance the whole plant by ``n`` steps of ``dt`` simulated seconds."""
        for _ in range(n):
            self.apply_writes()
            self._couple()
            for m in self.machines.values():
                m.step(dt, self.t)
            self.steps += 1
            self.t += dt

    def _couple(self) -> None:
        for line in self.lines:
            conv = [isinstance(m, Conveyor) for m in line]
            stopped = [c and (m.state in (State.FAULTED, State.IDLE) or not m.run_cmd)
                       for c, m in zip(conv, line, strict=True)]
            for i, m in enumerate(line):
                if conv[i]:
                    continue
                nxt = next((j for j in range(i + 1, len(line)) if conv[j]), None)
                prv = next((j for j in range(i - 1, -1, -1) if conv[j]), None)
                if nxt is not None and stopped[nxt]:
                    m.external = State.BLOCKED
                elif prv is not None and stopped[prv]:
                    m.external = State.STARVED
                else:
                    m.external = None

    def kept(self) -> dict[str, dict[str, float]]:
        """Machine path -> what it keeps across a restart (counters, energy meter): see ``restore``."""
        return {path: m.kept() for path, m in self.machines.items()}

    def restore(self, kept: dict[str, dict[str, float]]) -> None:
        """Give the machines back what ``kept()`` returned, as a PLC keeps its counters across a restart of
        the software that reads it. Machines not in the plant are ignored."""
        for path, state in kept.items():
            machine = self.machines.get(path)
            if machine is not None:
                machine.restore(state)

    def value(self, path: str) -> Value:
        return self.by_path[path].value()

    def snapshot(self) -> dict[str, Value]:
        """The current value of every bound tag, by tag path."""
        return {b.path: b.value() for b in self.bindings}


def _check(t: TagInfo, machine: MachineSim) -> str:
    """Why tag ``t`` cannot bind to ``machine``, or ``""``."""
    sig = machine.signal(t.tag.name)
    if sig is None:
        known = ", ".join(s.name for s in machine.SIGNALS)
        return f"a {machine.kind} provides no signal {t.tag.name!r} (tag names it provides: {known})"
    if (sig.type == "string") != (t.tag.type == "string"):
        need = "string" if sig.type == "string" else "float, int or bool"
        return f"signal {sig.name!r} is {sig.type}: the tag's type must be {need}, not {t.tag.type!r}"
    if t.tag.writable and not sig.writable:
        writable = ", ".join(s.name for s in machine.SIGNALS if s.writable)
        return f"signal {sig.name!r} of a {machine.kind} is read-only (writable: {writable})"
    return ""

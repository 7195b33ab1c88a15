"""A virtual plant: seeded, deterministic, time-scalable machines served over real OPC UA, Modbus TCP, S7 and Logix.

The simulator reads the same plant model the platform does (``examples/demo-plant.yaml``) and serves each
tag at the source the model declares, so the connectors read it exactly as they would a real plant.

Usage::

    from plantlink.model import load_plant
    from plantlink.sim import Simulator, plant_with_ports

    plant = load_plant("examples/demo-plant.yaml")
    sim = Simulator(plant, seed=1, speed=60, ports={"sim-modbus": 15020})
    await sim.start()           # binds every device's server, then steps on the wall clock
    sim.endpoints()             # {"sim-modbus": "modbus://127.0.0.1:15020", "sim-opcua": "opc.tcp://..."}
    sim.ports()                 # {"sim-modbus": 15020, "sim-opcua": 14840}  (bound ports)
    sim.snapshot()              # {"windsor/stamping/press-line-1/press1/tonnage": 421.3, ...}
    await sim.stop()
    text = plant_with_ports(Path(...).read_text(), sim.ports())   # the YAML pointed at those ports

API:

- ``Simulator(plant, *, seed=1, speed=1.0, ports=None, host="127.0.0.1", dt=None, tick=0.1)``;
  ``async start()``, ``async stop()`` (also ``async with``), ``endpoints() -> dict[str, str]``,
  ``ports() -> dict[str, int]``, ``snapshot() -> dict[str, value]``, ``async advance(steps=1)``
  (step by hand, for ``speed=0``), ``async pause()`` / ``resume()`` (stop and restart the clock; the servers
  keep serving), ``sim_time`` (simulated seconds), ``sim`` (the ``PlantSim``).
- ``run_sim(plant, *, speed, seed, ports) -> Simulator`` (not started).
- ``plant_with_ports(yaml_text, ports: dict[str, int]) -> str``: the YAML with device ports rewritten.
- ``PlantSim(plant, seed)``: the simulation without servers: ``step(dt, n)``, ``write(path, value)``
  (applied at the next step), ``snapshot()``, ``machine(path)``, ``kept()`` / ``restore(kept)`` (the
  counters and energy meters, which a PLC keeps when the software reading it restarts). Each machine keeps
  its own ledger: ``seconds`` (simulated seconds per state code) and ``changes`` (state changes).
- ``signal_names(kind)``: the tag names a machine kind provides; ``fault_codes()``: code -> meaning.

Determinism: each machine draws from ``numpy.random.default_rng([seed, machine_index])`` and the plant steps
on simulated time with a fixed ``dt`` (default 0.1 s at speed <= 10, coarser when faster, see
``auto_dt``). The same seed, ``dt`` and sequence of steps and writes give the same values.

Machines and tags: a tag binds to the signal of its machine's ``kind`` with the tag's name; see
:mod:`plantlink.sim.kinds` for the names each kind provides and :mod:`plantlink.sim.machine` for the state
codes (0 idle, 1 running, 2 starved, 3 blocked, 4 faulted, 5 planned_stop, 6 changeover). Writable signals:
``run_command`` (every kind: true starts, false stops into planned_stop), ``spm_setpoint`` (press),
``zone1..4_setpoint`` (oven), ``speed_setpoint`` (conveyor); writes are clamped to the signal's range.
"""

from plantlink.sim.kinds import KINDS, fault_codes, signal_names
from plantlink.sim.machine import STATE_NAMES, MachineSim, Signal, State
from plantlink.sim.plant import Binding, PlantSim
from plantlink.sim.runner import Simulator, auto_dt, plant_with_ports, run_sim

__all__ = [
    "KINDS",
    "STATE_NAMES",
    "Binding",
    "MachineSim",
    "PlantSim",
    "Signal",
    "Simulator",
    "State",
    "auto_dt",
    "fault_codes",
    "plant_with_ports",
    "run_sim",
    "signal_names",
]

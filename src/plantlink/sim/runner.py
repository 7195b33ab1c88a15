"""The running simulator: the simulated plant stepped against the wall clock and served over the network."""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
from typing import TYPE_CHECKING, cast

import yaml

from plantlink.connectors.logix.config import LogixDevice
from plantlink.connectors.modbus.config import ModbusDevice
from plantlink.connectors.opcua.config import OpcUaDevice
from plantlink.connectors.s7.config import S7Device
from plantlink.errors import ConfigError, ConfigProblem, PlantlinkError
from plantlink.model import Plant
from plantlink.sim.machine import Value
from plantlink.sim.plant import PlantSim
from plantlink.sim.servers import ModbusSimServer, OpcUaSimServer
from plantlink.tasks import cancel_and_wait

if TYPE_CHECKING:
    from plantlink.sim.logixserver import LogixSimServer
    from plantlink.sim.s7server import S7SimServer

    SimServer = ModbusSimServer | OpcUaSimServer | S7SimServer | LogixSimServer

log = logging.getLogger("plantlink.sim")

_DT_LADDER = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
#: protocol -> (module, package, extra) that serving it (the simulator) and reading it (the connector) need
NEEDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "s7": (("snap7", "python-snap7", "s7"),),
    "logix": (("pylogix", "pylogix", "logix"), ("ethernetip", "cm-ethernetip", "logix-sim")),
}


def missing_packages(plant: Plant) -> list[tuple[str, str]]:
    """(package, extra) of every optional package the simulation of ``plant`` and its connectors need that
    cannot be imported (by its devices' protocols: s7 needs python-snap7; logix pylogix and cm-ethernetip)."""
    protocols = {d.protocol for d in plant.devices.values() if d.enabled}
    out: list[tuple[str, str]] = []
    for protocol in sorted(protocols & set(NEEDS)):
        for module, package, extra in NEEDS[protocol]:
            try:
                importlib.import_module(module)
            except ImportError:
                out.append((package, extra))
    return out


def auto_dt(speed: float) -> float:
    """The step of simulated time for ``speed``: 0.1 s at real time, coarser when faster (<= ~10 steps a tick)."""
    want = speed / 100.0
    return next((d for d in _DT_LADDER if d >= want), _DT_LADDER[-1])


class Simulator:
    """A simulated plant served on loopback, following the plant model's devices.

    ``speed`` is simulated seconds per wall second (60 = one simulated minute per second; 0 = paused, step
    it with ``advance``). ``ports`` overrides the port of devices by device id. ``dt`` is the fixed step of
    simulated time (default ``auto_dt(speed)``): the same ``seed`` and ``dt`` give the same values.
    """

    def __init__(self, plant: Plant, *, seed: int = 1, speed: float = 1.0, ports: dict[str, int] | None = None,
                 host: str = "127.0.0.1", dt: float | None = None, tick: float = 0.1):
        if speed < 0 or not math.isfinite(speed):
            raise ValueError(f"speed must be a finite number >= 0, got {speed}")
        self.plant = plant
        self.sim = PlantSim(plant, seed=seed)
        self.speed = speed
        self.dt = dt if dt is not None else auto_dt(speed)
        self.tick = tick
        self.host = host
        ports = dict(ports or {})
        unknown = sorted(set(ports) - set(plant.devices))
        if unknown:
            raise ConfigError([ConfigProblem(plant.file, None, None, "devices",
                                             f"port override for unknown device(s) {', '.join(unknown)} "
                                             f"(devices: {', '.join(sorted(plant.devices))})")])
        missing = missing_packages(plant)
        if missing:
            extras = ",".join(sorted({e for _, e in missing}))
            raise PlantlinkError(f"simulating this plant needs {', '.join(p for p, _ in missing)} "
                                 f"(pip install 'plantlink[{extras}]')")
        self.servers: dict[str, SimServer] = {}
        for dev_id, dev in plant.devices.items():
            mine = [b for b in self.sim.bindings if b.tag.device == dev_id]
            if not dev.enabled or not mine:
                continue
            port = ports.get(dev_id)
            if dev.protocol == "modbus":
                self.servers[dev_id] = ModbusSimServer(dev_id, cast(ModbusDevice, dev.config), mine,
                                                       self.sim.write, host, port)
            elif dev.protocol == "opcua":
                self.servers[dev_id] = OpcUaSimServer(dev_id, cast(OpcUaDevice, dev.config), mine,
                                                      self.sim.write, host, port)
            elif dev.protocol == "s7":
                from plantlink.sim.s7server import S7SimServer  # snap7: the optional s7 extra

                self.servers[dev_id] = S7SimServer(dev_id, cast(S7Device, dev.config), mine, self.sim.write,
                                                   host, port)
            elif dev.protocol == "logix":
                from plantlink.sim.logixserver import LogixSimServer  # cm-ethernetip: the logix-sim extra

                self.servers[dev_id] = LogixSimServer(dev_id, cast(LogixDevice, dev.config), mine, self.sim.write,
                                                      host, port)
            else:
                log.warning("device %s: protocol %s is not simulated; its tags are not served", dev_id, dev.protocol)
        self._task: asyncio.Task[None] | None = None
        self._started: list[SimServer] = []

    async def start(self) -> None:
        """Start every server, then the clock. A port that cannot be bound raises PlantlinkError."""
        try:
            for server in self.servers.values():
                await server.start()
                self._started.append(server)
        except BaseException:
            await self.stop()
            raise
        self.resume()

    async def stop(self) -> None:
        await self.pause()
        while self._started:
            await self._started.pop().stop()

    async def pause(self) -> None:
        """Stop the clock: the machines stand still (counters too) while the servers keep serving."""
        await cancel_and_wait([self._task], "simulator clock")
        self._task = None

    def resume(self) -> None:
        """Start the clock again (from now: the paused time is not caught up)."""
        if self.speed > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="plantlink-sim")

    @property
    def paused(self) -> bool:
        return self._task is None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        t0_wall, t0_sim = loop.time(), self.sim.t
        max_steps = max(int(100 * self.speed * self.tick / self.dt), 10)
        while True:
            await asyncio.sleep(self.tick)
            target = t0_sim + (loop.time() - t0_wall) * self.speed
            n = int((target - self.sim.t) / self.dt)
            if n > max_steps:  # fell far behind (suspended laptop): skip ahead instead of catching up
                t0_wall, t0_sim, n = loop.time(), self.sim.t, max_steps
            if n > 0:
                await self.advance(n)

    async def advance(self, steps: int = 1) -> None:
        """Run ``steps`` steps of ``dt`` (client writes apply at the first) and publish to every server."""
        self.sim.step(self.dt, steps)
        await self.publish()

    async def publish(self) -> None:
        for server in self._started:
            if isinstance(server, OpcUaSimServer):
                await server.refresh()
            else:
                server.refresh()

    def endpoints(self) -> dict[str, str]:
        """Device id -> the address served (``modbus://host:port`` or the OPC UA endpoint URL)."""
        return {dev_id: s.endpoint for dev_id, s in self.servers.items()}

    def ports(self) -> dict[str, int]:
        """Device id -> the TCP port served (the bound port once started)."""
        return {dev_id: s.port for dev_id, s in self.servers.items()}

    def snapshot(self) -> dict[str, Value]:
        """Tag path -> current simulated value."""
        return self.sim.snapshot()

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the start."""
        return self.sim.t


def run_sim(plant: Plant, *, speed: float = 1.0, seed: int = 1, ports: dict[str, int] | None = None) -> Simulator:
    """A Simulator for ``plant`` (not started: ``await sim.start()``)."""
    return Simulator(plant, seed=seed, speed=speed, ports=ports)


def plant_with_ports(text: str, ports: dict[str, int]) -> str:
    """The plant YAML ``text`` with the ports of the devices in ``ports`` rewritten; comments are kept.

    A modbus device's ``port`` (added after ``host`` when absent) and the port in an opcua device's
    ``endpoint`` URL are changed; nothing else is touched.
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    devices = _child(root, "devices")
    if devices is None:
        raise PlantlinkError("the plant file has no 'devices' mapping")
    edits: list[tuple[int, int, str]] = []
    for dev_id, port in ports.items():
        dev = _child(devices, dev_id)
        if dev is None:
            raise PlantlinkError(f"no device {dev_id!r} in the plant file")
        edits.append(_port_edit(text, dev, dev_id, int(port)))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _port_edit(text: str, dev: yaml.Node, dev_id: str, port: int) -> tuple[int, int, str]:
    """(start, end, replacement) in the text that sets ``dev``'s port to ``port``."""
    endpoint, port_node, host = _child(dev, "endpoint"), _child(dev, "port"), _child(dev, "host")
    if isinstance(endpoint, yaml.ScalarNode):
        url = str(endpoint.value)
        head, sep, rest = url.partition("://")
        hostport, slash, path = rest.partition("/")
        hostname = hostport.rsplit(":", 1)[0] if ":" in hostport else hostport
        new = f"{head}{sep}{hostname}:{port}{slash}{path}"
        quote = text_quote(endpoint)
        return endpoint.start_mark.index, endpoint.end_mark.index, f"{quote}{new}{quote}"
    if isinstance(port_node, yaml.ScalarNode):
        return port_node.start_mark.index, port_node.end_mark.index, str(port)
    if isinstance(host, yaml.ScalarNode) and isinstance(dev, yaml.MappingNode):
        end = host.end_mark.index
        if dev.flow_style:
            return end, end, f", port: {port}"
        key_col = next(k.start_mark.column for k, v in dev.value if v is host)
        eol = text.find("\n", end)
        eol = len(text) if eol < 0 else eol
        return eol, eol, f"\n{' ' * key_col}port: {port}"
    raise PlantlinkError(f"device {dev_id!r} has neither 'endpoint' nor 'host': cannot set its port")


def text_quote(node: yaml.ScalarNode) -> str:
    return {"'": "'", '"': '"'}.get(node.style or "", "")

"""A data directory with known contents, written through a real Runtime (historian, store), and a real
server over one (its own event loop in a thread, real API-token authentication)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from plantlink.api.server import SslFiles, serve
from plantlink.auth import AuthService, AuthSettings, install_auth, tls_args
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, numeric_batch
from tests.api.conftest import settle
from tests.api.test_energy import ENERGY_PLANT, craft_meter, craft_power
from tests.api.test_oee_downtime import M1, local_us

TEMP, SPEED, DET = f"{M1}/temp", "windsor/a1/l1/m2/speed", "detroit/d1/l2/m3/temp"
T0 = int(datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()) * 1_000_000
#: temp: 12 samples 10 s apart (plus 123456 us, to see microseconds round trip), values 20.0, 20.5, ...;
#: the 4th is bad (an aggregate ignores it), the 5th uncertain.
TEMP_TS = [T0 + 123_456 + k * 10_000_000 for k in range(12)]
TEMP_VALUES = [20.0 + 0.5 * k for k in range(12)]
TEMP_QUALITY = [int(Quality.BAD) if k == 3 else int(Quality.UNCERTAIN) if k == 4 else int(Quality.GOOD)
                for k in range(12)]
SPEED_TS = [T0 + k * 30_000_000 for k in range(4)]
SPEED_VALUES = [1.25, 2.5, 3.75, 5.0]
DET_TS = [T0 + 5_000_000, T0 + 65_000_000]
DET_VALUES = [-3.5, 7.0]
#: downtime events of m1 (start, end, state): local times of 2026-03-10 in Toronto
EVENTS = [((7, 0), (7, 30), "planned_stop"), ((12, 0), (12, 20), "faulted")]


def plant_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    f = directory / "test-plant.yaml"
    f.write_text(ENERGY_PLANT, encoding="utf-8")
    return f


async def fill(rt: Runtime) -> None:
    """The known contents: the shift of tests/api/test_oee_downtime (states, counters), m1's power and m2's
    meter of tests/api/test_energy, samples, events."""
    await craft_power(rt)
    await craft_meter(rt)
    ids = rt.tag_ids
    rt.bus.publish(numeric_batch([ids[TEMP]] * 12, TEMP_TS, TEMP_VALUES, TEMP_QUALITY))
    rt.bus.publish(numeric_batch([ids[SPEED]] * 4, SPEED_TS, SPEED_VALUES, int(Quality.GOOD)))
    rt.bus.publish(numeric_batch([ids[DET]] * 2, DET_TS, DET_VALUES, int(Quality.GOOD)))
    assert rt.store is not None
    for (sh, sm), (eh, em), state in EVENTS:
        ev = rt.store.open_event(M1, "windsor/a1/l1", "windsor", local_us(sh, sm), state, "A")
        rt.store.close_event(ev, local_us(eh, em), state, False)
    await settle(rt)


def runtime_of(data_dir: Path, model: Path) -> Runtime:
    return Runtime(parse_plant(model.read_text(encoding="utf-8"), str(model)), data_dir, flush_interval=0.2)


def make_data_dir(data_dir: Path, model: Path) -> None:
    """Run plantlink on ``data_dir`` long enough to store the known contents, then stop it."""
    async def main() -> None:
        rt = runtime_of(data_dir, model)
        await rt.start()
        try:
            await fill(rt)
        finally:
            await rt.stop()

    asyncio.run(main())


@dataclass
class Server:
    url: str
    token: str  # a viewer of every site
    windsor_token: str  # a viewer of windsor only
    data_dir: Path


@contextmanager
def running_server(data_dir: Path, model: Path, *, tls: bool = False) -> Iterator[Server]:
    """plantlink on ``data_dir`` with the known contents and its API (real token auth) on a free port, in a
    thread of its own (the tests call it synchronously)."""
    ready: dict[str, object] = {}
    started, stop = threading.Event(), threading.Event()

    async def main() -> None:
        rt = runtime_of(data_dir, model)
        await rt.start()
        handle = None
        try:
            await fill(rt)
            assert rt.store is not None
            auth = AuthService(rt.store.engine, rt.data_dir, AuthSettings())
            auth.create_user("ana", {"*": "viewer"}, "test", password="a-long-test-password-1")
            ready["token"] = auth.create_token("ana", "notebook", None, "test").secret
            auth.create_user("bob", {"windsor": "viewer"}, "test", password="a-long-test-password-2")
            ready["windsor_token"] = auth.create_token("bob", "notebook", None, "test").secret
            ssl = None
            if tls:
                args = tls_args(rt.data_dir)
                ssl = SslFiles(args["ssl_certfile"], args["ssl_keyfile"])
            handle = await serve(rt, "127.0.0.1", 0, ssl=ssl, app_hook=lambda app: install_auth(app, auth))
            ready["url"] = handle.url
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
        except BaseException as exc:
            ready["error"] = exc
            started.set()
            raise
        finally:
            if handle is not None:
                await handle.stop()
            await rt.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="plantlink-server", daemon=True)
    thread.start()
    assert started.wait(120), "the server did not start"
    if "error" in ready:
        raise RuntimeError(f"the server did not start: {ready['error']!r}")
    try:
        yield Server(str(ready["url"]), str(ready["token"]), str(ready["windsor_token"]), data_dir)
    finally:
        stop.set()
        thread.join(60)

"""``plantlink plan``, ``apply`` and ``status`` against a running server (real API, real token auth)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from plantlink.api.server import serve
from plantlink.auth import AuthService, AuthSettings, install_auth
from plantlink.cli import app
from plantlink.model import load_plant
from plantlink.model.diff import model_digest
from plantlink.runtime import Runtime
from plantlink.samples import Quality, now_us, numeric_batch
from tests.plants import plant_yaml
from tests.waiting import patience, wait_for

runner = CliRunner()
TAGS = """
- name: m
  tags:
    - {name: t, unit: degC, source: {device: plc, address: 0}}
    - {name: u, source: {device: plc, address: 1}}
"""
PLANT = plant_yaml(devices="plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}", machines=TAGS)
T = "s1/a1/l1/m/t"


@dataclass
class Server:
    url: str
    engineer: str
    viewer: str
    runtime: Runtime


@contextmanager
def server(model: Path, data: Path) -> Iterator[Server]:
    ready: dict[str, object] = {}
    started, stop = threading.Event(), threading.Event()

    async def main() -> None:
        rt = Runtime(load_plant(model), data, flush_interval=0.1)
        await rt.start()
        handle = None
        try:
            rt.ingest(numeric_batch([rt.tag_ids[T]], now_us(), [21.5], Quality.GOOD))  # t has history
            await wait_for(lambda: rt.model.has_history(T), 30, "t's sample stored")
            assert rt.store is not None
            auth = AuthService(rt.store.engine, rt.data_dir, AuthSettings())
            auth.create_user("erin", {"*": "engineer"}, "test", password="a-long-test-password-1")
            ready["engineer"] = auth.create_token("erin", "cli", None, "test").secret
            auth.create_user("vic", {"*": "viewer"}, "test", password="a-long-test-password-2")
            ready["viewer"] = auth.create_token("vic", "cli", None, "test").secret
            handle = await serve(rt, "127.0.0.1", 0, app_hook=lambda a: install_auth(a, auth))
            ready["url"], ready["rt"] = handle.url, rt
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            started.set()
            if handle is not None:
                await handle.stop()
            await rt.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(patience(120)) and "url" in ready, "the server did not start"
    try:
        yield Server(str(ready["url"]), str(ready["engineer"]), str(ready["viewer"]), ready["rt"])  # type: ignore[arg-type]
    finally:
        stop.set()
        thread.join(patience(60))


def cli(*args: str, token: str, url: str) -> tuple[int, str]:
    res = runner.invoke(app, [*args, "--url", url, "--token", token])
    return res.exit_code, res.output


def test_plan_apply_and_status(tmp_path: Path) -> None:
    model = tmp_path / "plant.yaml"
    model.write_text(PLANT)
    changed = tmp_path / "changed.yaml"
    changed.write_text(PLANT.replace("unit: degC", "unit: K"))
    with server(model, tmp_path / "data") as s:
        code, out = cli("status", token=s.viewer, url=s.url)
        assert code == 0 and model_digest(load_plant(model)) in out and "1 devices, 2 tags" in out, out
        code, out = cli("plan", str(changed), token=s.engineer, url=s.url)
        assert code == 0, out
        assert f"~ tag {T}" in out and 'unit: "degC" -> "K"' in out and "earlier samples stay in degC" in out
        assert cli("plan", str(changed), "--exit-code", token=s.engineer, url=s.url)[0] == 2
        code, out = cli("plan", str(changed), token=s.viewer, url=s.url)
        assert code == 1 and "engineer role" in out, out
        code, out = cli("apply", str(changed), "--yes", token=s.engineer, url=s.url)
        assert code == 0 and "Applied in" in out, out
        new_digest = model_digest(load_plant(changed))
        assert new_digest in cli("status", token=s.viewer, url=s.url)[1]
        code, out = cli("plan", str(changed), "--exit-code", token=s.engineer, url=s.url)
        assert code == 0 and "No changes" in out, out
        assert s.runtime.plant.tag(T).tag.unit == "K"


def test_apply_refuses_history_loss_and_invalid_models(tmp_path: Path) -> None:
    model = tmp_path / "plant.yaml"
    model.write_text(PLANT)
    without_t = tmp_path / "without-t.yaml"
    without_t.write_text(PLANT.replace("    - {name: t, unit: degC, source: {device: plc, address: 0}}\n", ""))
    bad = tmp_path / "bad.yaml"
    bad.write_text(PLANT.replace("address: 1", "address: -4"))
    with server(model, tmp_path / "data") as s:
        before = s.runtime.model.digest()
        code, out = cli("apply", str(without_t), "--yes", token=s.engineer, url=s.url)
        assert code == 1 and f"- tag {T}" in out and "History loss" in out and "--allow-history-loss" in out, out
        code, out = cli("apply", str(bad), "--yes", token=s.engineer, url=s.url)
        assert code == 1 and "bad.yaml:" in out and "address" in out, out
        assert s.runtime.model.digest() == before and T in s.runtime.tag_ids
        code, out = cli("apply", str(without_t), "--yes", "--allow-history-loss", token=s.engineer, url=s.url)
        assert code == 0 and "Applied in" in out, out
        assert T not in s.runtime.tag_ids

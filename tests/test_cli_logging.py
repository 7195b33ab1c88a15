"""The log of ``plantlink run`` stays readable when a device answers garbage: a Modbus device whose address is
an HTTP server (a wrong port, a gateway's web page) made pymodbus append kilobytes of hex frame dumps
(``>>>>> recv: 0x48 0x54 ...``) to every failed poll; the error's first line is kept, the dumps only with
``--verbose``."""

from __future__ import annotations

import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plants import plant_yaml
from tests.waiting import wait_until


class _Http400(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while self.request.recv(4096):
            self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")


@pytest.fixture
def web_server() -> Iterator[int]:
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Http400)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("verbose", [False, True])
def test_a_device_answering_http_is_logged_without_frame_dumps(web_server: int, tmp_path: Path,
                                                                verbose: bool) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(plant_yaml(devices=f"plc: {{protocol: modbus, host: 127.0.0.1, port: {web_server}, poll: 200ms}}",
                                machines="- name: m1\n  tags:\n    - {name: t0, source: {device: plc, address: 0}}\n"))
    log = tmp_path / "stderr.log"
    args = [sys.executable, "-m", "plantlink.cli", "run", str(plant), "--no-api", "--no-wal", "--duration", "60",
            "--data-dir", str(tmp_path / "data"), *(["--verbose"] if verbose else [])]
    with log.open("w") as err:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        wait_until(lambda: log.read_text().count("Invalid Modbus protocol id") >= 2, 60, "two refused polls logged")
    finally:
        proc.terminate()
        proc.wait(30)
    text = log.read_text()
    if verbose:
        assert ">>>>> recv: 0x48 0x54 0x54 0x50" in text  # "HTTP", the frames for whoever asked
    else:
        assert ">>>>>" not in text and "0x48 0x54" not in text, text[-2000:]
        line = next(x for x in text.splitlines() if "Invalid Modbus protocol id" in x)
        assert "ERROR" in line and line.endswith("(frames: --verbose)")

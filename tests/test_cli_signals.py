"""SIGTERM and Ctrl-C (SIGINT) stop `plantlink demo` cleanly: a real process, signalled, then started again on
the same data directory. The stored intervals, downtime events and runs end as a clean stop, the next start
recovers nothing, and the log says so in readable times. A SIGKILL is the crash it is told apart from."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from plantlink.store import Store, default_url

#: A log line begins with an ISO 8601 time with its offset.
ISO_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d (INFO|WARNING|ERROR|DEBUG|CRITICAL) ")
#: Microseconds since the epoch as printed by a careless log line (16 digits starting with 1).
RAW_US = re.compile(r"\b1\d{15}\b")
DEVICES = 4  # Modbus, OPC UA, Logix and S7


class Demo:
    """`plantlink demo` in a subprocess, its stderr in a file."""

    def __init__(self, data_dir: Path, log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plantlink.cli", "demo", "--port", "0", "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL, stderr=log.open("w"), env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, what: str, count: int = 1, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while self.text().count(what) < count:
            if self.proc.poll() is not None:
                raise AssertionError(f"plantlink exited ({self.proc.returncode}) before {what!r}:\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what!r} within {timeout} s:\n{self.text()}")
            time.sleep(0.1)

    def stop(self, sig: signal.Signals, timeout: float = 120.0) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"plantlink did not stop within {timeout} s of {sig.name}:\n{self.text()}") from None


def stored(data_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    store = Store.open(default_url(data_dir))
    try:
        with store.engine.connect() as c:
            return {t: [tuple(r) for r in c.execute(sa.text(q))] for t, q in {
                "intervals": "SELECT machine, end_us, end_reason FROM state_intervals ORDER BY id",
                "events": "SELECT machine, end_us, end_reason FROM downtime_events ORDER BY id",
                "runs": "SELECT start_us, end_us, end_reason FROM runs ORDER BY id",
            }.items()}
    finally:
        store.close()


def check_clean(demo: Demo, data_dir: Path, runs: int, sig: signal.Signals) -> None:
    text = demo.text()
    assert f"stopped ({sig.name})" in text, text
    assert "crash" not in text and "did not stop cleanly" not in text, text
    assert "Traceback" not in text, text
    got = stored(data_dir)
    assert got["intervals"], "the demo recorded machine states"
    last = got["runs"][-1]
    assert len(got["runs"]) == runs and last[2] == "stop" and last[1] is not None, got["runs"]
    # everything is closed, and what this run left open at its stop is closed as a clean stop, at its end
    assert all(end is not None for _, end, _ in got["intervals"] + got["events"]), got
    at_stop = [r for _, end, r in got["intervals"] + got["events"] if end == last[1]]
    assert at_stop and set(at_stop) == {"stop"}, got
    assert {r for _, _, r in got["intervals"] + got["events"]} <= {"change", "stop"}, got
    check_readable(text)


def check_readable(text: str) -> None:
    logged = [ln for ln in text.splitlines() if re.match(r"^\d{4}-\d\d-\d\d", ln)]
    assert logged, text
    for line in logged:
        assert ISO_LINE.match(line), f"not an ISO 8601 log line: {line}"
        assert not RAW_US.search(line), f"raw microseconds in the log: {line}"


def run_until_connected(data: Path, log: Path) -> Demo:
    demo = Demo(data, log)
    demo.wait_for("is connected", DEVICES)
    time.sleep(1.0)  # let a few samples and state changes through
    return demo


@pytest.mark.timeout(900)  # three starts of a real process: a start takes a minute on a busy 2-core machine
def test_sigterm_then_sigint_stop_cleanly_and_the_restarts_recover_nothing(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    for n, sig in enumerate((signal.SIGTERM, signal.SIGINT), start=1):
        demo = run_until_connected(data, tmp_path / f"run{n}.log")  # run 2 is the restart after SIGTERM
        assert demo.stop(sig) == 0, demo.text()
        check_clean(demo, data, n, sig)

    # the restart after SIGINT; a signal while it is still starting (the simulator serves, plantlink opens its
    # stores) stops cleanly too
    demo = Demo(data, tmp_path / "run3.log")
    demo.wait_for("simulator: sim-s7-detroit")
    assert demo.stop(signal.SIGTERM) == 0, demo.text()
    text = demo.text()
    assert "crash" not in text and "Traceback" not in text, text
    got = stored(data)
    assert all(end is not None for _, end, _ in got["intervals"] + got["events"] + got["runs"]), got


@pytest.mark.timeout(600)
def test_a_kill_is_a_crash_and_the_restart_says_so_in_readable_times(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    demo = run_until_connected(data, tmp_path / "run1.log")
    demo.stop(signal.SIGKILL)
    demo = run_until_connected(data, tmp_path / "run2.log")
    assert demo.stop(signal.SIGINT) == 0
    text = demo.text()
    assert "did not stop cleanly" in text and "left open by a crash, closed at the last known time 20" in text
    check_readable(text)
    runs = stored(data)["runs"]
    assert [r[2] for r in runs] == ["crash", "stop"], runs

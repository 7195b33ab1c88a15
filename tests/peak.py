"""``Peak``: the highest resident memory of a process while a block runs (sampled every 10 ms)."""

from __future__ import annotations

import threading
import time

import psutil


class Peak:
    """The highest resident memory of process ``pid`` (default: this one) while running."""

    def __init__(self, pid: int | None = None, every_s: float = 0.01) -> None:
        self.proc, self.every_s, self.peak, self.stop = psutil.Process(pid), every_s, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.every_s)

    def __enter__(self) -> Peak:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

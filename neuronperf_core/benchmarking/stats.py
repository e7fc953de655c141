"""CPU and memory use of the machine, sampled in a background thread.

Read from /proc (Linux, where Neuron and most CUDA hosts run); elsewhere the
sampler records nothing and reports carry None. Each sample is the machine's
CPU busy percentage since the previous sample and its used-memory percentage.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

PROC_STAT = "/proc/stat"
PROC_MEMINFO = "/proc/meminfo"


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot."""
    try:
        with open(PROC_STAT) as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def _mem_percent() -> float | None:
    try:
        with open(PROC_MEMINFO) as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f}
        return 100.0 * (1 - info["MemAvailable"] / info["MemTotal"])
    except (OSError, ValueError, KeyError, IndexError):
        return None


class StatsSampler:
    """Samples every ``interval_s`` between ``start()`` and ``stop()``."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._cpu: list[float] = []
        self._mem: list[float] = []
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="neuronperf-stats", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = _cpu_times()
        while not self._done.wait(self.interval_s):
            now = _cpu_times()
            if last is not None and now is not None and now[1] > last[1]:
                self._cpu.append(100.0 * (now[0] - last[0]) / (now[1] - last[1]))
            last = now
            mem = _mem_percent()
            if mem is not None:
                self._mem.append(mem)

    def stop(self) -> dict[str, Any]:
        """Stop sampling; the samples as the raw result's "stats"."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        return {
            "interval_s": self.interval_s,
            "cpu_percent": np.asarray(self._cpu, dtype=np.float64),
            "mem_percent": np.asarray(self._mem, dtype=np.float64),
        }

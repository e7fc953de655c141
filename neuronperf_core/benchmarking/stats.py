"""The machine: its CPU and memory use, the load other processes put on it, and what
it is (host, CPU, memory, OS, versions) for every results file.

Read from /proc (Linux, where Neuron and most CUDA hosts run); elsewhere the
sampler records nothing and reports carry None. Each sample is the machine's
CPU busy percentage since the previous sample and its used-memory percentage.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from neuronperf_core.uncertainty import BUSY_SHARE

PROC_STAT = "/proc/stat"
PROC_MEMINFO = "/proc/meminfo"


def cpu_times() -> tuple[int, int, int] | None:
    """(busy, total, steal) jiffies of all CPUs since boot. Busy includes steal: the time
    a virtual machine's hypervisor gave other guests while this one had work to run."""
    try:
        with open(PROC_STAT) as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    steal = fields[7] if len(fields) > 7 else 0
    return total - idle, total, steal


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
        last = cpu_times()
        while not self._done.wait(self.interval_s):
            now = cpu_times()
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


# ---------------------------------------------------------------- the machine's load per config

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
LOAD_FIELDS = ("started_utc", "other_cpu_s", "other_cpu_share", "steal_cpu_s", "busy_machine")


def _own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have exited (model copies are
    joined before a config's result comes back)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadMeter:
    """The CPU time others used while one config ran (loading, warm-up and the timed
    window): the machine's busy time from /proc/stat minus the benchmark's own (this
    process and its model copies), and the part of it a hypervisor stole for other
    virtual machines. Where /proc/stat cannot be read, None."""

    def __init__(self) -> None:
        self.started_utc = _utc_now()
        self._wall = time.perf_counter()
        self._machine = cpu_times()
        self._own = _own_cpu_s()

    def stop(self) -> dict[str, Any]:
        """The raw result's "load"."""
        machine, own = cpu_times(), _own_cpu_s()
        out: dict[str, Any] = {
            "started_utc": self.started_utc,
            "wall_s": time.perf_counter() - self._wall,
            "cpus": os.cpu_count() or 1,
            "own_cpu_s": own - self._own,
            "machine_cpu_s": None,
            "steal_cpu_s": None,
        }
        if machine is not None and self._machine is not None:
            out["machine_cpu_s"] = (machine[0] - self._machine[0]) / CLOCK_TICKS
            out["steal_cpu_s"] = (machine[2] - self._machine[2]) / CLOCK_TICKS
        return out


def load_fields(load: Mapping[str, Any] | None) -> dict[str, Any]:
    """A report's fields from a raw result's "load": the config's UTC start, the CPU
    seconds others used (other processes, and a hypervisor's steal for other virtual
    machines), their share of the machine's CPU time, the steal alone, and whether that
    share passed ``BUSY_SHARE`` (None when unknown)."""
    out: dict[str, Any] = dict.fromkeys(LOAD_FIELDS)
    if not load:
        return out
    out["started_utc"] = load.get("started_utc")
    machine, own, wall = load.get("machine_cpu_s"), load.get("own_cpu_s"), load.get("wall_s")
    if machine is None or own is None or not wall:
        return out
    other = max(0.0, float(machine) - float(own))  # tick rounding can make it slightly negative
    share = other / (float(wall) * int(load.get("cpus") or 1))
    out.update(other_cpu_s=other, other_cpu_share=share, busy_machine=share > BUSY_SHARE)
    steal = load.get("steal_cpu_s")
    out["steal_cpu_s"] = None if steal is None else min(float(steal), other)
    return out


# ---------------------------------------------------------------- the machine and the run

RUN_FIELDS = (
    "run_started_utc",
    "host",
    "cpu_model",
    "cpu_count",
    "memory_gb",
    "os",
    "python_version",
    "versions",
    "command",
    "call",
)
PACKAGES = ("numpy", "torch", "torch-neuronx", "neuronx-cc")  # recorded where installed


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gb() -> float | None:
    try:
        with open(PROC_MEMINFO) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def versions() -> dict[str, str]:
    """The installed versions of neuronperf, every plugin's distribution, and the
    frameworks of ``PACKAGES``: read from package metadata, importing none of them."""
    from importlib import metadata

    from neuronperf_core.plugins import ENTRY_POINT_GROUP

    names = ["neuronperf-core"]
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None:
            names.append(ep.dist.name)
    out = {}
    for name in [*dict.fromkeys(names), *PACKAGES]:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def run_info(call: str) -> dict[str, Any]:
    """The raw results' "run": when and where the run started, what ran it (``call``:
    the Python call, e.g. ``benchmark(duration=5.0)``; ``command``: this process's
    command line), and the versions of what measured."""
    return {
        "run_started_utc": _utc_now(),
        "host": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python_version": platform.python_version(),
        "versions": versions(),
        "command": shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]]) if sys.argv else None,
        "call": call,
    }


def run_fields(run: Mapping[str, Any] | None) -> dict[str, Any]:
    return {name: (run or {}).get(name) for name in RUN_FIELDS}

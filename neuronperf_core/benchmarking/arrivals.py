"""Open-loop load: when each request arrives, and waiting for it.

A closed loop sends the next request when the last returns, so a model that stalls is
simply sent less work and its stall hides from the latencies (coordinated omission). An
open loop sends requests on a schedule set in advance, whatever the model does, and counts
each request's latency from its scheduled arrival: time spent queued behind a slow request
is part of it.

Each model copy draws its own share of the arrivals and its workers serve them from one
queue, in order (a copy's workers take the next arrival from a shared counter: a copy is
an M/G/c queue). The copies' shares add up to the process asked for, with no queue across
processes:

- "poisson": each of the ``n`` copies gets an independent Poisson stream of rate ``R / n``
  (its own seed); the sum of independent Poisson streams is a Poisson stream of rate
  ``R``, and splitting one at random gives the same thing, so this is exactly a Poisson
  stream sent to copies chosen at random, as a load balancer might.
- "constant": arrivals every ``1 / R`` seconds, dealt round robin: copy ``k`` gets
  arrivals ``k, k + n, k + 2n, ...``.
- a file of timestamps (seconds, one per line): replayed as recorded, dealt round robin;
  ``arrival_rate`` when given rescales time so that the mean rate is that rate.
"""

from __future__ import annotations

import ctypes
import itertools
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.options import ARRIVAL_PROCESSES

PROCESSES = ARRIVAL_PROCESSES
POISSON, CONSTANT = PROCESSES
# The last stretch before an arrival is waited out awake (sleep(0) loops, which let other
# threads run): a sleeping core can take 100 us or more to wake, on a VM most of all.
SPIN_NS = 200_000
MAX_SLEEP_S = 0.01  # a sleeping worker looks at its stop this often (Ctrl-C)
_PR_SET_TIMERSLACK = 29  # linux/prctl.h

Int64Array = npt.NDArray[np.int64]


class ArrivalsError(NeuronPerfError, ValueError):
    """An arrival process or a file of arrival timestamps that cannot be used."""


def read_trace(path: str | Path) -> Int64Array:
    """A file of arrival timestamps (seconds, one per line; blank lines and ``#`` comments
    skipped) as nanoseconds since its first arrival, sorted."""
    values: list[float] = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ArrivalsError(
            f"arrivals={str(path)!r} is neither 'poisson' nor 'constant', and the file cannot "
            f"be read ({exc.strerror or exc}): pass one of those, or a file of arrival times in "
            "seconds, one per line."
        ) from None
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise ArrivalsError(
                f"{path}:{number}: {text!r} is not a time in seconds; the file holds one "
                "arrival time per line (e.g. 0.0125)."
            ) from None
        if not np.isfinite(value):
            raise ArrivalsError(f"{path}:{number}: {text!r} is not a finite time in seconds.")
        values.append(value)
    if len(values) < 2:
        raise ArrivalsError(
            f"{path} holds {len(values)} arrival time(s): a replay needs at least 2 (their "
            "spacing sets the rate)."
        )
    seconds = np.sort(np.asarray(values, dtype=np.float64))
    trace: Int64Array = np.round((seconds - seconds[0]) * 1e9).astype(np.int64)
    return trace


def trace_rate(trace_ns: Int64Array) -> float:
    """A trace's own mean rate, in arrivals per second."""
    span = int(trace_ns[-1] - trace_ns[0])
    return (len(trace_ns) - 1) * 1e9 / span if span > 0 else float("inf")


class Schedule:
    """One copy's arrivals, as offsets from the start of the timed window, handed out in
    order to the copy's workers (``take``), each arrival to exactly one worker.

    Poisson arrivals are drawn in chunks as they are needed, so a run of any length holds
    only what it uses; a replay holds its copy's share of the trace."""

    CHUNK = 4096

    def __init__(
        self,
        process: str,
        rate: float | None,
        n_copies: int,
        copy_id: int,
        seed: int = 0,
        trace_ns: Int64Array | None = None,
    ) -> None:
        self.process = process
        self.offsets: Int64Array = np.empty(0, np.int64)
        self.finite = trace_ns is not None
        self._lock = threading.Lock()
        self._next = itertools.count()  # next() is atomic: workers share it without a lock
        if trace_ns is not None:
            scale = 1.0 if rate is None else trace_rate(trace_ns) / rate
            offsets = trace_ns[copy_id::n_copies]
            self.offsets = np.round(offsets * scale).astype(np.int64)
            return
        if rate is None or rate <= 0:
            raise ArrivalsError(f"{process} arrivals need an arrival_rate above 0, got {rate!r}.")
        if process == POISSON:
            self._rng = np.random.default_rng([seed, copy_id])
            self._mean_gap_ns = n_copies * 1e9 / rate
            self._last = 0.0
        elif process == CONSTANT:
            self._gap_ns = n_copies * 1e9 / rate
            self._phase_ns = copy_id * 1e9 / rate
        else:
            raise ArrivalsError(f"unknown arrival process {process!r}; use one of {PROCESSES}.")

    def _extend(self, needed: int) -> None:
        with self._lock:
            while len(self.offsets) <= needed:
                have = len(self.offsets)
                times: npt.NDArray[np.floating[Any]]
                if self.process == POISSON:
                    gaps = self._rng.exponential(self._mean_gap_ns, self.CHUNK)
                    times = self._last + np.cumsum(gaps)
                    self._last = float(times[-1])
                else:
                    times = self._phase_ns + self._gap_ns * np.arange(have, have + self.CHUNK)
                chunk = np.round(times).astype(np.int64)
                self.offsets = np.concatenate([self.offsets, chunk])

    def take(self) -> int | None:
        """The next arrival not yet handed out, as its offset from the start; None past a
        replay's end."""
        index = next(self._next)
        if index >= len(self.offsets):
            if self.finite:
                return None
            self._extend(index)
        return int(self.offsets[index])

    def due_before(self, offset_ns: int) -> int:
        """How many arrivals are due before ``offset_ns``."""
        if not self.finite:
            while len(self.offsets) == 0 or self.offsets[-1] < offset_ns:
                self._extend(len(self.offsets) + self.CHUNK - 1)
        return int(np.searchsorted(self.offsets, offset_ns, side="left"))


def precise_sleep() -> None:
    """Make this thread's sleeps end on time: Linux lets a sleep overrun by the thread's
    timer slack (50 us by default), which would show up as the generator's lag. Elsewhere
    the last ``SPIN_NS`` before an arrival are waited out awake anyway."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)  # 1 ns: sleeps end when asked
    except (OSError, AttributeError):  # no prctl in this libc: sleeps overrun a little
        pass


def wait_until(due_ns: int, stop_at: list[int], clock: Any = time.perf_counter_ns) -> bool:
    """Wait for ``due_ns``: asleep until ``SPIN_NS`` before it, then awake (``sleep(0)``
    lets other threads run meanwhile). False when the stop (``stop_at[0]``) comes first."""
    sleep = time.sleep
    while True:
        now = clock()
        left = due_ns - now
        if left <= 0:
            return True
        if now >= stop_at[0]:
            return False
        if left > SPIN_NS:
            sleep(min((left - SPIN_NS) / 1e9, MAX_SLEEP_S))
        else:
            sleep(0)

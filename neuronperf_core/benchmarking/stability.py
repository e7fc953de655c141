"""``until_stable``: judging stability while a config runs, to stop it once stable.

Workers time in segments of one window each (``worker.run_worker``); between two
segments, outside the timed loop, a worker posts the window it finished to its copy's
``WindowBoard``. Once every worker of the copy posted a window, the board judges the
copy's last windows as reports do (``uncertainty.stability``: the last 3 within the
tolerance on throughput and p50) and says whether the copy is stable now. The config
stops when every copy is stable (``StableVotes``): in this process for the threads
runner; through the parent, which tells every copy to stop, for copies in processes of
their own. The window length is the config's ``window_s`` or its default for the run's
``duration`` (``uncertainty.window_length_s``), which is the maximum: an unstable config
stops there. It never stops before ``uncertainty.MIN_VALID_DURATION_S`` either (where
the maximum allows), so a stable result is also long enough to be valid.

Reports judge stability again, from all the samples, after the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from neuronperf_core import uncertainty


class WindowBoard:
    """One copy's windows, posted by its workers; ``on_change(stable)`` is called each
    time the copy's stability changes (first with False or True after 3 windows)."""

    def __init__(
        self,
        n_workers: int,
        start_ns: int,
        window_ns: int,
        tolerance: float,
        min_ns: int,
        on_change: Callable[[bool], None],
        open_loop: bool = False,
    ) -> None:
        self.n_workers = n_workers
        self.start_ns = start_ns
        self.window_ns = window_ns
        self.tolerance = tolerance
        self.min_windows = -(-min_ns // window_ns)  # windows that make up the minimum duration
        self.on_change = on_change
        self.open_loop = open_loop  # judged on p50 alone (uncertainty.stability)
        self.rates: list[float] = []
        self.p50s: list[float | None] = []
        self.stable: bool | None = None
        self._posted: dict[int, list[tuple[int, npt.NDArray[np.int64]]]] = {}
        self._lock = threading.Lock()

    def post(self, window: int, count: int, latency_ns: npt.NDArray[np.int64]) -> None:
        """A worker's ``count`` inferences that ended in ``window`` (0-based), and the
        latencies it kept of them."""
        with self._lock:
            posted = self._posted.setdefault(window, [])
            posted.append((count, latency_ns))
            if len(posted) < self.n_workers or window != len(self.rates):
                return  # other workers still in this window (or windows come in order)
            while len(self._posted.get(len(self.rates), ())) == self.n_workers:
                done = self._posted.pop(len(self.rates))
                latencies = np.concatenate([lat for _, lat in done])
                self.rates.append(sum(n for n, _ in done) / (self.window_ns / 1e9))
                self.p50s.append(float(np.median(latencies)) if latencies.size else None)
            stable = self._judge()
            if stable != self.stable:
                self.stable = stable
                self.on_change(stable)

    def _judge(self) -> bool:
        last = uncertainty.STABLE_WINDOWS
        if len(self.rates) < max(last, self.min_windows):
            return False
        spreads = [uncertainty.spread(self.p50s[-last:])]
        if not self.open_loop:
            spreads.append(uncertainty.spread(self.rates[-last:]))
        return all(s is not None and s <= self.tolerance for s in spreads)


class StableVotes:
    """The config stops (``stop()``) once every copy says it is stable."""

    def __init__(self, n_copies: int, stop: Callable[[], None]) -> None:
        self.votes = [False] * n_copies
        self.stop = stop
        self._lock = threading.Lock()
        self._stopped = False

    def vote(self, copy_id: int, stable: bool) -> None:
        with self._lock:
            self.votes[copy_id] = stable
            if all(self.votes) and not self._stopped:
                self._stopped = True
                self.stop()

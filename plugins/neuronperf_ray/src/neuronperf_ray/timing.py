"""Clocks across machines: each actor times with its own monotonic clock and sends back
durations from its own start; the driver lines the copies up on its clock.

Ray documents no clock synchronisation between nodes, and monotonic clocks of different
machines share no epoch. So the driver never compares two machines' readings directly: it
estimates each actor's clock offset from round trips (the actor's reading lies between the
driver's send and receive, so the offset is known to within half the round trip), tells
each actor the start in the actor's own clock, and reads back durations since that start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from neuronperf_core.benchmarking.worker import WorkerResult

PING_ROUNDS = 8  # round trips per actor; the fastest gives the tightest bound


@dataclass(frozen=True)
class ClockOffset:
    """An actor's clock minus the driver's: within ``error_ns`` of ``offset_ns``."""

    offset_ns: int
    error_ns: int
    round_trip_ns: int


def estimate_offset(
    ping: Callable[[], int],
    rounds: int = PING_ROUNDS,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> ClockOffset:
    """The offset of the clock ``ping()`` reads remotely, from the fastest of ``rounds``
    round trips: the remote reading ``r`` was taken between the driver's ``t0`` and ``t1``,
    so the offset is ``r - (t0 + t1) / 2``, give or take ``(t1 - t0) / 2``."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    best: tuple[int, int] | None = None
    for _ in range(rounds):
        t0 = clock()
        remote = ping()
        t1 = clock()
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, remote - (t0 + t1) // 2)
    assert best is not None
    round_trip, offset = best
    return ClockOffset(offset, (round_trip + 1) // 2, round_trip)


@dataclass(frozen=True)
class CopyRun:
    """What one actor sends back: its lifecycle times and its workers, whose timestamps are
    durations since the start it was given, on its own clock."""

    copy: dict[str, int]
    workers: list[WorkerResult]


def since(worker: WorkerResult, start_ns: int) -> WorkerResult:
    """``worker`` with its timestamps made durations since ``start_ns`` (in the actor)."""
    return _moved(worker, -start_ns)


def shifted(worker: WorkerResult, start_ns: int) -> WorkerResult:
    """``worker``'s durations since the start, placed at ``start_ns`` on the driver's clock."""
    return _moved(worker, start_ns)


def _moved(worker: WorkerResult, by_ns: int) -> WorkerResult:
    opened = worker.open_window_ns
    return replace(
        worker,
        stamps=worker.stamps + by_ns,
        last_end_ns=worker.last_end_ns + by_ns if worker.count else 0,
        open_window_ns=None if opened is None else (opened[0] + by_ns, opened[1] + by_ns),
    )


def copy_window(workers: Sequence[WorkerResult]) -> tuple[int, int] | None:
    """A copy's window: its workers' first start to their last end, or an open loop's
    schedule window (None: nothing timed)."""
    timed = [w for w in workers if w.count]
    if not timed:
        return None
    window = min(int(w.stamps[0, 0]) for w in timed), max(w.last_end_ns for w in timed)
    for opened in (w.open_window_ns for w in workers if w.open_window_ns is not None):
        window = min(window[0], opened[0]), max(window[1], opened[1])
    return window


def overlap(windows: Sequence[tuple[int, int] | None]) -> tuple[int, int] | None:
    """The time every copy was running: the latest start to the earliest end (None when a
    copy timed nothing or the windows do not overlap)."""
    if not windows or any(w is None for w in windows):
        return None
    start = max(w[0] for w in windows if w is not None)
    end = min(w[1] for w in windows if w is not None)
    return (start, end) if end > start else None


def trimmed(worker: WorkerResult, window: tuple[int, int]) -> WorkerResult:
    """``worker`` keeping only the inferences that ran wholly inside ``window``. A worker that
    kept every ``stride``-th inference counts ``stride`` for each kept one, as reports do."""
    stamps = worker.stamps
    inside = (stamps[:, 0] >= window[0]) & (stamps[:, -1] <= window[1])
    kept = np.ascontiguousarray(stamps[inside])
    return replace(
        worker,
        stamps=kept,
        count=len(kept) * worker.stride,
        last_end_ns=int(kept[-1, -1]) if len(kept) else 0,
    )

"""Does the regression gate tell a real slowdown from noise, on this machine?

    python bench/stability.py [--pairs 10] [--seconds 10] [--pct 5] [--gate throughput,p50]

20 pairs of runs of one config (1 copy x 1 worker, the threads runner), in one run:

- 10 identical pairs: both runs time the same model;
- 10 slowed pairs: the second run's model is slowed by 10 %: after each call it
  busy-waits (``time.perf_counter`` in a loop, holding the CPU as the model does) for a
  tenth of the model's median latency, measured once in this process before the pairs.

The model is a numpy matmul of float64 256 x 256 matrices on one BLAS thread (about
1-2 ms a call on a small machine): real work whose speed the machine's other jobs move.
Identical and slowed pairs alternate, so a change in the machine's load falls on both.

Each pair is judged as ``neuronperf report OLD NEW --fail-if-slower PCT --gate STATS``
does (``Comparison.gate``): an alarm when a gated statistic got slower by more than PCT %
and significantly so. Targets (issue 12): at most 1 false alarm in the 10 identical
pairs, at least 9 of the 10 slowdowns caught. Printed per pair: the change of each
gated statistic with its 95 % interval, and the share of the CPU other processes used
during each run (``other_cpu_share``, the busier of the two).
"""

from __future__ import annotations

import os

# One BLAS thread, so the model's speed is the matmul's, not the BLAS pool's; set before numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import neuronperf as npf
from neuronperf_core.compare import check_gate, compare_reports

SIZE = 256
SLOWDOWN = 0.10


class MatMul:
    """The model: one float64 matmul; ``wait_s`` of busy-waiting after it (the slowdown)."""

    def __init__(self, wait_s: float = 0.0) -> None:
        rng = np.random.default_rng(0)
        self.a = rng.random((SIZE, SIZE))
        self.wait_s = wait_s

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self.a @ x
        if self.wait_s:
            until = time.perf_counter() + self.wait_s
            while time.perf_counter() < until:  # holds the CPU, as the work does
                pass
        return out


def median_latency_s(model: MatMul, x: np.ndarray, calls: int = 500) -> float:
    for _ in range(50):
        model(x)
    took = []
    for _ in range(calls):
        start = time.perf_counter()
        model(x)
        took.append(time.perf_counter() - start)
    return statistics.median(took)


def run(model: MatMul, x: np.ndarray, seconds: float) -> dict[str, Any]:
    (report,) = npf.cpu.benchmark(
        model, x, duration=seconds, n_models=1, workers_per_model=1, runner="threads",
        results_dir=None, verbosity=0, warmup_seconds=0.5,
    )  # fmt: skip
    assert report["status"] == "finished", report["error"]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10, help="pairs of each kind")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per run")
    parser.add_argument("--pct", type=float, default=5.0, help="the gate's --fail-if-slower")
    parser.add_argument("--gate", default="throughput,p50", help="the gated statistics")
    args = parser.parse_args()
    gate = check_gate(args.gate)
    x = np.random.default_rng(1).random((SIZE, SIZE))
    base = median_latency_s(MatMul(), x)
    wait_s = SLOWDOWN * base
    print(f"model: {SIZE}x{SIZE} float64 matmul, median {base * 1e3:.3f} ms a call; slowed: "
          f"+{wait_s * 1e6:.0f} us busy-wait per call (+{SLOWDOWN:.0%}); {args.seconds:g} s "
          f"per run; gate: --fail-if-slower {args.pct:g} --gate {','.join(gate)}")  # fmt: skip
    print(f"{'pair':<12} {'alarm':>5}  " + "  ".join(f"{s:>34}" for s in gate) + "  others")
    alarms = {"identical": 0, "slowed": 0}
    for i in range(args.pairs):
        for kind in ("identical", "slowed"):
            old = run(MatMul(), x, args.seconds)
            new = run(MatMul(wait_s if kind == "slowed" else 0.0), x, args.seconds)
            verdict = compare_reports([old], [new]).gate(args.pct, gate)
            alarm = not verdict.passed
            alarms[kind] += alarm
            row = verdict.configs[0][0]
            cells = []
            for name in gate:
                change = row.change(
                    {"throughput": "throughput_avg"}.get(name, f"latency_ms_{name}")
                )
                if change is None or change.change_pct is None:
                    cells.append(f"{'N/A':>34}")
                    continue
                interval = (
                    f"[{change.interval_pct[0]:+6.1f}, {change.interval_pct[1]:+6.1f}]"
                    if change.interval_pct
                    else "untested"
                )
                mark = "*" if change.significant else " "
                cells.append(f"{change.change_pct:+7.1f}%{mark} {interval:>24}")
            others = max(r["other_cpu_share"] or 0.0 for r in (old, new))
            print(f"{kind} {i + 1:<3} {'YES' if alarm else 'no':>5}  " + "  ".join(cells)
                  + f"  {others:>5.0%}")  # fmt: skip
    print(f"false alarms: {alarms['identical']} of {args.pairs} identical pairs "
          f"(target: at most {args.pairs // 10})")  # fmt: skip
    print(f"slowdowns caught: {alarms['slowed']} of {args.pairs} slowed pairs "
          f"(target: at least {args.pairs - args.pairs // 10})")  # fmt: skip
    print("(* significant at 95 %; intervals are the change's, in %)")


if __name__ == "__main__":
    main()

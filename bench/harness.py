"""What the benchmark harness costs, how it scales, and how much memory it holds.

    python bench/harness.py [--rounds 5] [--seconds 2] [--memory-seconds 60]

1. Overhead: a null model through ``npf.cpu.benchmark`` (one copy, one worker,
   threads) against a bare Python loop that calls the same model and reads
   the clock twice, alternated over several rounds in this run. Target:
   under 0.5 us per inference above the bare loop.
2. Scaling: a model that releases the GIL (a numpy matmul of about 1 ms on
   one BLAS thread) with 1 and 2 copies, on the threads and the processes
   runner: throughput of 2 copies / (2 x throughput of 1 copy).
3. Memory: peak RSS of a fresh interpreter running a null model for
   --memory-seconds, against the same for 2 s: bounded means about equal.
"""

from __future__ import annotations

import os

# One BLAS thread per copy, so copies (not BLAS) are what scales; set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import neuronperf as npf


def null_model() -> None:
    return None


def bare_rate(seconds: float) -> float:
    """Inferences per second of the loop a user would write by hand."""
    clock = time.perf_counter_ns
    model = null_model
    n = 0
    start = clock()
    deadline = start + int(seconds * 1e9)
    while True:
        t0 = clock()
        model()
        t1 = clock()
        n += 1
        if t1 >= deadline:
            break
    return n / ((t1 - start) / 1e9) if t0 else 0.0


def harness_report(model: object, seconds: float, **kwargs: object) -> dict[str, object]:
    (report,) = npf.cpu.benchmark(
        model,
        [()],
        duration=seconds,
        workers_per_model=1,
        results_dir=None,
        verbosity=0,
        stats_interval=0,
        **kwargs,
    )
    if report["status"] != "finished":
        sys.exit(f"benchmark failed: {report['error']}")
    return report


def overhead(rounds: int, seconds: float) -> None:
    bare, harness, calibrated = [], [], []
    for _ in range(rounds):
        bare.append(bare_rate(seconds))
        report = harness_report(null_model, seconds, n_models=1, multiprocess=False)
        harness.append(float(report["throughput_avg"]))  # type: ignore[arg-type]
        calibrated.append(float(report["harness_overhead_us"]))  # type: ignore[arg-type]
    per_round_us = [(1 / h - 1 / b) * 1e6 for b, h in zip(bare, harness, strict=True)]
    added = statistics.median(per_round_us)
    print("## Overhead: null model, 1 copy, 1 worker, threads runner")
    print(f"{'':34} {'median':>12} {'min':>12} {'max':>12}")
    for name, values in (
        ("bare loop (inferences/s)", bare),
        ("benchmark() (inferences/s)", harness),
    ):
        median = statistics.median(values)
        print(f"{name:34} {median:12,.0f} {min(values):12,.0f} {max(values):12,.0f}")
    print(
        f"{'added per inference (us)':34} {added:12.3f} {min(per_round_us):12.3f} "
        f"{max(per_round_us):12.3f}"
    )
    reported = statistics.median(calibrated)
    print(f"harness_overhead_us it reports (calibrated loop cost): {reported:.3f}")
    verdict = "meets" if added < 0.5 else "MISSES"
    print(f"{verdict} the target of < 0.5 us per inference above the bare loop\n")


class MatmulModel:
    """About 1 ms of numpy matmul; numpy releases the GIL while BLAS runs."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.a = rng.random((280, 280))
        self.b = rng.random((280, 280))

    def __call__(self) -> float:
        return float((self.a @ self.b)[0, 0])


def scaling(seconds: float) -> None:
    model = MatmulModel()
    start = time.perf_counter()
    for _ in range(100):
        model()
    one_call_ms = (time.perf_counter() - start) * 10
    print(f"## Scaling: matmul model ({one_call_ms:.2f} ms a call), 1 worker per copy")
    print(f"{'runner':10} {'1 copy (inf/s)':>15} {'2 copies (inf/s)':>17} {'of ideal':>9}")
    for runner, multiprocess in (("threads", False), ("processes", True)):
        rates = {}
        for n in (1, 2):
            report = harness_report(MatmulModel, seconds, n_models=n, multiprocess=multiprocess)
            rates[n] = float(report["throughput_avg"])  # type: ignore[arg-type]
        print(f"{runner:10} {rates[1]:15,.0f} {rates[2]:17,.0f} {rates[2] / (2 * rates[1]):9.0%}")
    print(f"(this machine has {os.cpu_count()} cores)\n")


MEMORY_SCRIPT = """
import resource, sys
sys.path.insert(0, {root!r})
import neuronperf as npf
def null_model():
    return None
(report,) = npf.cpu.benchmark(null_model, [()], duration={seconds}, n_models=1,
    workers_per_model=1, multiprocess=False, results_dir=None, verbosity=0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, report["total_infs"],
      report["latency_samples"])
"""


def memory(long_seconds: float) -> None:
    root = str(Path(__file__).resolve().parent.parent)
    print("## Memory: peak RSS of a fresh interpreter running a null model")
    print(f"{'duration':>9} {'peak RSS (MiB)':>15} {'inferences':>13} {'samples kept':>13}")
    for seconds in (2, long_seconds):
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT.format(root=root, seconds=seconds)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        rss_kib, infs, samples = (int(v) for v in out)
        print(f"{seconds:>8}s {rss_kib / 1024:15.1f} {infs:13,} {samples:13,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--memory-seconds", type=float, default=60.0)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cores\n")
    overhead(args.rounds, args.seconds)
    scaling(args.seconds)
    memory(args.memory_seconds)


if __name__ == "__main__":
    main()

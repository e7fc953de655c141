"""The Ray runner (neuronperf-ray) against the processes runner, on one machine.

    python bench/ray_runner.py [--rounds 3] [--seconds 5]

A model that sleeps 1 ms per call (``time.sleep`` releases the GIL), 2 copies of 1 worker
each, through ``npf.cpu.benchmark`` with ``runner="processes"`` (a forked process per copy)
and ``runner="ray"`` (a Ray actor per copy, on a local Ray this script starts once, as a
script on a cluster would join it once), alternated round by round in this run:

1. throughput: ray / processes, each round (target: >= 0.95);
2. the fixed cost per config: from the benchmark call to the first timed inference (the
   timed window's start, on this machine's clock): processes fork, actors start, copies
   load and warm up (8 calls), the harness calibrates, the start delay passes;
3. what starting the local Ray cost, once per run (not per config).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import neuronperf as npf


class Sleep1ms:
    """1 ms per call, the GIL released while it sleeps."""

    def __call__(self, x: Any) -> Any:
        time.sleep(0.001)
        return x


def measure(runner: str, seconds: float) -> tuple[float, float]:
    """Throughput (inferences/s) and the fixed cost (s) of one config on ``runner``."""
    start = time.perf_counter_ns()
    ((_, results),) = npf.cpu.benchmark(
        Sleep1ms,
        np.zeros((1, 4)),
        batch_sizes=[1],
        runner=runner,
        n_models=[2],
        workers_per_model=[1],
        duration=seconds,
        return_timers=True,
        results_dir=None,
        verbosity=0,
    )
    raw = results["raw"]
    if raw["status"] != "finished":
        raise SystemExit(f"{runner}: {raw['status']}: {raw['error']}")
    (report,) = npf.get_reports([raw])
    return float(report["throughput_avg"]), (raw["window_ns"][0] - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    import ray

    began = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    ray_start_s = time.perf_counter() - began
    measure("ray", 1.0)  # the first actor in a fresh Ray pays for its worker pool: not timed
    ratios, fixed = [], {"processes": [], "ray": []}
    print(f"{'round':>5} {'processes inf/s':>16} {'ray inf/s':>10} {'ratio':>6}"
          f" {'fixed processes s':>18} {'fixed ray s':>12}")  # fmt: skip
    for round_ in range(args.rounds):
        order = ["processes", "ray"] if round_ % 2 == 0 else ["ray", "processes"]
        got = {runner: measure(runner, args.seconds) for runner in order}
        ratio = got["ray"][0] / got["processes"][0]
        ratios.append(ratio)
        for runner in fixed:
            fixed[runner].append(got[runner][1])
        print(f"{round_:>5} {got['processes'][0]:>16.1f} {got['ray'][0]:>10.1f} {ratio:>6.3f}"
              f" {got['processes'][1]:>18.3f} {got['ray'][1]:>12.3f}")  # fmt: skip
    ray.shutdown()
    print(f"throughput ray / processes: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); target >= 0.95")  # fmt: skip
    for runner, values in fixed.items():
        print(f"fixed cost per config, {runner}: median {statistics.median(values):.3f} s")
    print(f"starting the local Ray (once per run): {ray_start_s:.1f} s")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()

"""How well does the open loop keep its schedule, and what does a closed loop hide?

    python bench/open_loop.py [--seconds 5] [--quick]

Part 1, the generator: requests at rising rates (Poisson arrivals) to
- a null model (returns at once) on 1 copy x 1 worker, and
- a 1 ms model that releases the GIL (``time.sleep(0.001)``) on enough workers to serve
  20,000 requests a second (threads: 1 copy x 32 workers; processes: 2 copies x 16),
with the threads and the processes runners. Per rate: the rate offered (arrivals due in
the window, per second), achieved / offered, requests left queued at the end, and the
generator's own lag p50 / p99 (how late a request was sent when a worker was waiting for
it). The baseline, measured in the same run: the config's closed-loop rate (calls per
second with each worker sending as soon as the last call returned), the most it can
serve. Targets (issue 13): achieved / offered within 1 % and lag p99 under 100 us up to
20,000 requests a second with the threads runner, or the ceiling stated.

Part 2, coordinated omission: a model that takes 1 ms a call and stalls 100 ms once a
second (its first call of each second), one worker. A closed loop; then an open loop at
the closed loop's mean rate and at half of it, whose latencies are counted two ways from
the same run: from each request's due time (what a user of the server sees) and from the
moment it was sent (what a closed loop paced to the same rate reports: wrk's coordinated
omission).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import neuronperf as npf

X = np.zeros((1, 4))


def null_model(x: Any) -> Any:
    return x


def sleep_model(x: Any) -> Any:
    time.sleep(0.001)
    return x


class Stalling:
    """1 ms a call (busy: it holds the CPU, as a model computing does), and 100 ms on the
    first call of each second of the run."""

    def __init__(self) -> None:
        self.stalled = -1

    def __call__(self, x: Any) -> Any:
        now = time.perf_counter()
        second = int(now)
        work = 0.001
        if second != self.stalled:
            self.stalled, work = second, 0.101
        while time.perf_counter() < now + work:
            pass
        return x


def benchmark(model: Any, runner: str, n: int, w: int, seconds: float, **options: Any) -> Any:
    (out,) = npf.benchmark(
        lambda path, device_id=0: model,
        "bench",
        X,
        batch_sizes=[1],
        n_models=[n],
        workers_per_model=[w],
        duration=seconds,
        runner=runner,
        results_dir=None,
        verbosity=0,
        **options,
    )
    return out


def part1(seconds: float, quick: bool) -> None:
    setups = [
        ("null", null_model, "threads", 1, 1),
        ("null", null_model, "processes", 1, 1),
        ("1 ms sleep", sleep_model, "threads", 1, 32),
        ("1 ms sleep", sleep_model, "processes", 2, 16),
    ]
    rates = [1000, 5000, 10000, 20000] if quick else [1000, 2000, 5000, 10000, 20000, 40000]
    print("| model | runner | copies x workers | rate asked | closed-loop rate (baseline) "
          "| offered /s | achieved / offered | late at end | lag p50 us | lag p99 us "
          "| latency p50 ms | latency p99 ms |")  # fmt: skip
    print("|" + "---|" * 12)
    for name, model, runner, n, w in setups:
        closed = benchmark(model, runner, n, w, seconds)
        ceiling = closed["throughput_avg"]
        for rate in rates:
            r = benchmark(model, runner, n, w, seconds, arrival_rate=rate)
            offered = r["offered_rate"]
            ratio = r["achieved_rate"] / offered if offered else float("nan")
            lag50, lag99 = r["arrival_lag_us_p50"], r["arrival_lag_us_p99"]
            print(
                f"| {name} | {runner} | {n} x {w} | {rate:,} | {ceiling:,.0f} | {offered:,.0f} "
                f"| {ratio:.4f} | {r['late_at_end']:,} | {_num(lag50)} | {_num(lag99)} "
                f"| {r['latency_ms_p50']:.3f} | {r['latency_ms_p99']:.3f} |",
                flush=True,
            )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def part2(seconds: float) -> None:
    closed = benchmark(Stalling(), "threads", 1, 1, seconds)
    rate = closed["throughput_avg"]
    print("\n| loop | mean rate /s | counted from | p50 ms | p99 ms | p99.9 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| closed | {rate:,.0f} | send | {closed['latency_ms_p50']:.2f} "
        f"| {closed['latency_ms_p99']:.2f} | - | {closed['latency_ms_p100']:.2f} |"
    )
    for share in (0.5, 1.0):
        pairs = npf.benchmark(
            lambda path, device_id=0: Stalling(),
            "bench",
            X,
            batch_sizes=[1],
            n_models=[1],
            workers_per_model=[1],
            duration=seconds,
            runner="threads",
            results_dir=None,
            verbosity=0,
            arrival_rate=rate * share,
            return_timers=True,
        )
        raw = pairs[0][1]["raw"]
        due = np.concatenate([w["start_ns"] for w in raw["workers"]])
        sent = np.concatenate([w["sent_ns"] for w in raw["workers"]])
        end = np.concatenate([w["end_ns"] for w in raw["workers"]])
        (report,) = npf.get_reports(pairs)
        for label, start in (("due time (open loop)", due), ("send (paced closed loop)", sent)):
            ms = (end - start) / 1e6
            p50, p99, p999, top = np.percentile(ms, [50, 99, 99.9, 100])
            print(
                f"| open, {share:.0%} of closed | {report['offered_rate']:,.0f} | {label} "
                f"| {p50:.2f} | {p99:.2f} | {p999:.2f} | {top:.2f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per config (part 1)")
    parser.add_argument("--quick", action="store_true", help="fewer rates")
    args = parser.parse_args()
    start = time.time()
    part1(args.seconds, args.quick)
    part2(max(10.0, args.seconds))
    print(f"\n{time.time() - start:.0f} s in all")


if __name__ == "__main__":
    main()

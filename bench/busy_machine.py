"""Why 1 copy x 1 worker at batch > 1 collapses on a busy machine, and what is safe.

    python bench/busy_machine.py [--rounds 3] [--seconds 2] [--spinners 1]

The demo's model (an MLP 64 -> 128 -> 10, untrained: weights do not change its speed),
compiled for the CPU at batch sizes 1 and 8, benchmarked with 1 copy x 1 worker in a
fresh interpreter (npf.torch's default runner) under each condition:

- ``threads``: the worker's intra-op threads (``intra_op_threads``): every core (what
  the default gave a lone copy before), or one fewer (the default now, when the machine
  is busy);
- ``busy``: whether ``--spinners`` other processes spin on the CPU meanwhile (each a
  ``while True: pass``), standing in for the other jobs of a shared machine;
- ``OMP_WAIT_POLICY=PASSIVE`` in the copy's environment, or libgomp's default (its
  threads spin a while at each barrier before they sleep).

Conditions alternate within each round, so a change in the machine's own load shows as
spread between rounds rather than as a difference between conditions. Printed: the
median over rounds of throughput (inferences x batch / s), p50 and p99 (ms), and the
share of the CPU other processes used (``other_cpu_share``), with the range over rounds.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import torch

import neuronperf as npf
from neuronperf_core import devices as machine

SPIN = "while True: pass"


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    ).eval()


def run(index: str, x: torch.Tensor, batch: int, threads: int, seconds: float) -> dict[str, Any]:
    (report,) = npf.torch.benchmark(
        index, x, batch_sizes=[batch], n_models=1, workers_per_model=1,
        intra_op_threads=threads, duration=seconds, results_dir=None, verbosity=0,
    )  # fmt: skip
    assert report["status"] == "finished", report["error"]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--spinners", type=int, default=1)
    parser.add_argument("--batches", default="1,8")
    args = parser.parse_args()
    cores = machine.cpu_cores()
    batches = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        inputs = [torch.rand(b, 64) for b in batches]
        index = npf.torch.compile(
            model(), inputs, batch_sizes=batches, device_type="cpu", models_dir=folder,
            filename=os.path.join(folder, "mlp.json"), verbosity=0,
        )  # fmt: skip
        conditions = list(
            itertools.product(batches, [cores, max(1, cores - 1)], [False, True], ["", "PASSIVE"])
        )
        results: dict[tuple[Any, ...], list[dict[str, Any]]] = {c: [] for c in conditions}
        for r in range(args.rounds):
            order = conditions if r % 2 == 0 else conditions[::-1]
            for batch, threads, busy, policy in order:
                if threads == cores and cores == 1:
                    continue
                spinners = (
                    [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.spinners)]
                    if busy
                    else []
                )
                if policy:
                    os.environ["OMP_WAIT_POLICY"] = policy  # the fresh copy inherits it
                else:
                    os.environ.pop("OMP_WAIT_POLICY", None)
                try:
                    x = inputs[batches.index(batch)]
                    report = run(index, x, batch, threads, args.seconds)
                finally:
                    for spinner in spinners:
                        spinner.kill()
                        spinner.wait()
                results[(batch, threads, busy, policy)].append(report)
        os.environ.pop("OMP_WAIT_POLICY", None)
    print(f"{cores} cores; {args.rounds} rounds of {args.seconds:g} s; busy = {args.spinners} "
          "spinning process(es); median over rounds [min .. max]")  # fmt: skip
    print(f"{'batch':>5} {'threads':>7} {'busy':>5} {'wait policy':>11}  "
          f"{'throughput/s':>28}  {'p50 ms':>24}  {'p99 ms':>24}  {'others':>6}")  # fmt: skip
    for (batch, threads, busy, policy), reports in results.items():
        if not reports:
            continue

        def cell(field: str, fmt: str, rs: list[dict[str, Any]] = reports) -> str:
            values = [r[field] for r in rs]
            return (f"{statistics.median(values):{fmt}} [{min(values):{fmt}} .. "
                    f"{max(values):{fmt}}]")  # fmt: skip

        others = statistics.median(r["other_cpu_share"] or 0.0 for r in reports)
        print(f"{batch:>5} {threads:>7} {busy!s:>5} {policy or 'default':>11}  "
              f"{cell('throughput_avg', '8.0f'):>28}  {cell('latency_ms_p50', '6.3f'):>24}  "
              f"{cell('latency_ms_p99', '6.3f'):>24}  {others:>6.0%}")  # fmt: skip


if __name__ == "__main__":
    main()

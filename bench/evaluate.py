"""npf.torch.evaluate against a hand-written evaluation loop, on CPU.

    python bench/evaluate.py [--rounds 5] [--records 20000] [--width 256] [--profile 1|64]

A small MLP (64 -> 256 -> 256 -> 10, fp32) is compiled once for CPU at batch sizes 1
and 64 (``npf.torch.compile(..., device_type="cpu")``) into a temporary folder, and a
TensorDataset of N records is scored at each batch size by:

  npf       ``npf.torch.evaluate(index, dataset, metrics="accuracy", batch_sizes=[b])``
            with the runner evaluate picks (EVALUATE_DEFAULTS: one copy, one worker,
            threads in this process);
  npf w=2   the same with ``workers_per_model=2``;
  hand      ``DataLoader(dataset, batch_size=b)``, the same compiled model loaded with
            ``npf.torch.load(path)``, argmax accuracy summed per batch;
  sliced    the same loop, its batches sliced from the dataset's tensors instead of a
            DataLoader (the fastest hand-written loop: what the harness itself costs).

Each timing is one whole call, wall clock, in this process: evaluate's (options, config
selection, loading the model, scoring, the report) and the hand loop's (``npf.torch.load``
and the loop). The four alternate in rounds, in a rotating order; the table shows
medians and the ratios. Every accuracy is checked against the hand loop's, which scores
all N records, before any figure is printed. Target: npf within 1.15x of hand at both
batch sizes.

On a machine shared with other jobs, run it on one core (``taskset -c 0``): with 2
intra-op threads, libgomp's teams contend with the other processes, and once npf's
worker thread has had a team the main thread's loops slow down too (the same happens
with a plain ``threading.Thread``), so the hand loops' times there swing by 10x.

``--profile B`` runs cProfile over one evaluate call at batch size B instead.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the core, from a checkout

import neuronperf as npf

BATCH_SIZES = (1, 64)
TARGET = 1.15


class MLP(nn.Module):
    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(64, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return out


def make_data(model: nn.Module, n: int) -> TensorDataset:
    """Records whose labels are the model's prediction for about 70 % of them."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 64, generator=generator)
    with torch.inference_mode():
        predicted = model(x).argmax(1)
    wrong = torch.rand(n, generator=generator) < 0.3
    y = torch.where(wrong, (predicted + 1) % 10, predicted)
    return TensorDataset(x, y)


def compile_index(model: nn.Module, folder: Path) -> tuple[str, dict[int, str]]:
    index = npf.torch.compile(
        model,
        [torch.randn(b, 64) for b in BATCH_SIZES],
        batch_sizes=list(BATCH_SIZES),
        device_type="cpu",
        models_dir=folder / "models",
        filename=folder / "mlp.json",
    )
    paths = {}
    for config in npf.model_index.load(index)["model_configs"]:
        paths[config["batch_size"]] = config["filename"]
    return index, paths


def run_npf(index: str, dataset: TensorDataset, batch: int, workers: int | None) -> float:
    extra = {} if workers is None else {"workers_per_model": workers}
    (report,) = npf.torch.evaluate(
        index,
        dataset,
        metrics="accuracy",
        batch_sizes=[batch],
        results_dir=None,
        verbosity=0,
        **extra,
    )
    if report["status"] != "finished":
        raise RuntimeError(report["error"])
    return float(report["accuracy"])


def run_hand(path: str, dataset: TensorDataset, batch: int) -> float:
    model = npf.torch.load(path)
    correct = total = 0
    for x, y in DataLoader(dataset, batch_size=batch):
        n = len(y)
        if n != batch:  # the compiled model takes exactly `batch` records: pad, score n
            x = torch.cat([x, x[-1:].expand(batch - n, *x.shape[1:])])
        correct += int((model(x)[:n].argmax(1) == y).sum())
        total += n
    return correct / total


def run_sliced(path: str, dataset: TensorDataset, batch: int) -> float:
    model = npf.torch.load(path)
    inputs, targets = dataset.tensors
    correct = 0
    for start in range(0, len(targets), batch):
        x, y = inputs[start : start + batch], targets[start : start + batch]
        n = len(y)
        if n != batch:
            x = torch.cat([x, x[-1:].expand(batch - n, *x.shape[1:])])
        correct += int((model(x)[:n].argmax(1) == y).sum())
    return correct / len(targets)


def timed(fn: Callable[[], float]) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure(
    index: str, paths: dict[int, str], dataset: TensorDataset, rounds: int
) -> dict[int, dict[str, list[float]]]:
    kinds: dict[str, Callable[[int], float]] = {
        "npf": lambda b: run_npf(index, dataset, b, None),
        "npf w=2": lambda b: run_npf(index, dataset, b, 2),
        "hand": lambda b: run_hand(paths[b], dataset, b),
        "sliced": lambda b: run_sliced(paths[b], dataset, b),
    }
    names = list(kinds)
    times: dict[int, dict[str, list[float]]] = {b: {k: [] for k in names} for b in BATCH_SIZES}
    for batch in BATCH_SIZES:  # one untimed pass each: imports, allocator, OpenMP teams
        accuracies = {name: kinds[name](batch) for name in names}
        if len(set(accuracies.values())) != 1:
            raise AssertionError(f"batch size {batch}: the accuracies differ: {accuracies}")
    for r in range(rounds):
        for batch in BATCH_SIZES:
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                seconds, _ = timed(functools.partial(kinds[name], batch))
                times[batch][name].append(seconds)
    return times


def table(times: dict[int, dict[str, list[float]]]) -> list[str]:
    lines = [
        "| batch | npf ms | npf w=2 ms | hand ms | sliced ms | npf/hand | w=2/hand | npf/sliced |",
        "|------:|-------:|-----------:|--------:|----------:|---------:|---------:|-----------:|",
    ]
    for batch, kinds in times.items():
        med = {k: statistics.median(v) for k, v in kinds.items()}
        lines.append(
            f"| {batch:5d} | {med['npf'] * 1e3:6.1f} | {med['npf w=2'] * 1e3:10.1f} "
            f"| {med['hand'] * 1e3:7.1f} | {med['sliced'] * 1e3:9.1f} "
            f"| {med['npf'] / med['hand']:7.3f}x | {med['npf w=2'] / med['hand']:7.3f}x "
            f"| {med['npf'] / med['sliced']:9.3f}x |"
        )
    return lines


def profile(index: str, dataset: TensorDataset, batch: int) -> None:
    """cProfile over one evaluate call: the calling thread and the worker thread, apart."""
    from unittest import mock

    from neuronperf_core.benchmarking import runners
    from neuronperf_core.benchmarking.worker import run_worker

    run_npf(index, dataset, batch, None)  # warm
    worker_profile = cProfile.Profile()

    def profiled(*args: Any, **kwargs: Any) -> Any:
        return worker_profile.runcall(run_worker, *args, **kwargs)

    caller = cProfile.Profile()
    with mock.patch.object(runners, "run_worker", profiled):
        caller.runcall(run_npf, index, dataset, batch, None)
    for name, prof in (("calling thread", caller), ("worker thread", worker_profile)):
        print(f"==== {name}")
        stats = pstats.Stats(prof).strip_dirs()
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--width", type=int, default=256, help="the MLP's hidden width")
    parser.add_argument("--profile", type=int, choices=BATCH_SIZES, default=None)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = MLP(args.width).eval()
    dataset = make_data(model, args.records)
    with tempfile.TemporaryDirectory() as tmp:
        index, paths = compile_index(model, Path(tmp))
        if args.profile is not None:
            profile(index, dataset, args.profile)
            return
        times = measure(index, paths, dataset, args.rounds)
    print(
        f"{args.records:,} records, MLP 64-{args.width}-{args.width}-10 fp32, "
        f"{args.rounds} rounds (medians); "
        f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
        f"{len(os.sched_getaffinity(0))} of {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; npf records/s at batch size "
        + ", ".join(
            f"{b}: {args.records / statistics.median(t['npf']):,.0f}" for b, t in times.items()
        )
    )
    print("\n".join(table(times)))
    worst = max(statistics.median(k["npf"]) / statistics.median(k["hand"]) for k in times.values())
    verdict = "meets" if worst <= TARGET else "misses"
    print(f"worst npf/hand: {worst:.3f}x; {verdict} the target of {TARGET}x")
    print(
        json.dumps(
            {b: {k: [round(s, 5) for s in v] for k, v in t.items()} for b, t in times.items()}
        )
    )


if __name__ == "__main__":
    main()

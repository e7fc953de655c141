"""The torch plugin on CPU: does npf.torch.benchmark measure what the model costs?

    python bench/torch_cpu.py [--rounds 11] [--seconds 2.0] [--sweep-seconds 2.0]
                              [--harness-rounds 7] [--only latency|harness|levels]
                              [--models mlp,small,mid]

1. Latency fidelity. One copy, one worker (the default runner, a fresh interpreter):
   ``latency_ms_p50`` of ``npf.torch.benchmark`` against a hand-written timed loop (the
   median of per-call ``perf_counter_ns`` times) and ``torch.utils.benchmark.Timer``'s
   median (``blocked_autorange``), for the same loaded model (``npf.torch.load``: the
   artifact's graph under inference mode, exactly what the workers call) and the same
   input, at the same intra-op thread count (npf's ``intra_op_threads``): 1 (Timer's
   default) and all cores. The user's side is one fresh interpreter (spawned, as npf's
   copy is) with the allocator setting npf's copies get (``steady_malloc``: one arena,
   freed memory kept); it loads and warms up (8 calls) before npf's run starts and times
   the hand loop in its main thread next to npf's window: in even rounds the moment
   npf's run ends, in odd ones just before npf's window starts (npf's copy, once loaded,
   waits in its ``setup_fn`` until the hand loop is done), then Timer after npf's run.
   Each round pairs npf's window with the hand loop's next to it: on a VM a team of 2
   threads runs at levels that change every few seconds (``--only levels`` shows them),
   so windows seconds apart do not compare, while adjacent windows mostly share a level.
   The order alternates so that it favours neither side (with npf always first, the MLP's
   npf p50 was below the hand loop's in 6 of 6 rows; bench/RESULTS.md).
   Each ratio is the median of the per-round ratios with its distribution-free 95 %
   interval (order statistics, as the reports' percentiles). Target: agreement within
   5 %, said when the interval lies inside 0.95-1.05, and "not settled" when the interval
   is wider than that band. Also shown, for what the setting does: Timer in a fresh
   interpreter with glibc's default allocator, Timer on the eager ``nn.Module``, and the
   share of CPU time the hypervisor stole during the row. Models: a 3-layer
   MLP, a small and a mid-sized CNN (``--models`` picks some).
2. Harness cost. The mid-sized CNN swept over n_models [1, cores] x
   workers_per_model [1, 2] x batch sizes [1, 4] with the default runner
   (fresh interpreters); its best config is then rerun against a hand-written
   loop with the same structure: the same number of processes (spawned), each
   with the same worker threads and intra-op threads, calling the same loaded
   model on the same input for the same time. Alternated rounds, median of
   the per-round ratios. Target: the harness costs under 2 % of throughput.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.benchmark import Timer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the core, from a checkout

from neuronperf_torch.devices import steady_malloc

import neuronperf as npf
from neuronperf_core.benchmarking.stats import cpu_times
from neuronperf_core.uncertainty import interval_ranks

CORES = len(os.sched_getaffinity(0))


class SmallCNN(nn.Module):
    """Two 3x3 convolutions on a 3x32x32 image, then a linear layer (~0.2 ms)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class MidCNN(nn.Module):
    """A ResNet-style network on 3x64x64: 3 stages of 2 residual blocks (a few ms)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, padding=1), nn.ReLU()]
        for channels in (32, 64, 128):
            if channels != 32:
                layers += [nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1), nn.ReLU()]
            layers += [Block(channels), Block(channels)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(128, 100)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


class MLP(nn.Module):
    """Three linear layers, 512 -> 1024 -> 1024 -> 10 (a fraction of a millisecond)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


MODELS = {
    "mlp": (MLP, (512,)),
    "small": (SmallCNN, (3, 32, 32)),
    "mid": (MidCNN, (3, 64, 64)),
}


def compile_model(name: str, folder: Path, batch_sizes: list[int]) -> tuple[str, list[Any]]:
    cls, image = MODELS[name]
    torch.manual_seed(0)
    inputs = [torch.randn(b, *image) for b in batch_sizes]
    index = npf.torch.compile(
        cls().eval(),
        inputs,
        batch_sizes=batch_sizes,
        device_type="cpu",
        models_dir=folder / "models",
        filename=folder / f"{name}.json",
        model_name=name,
    )
    return index, inputs


# -- 1. latency fidelity ------------------------------------------------------------------


def _timer_process(
    name: str, path: str, x: torch.Tensor, threads: int, seconds: float, steady: bool, conn: Any
) -> None:
    """A fresh interpreter, as npf's copy gets (with its allocator setting when ``steady``):
    load and warm up, say so, then time in the main thread: on "hand" a hand loop (the
    median of per-call ``perf_counter_ns`` times: the window next to npf's), on "rest"
    Timer's median and (``steady`` only) Timer's for the eager model."""
    if steady:
        assert steady_malloc()
    torch.set_num_threads(threads)
    model = npf.torch.load(path)
    with torch.inference_mode():
        for _ in range(8):
            model(x)
        conn.send("ready")
        while conn.recv() == "hand":
            conn.send(hand_loop_ms(model, x, seconds))
        results = []
        timer = Timer("model(x)", globals={"model": model, "x": x}, num_threads=threads)
        results.append(float(timer.blocked_autorange(min_run_time=seconds).median * 1e3))
        if steady:
            torch.manual_seed(0)
            eager = MODELS[name][0]().eval()  # the same weights as the compiled one
            for _ in range(8):
                eager(x)
            timer = Timer("model(x)", globals={"model": eager, "x": x}, num_threads=threads)
            results.append(float(timer.blocked_autorange(min_run_time=seconds / 2).median * 1e3))
    conn.send(results)


def hand_loop_ms(model: Any, x: torch.Tensor, seconds: float) -> float:
    """The median of per-call ``perf_counter_ns`` times over ``seconds`` of calls, in ms."""
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        model(x)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6


class TimerSide:
    """The user's side of a round in a fresh interpreter, loaded and waiting before npf's
    run starts, so that its hand loop (``hand``) can time the window next to npf's; then
    ``rest``: [Timer, eager Timer] medians (``steady``), or [Timer] with glibc's default
    allocator."""

    def __init__(
        self, name: str, path: str, x: torch.Tensor, threads: int, seconds: float, steady: bool
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_timer_process, args=(name, path, x, threads, seconds, steady, child)
        )
        self.process.start()
        child.close()
        assert self.conn.recv() == "ready"

    def hand(self) -> float:
        self.conn.send("hand")
        ms: float = self.conn.recv()
        return ms

    def rest(self) -> list[float]:
        self.conn.send("rest")
        results: list[float] = self.conn.recv()
        self.process.join()
        return results


class HandFirst:
    """npf's ``setup_fn`` for a round whose hand loop goes first: once the copy has loaded
    it says so and waits until the hand loop is done, so that the hand loop's window ends
    just before npf's warm-up and window start. Files, because the copy is a fresh
    interpreter the engine starts; polled every 10 ms, next to nothing for either side."""

    def __init__(self, folder: Path) -> None:
        self.loaded = folder / "copy-loaded"
        self.done = folder / "hand-done"
        self.loaded.unlink(missing_ok=True)
        self.done.unlink(missing_ok=True)

    def __call__(self, copy_id: int, config: dict[str, Any], model: Any) -> None:
        self.loaded.touch()
        while not self.done.exists():
            time.sleep(0.01)

    def run_hand(self, user: TimerSide, out: list[float]) -> None:
        """In a thread of the bench while npf's run holds its main thread."""
        while not self.loaded.exists():
            time.sleep(0.01)
        try:
            out.append(user.hand())
        finally:
            self.done.touch()


def latency(name: str, folder: Path, threads: int, rounds: int, seconds: float) -> dict[str, Any]:
    index, (x,) = compile_model(name, folder, [1])
    path = npf.model_index.load(index)["model_configs"][0]["filename"]
    sides = ("npf", "timer", "hand", "eager", "glibc", "ratio", "hand_ratio")
    rows: dict[str, list[float]] = {k: [] for k in sides}
    steal_before = cpu_times()
    for round_ in range(rounds):
        user = TimerSide(name, path, x, threads, seconds, steady=True)
        hand_first = HandFirst(folder) if round_ % 2 else None
        first: list[float] = []
        if hand_first is not None:
            side = threading.Thread(target=hand_first.run_hand, args=(user, first), daemon=True)
            side.start()
        (report,) = npf.torch.benchmark(
            index,
            [x],
            n_models=1,
            workers_per_model=1,
            intra_op_threads=threads,
            duration=seconds,
            results_dir=None,
            verbosity=0,
            stats_interval=0,
            setup_fn=hand_first,
        )
        assert report["status"] == "finished", report["error"]
        assert report["intra_op_threads"] == threads  # like for like
        rows["npf"].append(float(report["latency_ms_p50"]))
        if hand_first is not None:
            side.join()
            (hand,) = first
        else:
            hand = user.hand()
        timer, eager = user.rest()
        (glibc,) = TimerSide(name, path, x, threads, seconds, steady=False).rest()
        rows["timer"].append(timer)
        rows["hand"].append(hand)
        rows["eager"].append(eager)
        rows["glibc"].append(glibc)
        rows["ratio"].append(rows["npf"][-1] / timer)
        rows["hand_ratio"].append(rows["npf"][-1] / hand)
    out: dict[str, Any] = {k: statistics.median(v) for k, v in rows.items()}
    out["steal"] = steal_share(steal_before)
    out["runner"] = report["runner"]
    out["ratio_ci"] = median_interval(rows["ratio"])
    out["hand_ratio_ci"] = median_interval(rows["hand_ratio"])
    out.update(g_min=min(rows["glibc"]), g_max=max(rows["glibc"]))
    out["copy_malloc"] = report["copy_malloc"]
    out["samples"] = report["latency_samples"]
    return out


def steal_share(before: tuple[int, int, int] | None) -> float:
    """The share of the machine's CPU time the hypervisor stole since ``before``
    (``cpu_times()``: the core's reading of /proc/stat)."""
    after = cpu_times()
    if before is None or after is None:
        return float("nan")
    return (after[2] - before[2]) / max(1, after[1] - before[1])


def median_interval(values: list[float]) -> tuple[float, float] | str:
    """The distribution-free 95 % interval of the median of ``values`` (the rounds), from
    order statistics, as the reports' percentile intervals; or why there is none."""
    ranks = interval_ranks(len(values), 0.5)
    if isinstance(ranks, str):
        return ranks
    ordered = sorted(values)
    return ordered[ranks.low - 1], ordered[ranks.high - 1]


def agreement(interval: tuple[float, float] | str) -> str:
    """Whether a ratio's interval says within 5 %, not within 5 %, or cannot tell."""
    if isinstance(interval, str):
        return f"cannot tell (no interval: {interval})"
    low, high = interval
    if low >= 0.95 and high <= 1.05:
        return "within 5 %"
    if low > 1.05 or high < 0.95:
        return "NOT within 5 %"
    return "not settled (the interval is wider than the band)"


def ratio_cell(median: float, interval: tuple[float, float] | str) -> str:
    if isinstance(interval, str):
        return f"{median:.3f}"
    return f"{median:.3f} ({interval[0]:.3f}-{interval[1]:.3f})"


# -- 2. harness cost ----------------------------------------------------------------------


def _hand_process(
    path: str, x: torch.Tensor, workers: int, threads: int, seconds: float, sync: Any
) -> None:
    """One copy of the hand-written loop: load; each loop thread warms up (in the thread
    that will loop, so no other thread starts an OpenMP team), then all start together."""
    ready, go, start_at, out = sync
    assert steady_malloc()  # the allocator setting npf's copies get
    torch.set_num_threads(threads)
    model = npf.torch.load(path)
    warm = threading.Barrier(workers + 1)
    counts = [0] * workers
    ends = [0.0] * workers

    def loop(worker: int) -> None:
        torch.set_num_threads(threads)  # OpenMP's count is per thread: as npf's workers do
        for _ in range(8):
            model(x)
        warm.wait()
        go.wait()
        start = start_at.value
        deadline = start + seconds
        while time.time() < start:
            time.sleep(0.0002)
        n = 0
        while True:
            model(x)
            n += 1
            if time.time() >= deadline:
                break
        counts[worker], ends[worker] = n, time.time()

    threads_ = [threading.Thread(target=loop, args=(w,)) for w in range(workers)]
    for t in threads_:
        t.start()
    warm.wait()
    ready.put(True)
    for t in threads_:
        t.join()
    out.put((sum(counts), max(ends)))


def hand_throughput(
    path: str, x: torch.Tensor, n_models: int, workers: int, threads: int, seconds: float
) -> float:
    """Inferences x batch per second of n_models spawned processes x workers threads, all
    started together once every process has loaded and warmed up."""
    context = multiprocessing.get_context("spawn")
    sync = (context.Queue(), context.Event(), context.Value("d", 0.0), context.Queue())
    processes = [
        context.Process(target=_hand_process, args=(path, x, workers, threads, seconds, sync))
        for _ in range(n_models)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        sync[0].get()
    sync[2].value = time.time() + 0.02
    sync[1].set()
    results = [sync[3].get() for _ in processes]
    for process in processes:
        process.join()
    total = sum(count for count, _ in results)
    elapsed = max(end for _, end in results) - sync[2].value
    return total * x.shape[0] / elapsed


def harness_cost(folder: Path, rounds: int, sweep_seconds: float) -> dict[str, Any]:
    index, inputs = compile_model("mid", folder, [1, 4])
    reports = npf.torch.benchmark(
        index,
        inputs,
        n_models=sorted({1, CORES}),
        workers_per_model=[1, 2],
        duration=sweep_seconds,
        results_dir=None,
        verbosity=0,
    )
    sweep = [
        (r["batch_size"], r["n_models"], r["workers_per_model"], r["throughput_avg"])
        for r in reports
    ]
    best = max(reports, key=lambda r: r["throughput_avg"])
    batch, n_models, workers = best["batch_size"], best["n_models"], best["workers_per_model"]
    x = inputs[[1, 4].index(batch)]
    path = best["model_filename"]
    npf_rates, hand_rates, ratios = [], [], []
    for _ in range(rounds):
        (report,) = npf.torch.benchmark(
            index,
            [x],
            batch_sizes=[batch],
            n_models=n_models,
            workers_per_model=workers,
            duration=sweep_seconds,
            results_dir=None,
            verbosity=0,
        )
        npf_rates.append(float(report["throughput_avg"]))
        threads = int(report["intra_op_threads"])  # what npf's workers ran with
        hand_rates.append(hand_throughput(path, x, n_models, workers, threads, sweep_seconds))
        ratios.append(npf_rates[-1] / hand_rates[-1])
    return {
        "sweep": sweep,
        "best": (batch, n_models, workers, best["runner"]),
        "npf": statistics.median(npf_rates),
        "hand": statistics.median(hand_rates),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--sweep-seconds", type=float, default=2.0)
    parser.add_argument("--harness-rounds", type=int, default=7)
    parser.add_argument(
        "--only",
        choices=("latency", "harness", "levels"),
        help="run one part; levels (the level trace) runs only when asked for",
    )
    parser.add_argument(
        "--models", default=",".join(MODELS), help="latency: which models (default: all)"
    )
    args = parser.parse_args()
    unknown = set(args.models.split(",")) - set(MODELS)
    if unknown:
        parser.error(
            f"--models: no model {', '.join(sorted(unknown))}; choose from {', '.join(MODELS)}"
        )
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {CORES} cores\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only == "levels":
            levels_part(folder)
            return
        if args.only != "harness":
            latency_part(folder, args)
        if args.only != "latency":
            harness_part(folder, args)


def latency_part(folder: Path, args: argparse.Namespace) -> None:
    print("## 1. Latency: 1 copy, 1 worker, the same intra-op threads on both sides")
    print(f"{args.rounds} alternated rounds of {args.seconds} s each side; medians\n")
    print(
        "| model | threads | npf p50 (ms) | hand loop (ms) | Timer (ms) | npf / hand (95 % CI) "
        "| npf / Timer (95 % CI) | samples/round | eager Timer (ms) | Timer, glibc default "
        "(min-max, ms) | steal |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for name in args.models.split(","):
        for threads in sorted({1, CORES}):
            row = latency(name, folder / f"{name}{threads}", threads, args.rounds, args.seconds)
            print(
                f"| {name} | {threads} | {row['npf']:.4f} | {row['hand']:.4f} | "
                f"{row['timer']:.4f} | {ratio_cell(row['hand_ratio'], row['hand_ratio_ci'])} | "
                f"{ratio_cell(row['ratio'], row['ratio_ci'])} | {row['samples']:,} | "
                f"{row['eager']:.4f} | {row['glibc']:.4f} "
                f"({row['g_min']:.4f}-{row['g_max']:.4f}) | {row['steal']:.1%} |"
            )
            verdicts.append(
                (
                    f"{name}, {threads} thread(s)",
                    agreement(row["hand_ratio_ci"]),
                    agreement(row["ratio_ci"]),
                )
            )
    print(f"(npf runner: {row['runner']}; copy_malloc: {row['copy_malloc']})")
    print("(steal: the share of the CPU time the hypervisor gave other guests during the row)")
    for label, hand, timer in verdicts:
        print(f"{label}: npf against the hand loop {hand}; against Timer {timer}")
    print()


def levels_part(folder: Path, windows: int = 40, seconds: float = 0.5) -> None:
    """How steady one process's latency is: the mid CNN timed by a hand loop in this
    process, ``windows`` back-to-back windows of ``seconds`` each, at 1 thread and at all
    cores; each window's median. Not part of the default run."""
    index, (x,) = compile_model("mid", folder, [1])
    model = npf.torch.load(npf.model_index.load(index)["model_configs"][0]["filename"])
    print(f"## Levels: the mid CNN, {windows} windows of {seconds} s in one process\n")
    print("| threads | window medians (ms), in order | min | median | max | steal |")
    print("|---|---|---|---|---|---|")
    for threads in sorted({1, CORES}):
        torch.set_num_threads(threads)
        before = cpu_times()
        with torch.inference_mode():
            for _ in range(8):
                model(x)
            medians = [hand_loop_ms(model, x, seconds) for _ in range(windows)]
        steal = steal_share(before)
        trace = " ".join(f"{m:.1f}" for m in medians)
        print(
            f"| {threads} | {trace} | {min(medians):.2f} | {statistics.median(medians):.2f} "
            f"| {max(medians):.2f} | {steal:.1%} |"
        )


def harness_part(folder: Path, args: argparse.Namespace) -> None:
    cost = harness_cost(folder / "sweep", args.harness_rounds, args.sweep_seconds)
    print(f"## 2. Harness cost: mid CNN sweep ({args.sweep_seconds} s per config)\n")
    print("| batch | n_models | workers | throughput (inf/s) |")
    print("|---|---|---|---|")
    for batch, n, w, rate in cost["sweep"]:
        print(f"| {batch} | {n} | {w} | {rate:,.1f} |")
    batch, n, w, runner = cost["best"]
    print(
        f"\nbest: batch {batch}, n_models {n}, workers {w} ({runner}); "
        f"{args.harness_rounds} alternated rounds against a hand-written loop\n"
    )
    print("| | npf (inf/s) | hand loop (inf/s) | npf / hand (min-max) |")
    print("|---|---|---|---|")
    print(
        f"| median | {cost['npf']:,.1f} | {cost['hand']:,.1f} | {cost['ratio']:.3f} "
        f"({cost['ratio_min']:.3f}-{cost['ratio_max']:.3f}) |"
    )
    verdict = "meets" if cost["ratio"] >= 0.98 else "MISSES"
    print(f"{verdict} the target of a harness cost under 2 % (npf / hand >= 0.98)")


if __name__ == "__main__":
    main()

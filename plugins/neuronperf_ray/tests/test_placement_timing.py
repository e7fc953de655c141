"""The runner's arithmetic, without a cluster: what a copy asks for, whether nodes hold a
config, clock offsets from round trips, and lining copies up on the driver's clock."""

from __future__ import annotations

import numpy as np
import pytest
from neuronperf_ray import placement, timing

from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.benchmarking.worker import WorkerResult


def config(device: str, **changes: object) -> BenchmarkConfig:
    fields: dict[str, object] = {
        "model_name": "m", "model_filename": "m", "input_idx": 0, "batch_size": 1,
        "pipeline_size": 1, "cast_mode": None, "n_models": 2, "workers_per_model": 2,
        "device_type": device, "runner": "ray", "duration": 1.0, "max_infers": None,
    }  # fmt: skip
    fields.update(changes)
    return BenchmarkConfig(**fields)  # type: ignore[arg-type]


def test_each_copy_asks_for_a_cpu_per_worker_and_its_device() -> None:
    assert placement.copy_bundle(config("cpu")) == {"CPU": 2.0}
    assert placement.copy_bundle(config("cpu", intra_op_threads=3)) == {"CPU": 6.0}
    assert placement.copy_bundle(config("neuron", pipeline_size=4)) == {
        "CPU": 2.0,
        "neuron_cores": 4.0,
    }
    assert placement.copy_bundle(config("cuda")) == {"CPU": 2.0, "GPU": 1.0}
    assert placement.actor_options({"CPU": 2.0, "neuron_cores": 4.0}) == {
        "num_cpus": 2.0,
        "num_gpus": 0,
        "resources": {"neuron_cores": 4.0},
    }


NODES = [
    ("head", {"CPU": 8.0}),
    ("inf2-a", {"CPU": 8.0, "neuron_cores": 4.0}),
    ("inf2-b", {"CPU": 8.0, "neuron_cores": 2.0}),
]


def test_capacity_counts_whole_copies_per_node() -> None:
    bundle = {"CPU": 1.0, "neuron_cores": 2.0}
    assert [placement.copies_per_node(bundle, r) for _, r in NODES] == [0, 2, 1]
    assert placement.capacity_problem(bundle, 3, "pack", NODES) is None
    assert placement.capacity_problem(bundle, 3, None, NODES) is None
    assert placement.capacity_problem(bundle, 2, "spread", NODES) is None
    problem = placement.capacity_problem(bundle, 3, "spread", NODES)
    assert problem is not None
    assert "needs 3 nodes that each hold a copy (1 CPU, 2 neuron_cores); 2 of" in problem
    assert "inf2-a (8 CPU, 4 neuron_cores)" in problem
    assert "pass n_models=2 or fewer, add nodes or ray_placement='pack'" in problem
    problem = placement.capacity_problem(bundle, 4, "pack", NODES)
    assert problem is not None and "hold 3 such copies" in problem


def test_a_cluster_without_the_device_says_how_to_declare_it() -> None:
    problem = placement.capacity_problem({"CPU": 1.0, "neuron_cores": 1.0}, 1, None, NODES[:1])
    assert problem is not None and "No node declares neuron_cores" in problem
    problem = placement.capacity_problem({"CPU": 1.0, "GPU": 1.0}, 1, None, NODES)
    assert problem is not None and "No node declares a GPU" in problem


def test_the_offset_comes_from_the_fastest_round_trip() -> None:
    # driver readings (t0, t1) per round; the remote clock runs 1,000,000 ns ahead
    driver = iter([0, 100, 1000, 1010, 2000, 2050])
    remote = iter([1_000_090, 1_001_004, 1_002_010])
    clock = timing.estimate_offset(lambda: next(remote), rounds=3, clock=lambda: next(driver))
    # the 10 ns round trip: reading 1_001_004 at driver time ~1005
    assert clock == timing.ClockOffset(offset_ns=999_999, error_ns=5, round_trip_ns=10)


def worker(starts: list[int], length: int, stride: int = 1) -> WorkerResult:
    stamps = np.array([[s, s + length] for s in starts], dtype=np.int64).reshape(-1, 2)
    last = int(stamps[-1, 1]) if len(starts) else 0
    return WorkerResult(0, 0, len(starts) * stride, last, stride, stamps, [])


def test_durations_since_the_start_are_placed_on_the_drivers_clock() -> None:
    in_actor = worker([5_000, 5_010], 4)  # the actor's own clock, its start at 5_000
    relative = timing.since(in_actor, 5_000)
    assert relative.stamps.tolist() == [[0, 4], [10, 14]] and relative.last_end_ns == 14
    placed = timing.shifted(relative, 70)  # the driver's start
    assert placed.stamps.tolist() == [[70, 74], [80, 84]] and placed.last_end_ns == 84


def test_the_timed_window_is_the_overlap_and_keeps_what_ran_inside_it() -> None:
    early, late = worker([0, 10, 20, 30], 8), worker([12, 22, 32, 42], 8)
    windows = [timing.copy_window([early]), timing.copy_window([late])]
    assert windows == [(0, 38), (12, 50)]
    window = timing.overlap(windows)
    assert window == (12, 38)
    assert timing.trimmed(early, window).stamps.tolist() == [[20, 28], [30, 38]]
    kept = timing.trimmed(late, window)
    assert kept.stamps.tolist() == [[12, 20], [22, 30]] and kept.count == 2
    assert kept.last_end_ns == 30
    thinned = timing.trimmed(worker([0, 10, 20], 8, stride=4), (5, 40))
    assert thinned.count == 8  # each kept sample stands for 4 inferences
    assert timing.overlap([(0, 10), (20, 30)]) is None
    assert timing.overlap([(0, 10), None]) is None


def test_at_least_one_round_trip() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        timing.estimate_offset(lambda: 0, rounds=0)

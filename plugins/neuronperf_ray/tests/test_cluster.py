"""runner="ray" on a simulated cluster (conftest.py): a head node and two nodes with 2
``neuron_cores`` each, all on this machine. Models are Python callables through NeuronPerf
1.x's ``npf.benchmark(load_fn, name, ...)`` with ``device_type="neuron"``: each copy then
asks Ray for its NeuronCores, which only the two "Neuron" nodes declare."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import models
import numpy as np
import pytest
from conftest import all_cores_free, leftovers
from neuronperf_ray.runner import RayRunnerError

import neuronperf as npf
from neuronperf_core.uncertainty import fell_behind

RUN: dict[str, Any] = {
    "device_type": "neuron",
    "runner": "ray",
    "workers_per_model": [1],
    "results_dir": None,
    "verbosity": 0,
}


def benchmark(load_fn: Any, name: str = "sleepy", **kwargs: Any) -> list[dict[str, Any]]:
    options = {**RUN, "duration": 1, **kwargs}
    return npf.benchmark(load_fn, name, np.zeros((1, 4)), batch_sizes=[1], **options)


def neuron_node_ids(cluster: Any) -> set[str]:
    return {node.node_id for node in cluster.neuron_nodes}


def test_spread_puts_one_copy_on_each_node_and_reports_where(connected: Any) -> None:
    (report,) = benchmark(models.load_sleepy, n_models=[2], ray_placement="spread")
    assert report["status"] == "finished", report["error"]
    assert report["runner"] == "ray" and report["ray_placement"] == "spread"
    assert set(report["ray_node_ids"]) == neuron_node_ids(connected)  # one copy per node
    # Ray gave each actor one of its node's NeuronCores (and set NEURON_RT_VISIBLE_CORES)
    assert [len(a["neuron_cores"]) for a in report["ray_accelerators"]] == [1, 1]
    assert report["total_infs"] > 0 and report["throughput_avg"] > 0
    assert leftovers() == ([], [])


def test_pack_puts_the_copies_on_one_node(connected: Any) -> None:
    # PACK packs as far as what is free allows: with a core still held by the last test's
    # actors it would spread, as it should
    assert all_cores_free()
    (report,) = benchmark(models.load_sleepy, n_models=[2], ray_placement="pack")
    assert report["status"] == "finished", report["error"]
    (node,) = set(report["ray_node_ids"])  # a Neuron node holds both copies
    assert node in neuron_node_ids(connected)
    cores = [a["neuron_cores"][0] for a in report["ray_accelerators"]]
    assert sorted(cores) == ["0", "1"]  # the node's two cores, one each


def test_the_timed_window_is_the_overlap_of_the_copies_windows(connected: Any) -> None:
    (report,) = benchmark(models.load_sleepy, n_models=[2], workers_per_model=[2])
    assert report["status"] == "finished", report["error"]
    assert report["ray_placement"] == "default"
    length_ms = report["total_s"] * 1e3
    for start, end in report["ray_copy_windows_ms"]:  # relative to the timed window's start
        assert start <= 0 and end >= length_ms - 1e-6  # each ran the whole timed window
    # the same machine's monotonic clock: every estimate is within its own error bound
    offsets, errors = report["ray_clock_offset_us"], report["ray_clock_error_us"]
    for offset, error in zip(offsets, errors, strict=True):
        assert abs(offset) <= error
    assert report["ray_clock_warning"] is None or "line up" in report["ray_clock_warning"]


def test_an_open_loop_sends_each_copy_its_share_of_the_arrivals(connected: Any) -> None:
    (report,) = benchmark(models.load_sleepy, n_models=[2], arrival_rate=[100], duration=2)
    assert report["status"] == "finished", report["error"]
    assert report["arrival_rate"] == 100.0
    # 1 ms a request at 50 a second per copy: nothing queues, all that arrived was served
    # but perhaps one due in the last moment (the verdict allows 1 %)
    assert fell_behind(report) is None
    assert report["achieved_rate"] == pytest.approx(report["offered_rate"], rel=0.01)
    assert 50 < report["offered_rate"] < 150
    assert report["latency_ms_p50"] >= 1.0


def test_clocks_known_too_loosely_for_the_window_are_warned_about(
    connected: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from neuronperf_ray import runner

    monkeypatch.setattr(runner, "CLOCK_WARN_FRACTION", 0.0)  # any uncertainty is too much
    (report,) = benchmark(models.load_sleepy, n_models=[1], duration=0.5)
    assert report["status"] == "finished", report["error"]
    assert "the copies' windows line up only that well" in report["ray_clock_warning"]
    assert report["ray_clock_warning"] in caplog.text


def test_what_the_runner_cannot_run_is_refused_before_anything_starts() -> None:
    with pytest.raises(RayRunnerError, match="until_stable is not supported"):
        benchmark(models.load_sleepy, n_models=[1], until_stable=True)
    with pytest.raises(RayRunnerError, match="cannot be serialised"):
        npf.evaluate(
            models.load_classifier, "clf", (row for row in DATASET), metrics="accuracy",
            runner="ray", device_type="neuron", results_dir=None, verbosity=0,
        )  # fmt: skip


def test_a_cluster_too_small_is_refused_before_anything_starts(connected: Any) -> None:
    with pytest.raises(RayRunnerError, match="needs 3 nodes that each hold a copy"):
        benchmark(models.load_sleepy, n_models=[3], ray_placement="spread")
    with pytest.raises(RayRunnerError, match="No node declares a GPU"):
        benchmark(models.load_sleepy, n_models=[1], device_type="cuda")
    assert leftovers() == ([], [])


def test_a_copy_that_dies_ends_its_config_and_the_sweep_goes_on(connected: Any) -> None:
    # n_models=2: copy 1 kills its own process in the timed window; n_models=1 then runs
    died, alone = benchmark(
        models.load_copy_1_dies, n_models=[2, 1], ray_placement="spread", duration=2
    )
    assert died["status"] == "error"
    node_ip, node_id = died["ray_node_ips"][1], died["ray_node_ids"][1]
    assert f"model copy 1 on node {node_ip} ({node_id[:8]}" in died["error"]
    assert "died while running" in died["error"]
    assert alone["status"] == "finished", alone["error"]
    assert leftovers() == ([], [])


def test_a_copy_that_fails_to_load_names_the_copy_node_and_error(connected: Any) -> None:
    (report,) = benchmark(models.load_fails, n_models=[1])
    assert report["status"] == "error"
    assert "model copy 0 on node" in report["error"]
    assert "failed while loading: RuntimeError: no model here for copy 0" in report["error"]
    assert leftovers() == ([], [])


def test_a_config_past_its_time_limit_ends_with_timeout(connected: Any) -> None:
    (report,) = benchmark(models.load_hangs, n_models=[2], config_timeout=1)
    assert report["status"] == "timeout"
    assert "plus config_timeout (1 s)" in report["error"]
    assert leftovers() == ([], [])  # the hung copies were killed


def _when(marker: Path, action: Any) -> threading.Thread:
    """Run ``action`` once ``marker`` exists (a copy touches it in its timed window)."""

    def wait() -> None:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if time.monotonic() > deadline:
                return  # the test then fails on the config's status, not by a stray signal
            time.sleep(0.05)
        action()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_stops_every_copy_keeps_what_they_measured_and_ends_the_sweep(
    connected: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "timed"
    thread = _when(marker, lambda: os.kill(os.getpid(), signal.SIGINT))
    reports = benchmark(
        models.load_marking, str(marker), n_models=[2], workers_per_model=[1, 2], duration=60
    )
    thread.join()
    (report,) = reports  # the second config never ran
    assert report["status"] == "interrupted"
    assert report["total_infs"] > 0  # what the copies measured until the stop
    assert set(report["ray_node_ids"]) <= neuron_node_ids(connected)
    assert leftovers() == ([], [])


def test_a_node_that_leaves_ends_its_config_naming_the_copy_and_node(
    connected: Any, tmp_path: Path
) -> None:
    extra = connected.add_node(num_cpus=2, resources={"neuron_cores": 2})
    connected.wait_for_nodes()
    marker = tmp_path / "timed"
    try:
        thread = _when(marker, lambda: connected.remove_node(extra))
        (report,) = benchmark(
            models.load_marking, str(marker), n_models=[3], ray_placement="spread", duration=60
        )
        thread.join()
    finally:
        if extra in connected.worker_nodes:
            connected.remove_node(extra)
    assert report["status"] == "error"
    copy = report["ray_node_ids"].index(extra.node_id)
    assert f"model copy {copy} on node" in report["error"]
    assert extra.node_id[:8] in report["error"]
    assert leftovers() == ([], [])


def test_ray_address_joins_the_cluster_for_the_run_and_leaves_after(connected: Any) -> None:
    import ray

    ray.shutdown()
    (report,) = benchmark(models.load_sleepy, n_models=[1], ray_address=connected.address)
    assert report["status"] == "finished", report["error"]
    assert not ray.is_initialized()


LOCAL_RUN = """
import json, sys
import numpy as np
import ray
import neuronperf as npf
import models
ray.cloudpickle.register_pickle_by_value(models)
(report,) = npf.benchmark(
    models.load_sleepy, "sleepy", np.zeros((1, 4)), batch_sizes=[1], device_type="cpu",
    runner="ray", n_models=[2], workers_per_model=[1], duration=1, results_dir=None, verbosity=0,
)
print(json.dumps({"report": report, "connected_after": ray.is_initialized()}, default=str))
"""


def test_without_an_address_a_local_ray_runs_the_copies_and_stops() -> None:
    # in a fresh interpreter, as a script runs it: after a local Ray, Ray 2.60 cannot start
    # actors on another cluster from the same process (this session's cluster)
    here = Path(__file__).parent
    done = subprocess.run(
        [sys.executable, "-c", LOCAL_RUN], cwd=here, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    report = result["report"]
    assert report["status"] == "finished", report["error"]
    assert len(set(report["ray_node_ids"])) == 1  # the one local node
    assert result["connected_after"] is False  # the local Ray was stopped after the run


DATASET = [(np.arange(k, k + 4).reshape(1, 4), k % 3) for k in range(60)]


def test_evaluation_shards_across_nodes_and_equals_a_local_run(connected: Any) -> None:
    npf.register_metric("NodesSeen", models.NodesSeen, replace=True)
    local = npf.evaluate(
        models.load_classifier, "clf", DATASET, metrics=["accuracy"], results_dir=None,
        verbosity=0,
    )  # fmt: skip
    on_ray = npf.evaluate(
        models.load_classifier,
        "clf",
        DATASET,
        metrics=["accuracy", "NodesSeen"],
        runner="ray",
        ray_placement="spread",
        device_type="neuron",
        n_models=2,
        workers_per_model=2,
        results_dir=None,
        verbosity=0,
    )
    (here,), (there,) = local, on_ray
    assert here["status"] == there["status"] == "finished", there["error"]
    assert there["accuracy"] == here["accuracy"]  # exactly
    seen = there["NodesSeen"]
    assert seen["records"] == len(DATASET)  # every record once, across the shards
    assert set(seen["nodes"]) == neuron_node_ids(connected)  # both nodes scored a shard
    assert leftovers() == ([], [])

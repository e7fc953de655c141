"""A runner plugin's seams beyond run() and check(): a session around the whole run
(``session(jobs, options)``: the Ray runner connects to its cluster there, once), and
``places_copies`` (copies run on machines the runner chooses, so this machine's device
count does not bound n_models)."""

from __future__ import annotations

import pytest

import neuronperf as npf
from neuronperf_core import devices
from neuronperf_core.benchmarking.plan import BenchmarkArgumentError
from neuronperf_core.options import OptionError

CLUSTER_RUNNER = """
    import contextlib

    from neuronperf_core import hookimpl
    from neuronperf_core.benchmarking.runners import THREADS

    EVENTS = []

    class ClusterRunner:
        places_copies = True

        @contextlib.contextmanager
        def session(self, jobs, options):
            EVENTS.append(("enter", [j.config.n_models for j in jobs], options.model_name))
            try:
                yield
            finally:
                EVENTS.append(("exit",))

        def run(self, job, stats_interval):
            EVENTS.append(("run", job.config.n_models))
            return THREADS.run(job, stats_interval)

    class LocalRunner:
        def run(self, job, stats_interval):
            return THREADS.run(job, stats_interval)

    CLUSTER = ClusterRunner()
    LOCAL = LocalRunner()

    @hookimpl
    def neuronperf_register_runners(register):
        register("cluster", "npf_cluster_runner:CLUSTER", description="a cluster")
        register("local", "npf_cluster_runner:LOCAL", description="here")
"""


@pytest.fixture
def cluster_runner(fake_site):
    modules = {"npf_cluster_runner": CLUSTER_RUNNER}
    fake_site.add_dist("npf-cluster", "1", {"cluster": "npf_cluster_runner"}, modules)
    import npf_cluster_runner

    return npf_cluster_runner


def _benchmark(runner: str, n_models: list[int], **kwargs):
    return npf.cpu.benchmark(
        npf.DummyModel,
        [1],
        runner=runner,
        n_models=n_models,
        workers_per_model=[1],
        duration=0,
        max_infers=4,
        results_dir=None,
        verbosity=0,
        **kwargs,
    )


def test_the_runners_session_is_entered_once_around_every_config(cluster_runner):
    reports = _benchmark("cluster", [1, 2], model_name="m")
    assert [r["status"] for r in reports] == ["finished", "finished"]
    assert cluster_runner.EVENTS == [("enter", [1, 2], "m"), ("run", 1), ("run", 2), ("exit",)]


def test_a_runner_that_places_copies_elsewhere_is_not_bound_by_this_machines_count(
    cluster_runner,
):
    more = devices.cpu_cores() + 1  # more copies than this machine holds
    with pytest.raises(BenchmarkArgumentError, match=f"n_models={more}"):
        _benchmark("local", [more])
    (report,) = _benchmark("cluster", [more])
    assert report["status"] == "finished" and report["n_models"] == more


def test_ray_options_are_refused_without_the_ray_runner():
    for given in ({"ray_address": "auto"}, {"ray_placement": "spread"}):
        with pytest.raises(OptionError, match="applies to runner='ray'"):
            _benchmark("threads", [1], **given)

"""Progress of a sweep: what it says a config is doing, the records an evaluation scored, and
a time left that eases towards new estimates. The clock is read where the tests say "now"
(``time.monotonic`` moved by hand), so nothing here waits or depends on the machine's speed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from neuronperf_core.benchmarking import progress as progress_module
from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.benchmarking.progress import EASE, Progress
from neuronperf_core.benchmarking.worker import Job


def config(batch_size: int = 1, duration: float = 10.0) -> BenchmarkConfig:
    return BenchmarkConfig(
        model_name="m", model_filename="m.bin", input_idx=0, batch_size=batch_size,
        pipeline_size=1, cast_mode=None, n_models=1, workers_per_model=1, device_type="cpu",
        runner="threads", duration=duration, max_infers=None,
    )  # fmt: skip


class Clock:
    """``time.monotonic`` and ``time.perf_counter_ns`` as the test sets them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(progress_module.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(progress_module.time, "perf_counter_ns", lambda: int(self.now * 1e9))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def test_a_config_is_loading_then_measuring_then_stopping_copies(clock: Clock) -> None:
    out = io.StringIO()
    sweep = Progress(2, 10.0, verbosity=1, out=out)
    sweep.start_config(config())
    assert sweep._doing(clock.now) == "loading copies"
    clock.now += 3  # loading took 3 s; the runner opens the window 0.02 s from now
    progress_module.window_opened(int((clock.now + 0.02) * 1e9))
    clock.now += 5
    assert sweep._doing(clock.now) == "measuring"
    assert sweep._completed(clock.now) == pytest.approx(0.5, abs=0.01)
    clock.now += 6  # the 10 s window is over; the copies are shutting down
    assert sweep._doing(clock.now) == "stopping copies"
    assert sweep._completed(clock.now) == 1.0
    # not "0 s left" while the second config's 10 s are all ahead
    assert sweep._estimate(clock.now) >= 10.0
    sweep.end_config()
    assert progress_module._active is None  # window_opened now reaches no one
    lines = out.getvalue().splitlines()
    assert lines[0] == "benchmarking 2 configs, about 20 s of timed runs"
    assert lines[1] == "[1/2] batch 1, n_models 1, workers 1; about 20 s left"


def test_the_estimate_learns_what_loading_and_stopping_cost(clock: Clock) -> None:
    sweep = Progress(3, 10.0, verbosity=0)
    sweep.start_config(config())
    clock.now += 14  # 10 s measured, 4 s loading and stopping
    sweep.end_config()
    sweep.start_config(config())
    assert sweep._estimate(clock.now) == pytest.approx(2 * 14)


def test_the_time_left_eases_towards_a_new_estimate(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = Progress(1, 10.0, verbosity=0)
    estimates = iter([60.0, 24.0, 24.0])
    monkeypatch.setattr(sweep, "_estimate", lambda now: next(estimates))
    assert sweep._eased(clock.now) == 60.0
    clock.now += 0.5  # the estimate drops by 36 s at once
    shown = sweep._eased(clock.now)
    counted_down = 60.0 - 0.5
    assert shown == pytest.approx(counted_down + EASE * (24.0 - counted_down))
    assert shown > 45  # moved part of the way, not all of it
    clock.now += 0.5
    assert sweep._eased(clock.now) < shown


def rows_job(rows: Any, batch_size: int) -> Job:
    return Job(config(batch_size, duration=0), load_fn=lambda f, device_id=0: None,
               model_input=None, dataset=rows, eval_target_col=1)  # fmt: skip


class Shards:
    """Rows a backend shards across workers (ShardedRows)."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def __iter__(self) -> Any:
        return iter(self.rows)

    def shard(self, shard: int, n_shards: int) -> Any:
        return iter(self.rows[shard::n_shards])


def test_an_evaluation_counts_the_records_it_scores(clock: Clock) -> None:
    out = io.StringIO()
    sweep = Progress(2, 0, verbosity=1, out=out, evaluating=True, results=Path("r.json"))
    # batch size 4: three batches, the last padded, its target holding its 2 real records
    batches = [("x", [0, 1, 2, 3]), ("x", [4, 5, 6, 7]), ("x", [8, 9])]
    job = sweep.count_records(rows_job(batches, 4), in_this_process=True)
    sweep.start_config(job.config, job)
    progress_module.window_opened(int(clock.now * 1e9))
    clock.now += 0.1
    rows = iter(job.dataset)
    next(rows)
    assert sweep._doing(clock.now) == "scoring 4 records"  # no total before one config ends
    list(rows)
    sweep.end_config()
    records = [(i, i % 10) for i in range(10)]
    job = sweep.count_records(rows_job(Shards(records), 1), in_this_process=True)
    assert callable(getattr(job.dataset, "shard", None))  # still shards: workers read apart
    sweep.start_config(job.config, job)
    progress_module.window_opened(int(clock.now * 1e9))
    clock.now += 0.1
    list(job.dataset.shard(0, 2))
    assert sweep._doing(clock.now) == "scoring 5/10 records"
    assert sweep._completed(clock.now) == pytest.approx(1.5)
    list(job.dataset.shard(1, 2))
    sweep.done()
    assert out.getvalue().splitlines() == [
        f"evaluating 2 configs; results: {Path('r.json').absolute()}",
        "[1/2] batch 4, n_models 1, workers 1: evaluating",
        "[1/2] batch 4, n_models 1, workers 1: 10 records scored",
        "[2/2] batch 1, n_models 1, workers 1: evaluating",
        "[2/2] batch 1, n_models 1, workers 1: 10 records scored",
    ]


def test_rows_read_in_another_process_or_by_a_loader_are_left_alone() -> None:
    sweep = Progress(1, 0, verbosity=1, out=io.StringIO(), evaluating=True)
    job = rows_job([("x", 1)], 1)
    assert sweep.count_records(job, in_this_process=False) is job
    job.dataset_loader_fn = lambda data, shard, n: data
    assert sweep.count_records(job, in_this_process=True) is job
    assert Progress(1, 0, verbosity=0, evaluating=True).count_records(job, True) is job


def test_quiet_prints_nothing(clock: Clock) -> None:
    out = io.StringIO()
    sweep = Progress(1, 1.0, verbosity=0, out=out)
    sweep.start_config(config())
    sweep.end_config()
    progress_module.say("model index: x.json", 0, out)
    assert out.getvalue() == ""
    progress_module.say("model index: x.json", 1, out)
    assert out.getvalue() == "model index: x.json\n"

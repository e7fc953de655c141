"""The worker loops on their own: bounded sample buffers, stopping, shares of max_infers."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.benchmarking.runners import ProcessRunner, ThreadsRunner, worker_limits
from neuronperf_core.benchmarking.worker import (
    NEVER,
    Job,
    ModelCopy,
    SharedRows,
    Stop,
    _Samples,
    calibrate_overhead_ns,
    call_model,
    copy_rows,
    fast_loop,
    run_worker,
    worker_rows,
)
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.reporting import get_reports

X = np.ones(3)


class Stamper:
    """Reads the clock inside each call: inference k's reading lies between its bounds."""

    def __init__(self) -> None:
        self.stamps: list[int] = []

    def __call__(self, *inputs: Any) -> Any:
        self.stamps.append(time.perf_counter_ns())
        return inputs[0]


def make_job(
    max_samples: int = 1_000_000,
    batch_size: int = 1,
    n_models: int = 1,
    workers_per_model: int = 1,
    duration: float = 0,
    max_infers: int | None = None,
    **job: Any,
) -> Job:
    config = BenchmarkConfig(
        model_name="m",
        model_filename="m.model",
        input_idx=0,
        batch_size=batch_size,
        pipeline_size=1,
        cast_mode=None,
        n_models=n_models,
        workers_per_model=workers_per_model,
        device_type="cpu",
        runner="threads",
        duration=duration,
        max_infers=max_infers,
    )
    job = {"load_fn": lambda *_, **__: None, **job}
    return Job(config=config, model_input=X, max_samples=max_samples, **job)


@pytest.mark.parametrize("loop", ["fast", "full"])  # full: with a preprocess_fn, 5 stamps each
@pytest.mark.parametrize("max_samples", [2, 3, 4, 5, 7, 8, 64])
@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 9, 17, 100, 1001])
def test_the_sample_buffer_thins_out_evenly(loop: str, max_samples: int, count: int) -> None:
    job = make_job(max_samples, preprocess_fn=(lambda x: x) if loop == "full" else None)
    model = Stamper()
    rows = worker_rows(job, 0, 1)
    result = run_worker(job, ModelCopy(0, model), 0, rows, Stop(NEVER), count)

    assert result.count == len(model.stamps) == count
    stride, kept = result.stride, result.stamps.shape[0]
    assert result.stamps.shape[1] == (5 if loop == "full" else 2)
    assert stride & (stride - 1) == 0  # 1, 2, 4, ...
    assert kept == -(-count // stride)  # inferences 0, stride, 2 * stride, ...
    assert kept <= max_samples  # memory stays bounded
    if count <= max_samples:
        assert stride == 1
    else:
        assert kept >= max_samples // 2  # thinned no further than needed
    # Kept sample j is inference j * stride: its bounds hold that call's clock reading.
    starts, ends = result.stamps[:, 0], result.stamps[:, -1]
    inside = np.asarray(model.stamps, dtype=np.int64)[::stride]
    assert (starts <= inside).all() and (inside <= ends).all()
    assert (np.diff(starts) > 0).all()
    assert result.last_end_ns >= ends[-1]

    # The raw worker dict is what reporting expects of a count and a stride.
    worker = result.to_dict()
    assert worker["start_ns"].dtype == np.int64 and worker["start_ns"].shape == (kept,)
    assert all(v.shape == (kept,) for v in worker["phases_ns"].values())
    raw = {
        "config": job.config.to_dict(),
        "status": "finished",
        "window_ns": [int(starts[0]), result.last_end_ns],
        "workers": [worker],
    }
    (report,) = get_reports([raw])
    assert report["total_infs"] == count
    assert report["latency_samples"] == kept


def test_fast_loop_appends_to_a_buffer_and_thins_it() -> None:
    samples = _Samples(4, 2)
    count, last_end = fast_loop(Stamper(), (X,), Stop(NEVER), 10, samples)
    assert (count, samples.stride, samples.size) == (10, 4, 3)  # inferences 0, 4, 8
    assert last_end >= samples.stamps()[-1, 1]


def test_a_deadline_in_the_past_stops_after_one_inference() -> None:
    model = Stamper()
    count, _ = fast_loop(model, (X,), Stop(0), NEVER, _Samples(8, 2))
    assert count == len(model.stamps) == 1


def test_a_limit_of_zero_runs_nothing() -> None:
    model = Stamper()
    result = run_worker(make_job(), ModelCopy(0, model), 0, iter(()), Stop(NEVER), 0)
    assert (result.count, result.stamps.shape[0], model.stamps) == (0, 0, [])


def test_stop_now_ends_a_running_loop() -> None:
    stop = Stop(NEVER)
    job = make_job()
    rows = worker_rows(job, 0, 1)
    thread_result: list[Any] = []
    thread = threading.Thread(
        target=lambda: thread_result.append(
            run_worker(job, ModelCopy(0, Stamper()), 0, rows, stop, NEVER)
        )
    )
    thread.start()
    time.sleep(0.05)
    stop.now()
    thread.join(10)
    assert not thread.is_alive()
    assert thread_result[0].count > 0


@pytest.mark.parametrize(
    ("n_models", "workers", "max_infers", "duration"),
    [(1, 1, 5, 60), (2, 3, 7, 60), (2, 2, 1001, 0), (3, 2, 4, 0), (2, 2, None, 0)],
)
def test_max_infers_is_shared_out_exactly(
    n_models: int, workers: int, max_infers: int | None, duration: float
) -> None:
    job = make_job(
        n_models=n_models, workers_per_model=workers, max_infers=max_infers, duration=duration
    )
    limits = worker_limits(job)
    assert len(limits) == n_models * workers
    assert sum(limits) == (max_infers or 1)  # duration=0: one pass over the one input
    assert max(limits) - min(limits) <= 1


def test_without_a_bound_workers_run_until_the_deadline() -> None:
    assert worker_limits(make_job(n_models=2, duration=1)) == [NEVER, NEVER]
    evaluating = make_job(duration=0, dataset=[(1, 1)])
    assert worker_limits(evaluating) == [NEVER]  # the rows end the run


def test_call_model_destructures_tuples_only() -> None:
    model = Stamper()
    got: list[tuple[Any, ...]] = []
    call_model(lambda *args: got.append(args), (X, X))
    call_model(lambda *args: got.append(args), np.zeros((2, 3)))
    call_model(lambda *args: got.append(args), [X, X])
    assert [len(args) for args in got] == [2, 1, 1]
    assert call_model(model, X) is X


def test_shared_rows_hand_each_row_to_one_thread() -> None:
    rows = SharedRows(iter(range(20_000)))
    seen: list[list[int]] = [[], [], [], []]

    def drain(mine: list[int]) -> None:
        for row in rows:
            mine.append(row)

    threads = [threading.Thread(target=drain, args=(s,)) for s in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(row for s in seen for row in s) == list(range(20_000))


def test_the_harness_measures_its_own_overhead() -> None:
    assert 0 < calibrate_overhead_ns() < 1e6  # well under a millisecond per inference


class NumpyShards:
    """``ShardedRows`` of ``n`` records ``(x = [id], id)`` in batches of ``batch``, the last
    padded; it may be read shard by shard only."""

    def __init__(self, n: int, batch: int) -> None:
        self.x = np.arange(n, dtype=np.float64)[:, None]
        self.y = np.arange(n)
        self.batch = batch

    def __iter__(self) -> Any:  # a generator: fails when read, not when a runner wraps it
        raise AssertionError("a ShardedRows was read through an iterator shared by workers")
        yield

    def shard(self, shard: int, n_shards: int) -> Any:
        size = self.batch
        for start in range(shard * size, len(self.y), n_shards * size):
            x, y = self.x[start : start + size], self.y[start : start + size]
            if len(y) < size:
                x = np.concatenate([x, np.repeat(x[-1:], size - len(y), axis=0)])
            yield x, y


class Seen(BaseEvalMetric):
    """The ids one worker scored; checks each output is its own record's."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[int] = []

    def process_record(self, output: Any = None, target: Any = None) -> None:
        raise AssertionError("batches are scored with process_batch")

    def process_batch(self, outputs: Any, targets: Any) -> None:
        assert outputs.shape == (len(targets), 1)  # the padded batch's output cut to its records
        assert (outputs[:, 0] == targets).all()
        self.ids.extend(int(t) for t in targets)

    @staticmethod
    def aggregate(metrics: Any) -> list[list[int]]:
        return [m.ids for m in metrics]


def sharded_job(n_models: int, workers: int, n: int = 70, batch: int = 8) -> Job:
    return make_job(
        batch_size=batch,
        n_models=n_models,
        workers_per_model=workers,
        dataset=NumpyShards(n, batch),
        eval_target_col=1,
        metrics=[("seen", Seen, {})],
        load_fn=lambda *_, **__: lambda x: x,
    )


@pytest.mark.parametrize(
    ("runner", "n_models", "workers"),
    [("threads", 1, 1), ("threads", 1, 3), ("threads", 2, 2), ("processes", 2, 2)],
)
def test_sharded_rows_give_each_worker_its_own_shard(
    runner: str, n_models: int, workers: int
) -> None:
    """70 records in batches of 8 (the last of 6 padded): worker k of n reads batches
    k, k + n, ..., every record is scored once, and the shared iterator is never read."""
    job = sharded_job(n_models, workers)
    run = ThreadsRunner() if runner == "threads" else ProcessRunner("fork")
    raw = run.run(job, 0)
    assert raw["status"] == "finished", raw["error"]
    n_shards = n_models * workers
    shards = [[i for i in range(70) if i // 8 % n_shards == k] for k in range(n_shards)]
    assert sorted(raw["metrics"]["seen"]) == sorted(shards)
    assert sum(w["count"] for w in raw["workers"]) == 9  # batches, the padded one included


def test_worker_rows_read_the_shard_and_copies_share_nothing() -> None:
    job = sharded_job(2, 2)
    assert copy_rows(job, 0) is None  # each worker reads its own shard instead
    assert [int(y[0]) for _, y in worker_rows(job, 1, 4)] == [8, 40]
    unsharded = make_job(dataset=[(X, 0)], eval_target_col=1)
    assert isinstance(copy_rows(unsharded, 0), SharedRows)
    with pytest.raises(RuntimeError, match="shared rows"):
        worker_rows(unsharded, 0, 1)

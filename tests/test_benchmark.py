"""benchmark() and evaluate() end to end: real runs in threads, forked processes and fresh
interpreters, on tiny models with short runs.

Nothing here asserts a time (the test machines are noisy): counts, statuses, fields,
orders and files. Helpers a spawned interpreter must unpickle live at module level.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import neuronperf as npf
from neuronperf import cpu
from neuronperf_core import devices, model_index
from neuronperf_core.api import EVALUATE_DEFAULTS
from neuronperf_core.benchmarking.plan import BenchmarkArgumentError
from neuronperf_core.benchmarking.runners import JobNotPicklableError
from neuronperf_core.benchmarking.worker import WARMUP_INFERS
from neuronperf_core.errors import NeuronPerfError, UnknownNameError
from neuronperf_core.options import OptionError
from neuronperf_core.reporting import REPORT_FIELDS, get_reports

X = np.ones(4)
N_ROWS = 1001  # odd: two workers get uneven shares
# Short runs: a bound on the count, a duration no run reaches, no stats thread.
QUICK: dict[str, Any] = {
    "duration": 60,
    "max_infers": 20,
    "n_models": 1,
    "workers_per_model": 1,
    "stats_interval": 0,
    "results_dir": None,
}
LOCAL_RUNNERS = ["threads", "processes"]


# -- helpers (module level: fresh interpreters unpickle them) -------------------------


class RecordingLoader:
    """A load_fn that records its calls (in this process) and loads a DummyModel."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, filename: str, device_id: int = 0) -> Any:
        self.calls.append((filename, device_id))
        return npf.DummyModel()


def batch(size: int) -> np.ndarray:
    return np.zeros((size, 3))


class BatchModel:
    """A model compiled for one batch size: any other input is an error."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] != self.batch_size:
            raise AssertionError(
                f"the batch-{self.batch_size} model got an input of batch {x.shape[0]}"
            )
        return x


def load_by_file(filename: str, device_id: int = 0) -> BatchModel:
    """The model file holds its batch size."""
    return BatchModel(int(Path(filename).read_text()))


class BatchLoader:
    """load_by_file, but the model of batch ``bad`` is ``make_bad(batch size)``."""

    def __init__(self, bad: int, make_bad: Any) -> None:
        self.bad = bad
        self.make_bad = make_bad

    def __call__(self, filename: str, device_id: int = 0) -> Any:
        size = int(Path(filename).read_text())
        return self.make_bad(size) if size == self.bad else BatchModel(size)


class Crash(BaseException):
    """Not an Exception: nothing in the engine catches it, like a crash."""


def fail_to_load(size: int) -> Any:
    raise RuntimeError(f"cannot load the batch-{size} model")


def crash_on_load(size: int) -> Any:
    raise Crash(f"the batch-{size} model crashed the run")


class FailsAfter:
    """Answers ``ok_calls`` times (enough for the warm-up), then raises."""

    def __init__(self, ok_calls: int = WARMUP_INFERS + 4) -> None:
        self.ok_calls = ok_calls
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        if self.calls > self.ok_calls:
            raise ValueError("the model broke on purpose")
        return x


class KillsItself:
    """A model the OS kills (SIGKILL, as the OOM killer does) after ``ok_calls`` calls."""

    def __init__(self, ok_calls: int) -> None:
        self.ok_calls = ok_calls
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        if self.calls > self.ok_calls:
            os.kill(os.getpid(), signal.SIGKILL)
        return x


def identity(x: Any) -> Any:
    return x


def first_input(x: Any, pad: str) -> Any:
    assert pad == "pad", pad
    return x


class SeenRows(npf.BaseEvalMetric):
    """Records the target (the row number) of every record it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def process_record(self, output: Any = None, target: Any = None) -> None:
        assert output == target, (output, target)
        self.seen.append(int(target))

    @staticmethod
    def aggregate(metrics: Any) -> list[int]:
        return sorted(row for metric in metrics for row in metric.seen)


class Rows:
    """A re-iterable dataset (not a list) of (i, i) rows; picklable."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((i, i) for i in range(self.n))


def rows_generator(n: int) -> Iterator[tuple[int, int]]:
    yield from ((i, i) for i in range(n))


def log_line(log: str, *fields: Any) -> None:
    with open(log, "a") as f:
        f.write(" ".join(map(str, (*fields, os.getpid()))) + "\n")


def log_env_setup(log: str, copy_id: int, config: dict[str, Any]) -> None:
    os.environ["NPF_TEST_COPY"] = str(copy_id)  # what 1.x users set NEURON_RT_VISIBLE_CORES in
    log_line(log, "env", copy_id, config["n_models"])


class LoggedModel(npf.DummyModel):
    def __init__(self, device_id: int) -> None:
        super().__init__()
        self.device_id = device_id


class LoggingLoader:
    def __init__(self, log: str) -> None:
        self.log = log

    def __call__(self, filename: str, device_id: int = 0) -> LoggedModel:
        log_line(self.log, "load", device_id, os.environ.get("NPF_TEST_COPY"))
        return LoggedModel(device_id)


def log_setup(log: str, copy_id: int, config: dict[str, Any], model: LoggedModel) -> None:
    log_line(log, "setup", copy_id, model.device_id)


def read_log(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()]


class SignalsParent:
    """In a forked copy: Ctrl-C to the parent (the benchmark) once the timed run is on."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        if self.calls == WARMUP_INFERS + 10:
            os.kill(os.getppid(), signal.SIGINT)
        time.sleep(0.001)
        return x


class SignalsSelfLater:
    """In a worker thread: Ctrl-C to this process from a timer, once the timed run is on."""

    def __init__(self) -> None:
        self.timer: threading.Timer | None = None

    def __call__(self, x: Any) -> Any:
        if self.timer is None and threading.current_thread() is not threading.main_thread():
            self.timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
            self.timer.start()
        time.sleep(0.001)
        return x


@pytest.fixture
def index_path(tmp_path: Path) -> str:
    """A model index of three configs, batch sizes 1, 2 and 4 (input_idx 0, 1, 2)."""
    parts = []
    for idx, size in enumerate((1, 2, 4)):
        model = tmp_path / f"m_b{size}.model"
        model.write_text(str(size))
        parts.append(model_index.create(str(model), input_idx=idx, batch_size=size, model_name="m"))
    return model_index.save(model_index.append(*parts), str(tmp_path / "m.json"))


INPUTS = [batch(1), batch(2), batch(4)]


def result_files(folder: Path, model_name: str = "m") -> list[Path]:
    return sorted(folder.glob(f"{model_name}.results-*.json"))


# -- bad input: a clear error before any model loads --------------------------------


def bad_calls(tmp_path: Path) -> list[tuple[str, dict[str, Any], str]]:
    """(what, benchmark kwargs, expected message fragment): each wrong in one way."""
    rows = [(1, 1), (2, 2)]
    return [
        ("inputs vs batch sizes", {"inputs": [batch(1)], "batch_sizes": [1, 2]}, "2 batch sizes"),
        ("empty inputs", {"inputs": []}, "empty list"),
        ("one input, three batch sizes", {"inputs": batch(1)}, "batch sizes [1, 2, 4]"),
        ("dataset_loader_fn, no metrics", {"dataset_loader_fn": lambda d, i, n: d}, "evaluating"),
        ("input_idx beyond inputs", {"inputs": [batch(1)]}, "only 1 inputs"),
        ("row not a tuple", {"inputs": [[1, 1]], "eval_metrics": "accuracy"}, "tuple"),
        ("one-column row", {"inputs": [(1,)], "eval_metrics": "accuracy"}, "at least one input"),
        ("empty dataset", {"inputs": iter([]), "eval_metrics": "accuracy"}, "empty"),
        (
            "target column too high",
            {"inputs": rows, "eval_metrics": "accuracy", "eval_target_col": 2},
            "out of range",
        ),
        (
            "target column too low",
            {"inputs": rows, "eval_metrics": "accuracy", "eval_target_col": -3},
            "out of range",
        ),
        ("target column, no metrics", {"eval_target_col": 0}, "eval_metrics"),
        ("unknown metric", {"inputs": rows, "eval_metrics": ["acuracy"]}, "Accuracy"),
        ("unknown runner", {"runner": "thread"}, "threads"),
        ("n_models 0", {"n_models": 0}, "n_models"),
        ("n_models [1, 0]", {"n_models": [1, 0]}, "n_models"),
        ("n_models 1.5", {"n_models": 1.5}, "n_models"),
        ("workers 0", {"workers_per_model": 0}, "workers_per_model"),
        ("workers -1", {"workers_per_model": [-1]}, "workers_per_model"),
        ("negative duration", {"duration": -1}, "duration"),
        ("max_infers 0", {"max_infers": 0}, "max_infers"),
        ("batch size 0", {"batch_sizes": [0]}, "batch_sizes"),
        ("no such config", {"batch_sizes": [8], "inputs": [batch(8)]}, "batch_sizes=[8]"),
        ("results_dir missing", {"results_dir": tmp_path / "nowhere"}, "results_dir"),
        ("load_fn not callable", {"load_fn": "model.pt"}, "load_fn"),
        (
            "one-shot dataset, several configs",
            {
                "inputs": rows_generator(4),
                "eval_metrics": "accuracy",
                "n_models": [1, 2],
                "duration": 0,
            },
            "once",
        ),
    ]


BAD_NAMES = [case[0] for case in bad_calls(Path("."))]


@pytest.mark.parametrize("what", BAD_NAMES)
def test_bad_input_fails_before_any_load(what: str, index_path: str, tmp_path: Path) -> None:
    _, kwargs, fragment = next(c for c in bad_calls(tmp_path) if c[0] == what)
    loader = RecordingLoader()
    kwargs = {
        "load_fn": loader,
        "inputs": INPUTS,
        "results_dir": None,
        "runner": "threads",
        **kwargs,
    }
    load_fn, inputs = kwargs.pop("load_fn"), kwargs.pop("inputs")
    with pytest.raises(NeuronPerfError) as caught:
        npf.benchmark(load_fn, index_path, inputs, **kwargs)
    expected = UnknownNameError if what.startswith("unknown") else OptionError
    assert isinstance(caught.value, expected)
    assert fragment in str(caught.value)
    assert loader.calls == []
    assert result_files(tmp_path) == []


def test_unknown_names_list_the_closest(index_path: str) -> None:
    loader = RecordingLoader()
    with pytest.raises(UnknownNameError, match="processes"):
        npf.benchmark(loader, index_path, INPUTS, runner="proceses", results_dir=None)
    with pytest.raises(UnknownNameError, match="F1Score"):
        npf.evaluate(loader, index_path, [(1, 1)], metrics=["f1_scor"], results_dir=None)
    assert loader.calls == []


def test_unpicklable_job_for_fresh_interpreters_fails_before_any_load(index_path: str) -> None:
    loader = RecordingLoader()
    with pytest.raises(JobNotPicklableError, match=r"cannot pickle '_thread\.lock'"):
        npf.benchmark(
            loader,
            index_path,
            INPUTS,
            preprocess_fn=functools.partial(first_input, pad=threading.Lock()),
            multiinterpreter=True,
            **QUICK,
        )
    with pytest.raises(JobNotPicklableError, match="generator"):
        npf.evaluate(loader, "m.model", rows_generator(4), multiinterpreter=True, results_dir=None)
    assert loader.calls == []


# -- inputs matched to configs, sweep order, defaults ---------------------------------


@pytest.mark.parametrize("runner", LOCAL_RUNNERS)
@pytest.mark.parametrize(
    ("batch_sizes", "inputs", "expected"),
    [
        ([2], [batch(2)], [2]),  # the 1.x defect: the batch-2 model got the batch-1 input
        ([4, 1], [batch(4), batch(1)], [1, 4]),
        (None, INPUTS, [1, 2, 4]),  # by input_idx
        (2, batch(2), [2]),  # one batch size, one input (not a list)
    ],
)
def test_inputs_matched_by_batch_size(
    runner: str, batch_sizes: Any, inputs: Any, expected: list[int], index_path: str
) -> None:
    reports = npf.benchmark(
        load_by_file, index_path, inputs, batch_sizes=batch_sizes, runner=runner, **QUICK
    )
    assert [r["status"] for r in reports] == ["finished"] * len(expected), reports[0]["error"]
    assert [r["batch_size"] for r in reports] == expected
    assert [r["input_idx"] for r in reports] == [{1: 0, 2: 1, 4: 2}[b] for b in expected]
    assert [r["total_infs"] for r in reports] == [QUICK["max_infers"]] * len(expected)


def test_a_mismatched_input_is_caught_by_the_model(index_path: str) -> None:
    """The check above has teeth: a wrong pairing ends as an error report."""
    (report,) = npf.benchmark(
        load_by_file, index_path, [batch(2)], batch_sizes=[4], runner="threads", **QUICK
    )
    assert report["status"] == "error"
    assert "the batch-4 model got an input of batch 2" in report["error"]


def test_one_model_that_takes_any_batch_is_swept_over_batch_sizes() -> None:
    def rows_of(x: np.ndarray) -> int:
        return x.shape[0]

    reports = npf.cpu.benchmark(
        rows_of, [batch(1), batch(8)], batch_sizes=[1, 8], runner="threads", **QUICK
    )
    assert [(r["batch_size"], r["input_idx"], r["status"]) for r in reports] == [
        (1, 0, "finished"),
        (8, 1, "finished"),
    ]
    with pytest.raises(BenchmarkArgumentError, match="one pipeline size and cast mode"):
        npf.cpu.benchmark(rows_of, [batch(1)], pipeline_sizes=[1, 2], **QUICK)


def test_sweep_order_is_config_then_workers_then_models(index_path: str) -> None:
    kwargs = {**QUICK, "max_infers": 4, "n_models": [1, 2], "workers_per_model": [1, 2]}
    reports = npf.benchmark(load_by_file, index_path, INPUTS, runner="threads", **kwargs)
    got = [(r["batch_size"], r["workers_per_model"], r["n_models"]) for r in reports]
    assert got == [(b, w, n) for b in (1, 2, 4) for w in (1, 2) for n in (1, 2)]
    assert all(r["status"] == "finished" for r in reports)


def test_default_sweep_is_one_two_workers_by_one_and_max_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(devices, "cpu_cores", lambda: 3)
    kwargs = {k: v for k, v in QUICK.items() if k not in ("n_models", "workers_per_model")}
    reports = cpu.benchmark(npf.DummyModel, X, runner="threads", **kwargs)
    assert [(r["workers_per_model"], r["n_models"]) for r in reports] == [
        (1, 1),
        (1, 3),
        (2, 1),
        (2, 3),
    ]
    monkeypatch.setattr(devices, "cpu_cores", lambda: 1)
    reports = cpu.benchmark(npf.DummyModel, X, runner="threads", **kwargs)
    assert [(r["workers_per_model"], r["n_models"]) for r in reports] == [(1, 1), (2, 1)]


def test_max_copies_on_the_cpu_is_the_usable_cores() -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert devices.cpu_cores() == expected
    assert devices.neuron_core_count() >= 0


def test_more_copies_than_the_device_holds_is_refused_before_loading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(devices, "cpu_cores", lambda: 2)
    with pytest.raises(BenchmarkArgumentError, match=r"n_models=3: the cpu device holds 2"):
        cpu.benchmark(npf.DummyModel, X, runner="threads", **{**QUICK, "n_models": [1, 3]})


@pytest.mark.parametrize(
    ("flags", "runner", "multiprocess", "multiinterpreter"),
    [
        ({"multiprocess": False}, "threads", False, False),
        ({}, "processes", True, False),  # 1.x default: multiprocess=True
    ],
)
def test_multiprocess_flags_choose_the_runner(
    flags: dict[str, bool], runner: str, multiprocess: bool, multiinterpreter: bool
) -> None:
    (report,) = cpu.benchmark(npf.DummyModel, X, **flags, **QUICK)
    assert (report["runner"], report["multiprocess"], report["multiinterpreter"]) == (
        runner,
        multiprocess,
        multiinterpreter,
    )
    assert report["status"] == "finished"
    assert set(REPORT_FIELDS) <= set(report)
    assert report["model_name"] == "DummyModel"
    assert report["device_type"] == "cpu"
    assert report["latency_percentile_method"] == "linear"
    assert report["latency_samples"] == report["total_infs"] == QUICK["max_infers"]
    assert report["throughput_avg"] > 0
    assert report["harness_overhead_us"] > 0
    assert report["load_avg_ms"] is not None and report["warmup_avg_ms"] is not None


# -- hooks -----------------------------------------------------------------------------


@pytest.mark.parametrize("runner", ["threads", "processes", "interpreters"])
def test_hooks_run_in_each_copys_own_process(
    runner: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPF_TEST_COPY", "unset")  # the threads runner sets it here
    log = str(tmp_path / "hooks.log")
    (report,) = npf.benchmark(
        LoggingLoader(log),
        "m.model",
        X,
        env_setup_fn=functools.partial(log_env_setup, log),
        setup_fn=functools.partial(log_setup, log),
        runner=runner,
        **{**QUICK, "n_models": 2},
    )
    assert report["status"] == "finished", report["error"]
    events = read_log(Path(log))
    by_copy = {copy_id: [e for e in events if e[1] == str(copy_id)] for copy_id in ("0", "1")}
    for copy_id, copy_events in by_copy.items():
        # env_setup_fn(id, config) -> load_fn(path, device_id=id) -> setup_fn(id, config, model)
        assert [e[0] for e in copy_events] == ["env", "load", "setup"]
        env, load, setup = copy_events
        assert env[2] == "2"  # the config dict
        assert load[2] == copy_id  # load saw the environment env_setup_fn made
        assert setup[2] == copy_id  # setup_fn got the model load_fn returned
        pids = {e[-1] for e in copy_events}
        assert len(pids) == 1
        if runner == "threads":
            assert pids == {str(os.getpid())}
        else:
            assert str(os.getpid()) not in pids
    if runner != "threads":
        assert by_copy["0"][0][-1] != by_copy["1"][0][-1]  # one process per copy
    assert report["env_setup_avg_ms"] > 0 and report["setup_avg_ms"] > 0


# -- what runs: one pass, max_infers, how inputs are passed -------------------------


@pytest.mark.parametrize("runner", LOCAL_RUNNERS)
def test_duration_zero_is_one_pass_over_the_input(runner: str) -> None:
    kwargs = {**QUICK, "duration": 0, "max_infers": None, "workers_per_model": 2}
    ((_, results),) = cpu.benchmark(npf.DummyModel, X, runner=runner, return_timers=True, **kwargs)
    raw = results["raw"]
    assert raw["status"] == "finished"
    assert sum(w["count"] for w in raw["workers"]) == 1
    (report,) = get_reports([raw])
    assert report["total_infs"] == 1
    assert report["throughput_avg"] is not None and report["throughput_avg"] > 0
    assert report["duration"] == 0


@pytest.mark.parametrize("runner", LOCAL_RUNNERS)
@pytest.mark.parametrize("duration", [0, 60])
def test_max_infers_bounds_the_count_exactly(runner: str, duration: float) -> None:
    kwargs = {**QUICK, "duration": duration, "max_infers": 1001}
    ((_, results),) = cpu.benchmark(
        npf.DummyModel,
        X,
        runner=runner,
        return_timers=True,
        **{**kwargs, "n_models": 2, "workers_per_model": 2},
    )
    raw = results["raw"]
    assert raw["status"] == "finished"
    assert sorted(w["count"] for w in raw["workers"]) == [250, 250, 250, 251]
    assert sorted((w["copy_id"], w["worker_id"]) for w in raw["workers"]) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert get_reports([raw])[0]["total_infs"] == 1001
    assert [c["copy_id"] for c in raw["copies"]] == [0, 1]
    assert all(c["warmup_infers"] == WARMUP_INFERS for c in raw["copies"])


class ArgsRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> Any:
        self.calls.append(args)
        return args[0]


@pytest.mark.parametrize(
    ("model_input", "preprocess_fn", "n_args"),
    [
        ((X, 2 * X), None, 2),  # a tuple is destructured: model(*input)
        (np.zeros((2, 3)), None, 1),  # an array is one argument, never split on axis 0
        (np.zeros((2, 3)), lambda x: x + 1, 1),  # nor what preprocess_fn returns (1.x defect)
        (np.zeros((2, 3)), lambda x: (x, x), 2),  # a tuple from preprocess_fn is destructured
        ((X, 2 * X), lambda a, b: np.stack([a, b]), 1),  # preprocess_fn gets the parts
    ],
)
def test_how_inputs_reach_the_model(model_input: Any, preprocess_fn: Any, n_args: int) -> None:
    model = ArgsRecorder()
    outputs: list[Any] = []
    (report,) = cpu.benchmark(
        model,
        model_input,
        preprocess_fn=preprocess_fn,
        postprocess_fn=outputs.append if preprocess_fn else None,
        runner="threads",
        **QUICK,
    )
    assert report["status"] == "finished", report["error"]
    assert len(model.calls) == WARMUP_INFERS + QUICK["max_infers"]
    assert {len(args) for args in model.calls} == {n_args}
    if preprocess_fn is not None:
        assert len(outputs) == WARMUP_INFERS + QUICK["max_infers"]
        assert report["preprocess_avg_ms"] is not None and report["postprocess_avg_ms"] is not None
    else:
        assert model.calls[0][0] is (
            model_input[0] if isinstance(model_input, tuple) else model_input
        )


# -- evaluate(): every record exactly once --------------------------------------------


def dataset_of(kind: str) -> Any:
    if kind == "list":
        return [(i, i) for i in range(N_ROWS)]
    if kind == "iterable":
        return Rows(N_ROWS)
    return rows_generator(N_ROWS)


@pytest.mark.parametrize(
    ("runner", "kind", "n_models"),
    [
        ("threads", "list", 1),
        ("threads", "iterable", 1),
        ("threads", "generator", 1),
        ("threads", "list", 2),
        ("processes", "list", 1),
        ("processes", "iterable", 1),
        ("processes", "generator", 1),
        ("processes", "generator", 2),
        ("processes", "list", 2),
        ("interpreters", "iterable", 1),
    ],
)
def test_evaluate_processes_each_record_exactly_once(runner: str, kind: str, n_models: int) -> None:
    npf.register_metric("seen_rows", SeenRows)
    kwargs: dict[str, Any] = {"results_dir": None, "stats_interval": 0}
    if n_models != 1:
        kwargs["n_models"] = n_models
    if runner == "interpreters":
        kwargs["multiinterpreter"] = True
    else:
        kwargs["runner"] = runner
    reports = cpu.evaluate(identity, dataset_of(kind), metrics=["seen_rows", "accuracy"], **kwargs)
    (report,) = reports
    assert report["status"] == "finished", report["error"]
    assert report["seen_rows"] == list(range(N_ROWS))
    assert report["accuracy"] == 1.0
    assert report["total_infs"] == N_ROWS
    assert (report["n_models"], report["workers_per_model"], report["duration"]) == (
        n_models,
        EVALUATE_DEFAULTS["workers_per_model"],
        0,
    )
    assert report["runner"] == runner


def test_evaluate_through_benchmark_with_eval_metrics(index_path: str) -> None:
    npf.register_metric("seen_rows", SeenRows)
    reports = npf.benchmark(
        lambda filename, device_id=0: identity,
        index_path,
        Rows(N_ROWS),
        batch_sizes=[1],
        n_models=1,
        workers_per_model=2,
        duration=0,
        eval_metrics=["SeenRows", "Accuracy"],
        runner="processes",
        results_dir=None,
    )
    (report,) = reports
    assert report["status"] == "finished", report["error"]
    assert report["SeenRows"] == list(range(N_ROWS))  # under the name asked for
    assert report["Accuracy"] == 1.0


def every_other_row(dataset: Any, shard: int, n_shards: int) -> Iterator[Any]:
    return itertools.islice(iter(dataset), shard, None, n_shards)


@pytest.mark.parametrize("runner", LOCAL_RUNNERS)
def test_a_dataset_loader_fn_shards_the_dataset_per_worker(runner: str) -> None:
    npf.register_metric("seen_rows", SeenRows)
    (report,) = cpu.evaluate(
        identity,
        Rows(N_ROWS),
        metrics="seen_rows",
        dataset_loader_fn=every_other_row,
        runner=runner,
        results_dir=None,
    )
    assert report["status"] == "finished", report["error"]
    assert report["seen_rows"] == list(range(N_ROWS))


@pytest.mark.parametrize("runner", LOCAL_RUNNERS)
def test_a_batched_config_scores_each_record_of_each_batch(runner: str, index_path: str) -> None:
    npf.register_metric("seen_rows", SeenRows)
    rows = [(np.array([2 * i, 2 * i + 1]), np.array([2 * i, 2 * i + 1])) for i in range(300)]
    (report,) = npf.evaluate(
        lambda filename, device_id=0: identity,
        index_path,
        rows,
        metrics="seen_rows",
        batch_sizes=[2],
        runner=runner,
        results_dir=None,
    )
    assert report["status"] == "finished", report["error"]
    assert report["seen_rows"] == list(range(600))
    assert (report["batch_size"], report["total_infs"]) == (2, 300)


@pytest.mark.parametrize("target_col", [0, -3])
def test_eval_target_col_picks_the_target(target_col: int) -> None:
    # (target, input, pad): the model sees (input, pad); a quarter of the inputs are wrong.
    rows = [(i % 2, i % 2 if i % 4 else 1 - i % 2, "pad") for i in range(400)]
    (report,) = cpu.evaluate(
        first_input,
        rows,
        metrics="accuracy",
        eval_target_col=target_col,
        runner="threads",
        results_dir=None,
    )
    assert report["status"] == "finished", report["error"]
    assert report["accuracy"] == pytest.approx(0.75)
    assert report["total_infs"] == 400


# -- failures: reported, and the sweep goes on ------------------------------------------


@pytest.mark.parametrize("runner", LOCAL_RUNNERS)
@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (fail_to_load, "RuntimeError: cannot load the batch-2 model"),
        (lambda size: FailsAfter(), "ValueError: the model broke on purpose"),  # in the timed run
        (lambda size: FailsAfter(ok_calls=3), "ValueError: the model broke on purpose"),  # warm-up
    ],
)
def test_a_failing_config_is_reported_and_the_sweep_goes_on(
    runner: str, make_bad: Any, message: str, index_path: str, tmp_path: Path
) -> None:
    reports = npf.benchmark(
        BatchLoader(2, make_bad),
        index_path,
        INPUTS,
        runner=runner,
        **{**QUICK, "results_dir": tmp_path},
    )
    assert [r["status"] for r in reports] == ["finished", "error", "finished"]
    assert message in reports[1]["error"]
    assert reports[0]["error"] is None and reports[2]["error"] is None
    assert reports[1]["throughput_avg"] is None  # never NaN
    (results,) = result_files(tmp_path)
    assert [r["status"] for r in json.loads(results.read_text())] == [
        "finished",
        "error",
        "finished",
    ]


@pytest.mark.parametrize("ok_calls", [0, WARMUP_INFERS + 5])  # killed in warm-up, in the run
def test_a_copy_killed_by_the_os_is_reported_with_a_hint(ok_calls: int, index_path: str) -> None:
    reports = npf.benchmark(
        BatchLoader(2, lambda size: KillsItself(ok_calls)),
        index_path,
        INPUTS,
        runner="processes",
        **{**QUICK, "n_models": 2},
    )
    assert [r["status"] for r in reports] == ["finished", "killed", "finished"]
    error = reports[1]["error"]
    assert "SIGKILL" in error and "fewer n_models" in error
    assert "ChildProcessError" not in error


def test_a_crash_loses_no_config_already_measured(index_path: str, tmp_path: Path) -> None:
    with pytest.raises(Crash):
        npf.benchmark(
            BatchLoader(2, crash_on_load),
            index_path,
            INPUTS,
            runner="threads",
            **{**QUICK, "results_dir": tmp_path},
        )
    (results,) = result_files(tmp_path)
    (saved,) = json.loads(results.read_text())
    assert (saved["batch_size"], saved["status"], saved["total_infs"]) == (1, "finished", 20)


def test_the_results_file_is_rewritten_after_every_config(index_path: str, tmp_path: Path) -> None:
    seen: list[int] = []

    def env_setup(copy_id: int, config: dict[str, Any]) -> None:
        # Before each config loads, the file holds every config measured so far.
        files = result_files(tmp_path)
        seen.append(len(json.loads(files[0].read_text())) if files else 0)

    reports = npf.benchmark(
        load_by_file,
        index_path,
        INPUTS,
        env_setup_fn=env_setup,
        runner="threads",
        **{**QUICK, "results_dir": tmp_path},
    )
    assert seen == [0, 1, 2]
    (results,) = result_files(tmp_path)
    assert json.loads(results.read_text()) == reports


# -- Ctrl-C -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runner", "make_bad"),
    [("threads", lambda size: SignalsSelfLater()), ("processes", lambda size: SignalsParent())],
)
def test_ctrl_c_returns_and_writes_what_finished(
    runner: str, make_bad: Any, index_path: str, tmp_path: Path
) -> None:
    kwargs = {**QUICK, "max_infers": 2000, "duration": 30, "results_dir": tmp_path}
    # Batch 1 ends by max_infers; batch 2 (1 ms a call) gets Ctrl-C long before it
    # would; batch 4 never starts.
    reports = npf.benchmark(BatchLoader(2, make_bad), index_path, INPUTS, runner=runner, **kwargs)
    assert [r["status"] for r in reports] == ["finished", "interrupted"]
    assert "Ctrl-C" in reports[1]["error"]
    assert reports[1]["total_infs"] > 0  # what ran before Ctrl-C is measured
    (results,) = result_files(tmp_path)
    assert [r["status"] for r in json.loads(results.read_text())] == ["finished", "interrupted"]


# -- quality warnings, system stats, cost ----------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_few_samples_and_a_large_overhead_are_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="neuronperf"):
        (report,) = cpu.benchmark(npf.DummyModel, X, runner="threads", **QUICK)
    assert report["latency_samples"] == 20
    text = warnings_of(caplog)
    assert "result is INVALID" in text
    assert "too few samples for p99: needs at least 368 samples" in text and "has 20" in text
    assert "overhead" in text and "10%" in text


def test_forking_beside_torch_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in module: the check only looks at sys.modules, it never imports torch.
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    with pytest.warns(RuntimeWarning, match="forked model copies hang"):
        (report,) = cpu.benchmark(npf.DummyModel, X, runner="processes", **QUICK)
    assert report["status"] == "finished"


def test_no_sample_or_overhead_warning_for_a_sound_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 700 samples of a ~0.2 ms model: enough for p99, overhead far below 10%. (Its 0.14 s
    # are below the validity verdict's minimum duration: that is said, and only checked here.)
    with caplog.at_level(logging.WARNING, logger="neuronperf"):
        (report,) = cpu.benchmark(
            npf.DummyModel(latency_s=0.0002), X, runner="threads", **{**QUICK, "max_infers": 700}
        )
    assert report["status"] == "finished"
    assert report["latency_samples"] == 700
    text = warnings_of(caplog)
    assert "too few samples" not in text and "overhead" not in text
    assert "below the minimum duration of 10 s" in text


def test_verbosity_zero_silences_the_quality_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="neuronperf"):
        cpu.benchmark(npf.DummyModel, X, runner="threads", verbosity=0, **QUICK)
    assert warnings_of(caplog) == ""


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="CPU and memory come from /proc")
@pytest.mark.parametrize("runner", LOCAL_RUNNERS)
def test_cpu_memory_and_cost_are_reported(runner: str) -> None:
    ((_, results),) = cpu.benchmark(
        npf.DummyModel(latency_s=0.001),
        X,
        runner=runner,
        return_timers=True,
        **{**QUICK, "duration": 0.5, "max_infers": None, "stats_interval": 0.05},
    )
    raw = results["raw"]
    assert raw["status"] == "finished"
    stats = raw["stats"]
    assert stats["interval_s"] == 0.05
    assert stats["cpu_percent"].size >= 2 and stats["mem_percent"].size >= 2
    assert ((stats["cpu_percent"] >= 0) & (stats["cpu_percent"] <= 100)).all()
    (report,) = get_reports([raw], cost_per_hour=3.6)
    assert report["cpu_avg_percent"] == pytest.approx(float(stats["cpu_percent"].mean()))
    assert report["mem_avg_percent"] == pytest.approx(float(stats["mem_percent"].mean()))
    assert report["cpu_percent_p50"] is not None and report["mem_percent_p50"] is not None
    assert report["cost_per_1m_inf"] == pytest.approx(3.6 * 1e6 / (3600 * report["throughput_avg"]))


def test_cost_per_hour_through_benchmark() -> None:
    (report,) = cpu.benchmark(npf.DummyModel, X, runner="threads", cost_per_hour=2.0, **QUICK)
    assert report["cost_per_1m_inf"] == pytest.approx(2.0 * 1e6 / (3600 * report["throughput_avg"]))
    (report,) = cpu.benchmark(npf.DummyModel, X, runner="threads", **QUICK)
    assert report["cost_per_1m_inf"] is None


SCRIPT = """
import neuronperf as npf

def run():
    return npf.cpu.benchmark(npf.DummyModel, [1], batch_sizes=[1], duration=0, n_models=2,
                             workers_per_model=1, multiinterpreter=True, results_dir=None)
print("the script ran")
{call}
    print(reports[0]["status"])
"""


@pytest.mark.parametrize(
    "call",
    [
        "if True:\n    reports = run()",  # the top level, as NeuronPerf 1.x scripts do
        'if __name__ == "__main__":\n    reports = run()',
    ],
)
def test_fresh_interpreters_never_run_the_script_again(tmp_path, call):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(call=call))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["the script ran", "finished"]


class RecordsWorkerSetup:
    """A model whose per-worker setup and calls record the threads they ran in."""

    setups: ClassVar[list[int]] = []
    calls: ClassVar[set[int]] = set()

    def neuronperf_worker_setup(self) -> None:
        self.setups.append(threading.get_ident())

    def __call__(self, x: Any) -> Any:
        self.calls.add(threading.get_ident())
        return x


def test_each_worker_thread_runs_the_models_worker_setup_once() -> None:
    RecordsWorkerSetup.setups.clear()
    RecordsWorkerSetup.calls.clear()
    npf.cpu.benchmark(
        RecordsWorkerSetup, [1], batch_sizes=[1], duration=0.1, n_models=2,
        workers_per_model=2, multiprocess=False, results_dir=None, verbosity=0,
    )  # fmt: skip
    setups = RecordsWorkerSetup.setups
    assert len(setups) == len(set(setups)) == 4  # 2 copies x 2 workers, once each, own threads
    assert set(setups) <= RecordsWorkerSetup.calls  # the threads that ran the timed calls
    assert threading.get_ident() not in setups  # not the caller's (warm-up) thread


# -- NeuronPerf 1.x scripts: return_timers=True gives (config, results) pairs -------------------
# The code below is written as a 1.x user wrote it (1.x's own tests read these keys).

TIMER_NAMES_1X = {
    "env_setup", "setup", "load", "input", "warmup",
    "preprocess", "infer", "postprocess", "e2e", "worker",
}  # fmt: skip
COPY_TIMERS_1X = ("env_setup", "setup", "load", "warmup")
WORKER_TIMERS_1X = ("input", "preprocess", "infer", "postprocess", "e2e", "worker")


@pytest.mark.parametrize(
    ("flags", "multiprocess", "multiinterpreter"),
    [
        ({"multiprocess": False}, False, False),
        ({"multiprocess": True}, True, False),
        ({"multiprocess": False, "multiinterpreter": True}, True, True),
    ],
)
def test_1x_script_unpacks_config_results_pairs(
    flags: dict[str, bool],
    multiprocess: bool,
    multiinterpreter: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(devices, "cpu_cores", lambda: 2)  # a machine with 2 cores
    benchmarker_results = npf.cpu.benchmark(
        npf.DummyModel,
        [np.array([1, 2, 3, 4])],
        batch_sizes=[1],
        duration=0.3,
        workers_per_model=1,
        stats_interval=0.05,
        verbosity=0,
        return_timers=True,
        results_dir=tmp_path,
        **flags,
    )
    # n_models unset: 1.x's sweep [1, max copies], one (config, results) pair each.
    assert len(benchmarker_results) == 2
    for config, results in benchmarker_results:
        assert config["multiprocess"] == multiprocess
        assert config["multiinterpreter"] == multiinterpreter
        assert results["status"] == "finished"
        assert results["n_infs"] > 100
        assert results["total_s"] > 0
        assert "cpu_percents" in results and "mem_percents" in results
        assert all(isinstance(p, float) for p in results["cpu_percents"] + results["mem_percents"])
        assert set(results["timers"]) == TIMER_NAMES_1X
        # at least one timer per model copy, as 1.x's tests check
        assert len(next(iter(results["timers"].values()))) >= config["n_models"]
        assert all(isinstance(t, npf.Timer) for ts in results["timers"].values() for t in ts)
    assert [c["n_models"] for c, _ in benchmarker_results] == [1, 2]

    reports = npf.get_reports(benchmarker_results)
    (written,) = result_files(tmp_path, "DummyModel")  # the reports of the run itself
    assert reports == json.loads(written.read_text())
    assert reports == npf.get_reports([results["raw"] for _, results in benchmarker_results])
    assert reports == npf.get_reports(benchmarker_results, cost_per_hour=None)
    assert all(
        r["total_infs"] == res["n_infs"]
        for r, (_, res) in zip(reports, benchmarker_results, strict=True)
    )
    npf.print_reports(reports)
    assert Path(npf.write_csv(reports, tmp_path / "r.csv")).is_file()


def test_1x_timers_per_copy_and_worker_agree_with_the_reports() -> None:
    pairs = cpu.benchmark(
        npf.DummyModel, X, runner="threads", return_timers=True,
        **{**QUICK, "max_infers": 400, "n_models": 2, "workers_per_model": 2},
    )  # fmt: skip
    ((config, results),) = pairs
    (report,) = get_reports(pairs)
    timers = results["timers"]
    for name in COPY_TIMERS_1X:  # one per copy, one interval each
        assert [len(t) for t in timers[name]] == [1, 1]
        assert report[f"{name}_avg_ms"] == pytest.approx(
            np.mean([t.avg("ms") for t in timers[name]])
        )
    for name in WORKER_TIMERS_1X:  # one per worker of every copy
        assert len(timers[name]) == config["n_models"] * config["workers_per_model"] == 4
    e2e = timers["e2e"]
    assert sum(len(t) for t in e2e) == results["n_infs"] == report["total_infs"] == 400
    latencies = np.concatenate([t.durations("ms") for t in e2e])
    assert report["latency_ms_avg"] == pytest.approx(latencies.mean())
    assert report["latency_ms_p50"] == pytest.approx(np.percentile(latencies, 50))
    assert report["worker_avg_s"] == pytest.approx(np.mean([t.avg("s") for t in timers["worker"]]))
    for e, infer, worker in zip(e2e, timers["infer"], timers["worker"], strict=True):
        # Timer methods, as 1.x scripts call them
        assert len(e) == len(e.durations()) == len(e.timestamps()) == len(list(e)) > 0
        assert e.avg("ms") == pytest.approx(e.durations("ms").mean())
        assert e.total_duration("ns") == pytest.approx(e.durations("ns").sum())
        assert e.timestamps().dtype == np.int64  # the raw nanoseconds, exactly
        assert (e.durations("ns") >= 0).all()
        # without pre/postprocess functions only the model call is timed: infer == e2e
        assert np.array_equal(infer.timestamps(), e.timestamps())
        assert worker.timestamps()[0, 0] == e.timestamps()[0, 0]
        assert worker.total_duration("s") >= e.total_duration("s")
    for name in ("input", "preprocess", "postprocess"):  # not timed: empty timers
        assert all(len(t) == 0 and t.total_duration() == 0 for t in timers[name])
    assert results["raw"]["workers"][0]["count"] == len(e2e[0])


def test_1x_phase_timers_are_back_to_back_within_each_inference() -> None:
    ((_, results),) = cpu.benchmark(
        npf.DummyModel, X, runner="threads", return_timers=True, preprocess_fn=identity,
        postprocess_fn=identity, **{**QUICK, "max_infers": 50},
    )  # fmt: skip
    timers = {name: ts[0].timestamps() for name, ts in results["timers"].items()}
    phases = [timers[p] for p in ("input", "preprocess", "infer", "postprocess")]
    assert all(len(p) == 50 for p in phases)
    assert np.array_equal(phases[0][:, 0], timers["e2e"][:, 0])  # input starts each inference
    for before, after in itertools.pairwise(phases):
        assert np.array_equal(before[:, 1], after[:, 0])
    assert np.array_equal(phases[-1][:, 1], timers["e2e"][:, 1])  # postprocess ends it
    timer = results["timers"]["preprocess"][0]
    with timer:  # a timer given back still times, in its own clock (int ns)
        pass
    assert len(timer) == 51 and timer.durations("ns")[-1] >= 0


def load_nothing(filename: str, device_id: int = 0) -> Any:
    raise RuntimeError(f"cannot load {filename}")


def test_1x_pairs_of_a_failed_config_and_of_an_evaluation() -> None:
    pairs = npf.benchmark(
        load_nothing, "m.model", X, runner="threads", return_timers=True, verbosity=0, **QUICK
    )
    ((_, results),) = pairs
    assert results["status"] == "error" and "RuntimeError" in results["error"]
    assert results["n_infs"] == 0 and results["total_s"] is None
    assert all(len(t) == 0 for name in WORKER_TIMERS_1X for t in results["timers"][name])
    assert get_reports(pairs)[0]["status"] == "error"
    rows = [(np.float64(i), i % 2) for i in range(10)]
    ((_, evaluated),) = cpu.evaluate(
        identity, rows, metrics="accuracy", return_timers=True, results_dir=None, verbosity=0
    )
    assert evaluated["raw"]["metrics"]["accuracy"] == get_reports([evaluated["raw"]])[0]["accuracy"]
    assert evaluated["n_infs"] == 10


def test_get_reports_refuses_a_tuple_that_is_not_a_pair_from_benchmark() -> None:
    ((config, results),) = cpu.benchmark(
        npf.DummyModel, X, runner="threads", return_timers=True, **QUICK
    )
    without_raw = {k: v for k, v in results.items() if k != "raw"}
    with pytest.raises(npf.NeuronPerfError, match=r"results\[0\] is a tuple.*'raw'"):
        get_reports([(config, without_raw)])

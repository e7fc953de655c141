"""benchmark() and evaluate(): check the arguments, sweep the configs, report each one."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from neuronperf_core.benchmarking.plan import (
    DEFAULT_WORKERS_PER_MODEL,
    BenchmarkArgumentError,
    as_list,
    check_dataset,
    match_inputs,
    max_copies,
    model_configs,
    positive_ints,
    sweep,
)
from neuronperf_core.benchmarking.progress import Progress
from neuronperf_core.benchmarking.results import RawResult
from neuronperf_core.benchmarking.runners import Runner
from neuronperf_core.benchmarking.worker import Job
from neuronperf_core.metrics.registry import get_metric
from neuronperf_core.plugins import get_host
from neuronperf_core.reporting import get_reports, write_json

logger = logging.getLogger("neuronperf.benchmark")

# Reports that evaluate() and benchmark(eval_metrics=...) fix, as the guide says.
EVALUATE_DEFAULTS = {"n_models": 1, "workers_per_model": 2, "duration": 0}
LOW_SAMPLES_P99 = 662  # MLPerf LoadGen's early-stopping minimum for a p99 claim
OVERHEAD_WARN_FRACTION = 0.10
INTERRUPTED = "interrupted: returning the %d configs measured so far"


def set_verbosity(verbosity: int) -> None:
    """0: errors only, 1: warnings and progress (default), 2: everything (debug)."""
    levels = {0: logging.ERROR, 1: logging.WARNING, 2: logging.DEBUG}
    logging.getLogger("neuronperf").setLevel(levels.get(verbosity, logging.DEBUG))


def _runner_name(runner: str | None, multiprocess: bool, multiinterpreter: bool) -> str:
    if runner is not None:
        return runner
    if multiinterpreter:
        return "interpreters"
    return "processes" if multiprocess else "threads"


def benchmark(
    load_fn: Callable[..., Any],
    model_filename: str,
    inputs: Any,
    batch_sizes: int | list[int] | None = None,
    duration: float = 120,
    n_models: int | list[int] | None = None,
    pipeline_sizes: int | list[int] | None = None,
    cast_modes: Any = None,
    workers_per_model: int | list[int] | None = None,
    env_setup_fn: Callable[[int, dict[str, Any]], Any] | None = None,
    setup_fn: Callable[[int, dict[str, Any], Any], Any] | None = None,
    preprocess_fn: Callable[..., Any] | None = None,
    postprocess_fn: Callable[..., Any] | None = None,
    dataset_loader_fn: Callable[[Any, int, int], Any] | None = None,
    multiprocess: bool = True,
    multiinterpreter: bool = False,
    return_timers: bool = False,
    stats_interval: float = 0.5,
    device_type: str = "neuron",
    cost_per_hour: float | None = None,
    model_name: str | None = None,
    verbosity: int = 1,
    max_infers: int | None = None,
    eval_metrics: str | list[str] | None = None,
    eval_target_col: int | None = None,
    *,
    runner: str | None = None,
    results_dir: str | os.PathLike[str] | None = ".",
    results_file: str | os.PathLike[str] | None = None,
) -> Any:
    """Benchmark every config of a model index (or one model file) over a sweep.

    For each finished config of the index (filtered by ``batch_sizes``,
    ``pipeline_sizes``, ``cast_modes``), for each ``workers_per_model``, for
    each ``n_models``: load the copies (``env_setup_fn(id, config)``,
    ``load_fn(filename, device_id=id)``, ``setup_fn(id, config, model)``),
    warm them up, then run the workers for ``duration`` seconds (0: one pass
    over the inputs or the dataset; ``max_infers`` bounds the count). Returns
    one report dict per config, or the raw results with ``return_timers=True``.

    ``eval_metrics`` turns the run into an evaluation: ``inputs`` is then the
    dataset, an iterable of ``tuple(*INPUTS, TARGET)`` (``eval_target_col``
    says which column is the target; the last by default).

    With ``results_dir`` (default: the current folder) the reports are
    rewritten to ``{model_name}.results-YYYYmmdd-HHMMSS.json`` there after
    every config, so a crash later loses nothing already measured;
    ``results_file`` names the file instead; ``results_dir=None`` (and no
    ``results_file``) writes nothing.
    """
    # -- check everything before any model loads ----------------------------------
    batch_list = as_list(batch_sizes)
    if batch_list is not None:
        positive_ints("batch_sizes", batch_list)
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
        or duration < 0
    ):
        raise BenchmarkArgumentError(
            f"duration must be a number of seconds >= 0 (0: one pass), got {duration!r}."
        )
    if max_infers is not None:
        positive_ints("max_infers", [max_infers])
    if stats_interval is not None and stats_interval < 0:
        raise BenchmarkArgumentError(f"stats_interval must be >= 0 seconds, got {stats_interval}.")
    if cost_per_hour is not None and cost_per_hour < 0:
        raise BenchmarkArgumentError(f"cost_per_hour must be >= 0, got {cost_per_hour}.")
    if not callable(load_fn):
        raise BenchmarkArgumentError(
            f"load_fn must be callable as load_fn(model_filename, device_id=...), got {load_fn!r}."
        )
    runner_name = _runner_name(runner, multiprocess, multiinterpreter)
    chosen_runner: Runner = get_host().runners.get(runner_name).value
    metric_names = as_list(eval_metrics) or []
    metrics = []
    for name in metric_names:
        entry = get_metric(name)
        metrics.append((name, entry.value, dict(entry.options)))
    evaluating = bool(metrics)
    n_list = positive_ints("n_models", as_list(n_models) or sorted({1, max_copies(device_type)}))
    workers_list = positive_ints(
        "workers_per_model", as_list(workers_per_model) or list(DEFAULT_WORKERS_PER_MODEL)
    )
    name, configs = model_configs(
        model_filename, batch_list, as_list(pipeline_sizes), as_list(cast_modes)
    )
    model_name = model_name or name
    dataset = None
    target_col = -1
    if evaluating:
        dataset, target_col = check_dataset(
            inputs, -1 if eval_target_col is None else eval_target_col
        )
        config_inputs = [None] * len(configs)
    else:
        if eval_target_col is not None or dataset_loader_fn is not None:
            name = "eval_target_col" if eval_target_col is not None else "dataset_loader_fn"
            raise BenchmarkArgumentError(
                f"{name} only applies when evaluating a dataset: pass eval_metrics=[...] too."
            )
        config_inputs = match_inputs(inputs, configs, batch_list)
    plan = sweep(
        model_name,
        configs,
        config_inputs,
        n_list,
        workers_list,
        device_type=device_type,
        runner=runner_name,
        duration=float(duration),
        max_infers=max_infers,
    )
    if evaluating and len(plan) > 1 and isinstance(dataset, Iterator):
        raise BenchmarkArgumentError(
            f"the evaluation dataset is an iterator ({type(inputs).__name__}), which can be read "
            f"only once, but the sweep has {len(plan)} configs: pass a dataset that can be "
            "iterated again (a list, or an object whose __iter__ starts over), or one value "
            "of n_models and workers_per_model for one model config."
        )
    jobs = [
        Job(
            config=config,
            load_fn=load_fn,
            model_input=model_input,
            env_setup_fn=env_setup_fn,
            setup_fn=setup_fn,
            preprocess_fn=preprocess_fn,
            postprocess_fn=postprocess_fn,
            dataset=dataset,
            dataset_loader_fn=dataset_loader_fn,
            eval_target_col=target_col,
            metrics=metrics,
        )
        for config, model_input in plan
    ]
    for job in jobs:
        check = getattr(chosen_runner, "check", None)
        if check is not None:
            check(job)  # e.g. a fresh interpreter needs a picklable job
    results_path = results_file_path(results_dir, results_file, model_name)

    # -- run ------------------------------------------------------------------------
    progress = Progress(len(jobs), float(duration), verbosity)
    results: list[RawResult] = []
    reports: list[dict[str, Any]] = []
    try:
        for job in jobs:
            progress.start_config(job.config)
            try:
                raw = chosen_runner.run(job, stats_interval or 0)
            except KeyboardInterrupt:  # outside a runner's timed window (loading, say)
                progress.end_config()
                logger.warning(INTERRUPTED, len(results))
                break
            progress.end_config()
            results.append(raw)

            def report() -> list[dict[str, Any]]:
                done = get_reports(results, cost_per_hour=cost_per_hour)
                if results_path is not None:
                    write_json(done, str(results_path))
                return done

            try:
                reports = report()
            except KeyboardInterrupt:  # keep the config that just finished, then stop
                reports = report()
                logger.warning(INTERRUPTED, len(results))
                break
            _check_quality(reports[-1], verbosity, evaluating)
            if raw["status"] == "interrupted":
                logger.warning(INTERRUPTED, len(results))
                break
    finally:
        progress.done()
    if results_path is not None and results:
        logger.info("results written to %s", results_path)
    return results if return_timers else reports


def evaluate(
    load_fn: Callable[..., Any],
    model_filename: str,
    dataset: Any,
    metrics: str | list[str] = "accuracy",
    eval_target_col: int | None = None,
    **kwargs: Any,
) -> Any:
    """Score a model on a dataset: benchmark() with n_models=1, 2 workers and duration=0.

    ``dataset`` is any iterable of ``tuple(*INPUTS, TARGET)``; every record is
    processed exactly once. The metric values land in the report under their names.
    """
    for key, value in EVALUATE_DEFAULTS.items():
        kwargs.setdefault(key, value)
    return benchmark(
        load_fn,
        model_filename,
        dataset,
        eval_metrics=metrics,
        eval_target_col=eval_target_col,
        **kwargs,
    )


def results_file_path(
    results_dir: str | os.PathLike[str] | None,
    results_file: str | os.PathLike[str] | None,
    model_name: str,
) -> Path | None:
    """Where ``benchmark(results_dir=..., results_file=...)`` writes its reports (None:
    nowhere), checked now; framework plugins that drive the engine use it too."""
    if results_file is not None:
        path = Path(results_file)
        if not path.parent.is_dir():
            raise BenchmarkArgumentError(
                f"results_file {path}: its folder {path.parent} does not exist; create it first."
            )
        return path
    if results_dir is None:
        return None
    folder = Path(results_dir)
    if not folder.is_dir():
        raise BenchmarkArgumentError(
            f"results_dir {folder} is not an existing folder; create it, or pass "
            "results_dir=None to write no results file."
        )
    return folder / f"{model_name}.results-{time.strftime('%Y%m%d-%H%M%S')}.json"


def _check_quality(report: dict[str, Any], verbosity: int, evaluating: bool) -> None:
    """Say when a config failed, or its numbers deserve less trust than they seem to (a
    one-pass evaluation is not a latency measurement: only failures are said)."""
    if report.get("status") != "finished":
        logger.warning("config failed (%s): %s", report.get("status"), report.get("error"))
        return
    if verbosity < 1 or evaluating:
        return
    samples = report.get("latency_samples") or 0
    if 0 < samples < LOW_SAMPLES_P99:
        logger.warning(
            "only %d latency samples: p99 needs at least %d to mean anything "
            "(MLPerf LoadGen's minimum); run longer (duration) or raise max_infers",
            samples,
            LOW_SAMPLES_P99,
        )
    overhead_us = report.get("harness_overhead_us")
    latency_ms = report.get("latency_ms_avg")
    if overhead_us and latency_ms and overhead_us / 1e3 > OVERHEAD_WARN_FRACTION * latency_ms:
        logger.warning(
            "the harness's own overhead (%.2f us per inference) is over %d%% of the measured "
            "latency (%.4f ms): latencies this small mostly measure the harness",
            overhead_us,
            int(OVERHEAD_WARN_FRACTION * 100),
            latency_ms,
        )

"""Run a planned sweep: each job by the chosen runner, reports rewritten after each config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from neuronperf_core.benchmarking.progress import Progress
from neuronperf_core.benchmarking.results import RawResult
from neuronperf_core.benchmarking.runners import Runner, ThreadsRunner
from neuronperf_core.benchmarking.stats import LoadMeter, run_info
from neuronperf_core.benchmarking.worker import Job
from neuronperf_core.options import BenchmarkOptions
from neuronperf_core.reporting import get_reports, timer_pairs, write_json

logger = logging.getLogger("neuronperf.benchmark")

OVERHEAD_WARN_FRACTION = 0.10
INTERRUPTED = "interrupted: returning the %d configs measured so far"


def set_verbosity(verbosity: int) -> None:
    """0: errors only, 1: warnings and progress (default), 2: everything (debug)."""
    levels = {0: logging.ERROR, 1: logging.WARNING, 2: logging.DEBUG}
    logging.getLogger("neuronperf").setLevel(levels.get(verbosity, logging.DEBUG))


def run_sweep(
    jobs: list[Job],
    runner: Runner,
    options: BenchmarkOptions,
    results_path: Path | None,
    *,
    evaluating: bool,
) -> list[Any]:
    """Run every job; return the reports (with ``return_timers``, NeuronPerf 1.x's
    ``(config, results)`` pairs: ``reporting.timer_pairs``). The results file is rewritten
    after each config, so a crash later loses nothing measured; Ctrl-C returns what
    finished."""
    progress = Progress(
        len(jobs), options.duration, options.verbosity, evaluating=evaluating, results=results_path
    )
    results: list[RawResult] = []
    reports: list[dict[str, Any]] = []
    run = run_info(_call(options, evaluating))
    try:
        for job in jobs:
            job = progress.count_records(job, in_this_process=isinstance(runner, ThreadsRunner))
            progress.start_config(job.config, job)
            load = LoadMeter()
            try:
                raw = runner.run(job, options.stats_interval)
            except KeyboardInterrupt:  # outside a runner's timed window (loading, say)
                progress.end_config()
                logger.warning(INTERRUPTED, len(results))
                break
            progress.end_config()
            raw = {**raw, "load": load.stop(), "run": run}
            results.append(raw)

            def report() -> list[dict[str, Any]]:
                done = get_reports(results, cost_per_hour=options.cost_per_hour)
                if results_path is not None:
                    write_json(done, str(results_path))
                return done

            try:
                reports = report()
            except KeyboardInterrupt:  # keep the config that just finished, then stop
                reports = report()
                logger.warning(INTERRUPTED, len(results))
                break
            _check_quality(reports[-1], options.verbosity, evaluating)
            if raw["status"] == "interrupted":
                logger.warning(INTERRUPTED, len(results))
                break
    finally:
        progress.done()
    if results_path is not None and results:
        logger.info("results written to %s", results_path)
    return timer_pairs(results) if options.return_timers else reports


def _call(options: BenchmarkOptions, evaluating: bool) -> str:
    """The call as a user would write it, with the keywords that differ from the defaults."""
    default = BenchmarkOptions()
    given = [
        f"{name}={getattr(value, '__qualname__', None) or repr(value)}"
        for name, value in options.as_dict().items()
        if value != getattr(default, name)
    ]
    return f"{'evaluate' if evaluating else 'benchmark'}({', '.join(given)})"


def _check_quality(report: dict[str, Any], verbosity: int, evaluating: bool) -> None:
    """Say when a config failed, or its numbers deserve less trust than they seem to: its
    validity verdict and warnings (a one-pass evaluation is not a latency measurement:
    only failures are said)."""
    if report.get("status") != "finished":
        logger.warning("config failed (%s): %s", report.get("status"), report.get("error"))
        return
    if verbosity < 1 or evaluating:
        return
    if not report.get("valid"):
        logger.warning("result is INVALID: %s", "; ".join(report.get("invalid_reasons") or []))
    for warning in report.get("warnings") or []:
        logger.warning("%s", warning)
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

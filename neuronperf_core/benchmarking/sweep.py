"""Run a planned sweep: each job by the chosen runner, reports rewritten after each config."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from neuronperf_core.benchmarking import peak
from neuronperf_core.benchmarking.progress import Progress, say
from neuronperf_core.benchmarking.results import RawResult
from neuronperf_core.benchmarking.runners import STOP_REQUESTED, Runner, ThreadsRunner
from neuronperf_core.benchmarking.stats import LoadMeter, run_info
from neuronperf_core.benchmarking.worker import Job
from neuronperf_core.options import BenchmarkOptions
from neuronperf_core.report_fields import config_label
from neuronperf_core.reporting import ReportError, get_reports, timer_pairs, write_json

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
    after each config, so a crash later loses nothing measured, and a write that fails
    loses nothing either (``_ResultsFile``). A stop request (``StopOnSignals``: Ctrl-C,
    SIGTERM) ends the running config and returns what finished.

    A peak search (``benchmarking.peak``) runs each job as a search: its steps are configs
    like any other, each written as it finishes."""
    searching = not evaluating and peak.searching(options)
    per_job = peak.MAX_STEPS + 1 if searching else 1  # at most: a search may end sooner
    progress = Progress(
        len(jobs) * per_job,
        options.duration,
        options.verbosity,
        evaluating=evaluating,
        results=results_path,
    )
    sweep = _Sweep(runner, options, progress, results_path, evaluating)
    try:
        for job in jobs:
            if searching:
                sweep.search(job)
            else:
                sweep.measure(job)
            if sweep.stopped:
                break
    except KeyboardInterrupt:  # a second Ctrl-C: no waiting for the running config
        sweep.stopped = True
        if sweep.results:  # it may have come while the last config was reported or written
            sweep.refresh()
    finally:
        progress.done()
    if sweep.stopped or STOP_REQUESTED.is_set():
        logger.warning(INTERRUPTED, len(sweep.results))
    sweep.results_file.close(len(sweep.results))
    return timer_pairs(sweep.results) if options.return_timers else sweep.reports


class _Sweep:
    """The configs run so far, their reports and the results file, one config at a time."""

    def __init__(
        self,
        runner: Runner,
        options: BenchmarkOptions,
        progress: Progress,
        results_path: Path | None,
        evaluating: bool,
    ) -> None:
        self.runner, self.options, self.progress = runner, options, progress
        self.evaluating = evaluating
        self.results: list[RawResult] = []
        self.reports: list[dict[str, Any]] = []
        self.results_file = _ResultsFile(results_path)
        self.run = run_info(_call(options, evaluating))
        self.stopped = False
        # a bound without a search: every report says whether it kept within it
        searching = evaluating or peak.searching(options)
        self.bound = None if searching else peak.bound_of(options)

    def measure(self, job: Job) -> dict[str, Any] | None:
        """Run ``job``; its report, written with all before it (None: the sweep was told to
        stop before it started)."""
        if STOP_REQUESTED.is_set():  # Ctrl-C between configs
            self.stopped = True
            return None
        runner = self.runner
        job = self.progress.count_records(job, in_this_process=isinstance(runner, ThreadsRunner))
        self.progress.start_config(job.config, job)
        load = LoadMeter()
        try:
            raw = runner.run(job, self.options.stats_interval)
        finally:
            self.progress.end_config()
        self.results.append({**raw, "load": load.stop(), "run": self.run})
        self.reports = get_reports(self.results, cost_per_hour=self.options.cost_per_hour)
        if self.bound is not None:
            self.annotate(-1, peak.bound_fields(self.reports[-1], self.bound))
        self.results_file.write(self.reports)
        _check_quality(self.reports[-1], self.options.verbosity, self.evaluating)
        if raw["status"] == "interrupted":  # a plugin's runner that caught Ctrl-C itself
            self.stopped = True
        return self.reports[-1]

    def search(self, job: Job) -> peak.Peak:
        """Search for the peak rate of ``job``'s config (``benchmarking.peak``): each step a
        config of its own, its report marked as soon as it is judged, and every step's
        marked with the peak once the search ends."""
        options, bound = self.options, peak.bound_of(self.options)
        assert bound is not None  # checked before the run: a search has a bound
        label = config_label(job.config.to_dict())
        indices: list[int] = []  # the result of each step

        def measure(rate: float | None, scale: float) -> dict[str, Any] | None:
            report = self.measure(peak.step_job(job, rate, scale))
            if report is not None:
                indices.append(len(self.results) - 1)
            return report

        def on_step(step: peak.Step) -> None:
            self.annotate(indices[-1], peak.step_fields(step, bound))
            self.results_file.write(self.reports)
            say(peak.step_line(step, bound, label), options.verbosity)

        start = options.arrival_rate[0] if options.arrival_rate else None
        found = peak.search(
            measure,
            bound,
            start=start,
            tolerance=peak.TOLERANCE,
            max_steps=peak.MAX_STEPS,
            on_step=on_step,
        )
        for step, index in zip(found.steps, indices, strict=True):
            self.annotate(index, peak.result_fields(found, step, options.cost_per_hour))
        if found.steps:
            self.results_file.write(self.reports)
        self.progress.total -= peak.MAX_STEPS + 1 - len(found.steps)  # what it did not need
        if found.steps and options.verbosity >= 1:
            say(peak.peak_line([self.reports[i] for i in indices]), options.verbosity)
        return found

    def annotate(self, index: int, fields: dict[str, Any]) -> None:
        """Add report fields to a result: to its config's extra fields (so the reports made
        of the results again, by ``get_reports`` or after the next config, keep them) and to
        its report. Not written: the caller writes."""
        extra = self.results[index]["config"].setdefault("extra", {})
        extra.update(fields)
        self.reports[index].update(fields)

    def refresh(self) -> None:
        """The reports made afresh from every result, and written."""
        self.reports = get_reports(self.results, cost_per_hour=self.options.cost_per_hour)
        self.results_file.write(self.reports)


class _ResultsFile:
    """The results file, rewritten after each config. A write that fails (a full disk, the
    file replaced by a folder) is said, and the sweep goes on: every report is returned all
    the same, and the next config's write tries again with all of them."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.error: Exception | None = None

    def write(self, reports: list[dict[str, Any]]) -> None:
        if self.path is None:
            return
        try:
            write_json(reports, self.path)
        except (OSError, ReportError) as exc:
            logger.warning(
                "the results file could not be written (%s); the sweep goes on, the reports "
                "are returned all the same, and the next config's write tries again",
                exc,
            )
            self.error = exc
        else:
            self.error = None

    def close(self, n_results: int) -> None:
        if self.path is None or not n_results:
            return
        if self.error is None:
            logger.info("results written to %s", self.path)
        else:
            logger.error(
                "the results file %s lacks the last configs (the last write failed: %s); the "
                "reports returned hold all %d: save them with npf.write_json(reports, FILE)",
                self.path,
                self.error,
                n_results,
            )


class StopOnSignals:
    """Around a run, in the main thread: the first SIGINT (Ctrl-C) or SIGTERM sets
    ``STOP_REQUESTED``: the running config stops within a second or two (the runners poll
    it), keeping what it measured, and no later config starts. A second one raises
    KeyboardInterrupt at once. A handler the caller set (the command line's) is told of the
    signal too; with none, SIGTERM is raised again once the run has ended, so that the
    process still ends by it, with every finished config written. A signal ignored before
    (SIG_IGN) stays ignored; outside the main thread nothing changes."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.received: int | None = None

    def __enter__(self) -> StopOnSignals:
        STOP_REQUESTED.clear()
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in self.SIGNALS:
            previous = signal.getsignal(signum)
            if previous is not None and previous != signal.SIG_IGN:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        STOP_REQUESTED.clear()
        if self.received == signal.SIGTERM and self.previous.get(signal.SIGTERM) == signal.SIG_DFL:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            signal.raise_signal(signal.SIGTERM)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        STOP_REQUESTED.set()
        previous = self.previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            with contextlib.suppress(KeyboardInterrupt):  # stopping is done by polling here
                previous(signum, frame)


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

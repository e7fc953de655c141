"""Reports: raw benchmark results -> report dicts -> text table, CSV, JSON.

``get_reports`` turns each raw result (see ``neuronperf_core.benchmarking.results``)
into one flat report dict of plain Python values (JSON-serialisable, no numpy
scalars). ``timer_pairs`` turns raw results into NeuronPerf 1.x's ``(config,
results)`` pairs with ``Timer`` objects (``return_timers=True``); ``get_reports``
takes those too. ``print_reports``, ``write_csv`` and ``write_json`` only format
reports. Reporting never runs a model.

Measurement semantics (all workers of all copies pooled):

- latency: ``end_ns - start_ns`` of each inference (end to end), in ms.
  Percentiles use numpy's default "linear" method (Hyndman & Fan type 7);
  ``latency_ms_std`` is the population standard deviation (ddof=0).
- ``total_infs``: inferences completed; ``total_s``: length of the timed window.
- ``throughput_avg``: ``total_infs * batch_size / total_s``; None (never NaN)
  when nothing completed or the window is empty.
- ``throughput_peak``: the best 1-second sliding window, i.e. the max over
  inferences i of (inferences ending in ``(end_i - 1 s, end_i]``) * batch_size.
  When the timed window is shorter than 1 s it equals ``throughput_avg``. With
  few inferences per second it can be below ``throughput_avg`` (a 1-s window
  holds a whole number of inferences).
- ``*_avg_ms`` of copies (load, warm-up, env setup, setup): mean over copies;
  phase averages (input, preprocess, infer, postprocess): mean over inferences,
  None when the phase did not run. ``e2e_avg_ms`` is the mean latency.
- ``worker_avg_s``: mean over workers of (last end - first start).
- ``cpu_avg_percent`` / ``mem_avg_percent``: means of the samples, ``*_p50``
  their medians; None without samples.
- ``cost_per_1m_inf``: ``cost_per_hour * 1e6 / (3600 * throughput_avg)``.

A failed, killed or interrupted config still gets a report: config fields,
status and error, with measured fields None where there is no data.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any, Final, Literal, TextIO

import numpy as np
import numpy.typing as npt

from neuronperf_core import uncertainty
from neuronperf_core.benchmarking import stats
from neuronperf_core.benchmarking.results import PHASES, RawResult
from neuronperf_core.errors import NeuronPerfError

# The one atomic-write helper of the package (temp file in the same folder + os.replace).
from neuronperf_core.files import atomic_write, results_stem
from neuronperf_core.report_fields import PERCENTILES, higher_is_better
from neuronperf_core.timing import Timer

__all__ = [
    "PERCENTILE_METHOD",
    "REPORT_FIELDS",
    "SUMMARY_COLS",
    "SUMMARY_OPEN_LOOP_COLS",
    "Report",
    "ReportError",
    "TimerPair",
    "get_reports",
    "print_reports",
    "timer_pairs",
    "write_csv",
    "write_json",
]

Report = dict[str, Any]
TimerPair = tuple[dict[str, Any], dict[str, Any]]
"""NeuronPerf 1.x's ``(config, results)``: what ``benchmark(..., return_timers=True)`` returns."""


class ReportError(NeuronPerfError, ValueError):
    """Reports asked of something that is not a raw result, or an unknown column."""


PERCENTILE_METHOD: Final[Literal["linear"]] = "linear"  # numpy's default; Hyndman & Fan type 7
_NS_PER_MS = 1e6
_NS_PER_S = 1_000_000_000

# The fields of NeuronPerf 1.x reports, in 1.x order; the first ones come from the config.
_V1_CONFIG_FIELDS = (
    "n_models",
    "workers_per_model",
    "pipeline_size",
    "batch_size",
    "model_name",
    "model_filename",
    "device_type",
    "instance_type",
    "multiprocess",
    "multiinterpreter",
)
_V1_FIELDS = (
    *_V1_CONFIG_FIELDS,
    "status",
    "throughput_avg",
    "throughput_peak",
    *(f"latency_ms_p{p}" for p in PERCENTILES),
    "latency_ms_avg",
    "load_avg_ms",
    "warmup_avg_ms",
    "env_setup_avg_ms",
    "setup_avg_ms",
    *(f"{phase}_avg_ms" for phase in PHASES),
    "e2e_avg_ms",
    "worker_avg_s",
    "total_infs",
    "total_s",
    "cpu_avg_percent",
    "cpu_percent_p50",
    "mem_avg_percent",
    "mem_percent_p50",
    "cost_per_1m_inf",
)

# Config fields copied as they are (besides those among the 1.x fields).
_MORE_CONFIG_FIELDS = (
    "cast_mode",
    "runner",
    "duration",
    "max_infers",
    "input_idx",
    "until_stable",
    "stability_pct",
    "warmup_infers",
    "warmup_seconds",
    "arrival_rate",
    "arrivals",
    "arrival_seed",
)

# Open loop (an arrival_rate, or arrivals replayed from a file); None in a closed loop.
OPEN_LOOP_FIELDS = (
    "offered_rate",  # requests due in the timed window, per second of it
    "achieved_rate",  # requests completed, per second of the window
    "late_at_end",  # requests due in the window that no copy had started when it closed
    "arrival_lag_us_p50",  # how late the generator sent a request a worker waited for
    "arrival_lag_us_p99",
    "queued_ms_avg",  # mean time a request waited for a free worker, the lag included
)
# A peak search's steps (benchmarking.peak; None outside one). The bound and within_bound are
# also set on every report of a run given latency_bound_ms and find_peak=False.
PEAK_FIELDS = (
    "latency_bound_ms",  # the bound, in ms
    "latency_percentile",  # the percentile held to it (99: latency_ms_p99)
    "within_bound",  # the report is valid, kept up, and its percentile is within the bound
    "peak_step",  # the step's number in its search: 0 the closed-loop probe, then 1, 2, ...
    "peak_rate",  # the search's peak: the highest rate that met the bound (None: none did)
    "is_peak",  # True on the step that found the peak
    "peak_stopped",  # why the search ended before its bracket closed (None: it closed)
    "requests_per_dollar",  # on the peak's report, with cost_per_hour: peak_rate * 3600 / it
)
LAG_WARN_SHARE = 0.05  # a generator lag p99 above this share of latency p99 is warned about

REPORT_FIELDS: tuple[str, ...] = (
    *_V1_FIELDS,
    *_MORE_CONFIG_FIELDS,
    "latency_ms_std",
    "latency_samples",
    "latency_percentile_method",
    "harness_overhead_us",
    "error",
    *uncertainty.SUMMARY_FIELDS,
    "warmup_avg_infers",
    "intra_op_threads",
    *stats.LOAD_FIELDS,
    *OPEN_LOOP_FIELDS,
    *PEAK_FIELDS,
    "valid",
    "invalid_reasons",
    "warnings",
    *stats.RUN_FIELDS,
)
"""Fields of every report, in order. Then come the config's ``extra`` keys and the metrics."""

SUMMARY_COLS: tuple[str, ...] = (
    "throughput_avg",
    "latency_ms_p50",
    "latency_ms_p99",
    "n_models",
    "pipeline_size",
    "workers_per_model",
    "batch_size",
    "model_filename",
)
# The default table of an open loop shows these after the latencies: the rate asked for, the
# rate served, and the requests still queued at the end (a config that fell behind).
SUMMARY_OPEN_LOOP_COLS: tuple[str, ...] = ("arrival_rate", "achieved_rate", "late_at_end")

_CONFIG_FIELDS = (*_V1_CONFIG_FIELDS, *_MORE_CONFIG_FIELDS)
_COPY_PHASES = ("load", "warmup", "env_setup", "setup")  # "{name}_ns" in each copy

Int64Array = npt.NDArray[np.int64]


# ---------------------------------------------------------------- raw results -> reports


def get_reports(
    results: Iterable[RawResult | TimerPair], cost_per_hour: float | None = None
) -> list[Report]:
    """One report dict per result, in the same order.

    ``results`` are what ``benchmark`` returns with ``return_timers=True``: NeuronPerf
    1.x's ``(config, results)`` pairs (``timer_pairs``), or the raw results they carry
    (dicts with "config", "status", "workers", ...); both give the same reports.
    ``cost_per_hour`` (the price of the instance) adds ``cost_per_1m_inf``.
    """
    if isinstance(results, Mapping):
        raise ReportError(
            "get_reports() takes a list of raw results, got one raw result (a dict); "
            "wrap it in a list: get_reports([result])."
        )
    if cost_per_hour is not None and not cost_per_hour >= 0:
        raise ReportError(f"cost_per_hour must be a number >= 0 or None, got {cost_per_hour!r}.")
    return [_report(_raw_of(item, i), i, cost_per_hour) for i, item in enumerate(results)]


def _raw_of(item: Any, index: int) -> Any:
    """The raw result of a ``(config, results)`` pair; anything else as it is."""
    if not isinstance(item, tuple):
        return item
    if len(item) == 2 and isinstance(item[1], Mapping) and isinstance(item[1].get("raw"), Mapping):
        return item[1]["raw"]
    raise ReportError(
        f"results[{index}] is a tuple, but not a (config, results) pair that benchmark() "
        "returned: NeuronPerf 1.x (config, results) tuples are read through the raw result "
        "their results dict carries under 'raw'. Pass the list benchmark(..., "
        "return_timers=True) returns, or its raw results."
    )


def _report(raw: Any, index: int, cost_per_hour: float | None) -> Report:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("config"), Mapping):
        raise ReportError(
            f"results[{index}] is not a raw result: expected a dict with a 'config' dict, "
            f"got {type(raw).__name__}."
        )
    config = raw["config"]
    report: Report = dict.fromkeys(REPORT_FIELDS)
    report.update({k: _plain(config.get(k)) for k in _CONFIG_FIELDS})
    report["status"] = raw.get("status")
    report["error"] = raw.get("error")
    report["latency_percentile_method"] = PERCENTILE_METHOD

    batch_size = int(config.get("batch_size") or 1)
    report.update(_latency_and_throughput(raw, index, batch_size))
    report.update(_copy_averages(raw.get("copies") or [], config))
    report.update(_system_stats(raw.get("stats") or {}))
    report.update(stats.load_fields(raw.get("load")))
    report.update(stats.run_fields(raw.get("run")))
    overhead_ns = raw.get("overhead_ns")
    report["harness_overhead_us"] = None if overhead_ns is None else float(overhead_ns) / 1e3

    throughput = report["throughput_avg"]
    if cost_per_hour is not None and throughput:
        report["cost_per_1m_inf"] = cost_per_hour * 1e6 / (3600 * throughput)
    report.update(_open_loop(raw, index, report))
    report["valid"], report["invalid_reasons"], report["warnings"] = uncertainty.verdict(report)
    if report["arrival_lag_us_p99"] is not None:
        report["warnings"] += _lag_warnings(report)

    # A name that is already a report field gets a prefix rather than overwrite it
    # (model-index configs carry their compile "status", for one); an empty field is filled
    # (a backend's intra_op_threads, say).
    for key, value in (config.get("extra") or {}).items():
        _add(report, key, value, "index_")
    for key, value in (raw.get("metrics") or {}).items():
        _add(report, key, value, "metric_")
    return report


def _add(report: Report, key: str, value: Any, prefix: str) -> None:
    value = _plain(value)
    if key in report and report[key] is not None:  # a field left empty may be filled
        key = prefix + key
    report[key] = value


def _latency_and_throughput(raw: Mapping[str, Any], index: int, batch_size: int) -> Report:
    starts, ends, weights, spans_ns = [], [], [], []
    phases: dict[str, list[Int64Array]] = {}
    total_infs = 0
    config = raw.get("config") or {}
    for w in raw.get("workers") or []:
        count, stride = int(w["count"]), int(w.get("stride", 1))
        kept = -(-count // stride)  # the worker kept inferences 0, stride, 2*stride, ...
        start = _samples(w["start_ns"], kept, index, "start_ns")
        end = _samples(w["end_ns"], kept, index, "end_ns")
        starts.append(start)
        ends.append(end)
        weights.append(np.full(kept, stride, dtype=np.int64))
        total_infs += count
        if count:
            last_end = int(w.get("last_end_ns") or end.max())
            spans_ns.append(last_end - int(start.min()))
        for phase, values in (w.get("phases_ns") or {}).items():
            phases.setdefault(phase, []).append(
                _samples(values, kept, index, f"phases_ns[{phase!r}]")
            )

    out: Report = {}
    end_ns = np.concatenate(ends) if ends else np.empty(0, np.int64)
    latency_ns = end_ns - np.concatenate(starts) if starts else end_ns
    out["total_infs"] = total_infs
    out["latency_samples"] = int(latency_ns.size)

    total_s = _total_s(raw)
    out["total_s"] = total_s
    # None, never NaN: nothing measured is not a number.
    out["throughput_avg"] = out["throughput_peak"] = None
    if total_infs and total_s is not None and total_s > 0:
        out["throughput_avg"] = out["throughput_peak"] = total_infs * batch_size / total_s
        if total_s >= 1:  # a shorter window has no whole second to slide
            peak = _max_per_second(end_ns, np.concatenate(weights))
            out["throughput_peak"] = float(peak * batch_size)

    if latency_ns.size:
        ms = np.percentile(latency_ns, list(PERCENTILES), method=PERCENTILE_METHOD) / _NS_PER_MS
        out.update({f"latency_ms_p{p}": float(v) for p, v in zip(PERCENTILES, ms, strict=True)})
        out["latency_ms_avg"] = out["e2e_avg_ms"] = float(latency_ns.mean()) / _NS_PER_MS
        out["latency_ms_std"] = float(latency_ns.std()) / _NS_PER_MS
    for phase in PHASES:
        values = np.concatenate(phases[phase]) if phase in phases else np.empty(0, np.int64)
        out[f"{phase}_avg_ms"] = float(values.mean()) / _NS_PER_MS if values.size else None
    out["worker_avg_s"] = sum(spans_ns) / len(spans_ns) / _NS_PER_S if spans_ns else None
    weight = np.concatenate(weights) if weights else np.empty(0, np.int64)
    window = raw.get("window_ns")
    out.update(
        uncertainty.summarise(
            latency_ns, end_ns, weight, window, batch_size, out["throughput_avg"], config
        )
    )
    return out


def _open_loop(raw: Mapping[str, Any], index: int, report: Report) -> Report:
    """The open loop's fields: offered and achieved rates over the timed window, what was
    left queued at its end, the generator's lag (``sent - due`` of the requests a worker
    waited for) and the time requests queued (``sent - due`` of all)."""
    out: Report = dict.fromkeys(OPEN_LOOP_FIELDS)
    workers = [w for w in raw.get("workers") or [] if "sent_ns" in w]
    if not workers:
        return out
    lags, queued = [], []
    for w in workers:
        kept = -(-int(w["count"]) // int(w.get("stride", 1)))
        due = _samples(w["start_ns"], kept, index, "start_ns")
        picked = _samples(w["picked_ns"], kept, index, "picked_ns")
        sent = _samples(w["sent_ns"], kept, index, "sent_ns")
        lags.append((sent - due)[picked < due])  # the worker was free: only the generator
        queued.append(sent - due)
    completed = int(report["total_infs"] or 0)
    late = sum(int(w.get("late") or 0) for w in workers)
    out["late_at_end"] = late
    total_s = report["total_s"]
    if total_s:
        out["offered_rate"] = (completed + late) / total_s
        out["achieved_rate"] = completed / total_s
    lag = np.concatenate(lags)
    if lag.size:
        p50, p99 = np.percentile(lag, [50, 99], method=PERCENTILE_METHOD) / 1e3
        out["arrival_lag_us_p50"], out["arrival_lag_us_p99"] = float(p50), float(p99)
    waited = np.concatenate(queued)
    if waited.size:
        out["queued_ms_avg"] = float(waited.mean()) / _NS_PER_MS
    return out


def _lag_warnings(report: Report) -> list[str]:
    """A warning when the generator's own lag is a visible part of the latencies it
    reports: the machine could not send requests on time at this rate."""
    lag_ms = report["arrival_lag_us_p99"] / 1e3
    p99 = report.get("latency_ms_p99")
    if not p99 or lag_ms <= LAG_WARN_SHARE * p99:
        return []
    return [
        f"the load generator could not keep up: it sent requests up to {lag_ms:.3g} ms late "
        f"(p99), {lag_ms / p99:.0%} of the p99 latency it reports, which includes that "
        "delay. Either a core asleep between requests was slow to wake (virtual machines, "
        "low rates) or the machine is short of cores for the copies and the generator "
        "(fewer workers or copies)."
    ]


def _total_s(raw: Mapping[str, Any]) -> float | None:
    """The length of the timed window, in seconds; None when nothing was timed."""
    window = raw.get("window_ns")
    return None if window is None else (int(window[1]) - int(window[0])) / _NS_PER_S


def _samples(values: Any, kept: int, index: int, name: str) -> Int64Array:
    """A worker's array of kept samples, checked against its count and stride."""
    array = np.asarray(values, dtype=np.int64)
    if array.shape != (kept,):
        raise ReportError(
            f"results[{index}] is malformed: a worker's {name} has shape {array.shape}, "
            f"expected ({kept},) from its count and stride. The runner produced a bad raw result."
        )
    return array


def _max_per_second(end_ns: Int64Array, weights: Int64Array) -> int:
    """Max over i of the inferences (sample weights) ending in (end_i - 1 s, end_i]."""
    order = np.argsort(end_ns, kind="stable")
    ends = end_ns[order]
    cumulative = np.concatenate([[0], np.cumsum(weights[order])])
    upto = np.searchsorted(ends, ends, side="right")
    before = np.searchsorted(ends, ends - _NS_PER_S, side="right")
    return int((cumulative[upto] - cumulative[before]).max())


def _copy_averages(copies: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> Report:
    out: Report = {
        f"{name}_avg_ms": (
            sum(int(c.get(f"{name}_ns") or 0) for c in copies) / len(copies) / _NS_PER_MS
            if copies
            else None
        )
        for name in _COPY_PHASES
    }
    out["warmup_avg_infers"] = (
        sum(int(c.get("warmup_infers") or 0) for c in copies) / len(copies) if copies else None
    )
    # the setting; a backend that applies its own count records it (RunPlan.report_fields)
    out["intra_op_threads"] = config.get("intra_op_threads")
    return out


def _system_stats(stats: Mapping[str, Any]) -> Report:
    out: Report = {}
    for name in ("cpu", "mem"):
        samples = np.asarray(stats.get(f"{name}_percent", []), dtype=np.float64)
        has = samples.size > 0
        out[f"{name}_avg_percent"] = float(samples.mean()) if has else None
        out[f"{name}_percent_p50"] = float(np.median(samples)) if has else None
    return out


def _plain(value: Any) -> Any:
    """Plain JSON-friendly Python: numpy scalars/arrays unwrapped, NaN/inf as None."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- raw results -> 1.x pairs

# NeuronPerf 1.x's timer names, in its order: those of each copy, then those of each worker.
_TIMER_NAMES = ("env_setup", "setup", "load", "input", "warmup", *PHASES[1:], "e2e", "worker")
_RUN_ORDER = ("env_setup", "load", "setup", "warmup")  # the order a copy runs its steps in


def timer_pairs(results: Iterable[RawResult]) -> list[TimerPair]:
    """NeuronPerf 1.x's ``(config, results)`` pair of each raw result, in the same order:
    what ``benchmark(..., return_timers=True)`` returns; ``get_reports`` reads it.

    ``config`` is the raw result's config (``multiprocess``, ``multiinterpreter``,
    ``n_models``, ``batch_size``, ...). ``results`` holds ``workers_per_model``,
    ``status``, ``error``, ``n_infs`` (timed inferences, all workers: the report's
    ``total_infs``), ``total_s`` (the timed window), ``cpu_percents`` and
    ``mem_percents`` (the samples), ``timers``, and ``raw``: the raw result itself,
    so nothing measured is lost.

    ``timers`` maps 1.x's timer names to lists of ``Timer`` in int nanoseconds
    (``time.perf_counter_ns``). ``env_setup``, ``setup``, ``load`` and ``warmup``:
    one per copy, holding one interval each (0 long where no hook was given), counted
    from the copy's start, since raw results keep their lengths only. ``input``,
    ``preprocess``, ``infer``, ``postprocess``, ``e2e`` and ``worker``: one per worker
    of every copy. ``e2e`` holds the kept samples (every ``stride``-th inference once a
    worker passed ``max_samples``), the phases the same inferences' phases back to back
    as they ran, ``worker`` the span from a worker's first start to its last end. A
    phase that was not timed has empty timers (``len`` 0; ``avg`` 0, as in 1.x): without pre-
    or postprocess functions only ``infer`` is, and equals ``e2e``.
    """
    if isinstance(results, Mapping):
        raise ReportError(
            "timer_pairs() takes a list of raw results, got one raw result (a dict); "
            "wrap it in a list: timer_pairs([result])."
        )
    return [_timer_pair(raw, i) for i, raw in enumerate(results)]


def _timer_pair(raw: Any, index: int) -> TimerPair:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("config"), Mapping):
        raise ReportError(
            f"results[{index}] is not a raw result: expected a dict with a 'config' dict, "
            f"got {type(raw).__name__}."
        )
    config = deepcopy(dict(raw["config"]))
    workers = raw.get("workers") or []
    stats = raw.get("stats") or {}
    results = {
        "workers_per_model": config.get("workers_per_model"),
        "status": raw.get("status"),
        "error": raw.get("error"),
        "n_infs": sum(int(w["count"]) for w in workers),
        "total_s": _total_s(raw),
        "cpu_percents": np.asarray(stats.get("cpu_percent", []), np.float64).tolist(),
        "mem_percents": np.asarray(stats.get("mem_percent", []), np.float64).tolist(),
        "timers": _timers(raw.get("copies") or [], workers, index),
        "raw": raw,
    }
    return config, results


def _timers(
    copies: Sequence[Mapping[str, Any]], workers: Sequence[Mapping[str, Any]], index: int
) -> dict[str, list[Timer]]:
    timers: dict[str, list[Timer]] = {name: [] for name in _TIMER_NAMES}
    for c in copies:
        begin = 0
        for name in _RUN_ORDER:
            length = int(c.get(f"{name}_ns") or 0)
            timers[name].append(Timer.from_intervals([begin], [begin + length]))
            begin += length
    empty = np.empty(0, np.int64)
    for w in workers:
        count, stride = int(w["count"]), int(w.get("stride", 1))
        kept = -(-count // stride)
        start = _samples(w["start_ns"], kept, index, "start_ns")
        end = _samples(w["end_ns"], kept, index, "end_ns")
        timers["e2e"].append(Timer.from_intervals(start, end))
        phases = w.get("phases_ns") or {}
        at = start
        for phase in PHASES:  # back to back, as the worker ran them
            if phase in phases:
                took = _samples(phases[phase], kept, index, f"phases_ns[{phase!r}]")
                timers[phase].append(Timer.from_intervals(at, at + took))
                at = at + took
            else:
                timers[phase].append(Timer.from_intervals(empty, empty))
        span = Timer.from_intervals(empty, empty)
        if count:  # first start to last end, as the report's worker_avg_s
            last = int(w.get("last_end_ns") or end.max())
            span = Timer.from_intervals([int(start.min())], [last])
        timers["worker"].append(span)
    return timers


# ---------------------------------------------------------------- reports -> table, CSV, JSON


def print_reports(
    reports: Iterable[Report],
    cols: Iterable[str] = SUMMARY_COLS,
    sort_by: str | None = "throughput_peak",
    reverse: bool | None = None,
    file: TextIO | None = None,
) -> None:
    """Print ``reports`` as a table (``neuronperf_core.tables``: as wide as the terminal),
    sorted by ``sort_by``: by default best config first (highest first for throughput,
    lowest first for any other field: latency, cost, config fields); ``reverse=True``
    sorts highest first and ``reverse=False`` lowest first, as in NeuronPerf 1.x. None
    values go last either way.

    ``sort_by`` is any report field (None keeps the given order); it is shown as
    the last column when not among ``cols``. The default ``cols`` of open-loop reports
    add ``SUMMARY_OPEN_LOOP_COLS`` after the latencies; the default table of a peak
    search's reports is each search's step table and peak line, in the order they ran.
    Floats show 3 decimals (1 from 1000 up), None "N/A"; ``model_filename`` shows the
    file's name, not its folder.
    """
    from neuronperf_core.tables import Column, print_table

    rows = list(reports)
    out = file if file is not None else sys.stdout
    if not rows:  # a run stopped before its first config (Ctrl-C, say): say so, as 1.x did
        print("No reports were found. Did benchmarking succeed?", file=out)
        return
    shown = _check_fields(rows, cols, "column")
    default = shown[: len(SUMMARY_COLS)] == list(SUMMARY_COLS)
    if default and sort_by == "throughput_peak" and _print_peak_searches(rows, out):
        return
    if default and any(r.get("arrival_rate") is not None for r in rows):  # an open loop
        at = SUMMARY_COLS.index("latency_ms_p99") + 1
        shown[at:at] = [c for c in SUMMARY_OPEN_LOOP_COLS if c not in shown]
    if sort_by is not None:
        _check_fields(rows, [sort_by], "sort_by field")
        descending = higher_is_better(sort_by) if reverse is None else reverse
        rows = _sorted(rows, sort_by, descending)
        if sort_by not in shown:
            shown.append(sort_by)
    # Text columns read best left-aligned, numbers right-aligned.
    columns = [
        Column(c, numeric=not all(isinstance(r.get(c), str | None) for r in rows)) for c in shown
    ]
    cells = [[_cell(r.get(c), c, uncertainty.plus_minus(r, c)) for c in shown] for r in rows]
    print_table(columns, cells, file=out)


def _print_peak_searches(reports: list[Report], out: TextIO) -> bool:
    """Peak searches' reports (``benchmarking.peak``) as each search's step table and peak
    line, in the order the steps ran; False when the reports hold no search."""
    from neuronperf_core.benchmarking.peak import searches
    from neuronperf_core.tables import print_peak_search

    found = searches(reports)
    for steps in found:
        print_peak_search(steps, file=out)
    return bool(found)


def _sorted(reports: list[Report], field: str, descending: bool) -> list[Report]:
    known = [r for r in reports if r.get(field) is not None]
    missing = [r for r in reports if r.get(field) is None]
    return sorted(known, key=lambda r: r[field], reverse=descending) + missing


def _cell(value: Any, field: str, plus_minus: float | None = None) -> str:
    """A value as the table shows it; with ``plus_minus`` (the larger side of its 95 %
    interval, ``uncertainty.plus_minus``) as "value +/- h" (a table may wrap before "+/-")."""
    if value is None:
        return "N/A"
    if plus_minus is not None and isinstance(value, float):
        digits = 1 if abs(value) >= 1000 else 3
        if plus_minus <= 1e-9 * abs(value):  # rounding noise of an interval of width 0
            plus_minus = 0.0
        small = 0 < plus_minus < 10**-digits  # would print as 0.000
        half = f"{plus_minus:.2g}" if small else f"{plus_minus:.{digits}f}"
        return f"{_cell(value, field)} +/- {half}"
    if field == "model_filename" and isinstance(value, str):
        return Path(value).name  # the folder is in the results file; the table needs the name
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:.1f}"
        # Tiny non-zero values would all print as 0.000.
        return f"{value:.3f}" if value == 0 or abs(value) >= 0.001 else f"{value:.3g}"
    return str(value)


def write_csv(
    reports: Iterable[Report],
    filename: str | os.PathLike[str] | None = None,
    cols: Iterable[str] | None = None,
) -> str:
    """Write ``reports`` as CSV; returns the filename. A missing value (None) is an empty
    cell, a list or dict its JSON (``[[1, 64]]``, ``["float32"]``), a bool ``true`` or
    ``false``: what a CSV reader or another language parses without Python's reprs.

    ``cols=None`` writes every field of any report: ``REPORT_FIELDS`` first, then
    the rest in order of appearance. The default filename is
    ``{model_name}.results-YYYYmmdd-HHMMSS.csv`` in the current directory; pass the
    returned name again to rewrite the same file after each config. The write is
    atomic. An empty list writes only the header.
    """
    rows = list(reports)
    fields = _all_fields(rows) if cols is None else _check_fields(rows, cols, "column")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for r in rows:
        writer.writerow([_csv_cell(r.get(f)) for f in fields])
    return _write(buffer.getvalue(), filename, rows, "csv")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict | bool):
        return json.dumps(value)
    return value


def write_json(reports: Iterable[Report], filename: str | os.PathLike[str] | None = None) -> str:
    """Write ``reports`` as a JSON list (missing values null); returns the filename.

    Default filename and atomicity as ``write_csv``. An empty list writes ``[]``.
    """
    rows = list(reports)
    try:
        text = json.dumps(rows, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as e:
        raise ReportError(
            f"Cannot write reports as JSON: {e}. Report values must be JSON types "
            "(str, int, finite float, bool, None, list, dict); get_reports() makes them so."
        ) from e
    return _write(text, filename, rows, "json")


def _write(
    text: str, filename: str | os.PathLike[str] | None, reports: list[Report], ext: str
) -> str:
    if filename is None:
        model_name = str((reports[0].get("model_name") if reports else None) or "model")
        model_name = model_name.replace("/", "_").replace(os.sep, "_")  # a name, not a path
        filename = f"{results_stem(model_name)}.{ext}"
    atomic_write(Path(filename), text)
    return os.fspath(filename)


def _all_fields(reports: list[Report]) -> list[str]:
    """Every field of any report: REPORT_FIELDS first, then the rest as they appear."""
    if not reports:  # a header of the standard fields beats an empty file
        return list(REPORT_FIELDS)
    seen = dict.fromkeys(f for r in reports for f in r)
    return [f for f in REPORT_FIELDS if f in seen] + [f for f in seen if f not in REPORT_FIELDS]


def _check_fields(reports: list[Report], fields: Iterable[str], what: str) -> list[str]:
    names = fields.split() if isinstance(fields, str) else list(fields)  # "a b c" works too
    valid = dict.fromkeys([*REPORT_FIELDS, *_all_fields(reports)])
    unknown = [f for f in names if f not in valid]
    if unknown:
        raise ReportError(
            f"Unknown {what} {', '.join(map(repr, unknown))}. Valid fields: {', '.join(valid)}."
        )
    return names

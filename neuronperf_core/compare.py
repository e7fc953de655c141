"""Compare two runs (two lists of report dicts) config by config.

Configs are matched on ``KEY_FIELDS`` (batch size, copies, workers, pipeline size,
cast mode, device type and, in an open loop, the arrival rate), not on the model name,
so model A can be compared with model B. A config found in one run only is listed as
only-in-old or only-in-new. A config that did not finish in either run is kept with
its statuses, without ratios.

Open loop (reports with an ``arrival_rate``): each rate of a sweep is its own row, and the
achieved rate (``OPEN_LOOP_METRICS``) is compared beside throughput and latency. Where a
run holds a peak search (reports with ``peak_step``: its closed-loop probe, which pairs with
the other run's, then its steps; the peak's report has ``is_peak``), ``Comparison.peaks``
holds each config's peak rate in both runs and its change; a step the search ran again (it
was invalid) is compared by its rerun. A closed-loop run and an open-loop one measure
different things (throughput at saturation against latency at a set rate): comparing them
is an error that says so, rather than a table of unmatched configs.

For each config finished in both runs, each metric of ``METRICS`` that both
reports hold gets the ratio new / old, the change in percent with its 95 % interval,
whether the change is significant, and a verdict: "better", "worse" or "within
noise". Throughput is better higher, latency better lower.

Significance (``uncertainty.log_change_halfwidth``): each report keeps its per-window
throughput and latency percentiles and its latency histogram. The interval of a change
is the larger of Welch's t on the two runs' per-window values (logs) and, for a latency
percentile, the two runs' order-statistic intervals from their histograms, combined; a
change is significant when its interval excludes 0. Reports without windows or
histograms (written before neuronperf kept them, or too short for 3 windows) give no
interval: ``significant`` is None.

A change is "better" or "worse" when it is larger than the noise band
(``noise_pct``, default 5: |ratio - 1| > noise_pct / 100, the edge inside) and
significant (or untestable); otherwise "within noise".

``Comparison.gate(pct, statistics)`` is the regression gate: a config fails when one of
the chosen statistics (``GATE_STATISTICS``: throughput, p50, p90, p95, p99) got slower
by more than ``pct`` percent and the change is significant (or cannot be tested), or
when it finished in the old run and not in the new one, or is missing from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.report_fields import config_label

if TYPE_CHECKING:
    from neuronperf_core.tables import Column

__all__ = [
    "KEY_FIELDS",
    "METRICS",
    "OPEN_LOOP_METRICS",
    "CompareError",
    "Comparison",
    "ConfigComparison",
    "Gate",
    "GateFailure",
    "MetricChange",
    "PeakComparison",
    "PeakSearch",
    "UnmatchedConfig",
    "Verdict",
    "compare_reports",
    "format_comparison",
]

KEY_FIELDS: Final[tuple[str, ...]] = (
    "batch_size",
    "n_models",
    "workers_per_model",
    "pipeline_size",
    "cast_mode",
    "device_type",
    "arrival_rate",
)
"""The fields two reports must share to be compared. ``cast_mode`` may be missing
(NeuronPerf 1.x reports lack it) and ``arrival_rate`` too (reports from before the open
loop, or a closed loop's None): missing reads as None."""

METRICS: Final[tuple[str, ...]] = (
    "throughput_avg",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p95",
    "latency_ms_p99",
)
"""The compared metrics; only ``throughput_avg`` is better higher."""

OPEN_LOOP_METRICS: Final[tuple[str, ...]] = ("achieved_rate",)
"""Compared too where both reports hold them (open loop); better higher."""

GATE_STATISTICS: Final[Mapping[str, str]] = {
    "throughput": "throughput_avg",
    "p50": "latency_ms_p50",
    "p90": "latency_ms_p90",
    "p95": "latency_ms_p95",
    "p99": "latency_ms_p99",
}
"""The statistics ``Comparison.gate`` can gate on, and their report fields."""

DEFAULT_GATE: Final[tuple[str, ...]] = ("throughput", "p50")
"""p99 is left out by default: it is the noisiest figure (the table shows it)."""

Verdict = Literal["better", "worse", "within noise"]

# where each metric's per-window values are in a report's "windows", and its quantile
# (achieved_rate is requests per second, throughput inferences: for one config they differ by
# the batch size, which the log of a ratio does not see)
_WINDOW_KEYS = {"throughput_avg": "throughput", "achieved_rate": "throughput"}
_QUANTILES = {f"latency_ms_p{p}": p / 100 for p in (50, 90, 95, 99)}

_OPTIONAL_KEY_FIELDS = ("cast_mode", "arrival_rate")
_HIGHER_IS_BETTER = frozenset({"throughput_avg", "achieved_rate"})
_RATE = KEY_FIELDS.index("arrival_rate")


class CompareError(NeuronPerfError, ValueError):
    """Runs that cannot be compared: not lists of reports, a missing key field, two
    reports of one config in one run, or a bad threshold."""


@dataclass(frozen=True)
class MetricChange:
    """One metric of one config in both runs. ``ratio`` is new / old (None when old is 0);
    ``change_pct`` is (ratio - 1) in percent, ``interval_pct`` its 95 % interval (None
    when it cannot be told), ``significant`` whether that interval excludes 0 (None:
    untestable)."""

    metric: str
    old: float
    new: float
    ratio: float | None
    verdict: Verdict
    interval_pct: tuple[float, float] | None = None
    significant: bool | None = None

    @property
    def change_pct(self) -> float | None:
        return None if self.ratio is None else (self.ratio - 1.0) * 100.0

    def describe(self) -> str:
        """ "+12.3% (95% interval +8.1% to +16.5%)", or "(untested)" without an interval."""
        if self.change_pct is None:
            return f"{self.old:g} -> {self.new:g}"
        interval = (
            f"95% interval {self.interval_pct[0]:+.1f}% to {self.interval_pct[1]:+.1f}%"
            if self.interval_pct is not None
            else "no interval: the reports hold no windows or histograms to test it on"
        )
        return f"{self.change_pct:+.1f}% ({interval})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "old": self.old,
            "new": self.new,
            "ratio": self.ratio,
            "change_pct": self.change_pct,
            "interval_pct": None if self.interval_pct is None else list(self.interval_pct),
            "significant": self.significant,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class ConfigComparison:
    """A config found in both runs. ``changes`` is empty unless it finished in both."""

    label: str
    key: tuple[Any, ...]  # values of KEY_FIELDS, in that order
    old_status: str | None
    new_status: str | None
    old_model_name: str | None
    new_model_name: str | None
    old_error: str | None
    new_error: str | None
    changes: tuple[MetricChange, ...]
    # the share of the CPU others (other processes, a hypervisor's steal) used during each
    # run of the config (reports' other_cpu_share; None when unknown): a machine whose load
    # changed between the runs moves their figures as surely as a code change
    old_other_cpu_share: float | None = None
    new_other_cpu_share: float | None = None

    def busy_note(self) -> str | None:
        """ "busy machine: others used 65% (new run) of the CPU", or None when
        neither run's machine was busy (``uncertainty.BUSY_SHARE``)."""
        from neuronperf_core.uncertainty import BUSY_SHARE

        busy = [
            f"{share:.0%} ({run} run)"
            for run, share in (("old", self.old_other_cpu_share), ("new", self.new_other_cpu_share))
            if share is not None and share > BUSY_SHARE
        ]
        return f"busy machine: others used {' and '.join(busy)} of the CPU" if busy else None

    @property
    def finished(self) -> bool:
        """Whether the config finished in both runs (only then are there ratios)."""
        return self.old_status == "finished" and self.new_status == "finished"

    @property
    def status(self) -> str:
        """ "finished" when finished in both runs, else "old: <status>, new: <status>"."""
        if self.finished:
            return "finished"
        return f"old: {self.old_status}, new: {self.new_status}"

    def change(self, metric: str) -> MetricChange | None:
        """The change of ``metric``, or None when not compared (absent or not finished)."""
        return next((c for c in self.changes if c.metric == metric), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "key": dict(zip(KEY_FIELDS, self.key, strict=True)),
            "status": self.status,
            "old_status": self.old_status,
            "new_status": self.new_status,
            "old_model_name": self.old_model_name,
            "new_model_name": self.new_model_name,
            "old_error": self.old_error,
            "new_error": self.new_error,
            "old_other_cpu_share": self.old_other_cpu_share,
            "new_other_cpu_share": self.new_other_cpu_share,
            "changes": {c.metric: c.to_dict() for c in self.changes},
        }


@dataclass(frozen=True)
class UnmatchedConfig:
    """A config found in one run only."""

    label: str
    key: tuple[Any, ...]
    status: str | None
    model_name: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "key": dict(zip(KEY_FIELDS, self.key, strict=True)),
            "status": self.status,
            "model_name": self.model_name,
        }


@dataclass(frozen=True)
class PeakSearch:
    """One run's peak search of one config: the largest rate whose ``percentile`` latency
    stayed within ``bound_ms`` (``rate`` None: no rate tried did)."""

    rate: float | None
    bound_ms: float | None
    percentile: float | None
    requests_per_dollar: float | None = None
    stopped: str | None = None  # why the search ended before its bracket closed

    def bound(self) -> str:
        """ "p99 <= 20 ms" """
        percentile = "p?" if self.percentile is None else f"p{self.percentile:g}"
        return f"{percentile} <= {'?' if self.bound_ms is None else f'{self.bound_ms:g}'} ms"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "bound_ms": self.bound_ms,
            "percentile": self.percentile,
            "requests_per_dollar": self.requests_per_dollar,
            "stopped": self.stopped,
        }


@dataclass(frozen=True)
class PeakComparison:
    """A config's peak search in both runs (``old`` or ``new`` None: that run searched no
    peak for it). ``key`` is its config's ``KEY_FIELDS`` with the arrival rate None."""

    label: str
    key: tuple[Any, ...]
    old: PeakSearch | None
    new: PeakSearch | None

    @property
    def ratio(self) -> float | None:
        """new / old peak rate; None when either run has none."""
        if self.old is None or self.new is None or not self.old.rate or self.new.rate is None:
            return None
        return self.new.rate / self.old.rate

    @property
    def change_pct(self) -> float | None:
        return None if self.ratio is None else (self.ratio - 1.0) * 100.0

    @property
    def same_bound(self) -> bool:
        """Whether both runs searched under one bound (else their peaks answer different
        questions)."""
        return (
            self.old is not None
            and self.new is not None
            and (self.old.bound_ms, self.old.percentile) == (self.new.bound_ms, self.new.percentile)
        )

    def describe(self) -> str:
        """ "b1 n1 w1 (p99 <= 20 ms): peak 400/s -> 520/s (+30.0%)", with what differs."""

        def peak(search: PeakSearch | None) -> str:
            if search is None:
                return "no peak search"
            return "none within the bound" if search.rate is None else f"{rate_text(search.rate)}/s"

        searches = [s for s in (self.old, self.new) if s is not None]
        bound = f" ({searches[0].bound()})" if self.same_bound or len(searches) == 1 else ""
        text = f"{self.label}{bound}: peak {peak(self.old)} -> {peak(self.new)}"
        if self.change_pct is not None:
            text += f" ({self.change_pct:+.1f}%)"
        if self.old is not None and self.new is not None and not self.same_bound:
            text += (
                f"; the bounds differ (old {self.old.bound()}, new {self.new.bound()}): "
                "the peaks answer different questions"
            )
        dollars = [s.requests_per_dollar for s in (self.old, self.new) if s is not None]
        if len(dollars) == 2 and None not in dollars:
            text += f"; requests per dollar {dollars[0]:,.0f} -> {dollars[1]:,.0f}"
        for run, search in (("old", self.old), ("new", self.new)):
            if search is not None and search.stopped:
                text += f"; the {run} search stopped early: {search.stopped}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "key": dict(zip(KEY_FIELDS, self.key, strict=True)),
            "old": None if self.old is None else self.old.to_dict(),
            "new": None if self.new is None else self.new.to_dict(),
            "ratio": self.ratio,
            "change_pct": self.change_pct,
            "same_bound": self.same_bound,
        }


@dataclass(frozen=True)
class Comparison:
    """Two runs compared: ``rows`` in the old run's order, then the unmatched configs, and
    the peak searches of configs either run searched (``peaks``, empty for sweeps without
    one)."""

    rows: tuple[ConfigComparison, ...]
    only_old: tuple[UnmatchedConfig, ...]
    only_new: tuple[UnmatchedConfig, ...]
    noise_pct: float
    peaks: tuple[PeakComparison, ...] = ()

    def gate(self, pct: float, statistics: Sequence[str] = DEFAULT_GATE) -> Gate:
        """The regression gate (CI: fail unless ``passed``): per config, the chosen
        ``statistics`` (keys of ``GATE_STATISTICS``) that got slower by more than ``pct``
        percent with a significant change (or one that cannot be tested), a config that
        finished in the old run but not in the new one (the worst slowdown), and the
        configs missing from the new run."""
        _check_pct(pct, "pct")
        chosen = check_gate(statistics)
        configs = []
        for row in self.rows:
            failures: list[GateFailure] = []
            if row.old_status == "finished" and row.new_status != "finished":
                failures.append(GateFailure(row.label, None, None, f"did not finish: {row.status}"))
            for name in chosen:
                change = row.change(GATE_STATISTICS[name])
                if change is not None and _slower(change, pct):
                    reason = f"slower by more than {pct:g}%"
                    failures.append(GateFailure(row.label, name, change, reason, row.busy_note()))
            configs.append((row, tuple(failures)))
        missing = tuple(u for u in self.only_old if u.status == "finished")
        return Gate(float(pct), chosen, tuple(configs), missing)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (ratios None where undefined)."""
        return {
            "noise_pct": self.noise_pct,
            "key_fields": list(KEY_FIELDS),
            "rows": [r.to_dict() for r in self.rows],
            "only_old": [u.to_dict() for u in self.only_old],
            "only_new": [u.to_dict() for u in self.only_new],
            "peaks": [p.to_dict() for p in self.peaks],
        }


@dataclass(frozen=True)
class GateFailure:
    """Why one config fails the gate: a statistic's change (``statistic`` None when the
    config itself stopped finishing)."""

    label: str
    statistic: str | None
    change: MetricChange | None
    reason: str
    busy: str | None = None  # ConfigComparison.busy_note

    def message(self) -> str:
        """ "b8 n1 w1: p50 +12.3% (95% interval +8.1% to +16.5%): slower by more than 5%,
        significant", and "; " the busy note when a run's machine was busy."""
        if self.change is None or self.statistic is None:
            return f"{self.label}: {self.reason}"
        tested = {True: ", significant", False: "", None: " (untested)"}[self.change.significant]
        note = f"; {self.busy}" if self.busy else ""
        return (
            f"{self.label}: {self.statistic} {self.change.describe()}: {self.reason}{tested}{note}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "reason": self.reason,
            "busy": self.busy,
            "change": None if self.change is None else self.change.to_dict(),
            "message": self.message(),
        }


@dataclass(frozen=True)
class Gate:
    """The gate's verdict per config (in the old run's order) and overall."""

    pct: float
    statistics: tuple[str, ...]
    configs: tuple[tuple[ConfigComparison, tuple[GateFailure, ...]], ...]
    missing: tuple[UnmatchedConfig, ...]

    @property
    def failures(self) -> list[GateFailure]:
        return [f for _, failures in self.configs for f in failures]

    @property
    def passed(self) -> bool:
        return not self.failures and not self.missing

    def messages(self) -> list[str]:
        return [f.message() for f in self.failures] + [
            f"{u.label}: missing from the new run" for u in self.missing
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pct": self.pct,
            "statistics": list(self.statistics),
            "pass": self.passed,
            "configs": [
                {
                    "label": row.label,
                    "key": dict(zip(KEY_FIELDS, row.key, strict=True)),
                    "pass": not failures,
                    "failures": [f.to_dict() for f in failures],
                }
                for row, failures in self.configs
            ],
            "missing": [u.to_dict() for u in self.missing],
        }


def check_gate(statistics: Sequence[str] | str) -> tuple[str, ...]:
    """The gate's statistics checked (a list, or "throughput,p50,p99")."""
    names = statistics.split(",") if isinstance(statistics, str) else list(statistics)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in GATE_STATISTICS]
    if unknown or not names:
        raise CompareError(
            f"gate statistics {', '.join(map(repr, unknown)) or '(none)'} unknown: choose "
            f"from {', '.join(GATE_STATISTICS)}, e.g. throughput,p50,p99."
        )
    return tuple(dict.fromkeys(names))


def _slower(change: MetricChange, pct: float) -> bool:
    """Slower by more than ``pct`` percent, and significantly so (or untestable)."""
    moved = _moved(change.old, change.new, pct)
    worse = moved < 0 if change.metric in _HIGHER_IS_BETTER else moved > 0
    return worse and change.significant is not False


# ---------------------------------------------------------------- comparing


def compare_reports(
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    *,
    noise_pct: float = 5.0,
) -> Comparison:
    """Compare run ``new`` with run ``old`` config by config (see the module docstring)."""
    _check_pct(noise_pct, "noise_pct")
    old_by_key = _index(old, "old")
    new_by_key = _index(new, "new")
    _check_same_loop(old_by_key, new_by_key)
    labels = _labels([*old_by_key, *(k for k in new_by_key if k not in old_by_key)])

    rows = []
    for key, o in old_by_key.items():
        n = new_by_key.get(key)
        if n is None:
            continue
        finished = o.get("status") == "finished" and n.get("status") == "finished"
        changes = _changes(o, n, noise_pct) if finished else ()
        rows.append(
            ConfigComparison(
                label=labels[key],
                key=key,
                old_status=_text(o.get("status")),
                new_status=_text(n.get("status")),
                old_model_name=_text(o.get("model_name")),
                new_model_name=_text(n.get("model_name")),
                old_error=_text(o.get("error")),
                new_error=_text(n.get("error")),
                changes=changes,
                old_other_cpu_share=_number(o.get("other_cpu_share"), "other_cpu_share"),
                new_other_cpu_share=_number(n.get("other_cpu_share"), "other_cpu_share"),
            )
        )
    return Comparison(
        rows=tuple(rows),
        only_old=_unmatched(old_by_key, new_by_key, labels),
        only_new=_unmatched(new_by_key, old_by_key, labels),
        noise_pct=float(noise_pct),
        peaks=_peaks(old_by_key, new_by_key),
    )


def _check_same_loop(
    old: Mapping[tuple[Any, ...], Mapping[str, Any]],
    new: Mapping[tuple[Any, ...], Mapping[str, Any]],
) -> None:
    """A closed-loop run against an open-loop one is an error: no config of one can match
    one of the other, and a table of unmatched configs would hide why."""
    loops = [{key[_RATE] is not None for key in run} for run in (old, new)]
    if not loops[0] or not loops[1] or loops[0] & loops[1]:
        return
    kinds = ["open loop" if True in loop else "closed loop" for loop in loops]
    raise CompareError(
        f"The old run is {kinds[0]} and the new run {kinds[1]}: they measure different "
        "things. A closed loop sends each worker's next request when its last returns "
        "(throughput at saturation; latency without queueing); an open loop sends requests "
        "at arrival_rate whatever the model does (latency from each request's arrival, "
        "queueing included). Compare two closed-loop runs, or two open-loop runs: run the "
        "other with the same --arrival-rate."
    )


def _check_pct(value: Any, name: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise CompareError(f"{name} must be a finite number >= 0 (a percentage), got {value!r}.")


def _index(reports: Any, run: str) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    """The reports of one run by config key, checked."""
    if isinstance(reports, Mapping | str | bytes):
        raise CompareError(
            f"The {run} run must be a list of report dicts, got {type(reports).__name__}. "
            "Pass the list benchmark() returns or a results JSON file's list."
        )
    try:
        items = list(reports)
    except TypeError:
        raise CompareError(
            f"The {run} run must be a list of report dicts, got {type(reports).__name__}."
        ) from None
    out: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    where: dict[tuple[Any, ...], int] = {}
    for i, r in enumerate(items):
        if not isinstance(r, Mapping):
            raise CompareError(
                f"{run}[{i}] is not a report dict: got {type(r).__name__}. "
                "Pass the list benchmark() returns or a results JSON file's list."
            )
        missing = [f for f in KEY_FIELDS if f not in r and f not in _OPTIONAL_KEY_FIELDS]
        if missing:
            raise CompareError(
                f"{run}[{i}] lacks {', '.join(map(repr, missing))}: configs are matched on "
                f"{', '.join(KEY_FIELDS)}. Compare reports as benchmark() writes them."
            )
        key = tuple(r.get(f) for f in KEY_FIELDS)
        try:
            hash(key)
        except TypeError:
            raise CompareError(
                f"{run}[{i}] has a config field that is not a plain value: "
                f"{dict(zip(KEY_FIELDS, key, strict=True))}. Expected numbers, strings or None."
            ) from None
        if key in out and _step(r) and _step(out[key]):
            del out[key]  # a peak search ran an invalid step again: the rerun stands for it
        if key in out:
            raise CompareError(
                f"The {run} run holds config {_label(key)!r} "
                f"({dict(zip(KEY_FIELDS, key, strict=True))}) twice: {run}[{where[key]}] and "
                f"{run}[{i}]. Each config may appear once per run; compare one model's results "
                "at a time or drop the extra reports."
            )
        out[key] = r
        where[key] = i
    return out


def _step(report: Mapping[str, Any]) -> bool:
    """Whether ``report`` is a step of a peak search (its probe included)."""
    return report.get("peak_step") is not None


def _labels(keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], str]:
    """``config_label`` of each key, then its arrival rate ("b1 n1 w1 @ 400/s"); the device
    type added where it tells two apart."""
    base = {k: _label(k) for k in keys}
    taken: dict[str, int] = {}
    for label in base.values():
        taken[label] = taken.get(label, 0) + 1
    device = KEY_FIELDS.index("device_type")
    # The label shows every key field but the device type, so equal labels differ there.
    return {k: _label(k, device=k[device] if taken[v] > 1 else None) for k, v in base.items()}


def _label(key: tuple[Any, ...], device: Any = None) -> str:
    label = config_label(dict(zip(KEY_FIELDS, key, strict=True)))
    if device is not None:
        label += f" {device}"
    rate = key[_RATE]
    return label if rate is None else f"{label} @ {rate_text(rate)}/s"


def rate_text(rate: Any) -> str:
    """A rate as tables show it: 400, 537.5, 0.25, 1000000 (never 1e+06)."""
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        return str(rate)
    return f"{rate:.3f}".rstrip("0").rstrip(".")


def _peaks(
    old: Mapping[tuple[Any, ...], Mapping[str, Any]],
    new: Mapping[tuple[Any, ...], Mapping[str, Any]],
) -> tuple[PeakComparison, ...]:
    """Each config's peak search in both runs, in the old run's order."""
    searches = [_searches(run) for run in (old, new)]
    keys = list(dict.fromkeys([*searches[0], *searches[1]]))
    labels = _labels(keys)
    return tuple(PeakComparison(labels[k], k, searches[0].get(k), searches[1].get(k)) for k in keys)


def _searches(
    run: Mapping[tuple[Any, ...], Mapping[str, Any]],
) -> dict[tuple[Any, ...], PeakSearch]:
    """The peak searches of one run by config (its key with the rate None): its steps carry
    ``peak_step`` and the bound; the peak's report is marked ``is_peak``."""
    steps: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for key, r in run.items():
        if _step(r):
            steps.setdefault((*key[:_RATE], None, *key[_RATE + 1 :]), []).append(r)
    out = {}
    for config, reports in steps.items():
        peak = next((r for r in reports if r.get("is_peak") is True), None)
        rate = None
        if peak is not None:
            rate = _number(peak.get("peak_rate"), "peak_rate")
            if rate is None:  # the peak's own rate is the one it was run at
                rate = _number(peak.get("arrival_rate"), "arrival_rate")
        else:  # no step marked: the search's result, where its steps carry it
            rates = (_number(r.get("peak_rate"), "peak_rate") for r in reports)
            rate = next((r for r in rates if r is not None), None)
        first = peak or reports[0]
        out[config] = PeakSearch(
            rate=rate,
            bound_ms=_number(first.get("latency_bound_ms"), "latency_bound_ms"),
            percentile=_number(first.get("latency_percentile"), "latency_percentile"),
            requests_per_dollar=None
            if peak is None
            else _number(peak.get("requests_per_dollar"), "requests_per_dollar"),
            stopped=next((str(r["peak_stopped"]) for r in reports if r.get("peak_stopped")), None),
        )
    return out


def _unmatched(
    these: Mapping[tuple[Any, ...], Mapping[str, Any]],
    others: Mapping[tuple[Any, ...], Mapping[str, Any]],
    labels: Mapping[tuple[Any, ...], str],
) -> tuple[UnmatchedConfig, ...]:
    return tuple(
        UnmatchedConfig(
            label=labels[k],
            key=k,
            status=_text(r.get("status")),
            model_name=_text(r.get("model_name")),
        )
        for k, r in these.items()
        if k not in others
    )


def _changes(
    old: Mapping[str, Any], new: Mapping[str, Any], noise_pct: float
) -> tuple[MetricChange, ...]:
    out = []
    for metric in (*METRICS, *OPEN_LOOP_METRICS):
        o, n = _number(old.get(metric), metric), _number(new.get(metric), metric)
        if o is None or n is None:
            continue
        interval, significant = _interval(old, new, metric, o, n)
        moved = _moved(o, n, noise_pct) if significant is not False else 0
        if metric not in _HIGHER_IS_BETTER:
            moved = -moved
        verdict: Verdict = "better" if moved > 0 else "worse" if moved < 0 else "within noise"
        ratio = n / o if o != 0 else None
        out.append(MetricChange(metric, o, n, ratio, verdict, interval, significant))
    return tuple(out)


def _interval(
    old: Mapping[str, Any], new: Mapping[str, Any], metric: str, o: float, n: float
) -> tuple[tuple[float, float] | None, bool | None]:
    """The 95 % interval of the change in percent, and whether it excludes 0."""
    from neuronperf_core import uncertainty
    from neuronperf_core.histogram import HistogramError

    if o <= 0 or n <= 0:
        return None, None
    key = _WINDOW_KEYS.get(metric, metric)
    old_windows, new_windows = (_windows(r).get(key) for r in (old, new))
    try:
        half = uncertainty.log_change_halfwidth(
            old_windows,
            new_windows,
            old.get("latency_histogram"),
            new.get("latency_histogram"),
            _QUANTILES.get(metric),
        )
    except HistogramError as exc:
        raise CompareError(
            f"a report's latency_histogram cannot be read ({exc}); compare results files "
            "as benchmark() writes them."
        ) from None
    if half is None:
        return None, None
    d = math.log(n / o)
    interval = ((math.exp(d - half) - 1) * 100, (math.exp(d + half) - 1) * 100)
    return interval, abs(d) > half


def _windows(report: Mapping[str, Any]) -> Mapping[str, Any]:
    windows = report.get("windows")
    return windows if isinstance(windows, Mapping) else {}


def _moved(old: float, new: float, pct: float) -> int:
    """+1 if ``new`` is more than ``pct`` percent above ``old``, -1 if more than ``pct``
    percent below, else 0. Exactly ``pct`` is not more (a float tolerance keeps 5.0 -> 5.25
    at 5% inside)."""
    if old == 0:  # no ratio: any change is beyond any band
        return (new > old) - (new < old)
    change = abs(new / old - 1) * 100
    if change <= pct or math.isclose(change, pct, rel_tol=1e-9, abs_tol=1e-12):
        return 0
    return 1 if new > old else -1


def _number(value: Any, metric: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CompareError(
            f"{metric} is {value!r}, expected a number or None. Compare reports as "
            "benchmark() returns them or as loaded from their JSON file (CSV files hold text)."
        )
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------- formatting


def format_comparison(comparison: Comparison, width: int | None = None) -> str:
    """A table (``neuronperf_core.tables``, at most ``width`` characters wide where it can
    shrink that far; None: its natural width), one row per config found in both runs, then
    the configs found in one run only. Ratios are new / old ("1.23x"); verdicts are words;
    a config that did not finish in both runs shows its statuses in the first verdict
    column. Open loop: one row per config and arrival rate, with the achieved rate and the
    p50 and p99 latencies old -> new, then each config's peak rate where a run searched
    one."""
    from neuronperf_core.tables import render

    open_loop = any(
        key[_RATE] is not None
        for key in (
            *(r.key for r in comparison.rows),
            *(u.key for u in (*comparison.only_old, *comparison.only_new)),
        )
    )
    columns, rows = (_open_loop_table if open_loop else _closed_loop_table)(comparison)
    out = [
        f"ratios new/old; within noise: a change of at most {comparison.noise_pct:g}%, or "
        "one not significant at 95%"
    ]
    if open_loop:
        out.append(
            "open loop: one row per config and arrival rate; latency counts from each "
            "request's arrival, its queueing included"
        )
    models = _model_names(comparison)
    if models:
        out.append(models)
    out.append(render(columns, rows, width=width).rstrip("\n"))
    if not comparison.rows:
        out.append("(no config found in both runs)")
    for name, unmatched in (("old", comparison.only_old), ("new", comparison.only_new)):
        out += [f"only in {name}: {u.label} ({u.status})" for u in unmatched]
    if comparison.peaks:
        out.append("largest rate within the latency bound, old -> new:")
        out += [f"  {peak.describe()}" for peak in comparison.peaks]
    return "\n".join(out) + "\n"


def _closed_loop_table(comparison: Comparison) -> tuple[list[Column], list[list[str]]]:
    from neuronperf_core.tables import Column

    columns = [
        Column("config"),
        Column("old tput/s", numeric=True),
        Column("new tput/s", numeric=True),
    ]
    for name in ("tput", "p50", "p99"):
        columns += [Column(name, numeric=True), Column("verdict")]
    rows: list[list[str]] = []
    for row in comparison.rows:
        if not row.finished:
            rows.append([row.label, "", "", "", row.status, *[""] * (len(columns) - 5)])
            continue
        throughput = row.change("throughput_avg")
        cells = [
            row.label,
            _value(throughput.old if throughput else None),
            _value(throughput.new if throughput else None),
        ]
        for metric in ("throughput_avg", "latency_ms_p50", "latency_ms_p99"):
            change = row.change(metric)
            cells += [_ratio(change), change.verdict if change else "N/A"]
        rows.append(cells)
    return columns, rows


# the open-loop table's metrics: (header of old -> new, header of the ratio, report field)
_OPEN_LOOP_COLUMNS = (
    ("achieved/s", "achieved", "achieved_rate"),
    ("p50 ms", "p50", "latency_ms_p50"),
    ("p99 ms", "p99", "latency_ms_p99"),
)


def _open_loop_table(comparison: Comparison) -> tuple[list[Column], list[list[str]]]:
    """The config and its arrival rate, then per metric old -> new, the ratio, the verdict."""
    from neuronperf_core.tables import Column

    columns = [Column("config"), Column("rate/s", numeric=True)]
    for both, ratio, _ in _OPEN_LOOP_COLUMNS:
        columns += [Column(both, numeric=True), Column(ratio, numeric=True), Column("verdict")]
    rows: list[list[str]] = []
    for row in comparison.rows:
        rate = row.key[_RATE]
        config = row.label if rate is None else row.label.rpartition(" @ ")[0]
        cells = [config, "closed loop" if rate is None else rate_text(rate)]
        if not row.finished:
            rows.append([*cells, "", "", row.status, *[""] * (len(columns) - 5)])
            continue
        for _, _, metric in _OPEN_LOOP_COLUMNS:
            change = row.change(metric)
            cells += [
                "N/A" if change is None else f"{_value(change.old)} -> {_value(change.new)}",
                _ratio(change),
                change.verdict if change else "N/A",
            ]
        rows.append(cells)
    return columns, rows


def _model_names(comparison: Comparison) -> str | None:
    """ "old: A, new: B" when each run has one model name, else None."""
    old = {r.old_model_name for r in comparison.rows} | {u.model_name for u in comparison.only_old}
    new = {r.new_model_name for r in comparison.rows} | {u.model_name for u in comparison.only_new}
    if len(old) == 1 == len(new) and None not in old | new:
        return f"old: {old.pop()}, new: {new.pop()}"
    return None


def _value(value: float | None) -> str:
    if value is None:
        return "N/A"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


def _ratio(change: MetricChange | None) -> str:
    if change is None or change.ratio is None:
        return "N/A"
    return f"{change.ratio:.2f}x"

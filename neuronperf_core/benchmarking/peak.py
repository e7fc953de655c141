"""The peak search: the largest arrival rate whose latency percentile stays within a bound.

``search`` is the algorithm alone, over a callback ``measure(rate, scale) -> report``, so
tests drive it with a fake model: from a start rate it brackets (doubling the rate while
steps meet the bound, halving it while they miss) until one rate meets and a higher one
misses, then bisects until the bracket's width is within ``tolerance`` of its low end. The
peak is the highest rate that met the bound. Without a start rate, a closed-loop probe of
the same config says what the copies serve flat out, and the search starts at half that.

The sweep (``benchmarking.sweep``) gives it a measure that runs each step as an ordinary
config: every step is a report in the results file, written as it finishes, marked with
``PEAK_FIELDS``.

A step misses the bound when its copies fell behind (more than ``uncertainty.LATE_SHARE``
of the requests offered were still queued when the window closed: an open loop whose queue
grows has no steady percentile, and its report is invalid for it, which no longer run
would mend), or when its latency percentile is above the bound. It meets the bound when its report
is valid by ``uncertainty.verdict`` and its percentile is within the bound. An invalid step
that did not fall behind runs again once, for twice the duration. Invalid again, it misses
when its percentile is above the bound a second time (what a load at the edge of what the
copies serve looks like: a queue that comes and goes, latency that wanders, never stable);
within the bound, it cannot be judged, and the search stops there and says why. So the peak
is always a rate whose valid step kept within the bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neuronperf_core import uncertainty
from neuronperf_core.benchmarking.plan import BenchmarkArgumentError

if TYPE_CHECKING:
    from neuronperf_core.benchmarking.worker import Job
    from neuronperf_core.options import BenchmarkOptions

Report = Mapping[str, Any]
Measure = Callable[[float | None, float], Report | None]
"""``measure(rate, scale)``: the report of one step at ``rate`` requests per second (None:
the closed-loop probe), run for ``scale`` times the duration; None when nothing ran (the
user stopped the sweep)."""

START_SHARE = 0.5  # the first rate, as a share of what the closed-loop probe served
TOLERANCE = 0.05  # the bracket closes when its width is this share of its low end
MAX_STEPS = 12  # open-loop steps per search, reruns included (the probe besides)
RERUN_SCALE = 2.0  # an invalid step runs again for this many times the duration

MET, MISSED, INVALID, FAILED = "met", "missed", "invalid", "failed"
INTERRUPTED = "interrupted by the user"


# -- the bound ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """A latency bound: ``percentile`` of the latency at most ``latency_ms``."""

    latency_ms: float
    percentile: float = 99.0

    @property
    def field(self) -> str:
        """The report field held to the bound: ``latency_ms_p99``."""
        return f"latency_ms_p{self.percentile:g}"

    @property
    def name(self) -> str:
        return f"p{self.percentile:g}"

    def judge(self, report: Report, rerun: bool = False) -> tuple[str, str]:
        """MET, MISSED, INVALID (run it again) or FAILED (it did not finish), and why.
        ``rerun``: the report is a step's second run, whose first was invalid."""
        status = report.get("status")
        if status != "finished":
            error = report.get("error")
            return FAILED, f"did not finish ({status}{': ' + str(error) if error else ''})"
        value = report.get(self.field)
        if value is None:
            return FAILED, "measured no latency"
        behind = uncertainty.fell_behind(report)
        if behind:  # a growing queue: missed, however long it ran
            return MISSED, f"the copies fell behind: {behind} ({self.name} {value:.4g} ms)"
        if not report.get("valid"):
            reasons = "; ".join(report.get("invalid_reasons") or []) or "no reason given"
            if rerun and value > self.latency_ms:  # twice above the bound: not shown to hold
                return MISSED, (
                    f"{self.name} {value:.4g} ms > {self.latency_ms:g} ms, in a run invalid "
                    f"again ({reasons})"
                )
            return INVALID, f"invalid: {reasons}"
        if value > self.latency_ms:
            return MISSED, f"{self.name} {value:.4g} ms > {self.latency_ms:g} ms"
        return MET, f"{self.name} {value:.4g} ms <= {self.latency_ms:g} ms"

    def within(self, report: Report) -> bool | None:
        """``within_bound``: whether the report shows the bound held (None: it measured
        nothing to judge). An invalid report does not show it: False."""
        outcome, _ = self.judge(report)
        return None if outcome == FAILED else outcome == MET


# -- the search ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One measured step: its number (0: the closed-loop probe), its rate (None: the
    probe), its report and its judgement."""

    number: int
    rate: float | None
    report: Report
    outcome: str
    why: str
    rerun: bool = False  # the second run of a step whose first was invalid

    @property
    def met(self) -> bool:
        return self.outcome == MET


@dataclass
class Peak:
    """What a search found: the highest rate that met the bound (``rate``), the lowest
    that missed (``missed``), every step, and why it stopped early (None: the bracket
    closed within the tolerance)."""

    bound: Bound
    steps: list[Step] = field(default_factory=list)
    rate: float | None = None
    missed: float | None = None
    stopped: str | None = None

    @property
    def peak_step(self) -> Step | None:
        """The step that found the peak (the last to meet the bound at ``rate``)."""
        met = [s for s in self.steps if s.met and s.rate is not None and s.rate == self.rate]
        return met[-1] if met else None


def served_rate(report: Report) -> float | None:
    """Calls per second a report's copies completed (throughput counts records)."""
    throughput = report.get("throughput_avg")
    if not throughput:
        return None
    return float(throughput) / int(report.get("batch_size") or 1)


def search(
    measure: Measure,
    bound: Bound,
    *,
    start: float | None = None,
    tolerance: float = TOLERANCE,
    max_steps: int = MAX_STEPS,
    on_step: Callable[[Step], None] | None = None,
) -> Peak:
    """Bracket, then bisect, for the largest rate within ``bound`` (see the module's doc).
    ``start``: the first rate (None: half of what a closed-loop probe serves).
    ``on_step`` hears of each step as it is judged."""
    peak = Peak(bound)
    count = 0  # open-loop steps run

    def run(rate: float | None, scale: float = 1.0) -> Step | None:
        nonlocal count
        report = measure(rate, scale)
        if report is None:
            return None
        if rate is not None:
            count += 1
        rerun = scale != 1.0
        outcome, why = bound.judge(report, rerun=rerun)
        step = Step(count if rate is not None else 0, rate, report, outcome, why, rerun)
        peak.steps.append(step)
        if on_step is not None:
            on_step(step)
        return step

    if start is None:
        probe = run(None)
        if probe is None:
            return _stop(peak, INTERRUPTED)
        served = served_rate(probe.report) if probe.report.get("status") == "finished" else None
        if served is None:
            return _stop(peak, f"the closed-loop probe served nothing: it {probe.why}")
        start = START_SHARE * served
    rate = start
    while True:
        if count >= max_steps:
            return _stop(peak, _cap(peak, max_steps, tolerance))
        step = run(rate)
        if step is not None and step.outcome == INVALID:
            if count >= max_steps:
                return _stop(peak, _cap(peak, max_steps, tolerance))
            step = run(rate, RERUN_SCALE)
            if step is not None and step.outcome == INVALID:
                hint = ""
                tolerance_pct = float(step.report.get("stability_pct") or 10)
                if "not stable" in step.why and tolerance_pct < 50:
                    wider = min(2 * tolerance_pct, 50)
                    hint = (
                        ". Where the model's latency varies this much from window to window, "
                        f"a wider tolerance (stability_pct={wider:g}, say) lets steps be judged"
                    )
                return _stop(
                    peak,
                    f"the step at {per_s(rate)}/s was {step.why}; again when run for "
                    f"{RERUN_SCALE:g}x the duration{hint}",
                )
        if step is None:
            return _stop(peak, INTERRUPTED)
        if step.outcome == FAILED:
            return _stop(peak, f"the step at {per_s(rate)}/s {step.why}")
        if step.met:
            peak.rate = rate if peak.rate is None else max(peak.rate, rate)
        else:
            peak.missed = rate if peak.missed is None else min(peak.missed, rate)
        if peak.rate is None:
            rate = peak.missed / 2  # type: ignore[operator]  # one of the two is set
        elif peak.missed is None:
            rate = peak.rate * 2
        elif peak.missed - peak.rate <= tolerance * peak.rate:
            return peak
        else:
            rate = (peak.rate + peak.missed) / 2


def per_s(rate: float) -> str:
    """A rate as people read it: 8,455 (no exponent) from 1000 up, else 4 digits (12.5)."""
    return f"{rate:,.0f}" if rate >= 1000 else f"{rate:.4g}"


def _stop(peak: Peak, why: str) -> Peak:
    peak.stopped = why
    return peak


def _cap(peak: Peak, max_steps: int, tolerance: float) -> str:
    where = "no rate met the bound"
    if peak.rate is not None:
        above = "no rate above it missed"
        if peak.missed is not None:
            above = f"{per_s(peak.missed)}/s missed"
        where = f"{per_s(peak.rate)}/s met the bound and {above}"
    return (
        f"the step cap ({max_steps}) was reached before the bracket closed to "
        f"{tolerance:.0%}: {where}"
    )


# -- the options --------------------------------------------------------------------------


def searching(options: BenchmarkOptions) -> bool:
    """Whether the run is a peak search: ``find_peak``, or by default a bound given."""
    if options.find_peak is not None:
        return options.find_peak
    return options.latency_bound_ms is not None


def bound_of(options: BenchmarkOptions) -> Bound | None:
    if options.latency_bound_ms is None:
        return None
    return Bound(options.latency_bound_ms, options.latency_percentile)


def check(options: BenchmarkOptions, evaluating: bool = False) -> None:
    """Refuse a bound or search the run cannot honour, before anything loads."""
    from neuronperf_core import uncertainty

    if options.find_peak and options.latency_bound_ms is None:
        raise BenchmarkArgumentError(
            "a peak search looks for the largest arrival rate whose latency stays within a "
            "bound: pass the bound, in milliseconds, e.g. latency_bound_ms=20."
        )
    if evaluating:
        if options.latency_bound_ms is not None or options.find_peak:
            raise BenchmarkArgumentError(
                "an evaluation scores every record once: latency_bound_ms and find_peak apply "
                "to benchmark only. Leave them out of evaluate."
            )
        return
    if not searching(options):
        return
    if options.arrival_rate is not None and len(options.arrival_rate) > 1:
        raise BenchmarkArgumentError(
            f"a peak search chooses its rates itself, and arrival_rate={options.arrival_rate} "
            "names several: pass one, the rate it starts from, or none (it starts from half "
            "of what a closed loop serves). Without a search, a list of rates is swept and "
            "each report says whether it kept within the bound."
        )
    if options.max_infers is not None:
        raise BenchmarkArgumentError(
            f"a peak search runs each step for duration seconds; max_infers={options.max_infers} "
            "would end steps early, too short to be valid: leave it out."
        )
    least = uncertainty.MIN_VALID_DURATION_S
    if options.duration < least:
        raise BenchmarkArgumentError(
            f"a peak search counts only valid steps, and a run shorter than {least:g} s is "
            f"never valid: duration={options.duration:g} would make every step invalid. "
            f"Pass duration={least:g} or more (each step runs that long)."
        )


def planned(options: BenchmarkOptions) -> BenchmarkOptions:
    """The options the sweep's jobs are planned from: a search plans one job per config (at
    the start rate, or a stand-in until the probe has measured one; each step sets its own)."""
    if not searching(options):
        return options
    return options.replace(arrival_rate=(options.arrival_rate or [1.0])[:1])


def step_job(job: Job, rate: float | None, scale: float = 1.0) -> Job:
    """``job`` at ``rate`` requests per second for ``scale`` times its duration; at None,
    the closed-loop probe (no arrivals: each worker sends its next call when the last
    returns)."""
    config = job.config
    if rate is None:
        probe = dataclasses.replace(config, arrival_rate=None, arrivals="poisson")
        return dataclasses.replace(job, config=probe, trace_ns=None)
    at = dataclasses.replace(config, arrival_rate=rate, duration=config.duration * scale)
    return dataclasses.replace(job, config=at)


# -- the reports --------------------------------------------------------------------------


def step_fields(step: Step, bound: Bound) -> dict[str, Any]:
    """The fields a step's report gets as soon as it is judged."""
    return {
        **bound_fields(step.report, bound),
        "peak_step": step.number,
    }


def bound_fields(report: Report, bound: Bound) -> dict[str, Any]:
    """A report's bound and whether it held (also for runs given a bound and no search)."""
    return {
        "latency_bound_ms": bound.latency_ms,
        "latency_percentile": bound.percentile,
        "within_bound": bound.within(report),
    }


def result_fields(peak: Peak, step: Step, cost_per_hour: float | None) -> dict[str, Any]:
    """The fields every step's report gets once its search has ended."""
    is_peak = step is peak.peak_step
    per_dollar = None
    if is_peak and peak.rate is not None and cost_per_hour:
        per_dollar = peak.rate * 3600 / cost_per_hour
    return {
        "peak_rate": peak.rate,
        "is_peak": is_peak,
        "peak_stopped": peak.stopped,
        "requests_per_dollar": per_dollar,
    }


def searches(reports: Iterable[Report]) -> list[list[Report]]:
    """The reports of each search, in order (a search's steps are consecutive, from its
    probe or first step); reports of no search are left out."""
    groups: list[list[Report]] = []
    last: int | None = None
    for report in reports:
        number = report.get("peak_step")
        if number is None:
            last = None
            continue
        if last is None or number <= last:
            groups.append([])
        groups[-1].append(report)
        last = number
    return groups


def step_line(step: Step, bound: Bound, label: str) -> str:
    """One line of progress per step."""
    if step.rate is None:
        served = served_rate(step.report)
        if served is None:
            return f"peak search ({label}), closed-loop probe: {step.why}"
        return (
            f"peak search ({label}), closed-loop probe: the copies served {per_s(served)} calls/s "
            f"flat out; the search starts at {per_s(START_SHARE * served)}/s"
        )
    verdict = {MET: "within the bound", MISSED: "missed", INVALID: "invalid", FAILED: "failed"}
    again = f", again for {RERUN_SCALE:g}x the duration" if step.rerun else ""
    text = f"peak search ({label}), step {step.number} at {per_s(step.rate)}/s{again}: "
    if step.outcome == INVALID:
        return text + step.why
    return text + f"{verdict[step.outcome]}: {step.why}"


def peak_line(reports: Sequence[Report]) -> str:
    """The peak of one search's reports, in a line (and why it stopped early, if it did)."""
    from neuronperf_core.report_fields import config_label

    first = reports[0]
    name = f"p{first['latency_percentile']:g}"
    bound = f"{name} <= {first['latency_bound_ms']:g} ms"
    label = config_label(first)
    top = next((r for r in reports if r.get("is_peak")), None)
    if top is None:
        text = f"no peak ({label}): no step showed {bound}"
    else:
        value = top[f"latency_ms_{name}"]
        text = (
            f"peak ({label}): {per_s(top['peak_rate'])} requests/s, {name} {value:.4g} ms "
            f"(bound {first['latency_bound_ms']:g} ms)"
        )
        if top.get("requests_per_dollar") is not None:
            text += f"; {top['requests_per_dollar']:,.0f} requests per dollar"
    stopped = first.get("peak_stopped")
    if stopped:
        text += f". The search stopped early: {stopped}"
    return text

"""How far each figure of a report can be trusted: intervals, sub-windows, stability,
dispersion and a validity verdict. One place, for every backend and runner: reporting
calls ``summarise`` on the pooled samples of a config and ``verdict`` on the report.

Intervals (95 %):

- A latency percentile: distribution-free, from order statistics. The number of samples
  below the true q-quantile is Binomial(n, q), so the chance that the k-th and m-th
  smallest samples bracket it is known exactly, whatever the distribution. The
  equal-tailed ranks (for p99 at n = 1,000 the 983rd and 997th, as
  ``scipy.stats.quantile_test`` gives) cover more than 95 % (97.6 % there); the ranks
  used are the nearby pair of least coverage still >= 95 % (983rd and 996th: 95.75 %),
  each tail at most ``MAX_TAIL`` (``interval_ranks``). Too few samples for a bound (p99
  needs 368): the interval is None and ``*_ci_reason`` says why. The minimum and maximum
  (p0, p100) have no such interval.
- Throughput: batch means. The timed window is cut into sub-windows of ``window_s``
  seconds; the per-window rates give a Student t half-width, centred on
  ``throughput_avg``. Needs ``MIN_WINDOWS_FOR_CI`` full windows.

Sub-windows: ``window_s`` per window (default: a tenth of the run, between
``MIN_DEFAULT_WINDOW_S`` and ``MAX_DEFAULT_WINDOW_S``), measured from the first
inference; a last, partial window is left out. A config is stable when the last
``STABLE_WINDOWS`` windows agree within the tolerance (max / min - 1, default 10 %) on
throughput and p50, as Triton's perf_analyzer judges it.

The samples are the ones workers kept (every ``stride``-th inference past
``max_samples``): intervals count kept samples, the conservative choice.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

CONFIDENCE: Final = 0.95
Z95: Final = 1.959963984540054  # the standard normal's 97.5 % point
MIN_WINDOWS_FOR_CI: Final = 5
MAX_DEFAULT_WINDOW_S: Final = 5.0  # perf_analyzer's default window
MIN_DEFAULT_WINDOW_S: Final = 0.1  # shorter runs get fewer windows (none under 0.1 s)
DEFAULT_WINDOWS: Final = 10  # a run of unset window_s is cut into this many windows
STABLE_WINDOWS: Final = 3
DEFAULT_TOLERANCE: Final = 0.10
MIN_VALID_DURATION_S: Final = 10.0  # MLPerf LoadGen's default min_duration
NOISY_IQR: Final = 0.10  # torch.utils.benchmark's thresholds on IQR / median
VERY_NOISY_IQR: Final = 0.25
TAIL_RATIO: Final = 2.0  # p99 above twice p50: a long tail (stalls, contention, other jobs)
BUSY_SHARE: Final = 0.10  # others used over 10 % of the machine's CPU time: busy_machine
LATE_SHARE: Final = 0.01  # an open loop that left more of its arrivals queued fell behind
WINDOW_PERCENTILES: Final = (50, 90, 95, 99)  # per-window latencies kept in reports
INTERVAL_PERCENTILES: Final = (50, 90, 95, 99)  # the percentiles whose intervals must exist
MAX_TAIL: Final = 0.04  # a percentile interval misses on either side with at most this chance
NEAR: Final = 3  # how many ranks from the equal-tailed ones the search for a shorter pair goes

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# ---------------------------------------------------------------- special functions


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(B <= k) for B ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return betainc(n - k, k + 1, 1.0 - p)


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` point (0.5 < p < 1) of Student's t with ``df`` degrees of freedom."""

    def upper_tail(t: float) -> float:  # P(T > t), t >= 0
        return 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))

    low, high = 0.0, 1.0
    while upper_tail(high) > 1.0 - p:
        high *= 2.0
    for _ in range(100):
        mid = (low + high) / 2.0
        low, high = (mid, high) if upper_tail(mid) > 1.0 - p else (low, mid)
    return (low + high) / 2.0


# ---------------------------------------------------------------- percentile intervals


@dataclass(frozen=True)
class Ranks:
    """The interval of a percentile among n sorted samples: from the ``low``-th to the
    ``high``-th smallest (1-based), which holds the true percentile with probability
    ``coverage`` whatever the (continuous) distribution."""

    low: int
    high: int
    coverage: float


def interval_ranks(n: int, q: float) -> Ranks | str:
    """The order statistics that bound the 95 % interval of the q-quantile (0 < q < 1) of
    n samples, or why there are none.

    The equal-tailed ranks (each tail at most 2.5 %) cover more than 95 %, by up to a few
    points where n is small for q (97.6 % for p99 at n = 1,000). Of the rank pairs near
    them, the one of least coverage still >= 95 % is taken, each tail at most
    ``MAX_TAIL``: for p99 at n = 1,000 the 983rd to the 996th (95.75 %), not the 997th."""
    if not 0.0 < q < 1.0:
        return "the minimum and maximum have no distribution-free interval"
    alpha = (1.0 - CONFIDENCE) / 2.0
    needed = math.ceil(math.log(alpha) / math.log(max(q, 1.0 - q)))
    if n < max(needed, 2):
        return f"needs at least {needed} samples for a 95% interval; has {n}"
    low = max(1, _first_rank_above(n, q, alpha))  # F(low - 1) <= alpha < F(low)
    # F(high - 2) < 1 - alpha <= F(high - 1)
    high = min(n, _first_rank_above(n, q, 1.0 - alpha - 1e-15) + 1)
    cdf: dict[int, float] = {}

    def f(k: int) -> float:  # P(B <= k), B the number of samples below the true quantile
        if k not in cdf:
            cdf[k] = binom_cdf(k, n, q)
        return cdf[k]

    best = Ranks(low, high, f(high - 1) - f(low - 1))
    for lo in range(max(1, low - NEAR), min(n, low + NEAR) + 1):
        for hi in range(max(lo + 1, high - NEAR), min(n, high + NEAR) + 1):
            below, above = f(lo - 1), 1.0 - f(hi - 1)  # the two ways to miss
            coverage = 1.0 - below - above
            if (
                below <= MAX_TAIL
                and above <= MAX_TAIL
                and CONFIDENCE <= coverage < best.coverage - 1e-12
            ):
                best = Ranks(lo, hi, coverage)
    return best


def _first_rank_above(n: int, q: float, level: float) -> int:
    """The smallest k in 0..n with P(B <= k) > level."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if binom_cdf(mid, n, q) > level:
            hi = mid
        else:
            lo = mid + 1
    return lo


def percentile_intervals(
    values: FloatArray | IntArray, percentiles: Sequence[float]
) -> dict[float, tuple[float, float] | str]:
    """The 95 % interval of each percentile (0..100) of ``values``, or why there is none."""
    n = int(values.size)
    ranks = {p: interval_ranks(n, p / 100.0) for p in percentiles}
    wanted = sorted(
        {r - 1 for x in ranks.values() if isinstance(x, Ranks) for r in (x.low, x.high)}
    )
    ordered = np.partition(values, wanted) if wanted else values
    return {
        p: (float(ordered[r.low - 1]), float(ordered[r.high - 1])) if isinstance(r, Ranks) else r
        for p, r in ranks.items()
    }


def mean_halfwidth(values: Sequence[float]) -> float | str:
    """The 95 % Student t half-width of the mean of ``values`` (batch means), or why none."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if data.size < MIN_WINDOWS_FOR_CI:
        need = MIN_WINDOWS_FOR_CI
        return f"needs at least {need} full windows for a 95% interval; has {data.size}"
    sd = float(data.std(ddof=1))
    return t_quantile(0.5 + CONFIDENCE / 2.0, data.size - 1) * sd / math.sqrt(data.size)


# ---------------------------------------------------------------- sub-windows and stability


def window_length_s(setting: float | None, run_s: float) -> float | None:
    """Seconds per sub-window: the setting, else a tenth of the run, at most 5 s and at
    least 0.1 s (a run under 0.1 s has no window)."""
    if setting:
        return float(setting)
    if run_s <= 0:
        return None
    return max(MIN_DEFAULT_WINDOW_S, min(MAX_DEFAULT_WINDOW_S, run_s / DEFAULT_WINDOWS))


@dataclass(frozen=True)
class Windows:
    """Per full sub-window: throughput and latency percentiles (ms; None when empty)."""

    window_s: float
    throughput: list[float]
    latency_ms: dict[int, list[float | None]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "throughput": self.throughput,
            **{f"latency_ms_p{p}": v for p, v in self.latency_ms.items()},
        }


def windows(
    end_ns: IntArray,
    latency_ns: IntArray,
    weights: IntArray,
    first_ns: int,
    last_ns: int,
    window_s: float,
    batch_size: int,
) -> Windows:
    """The full sub-windows of ``window_s`` from ``first_ns``; a sample belongs to the
    window its inference ended in."""
    width = int(window_s * 1e9)
    count = (last_ns - first_ns) // width if width > 0 else 0
    order = np.argsort(end_ns, kind="stable")
    ends, lats, wts = end_ns[order], latency_ns[order], weights[order]
    edges = first_ns + width * np.arange(count + 1, dtype=np.int64)
    cut = np.searchsorted(ends, edges, side="left")
    throughput: list[float] = []
    latency: dict[int, list[float | None]] = {p: [] for p in WINDOW_PERCENTILES}
    for k in range(count):
        lo, hi = int(cut[k]), int(cut[k + 1])
        throughput.append(float(wts[lo:hi].sum()) * batch_size / window_s)
        if hi > lo:
            values = np.percentile(lats[lo:hi], list(WINDOW_PERCENTILES)) / 1e6
            for p, v in zip(WINDOW_PERCENTILES, values, strict=True):
                latency[p].append(float(v))
        else:
            for p in WINDOW_PERCENTILES:
                latency[p].append(None)
    return Windows(window_s, throughput, latency)


def spread(values: Sequence[float | None]) -> float | None:
    """max / min - 1 of ``values`` (None when any is missing or not positive)."""
    if not values or any(v is None or not v > 0 for v in values):
        return None
    numbers = [float(v) for v in values if v is not None]
    return max(numbers) / min(numbers) - 1.0


def stability(w: Windows, tolerance: float, open_loop: bool = False) -> tuple[bool | None, str]:
    """Whether the last ``STABLE_WINDOWS`` windows agree within ``tolerance`` on throughput
    and p50, and how far apart they are. In an open loop on p50 alone: its throughput is
    what the arrivals bring (a Poisson count spreads 10 % at 100 a window), not the
    model's; whether the copies kept up is ``late_at_end``'s (``verdict``)."""
    n = len(w.throughput)
    if n < STABLE_WINDOWS:
        return None, f"needs {STABLE_WINDOWS} windows to judge stability; has {n}"
    last = slice(n - STABLE_WINDOWS, n)
    tput, p50 = spread(w.throughput[last]), spread(w.latency_ms[50][last])
    if tput is None or p50 is None:
        return False, f"a window of the last {STABLE_WINDOWS} completed no inference"
    within = f"last {STABLE_WINDOWS} of {n} windows of {w.window_s:.3g} s within"
    if open_loop:
        return p50 <= tolerance, f"{within} {p50:.1%} (p50); tolerance {tolerance:.0%}"
    detail = f"{within} {tput:.1%} (throughput) and {p50:.1%} (p50); tolerance {tolerance:.0%}"
    return (tput <= tolerance and p50 <= tolerance), detail


def first_window_differs(w: Windows, tolerance: float, open_loop: bool = False) -> bool | None:
    """Whether the first window's throughput (not in an open loop) or p50 differs from the
    median of the others by more than ``tolerance`` (a warm-up too short, say); None with
    fewer than 3 windows."""
    if len(w.throughput) < 3:
        return None
    for series in ([] if open_loop else [w.throughput]) + [w.latency_ms[50]]:
        first, rest = series[0], [v for v in series[1:] if v is not None]
        if first is None or not rest:
            return True
        middle = float(np.median(rest))
        if middle > 0 and abs(first / middle - 1.0) > tolerance:
            return True
    return False


# ---------------------------------------------------------------- a config's report fields


def interval_fields() -> tuple[str, ...]:
    """The interval fields of every report, in order (see ``summarise``)."""
    from neuronperf_core.report_fields import PERCENTILES

    out = ["throughput_avg_ci", "throughput_avg_ci_reason"]
    for p in PERCENTILES:
        out += [f"latency_ms_p{p}_ci", f"latency_ms_p{p}_ci_reason"]
    return tuple(out)


SUMMARY_FIELDS: Final = (
    *interval_fields(),
    "latency_iqr_over_median",
    "latency_p99_over_p50",
    "window_s",
    "n_windows",
    "stable",
    "stability",
    "first_window_differs",
    "windows",
    "latency_histogram",
)
"""The fields ``summarise`` fills."""


def summarise(
    latency_ns: IntArray,
    end_ns: IntArray,
    weights: IntArray,
    window_ns: Sequence[int] | None,
    batch_size: int,
    throughput_avg: float | None,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """Intervals, dispersion and sub-windows of one config's pooled samples."""
    from neuronperf_core.histogram import LatencyHistogram
    from neuronperf_core.report_fields import PERCENTILES

    out: dict[str, Any] = dict.fromkeys(SUMMARY_FIELDS)
    for p in PERCENTILES:
        out[f"latency_ms_p{p}_ci_reason"] = "no latency samples"
    out["throughput_avg_ci_reason"] = "no throughput measured"
    if latency_ns.size:
        for q, ci in percentile_intervals(latency_ns, PERCENTILES).items():
            _put_interval(out, f"latency_ms_p{int(q)}", ci, scale=1e-6)
        q25, q50, q75, q99 = np.percentile(latency_ns, [25, 50, 75, 99])
        if q50 > 0:
            out["latency_iqr_over_median"] = float((q75 - q25) / q50)
            out["latency_p99_over_p50"] = float(q99 / q50)
        out["latency_histogram"] = LatencyHistogram.of(latency_ns).to_dict()
    if window_ns is None or not latency_ns.size:
        return out
    first, last = int(window_ns[0]), int(window_ns[1])
    length = window_length_s(config.get("window_s"), (last - first) / 1e9)
    if length is None:
        return out
    w = windows(end_ns, latency_ns, weights, first, last, length, batch_size)
    tolerance = float(config.get("stability_pct") or 100 * DEFAULT_TOLERANCE) / 100
    out["window_s"] = length
    out["n_windows"] = len(w.throughput)
    open_loop = bool(config.get("open_loop"))
    out["stable"], out["stability"] = stability(w, tolerance, open_loop)
    out["first_window_differs"] = first_window_differs(w, tolerance, open_loop)
    out["windows"] = w.to_dict()
    if throughput_avg is not None:
        half = mean_halfwidth(w.throughput)
        if isinstance(half, str):
            out["throughput_avg_ci_reason"] = half
        else:
            _put_interval(out, "throughput_avg", (throughput_avg - half, throughput_avg + half))
    return out


def _put_interval(
    out: dict[str, Any], field: str, ci: tuple[float, float] | str, scale: float = 1.0
) -> None:
    if isinstance(ci, str):
        out[f"{field}_ci"], out[f"{field}_ci_reason"] = None, ci
    else:
        out[f"{field}_ci"], out[f"{field}_ci_reason"] = [ci[0] * scale, ci[1] * scale], None


def plus_minus(report: Mapping[str, Any], field: str) -> float | None:
    """The larger distance from ``report[field]`` to a bound of its interval
    (``field + "_ci"``), for display as "value +/- h"; None without an interval."""
    value, ci = report.get(field), report.get(f"{field}_ci")
    if not isinstance(value, int | float) or not isinstance(ci, list | tuple) or len(ci) != 2:
        return None
    return max(float(value) - float(ci[0]), float(ci[1]) - float(value), 0.0)


# ---------------------------------------------------------------- verdict and warnings


def verdict(report: Mapping[str, Any]) -> tuple[bool, list[str], list[str]]:
    """LoadGen-style: whether the config's result is valid, the reasons it is not, and
    warnings that do not make it invalid (dispersion, a first window that differs)."""
    reasons: list[str] = []
    if report.get("status") != "finished":
        reasons.append(f"the config did not finish ({report.get('status')})")
        return False, reasons, []
    for p in INTERVAL_PERCENTILES:
        why = report.get(f"latency_ms_p{p}_ci_reason")
        if why:
            reasons.append(f"too few samples for p{p}: {why}")
    total_s = report.get("total_s")
    if total_s is None or total_s < MIN_VALID_DURATION_S:
        ran = "nothing" if total_s is None else f"{total_s:.3g} s"
        reasons.append(f"ran {ran}, below the minimum duration of {MIN_VALID_DURATION_S:g} s")
    if report.get("stable") is not True:
        reasons.append(f"not stable: {report.get('stability') or 'no sub-windows'}")
    behind = fell_behind(report)
    if behind:
        reasons.append(
            f"fell behind: {behind}, so latency grew with the run's length: the arrival rate "
            "is above what the config serves"
        )
    if report.get("busy_machine"):
        reasons.append(f"busy machine: {busy_text(report)} (more than {BUSY_SHARE:.0%})")
    return not reasons, reasons, warnings(report)


def busy_text(report: Mapping[str, Any]) -> str:
    """Who used the machine's CPU time during a config: other processes, and on a virtual
    machine the hypervisor, which gave it to other guests (steal: no process here shows it)."""
    share = float(report.get("other_cpu_share") or 0.0)
    other, steal = report.get("other_cpu_s"), report.get("steal_cpu_s")
    stolen = share * steal / other if other and steal else 0.0
    if stolen < 0.005:  # rounds to 0 %
        return f"other processes used {share:.0%} of its CPU time"
    return (
        f"others used {share:.0%} of its CPU time: other processes {share - stolen:.0%}, the "
        f"hypervisor {stolen:.0%} for other virtual machines (steal in /proc/stat)"
    )


def fell_behind(report: Mapping[str, Any]) -> str | None:
    """An open loop whose copies fell behind: more than ``LATE_SHARE`` of the requests that
    arrived were still queued at the end, said as "N of the M requests ..."; else None."""
    late = int(report.get("late_at_end") or 0)
    offered = late + int(report.get("total_infs") or 0)
    if late <= LATE_SHARE * offered:
        return None
    return f"{late} of the {offered} requests that arrived were still queued at the end"


def warnings(report: Mapping[str, Any]) -> list[str]:
    """Dispersion warnings (torch.utils.benchmark's IQR / median thresholds, a long
    tail) and a first window that differs from the others."""
    out = []
    iqr = report.get("latency_iqr_over_median")
    if iqr is not None and iqr > NOISY_IQR:
        level = "very noisy" if iqr > VERY_NOISY_IQR else "noisy"
        bound: float = VERY_NOISY_IQR if iqr > VERY_NOISY_IQR else NOISY_IQR
        out.append(f"{level}: latency IQR / median is {iqr:.2f} (> {bound:.2f})")
    tail = report.get("latency_p99_over_p50")
    if tail is not None and tail > TAIL_RATIO:
        out.append(f"long tail: p99 is {tail:.1f}x p50 (> {TAIL_RATIO:g}x)")
    if report.get("first_window_differs"):
        out.append("the first window differs from the others: warm up longer (warmup_seconds)")
    return out


# ---------------------------------------------------------------- two runs compared


def log_change_halfwidth(
    old_windows: Sequence[Any] | None,
    new_windows: Sequence[Any] | None,
    old_histogram: Mapping[str, Any] | None = None,
    new_histogram: Mapping[str, Any] | None = None,
    q: float | None = None,
) -> float | None:
    """The half-width of the 95 % interval of ln(new / old) for one statistic of two runs,
    or None when neither run pair holds what it takes.

    Two estimates, the larger taken: from the windows (Welch's t on the logs of the
    per-window values: it sees the run's drift and the machine's moods, not only the
    spread of single samples), and, for a latency percentile ``q``, from the two
    histograms (each run's order-statistic interval of ``q``, its bounds at the bucket
    edges, read as +/- 1.96 standard errors of the log and combined as independent)."""
    halves = []
    window = _welch_halfwidth(old_windows, new_windows)
    if window is not None:
        halves.append(window)
    if q is not None and old_histogram is not None and new_histogram is not None:
        errors = [_log_quantile_se(h, q) for h in (old_histogram, new_histogram)]
        if errors[0] is not None and errors[1] is not None:
            halves.append(Z95 * math.hypot(errors[0], errors[1]))
    return max(halves) if halves else None


def _welch_halfwidth(old: Sequence[Any] | None, new: Sequence[Any] | None) -> float | None:
    samples = []
    for values in (old, new):
        logs = [math.log(v) for v in values or () if isinstance(v, int | float) and v > 0]
        if len(logs) < STABLE_WINDOWS:
            return None
        samples.append(np.asarray(logs))
    terms = [float(s.var(ddof=1)) / s.size for s in samples]
    se2 = sum(terms)
    if se2 == 0:
        return 0.0
    df = se2**2 / sum(t**2 / (s.size - 1) for t, s in zip(terms, samples, strict=True))
    return t_quantile(0.5 + CONFIDENCE / 2.0, df) * math.sqrt(se2)


def _log_quantile_se(histogram: Mapping[str, Any], q: float) -> float | None:
    from neuronperf_core.histogram import LatencyHistogram

    h = LatencyHistogram.from_dict(histogram)
    ranks = interval_ranks(h.total, q)
    if isinstance(ranks, str):
        return None
    low, high = h.value_at_rank(ranks.low, "low"), h.value_at_rank(ranks.high, "high")
    return (math.log(high) - math.log(low)) / (2.0 * Z95)

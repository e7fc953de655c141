"""Intervals, sub-windows, the validity verdict, the latency histogram and the run's
metadata: checked against known values and, for coverage, by seeded simulation."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from neuronperf_core import uncertainty as u
from neuronperf_core.benchmarking import stats
from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.histogram import (
    MAX_BUCKETS,
    RELATIVE_ERROR,
    HistogramError,
    LatencyHistogram,
)
from neuronperf_core.reporting import REPORT_FIELDS, get_reports

S = 1_000_000_000
MS = 1_000_000
# Coverage: 4,000 simulated data sets of 1,000 samples each. A 95 % interval then covers
# 95 % +/- 0.34 % (one standard deviation) of them, so 93-97 % is a test that cannot pass
# by luck with a wrong interval and fails a right one less than once in 5,000 runs.
TRIALS = 4000
SAMPLES = 1000


# ---------------------------------------------------------------- special functions


def test_binomial_cdf_and_t_quantiles_match_tabulated_values() -> None:
    # P(B <= 982) for Binomial(1000, 0.99), and Student t's 97.5 % points (any table)
    assert u.binom_cdf(982, 1000, 0.99) == pytest.approx(0.0138325817, rel=1e-8)
    assert u.binom_cdf(-1, 10, 0.5) == 0.0 and u.binom_cdf(10, 10, 0.5) == 1.0
    assert u.binom_cdf(5, 10, 0.5) == pytest.approx(638 / 1024)
    for df, t in ((1, 12.7062), (4, 2.7764), (9, 2.2622), (30, 2.0423), (1000, 1.9623)):
        assert u.t_quantile(0.975, df) == pytest.approx(t, abs=1e-4)


# ---------------------------------------------------------------- percentile intervals


@pytest.mark.parametrize(
    ("n", "q", "low", "high", "coverage"),
    [
        # scipy.stats.quantile_test's equal-tailed ranks are 983..997 (97.6 %): one rank
        # less at the top still covers 95 %
        (1000, 0.99, 983, 996, 0.95748),
        (10_000, 0.99, 9881, 9920, 0.95027),  # scipy: 9880..9920
        (1000, 0.5, 469, 531, 0.95002),
        (6, 0.5, 1, 6, 1 - 2 / 64),  # the smallest sample size with a median interval
    ],
)
def test_percentile_intervals_are_the_shortest_order_statistics_covering_95_percent(
    n: int, q: float, low: int, high: int, coverage: float
) -> None:
    ranks = u.interval_ranks(n, q)
    assert ranks == u.Ranks(low, high, pytest.approx(coverage, abs=1e-5))
    # the exact coverage, from the binomial: the true quantile has B ~ Bin(n, q) below it
    assert u.binom_cdf(high - 1, n, q) - u.binom_cdf(low - 1, n, q) == pytest.approx(
        coverage, abs=1e-5
    )
    values = np.arange(1, n + 1, dtype=np.float64)[::-1].copy()  # the k-th smallest is k
    assert u.percentile_intervals(values, [q * 100])[q * 100] == (low, high)


def test_too_few_samples_give_no_interval_and_say_why() -> None:
    values = np.arange(367, dtype=np.float64)
    got = u.percentile_intervals(values, [0, 50, 99, 100])
    assert got[99] == "needs at least 368 samples for a 95% interval; has 367"
    assert isinstance(got[50], tuple)
    assert "no distribution-free interval" in str(got[0]) and got[0] == got[100]
    assert isinstance(u.percentile_intervals(np.arange(368.0), [99])[99], tuple)
    assert u.percentile_intervals(np.arange(5.0), [50])[50] == (
        "needs at least 6 samples for a 95% interval; has 5"
    )


DISTRIBUTIONS = {
    # name: (draw n values, the true q-quantile)
    "exponential": (
        lambda rng, n: rng.exponential(1.0, n),
        lambda q: -math.log(1 - q),
    ),
    "lognormal": (
        lambda rng, n: rng.lognormal(0.0, 1.0, n),
        lambda q: math.exp(_normal_quantile(q)),
    ),
    "uniform": (lambda rng, n: rng.uniform(0.0, 1.0, n), lambda q: q),
}


def _normal_quantile(q: float) -> float:
    return {0.5: 0.0, 0.9: 1.2815515655446004, 0.99: 2.3263478740408408}[q]


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("percentile", [50, 90, 99])
def test_percentile_intervals_cover_the_true_percentile_95_percent_of_the_time(
    name: str, percentile: int
) -> None:
    draw, quantile = DISTRIBUTIONS[name]
    rng = np.random.default_rng(12 + percentile)
    true = quantile(percentile / 100)
    data = np.sort(draw(rng, TRIALS * SAMPLES).reshape(TRIALS, SAMPLES), axis=1)
    ranks = u.interval_ranks(SAMPLES, percentile / 100)
    assert isinstance(ranks, u.Ranks)
    # the k-th smallest of each data set, as percentile_intervals picks it (checked above)
    covered = (data[:, ranks.low - 1] <= true) & (true <= data[:, ranks.high - 1])
    assert 0.93 <= covered.mean() <= 0.97, covered.mean()
    one = u.percentile_intervals(data[0][::-1].copy(), [percentile])[percentile]
    assert one == (data[0, ranks.low - 1], data[0, ranks.high - 1])


def test_throughput_batch_means_interval_covers_the_true_rate_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    true, covered = 1000.0, 0
    for _ in range(TRIALS):
        rates = rng.normal(true, 50.0, 10)  # ten windows
        half = u.mean_halfwidth(rates.tolist())
        assert isinstance(half, float)
        covered += abs(rates.mean() - true) <= half
    assert 0.93 <= covered / TRIALS <= 0.97, covered


def test_batch_means_need_five_windows() -> None:
    assert u.mean_halfwidth([1.0, 2.0, 3.0, 4.0]) == (
        "needs at least 5 full windows for a 95% interval; has 4"
    )
    assert u.mean_halfwidth([5.0] * 5) == 0.0


# ---------------------------------------------------------------- sub-windows and stability


def samples(
    rates_per_s: list[float], latency_ms: list[float], window_s: float = 1.0
) -> tuple[Any, Any, Any, int, int]:
    """Inferences back to back in windows of ``window_s``: window k holds rates[k] per
    second, each of latency_ms[k]."""
    ends: list[int] = []
    lats: list[int] = []
    for k, (rate, lat) in enumerate(zip(rates_per_s, latency_ms, strict=True)):
        n = int(rate * window_s)
        start = int(k * window_s * S)
        ends += [start + int((i + 1) * window_s * S / n) - 1 for i in range(n)]
        lats += [int(lat * MS)] * n
    end = np.asarray(ends, np.int64)
    lat = np.asarray(lats, np.int64)
    return end, lat, np.ones(end.size, np.int64), 0, int(len(rates_per_s) * window_s * S)


def test_windows_count_rates_and_latencies_per_window() -> None:
    end, lat, weight, first, last = samples([100, 200, 300], [1.0, 2.0, 3.0])
    w = u.windows(end, lat, weight, first, last + S // 2, 1.0, batch_size=4)
    assert w.throughput == [400.0, 800.0, 1200.0]  # x batch size; the half window left out
    assert w.latency_ms[50] == [1.0, 2.0, 3.0]


def test_stable_when_the_last_three_windows_agree_within_the_tolerance() -> None:
    end, lat, weight, first, last = samples([50, 100, 100, 105, 100], [2.0, 1.0, 1.0, 1.0, 1.05])
    w = u.windows(end, lat, weight, first, last, 1.0, 1)
    stable, detail = u.stability(w, 0.10)
    assert stable is True and "within 5.0% (throughput) and 5.0% (p50)" in detail
    assert u.first_window_differs(w, 0.10) is True
    assert u.stability(w, 0.04)[0] is False
    end, lat, weight, first, last = samples([100, 100], [1.0, 1.0])
    assert u.stability(u.windows(end, lat, weight, first, last, 1.0, 1), 0.1) == (
        None,
        "needs 3 windows to judge stability; has 2",
    )


def test_an_open_loop_is_judged_stable_on_its_latency_not_its_arrivals() -> None:
    # Poisson arrivals: 88, 112 and 100 in three windows (12 % apart), latency steady
    end, lat, weight, first, last = samples([60, 88, 112, 100], [3.0, 1.0, 1.02, 1.0])
    w = u.windows(end, lat, weight, first, last, 1.0, 1)
    assert u.stability(w, 0.10)[0] is False  # a closed loop's throughput would not agree
    stable, detail = u.stability(w, 0.10, open_loop=True)
    assert stable is True and detail.endswith("within 2.0% (p50); tolerance 10%")
    assert u.first_window_differs(w, 0.10, open_loop=True) is True  # the p50 of 3 ms
    end, lat, weight, first, last = samples([60, 88, 112, 100], [1.0, 1.0, 1.4, 1.0])
    w = u.windows(end, lat, weight, first, last, 1.0, 1)
    assert u.stability(w, 0.10, open_loop=True)[0] is False  # latency that wanders


def test_an_open_loop_that_fell_behind_is_invalid() -> None:
    report = {"status": "finished", "total_s": 20.0, "stable": True, "total_infs": 9_800}
    assert "fell behind" not in " ".join(u.verdict({**report, "late_at_end": 90})[1])
    valid, reasons, _ = u.verdict({**report, "late_at_end": 200})  # 2 % of 10,000 queued
    assert not valid
    assert any(r.startswith("fell behind: 200 of the 10000 requests") for r in reasons)


def test_default_window_is_a_tenth_of_the_run_between_a_tenth_of_a_second_and_5_s() -> None:
    assert u.window_length_s(None, 120.0) == 5.0
    assert u.window_length_s(None, 20.0) == 2.0
    assert u.window_length_s(None, 0.5) == 0.1
    assert u.window_length_s(2.5, 120.0) == 2.5
    assert u.window_length_s(None, 0.0) is None


# ---------------------------------------------------------------- reports


def raw_result(rates: list[float], latency_ms: list[float], **config: Any) -> dict[str, Any]:
    end, lat, _, first, last = samples(rates, latency_ms)
    fields: dict[str, Any] = dict(
        model_name="m", model_filename="m", input_idx=0, batch_size=1, pipeline_size=1,
        cast_mode=None, n_models=1, workers_per_model=1, device_type="cpu", runner="threads",
        duration=last / S, max_infers=None, window_s=1.0,
    )  # fmt: skip
    fields.update(config)
    return {
        "config": BenchmarkConfig(**fields).to_dict(),
        "status": "finished",
        "error": None,
        "window_ns": [first, last],
        "copies": [],
        "workers": [
            {
                "copy_id": 0,
                "worker_id": 0,
                "count": int(end.size),
                "start_ns": end - lat,
                "end_ns": end,
                "phases_ns": {"infer": lat},
            }
        ],
        "overhead_ns": 100.0,
        "stats": {},
        "metrics": {},
    }


def test_reports_carry_intervals_windows_and_a_valid_verdict() -> None:
    rates = [400.0] * 12
    (report,) = get_reports([raw_result(rates, [2.0] * 12)])
    assert set(REPORT_FIELDS) <= set(report)
    json.dumps(report, allow_nan=False)  # plain JSON
    assert report["n_windows"] == 12 and report["window_s"] == 1.0
    assert report["stable"] is True and report["first_window_differs"] is False
    assert report["throughput_avg_ci"] == [pytest.approx(400.0), pytest.approx(400.0)]
    assert report["latency_ms_p99_ci"] == [2.0, 2.0] and report["latency_ms_p99_ci_reason"] is None
    assert report["latency_ms_p0_ci"] is None and report["latency_ms_p0_ci_reason"]
    assert report["windows"]["throughput"] == rates
    assert report["valid"] is True and report["invalid_reasons"] == [] and report["warnings"] == []
    assert LatencyHistogram.from_dict(report["latency_histogram"]).total == 4800


def test_an_unstable_short_run_on_a_busy_machine_is_invalid_with_each_reason() -> None:
    result = raw_result([100, 150, 50], [1.0, 1.2, 8.0])
    result["load"] = {"started_utc": "x", "wall_s": 10.0, "cpus": 2, "own_cpu_s": 10.0,
                      "machine_cpu_s": 14.0}  # fmt: skip
    (report,) = get_reports([result])
    assert report["valid"] is False
    reasons = "\n".join(report["invalid_reasons"])
    assert "too few samples for p99: needs at least 368 samples" in reasons
    assert "ran 3 s, below the minimum duration of 10 s" in reasons
    assert "not stable: last 3 of 3 windows of 1 s within 200.0% (throughput)" in reasons
    assert "busy machine: other processes used 20% of its CPU time (more than 10%)" in reasons
    assert report["other_cpu_s"] == pytest.approx(4.0) and report["busy_machine"] is True
    assert report["throughput_avg_ci"] is None
    assert report["throughput_avg_ci_reason"] == (
        "needs at least 5 full windows for a 95% interval; has 3"
    )
    warnings = "\n".join(report["warnings"])
    assert "noisy: latency IQR / median is 0.17 (> 0.10)" in warnings
    assert "long tail: p99 is 6.7x p50 (> 2x)" in warnings
    assert "the first window differs" in warnings


def test_dispersion_warnings_start_at_the_documented_thresholds() -> None:
    def warned(iqr: float, tail: float) -> list[str]:
        return u.warnings({"latency_iqr_over_median": iqr, "latency_p99_over_p50": tail})

    assert warned(0.10, 2.0) == []
    assert warned(0.11, 2.0) == ["noisy: latency IQR / median is 0.11 (> 0.10)"]
    assert warned(0.26, 2.1) == [
        "very noisy: latency IQR / median is 0.26 (> 0.25)",
        "long tail: p99 is 2.1x p50 (> 2x)",
    ]


def test_plus_minus_is_the_larger_side_of_the_interval() -> None:
    report = {"latency_ms_p50": 2.0, "latency_ms_p50_ci": [1.5, 2.2], "x": 1.0}
    assert u.plus_minus(report, "latency_ms_p50") == pytest.approx(0.5)
    assert u.plus_minus(report, "x") is None


# ---------------------------------------------------------------- the histogram


def test_histogram_values_are_within_its_relative_error_and_merge_exactly() -> None:
    rng = np.random.default_rng(3)
    a = rng.lognormal(13, 2, 5000).astype(np.int64) + 1
    b = rng.lognormal(11, 1, 3000).astype(np.int64) + 1
    ha, hb = LatencyHistogram.of(a), LatencyHistogram.of(b)
    both = LatencyHistogram.of(np.concatenate([a, b]))
    merged = ha.merge(hb)
    assert merged.total == 8000
    assert np.array_equal(merged.index, both.index) and np.array_equal(merged.count, both.count)
    ordered = np.sort(np.concatenate([a, b]))
    for rank in (1, 100, 4000, 7999, 8000):
        value = merged.value_at_rank(rank)
        assert abs(value - ordered[rank - 1]) <= RELATIVE_ERROR * ordered[rank - 1] + 1e-9
        assert merged.value_at_rank(rank, "low") <= ordered[rank - 1]
        assert merged.value_at_rank(rank, "high") >= ordered[rank - 1]
    again = LatencyHistogram.from_dict(json.loads(json.dumps(merged.to_dict())))
    assert np.array_equal(again.count, merged.count)


def test_histogram_size_is_bounded_whatever_it_counts() -> None:
    spread = np.geomspace(1, 10**15, 1_000_000)  # 1 ns to 11 days, a million samples
    h = LatencyHistogram.of(np.concatenate([spread, [0]]))
    assert h.total == 1_000_001
    assert len(h.index) <= MAX_BUCKETS <= 1500


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {"unit": "ms", "relative_error": 0.01, "index": [1], "count": [1]},
        {"unit": "ns", "relative_error": 0.01, "index": [2, 1], "count": [1, 1]},
        {"unit": "ns", "relative_error": 0.01, "index": [1], "count": [0]},
        {"unit": "ns", "relative_error": 0.05, "index": [1], "count": [1]},
        {"unit": "ns", "index": [1], "count": [1]},
    ],
)
def test_a_malformed_histogram_is_refused(bad: Any) -> None:
    with pytest.raises(HistogramError):
        LatencyHistogram.from_dict(bad)


# ---------------------------------------------------------------- the machine and the run


def test_run_info_records_the_machine_and_versions_without_importing_torch() -> None:
    code = (
        "import json, sys; from importlib import metadata; "
        "from neuronperf_core.benchmarking import stats; "
        "info = stats.run_info('benchmark(duration=5.0)'); "
        "plugins = sorted({ep.dist.name for ep in metadata.entry_points(group='neuronperf')}); "
        "torch = [d.version for d in metadata.distributions() if d.name == 'torch'][:1]; "
        "print(json.dumps([info, 'torch' in sys.modules, plugins, torch]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    info, torch_imported, plugins, torch = json.loads(out.stdout)
    assert torch_imported is False
    assert set(stats.RUN_FIELDS) == set(info)
    assert set(plugins) <= set(info["versions"]) and info["versions"]["neuronperf-core"]
    # read from metadata where installed (nox's tests session has no torch)
    assert info["versions"].get("torch") == (torch[0] if torch else None)
    assert info["cpu_count"] >= 1 and info["python_version"].startswith("3.")
    assert info["call"] == "benchmark(duration=5.0)" and info["run_started_utc"].endswith("+00:00")


def test_other_processes_cpu_is_the_machines_minus_our_own() -> None:
    load = {"started_utc": "t", "wall_s": 2.0, "cpus": 4, "own_cpu_s": 3.0, "machine_cpu_s": 3.6}
    fields = stats.load_fields(load)
    assert fields["other_cpu_s"] == pytest.approx(0.6)
    assert fields["other_cpu_share"] == pytest.approx(0.075) and fields["busy_machine"] is False
    assert stats.load_fields({**load, "machine_cpu_s": None})["busy_machine"] is None
    assert stats.load_fields(None) == dict.fromkeys(stats.LOAD_FIELDS)


def test_a_busy_virtual_machine_names_the_hypervisors_steal() -> None:
    result = raw_result([100, 150, 50], [1.0, 1.2, 8.0])
    result["load"] = {"started_utc": "x", "wall_s": 10.0, "cpus": 2, "own_cpu_s": 10.0,
                      "machine_cpu_s": 16.0, "steal_cpu_s": 5.0}  # fmt: skip
    (report,) = get_reports([result])
    assert report["other_cpu_s"] == pytest.approx(6.0) and report["steal_cpu_s"] == 5.0
    assert (
        "busy machine: others used 30% of its CPU time: other processes 5%, the hypervisor "
        "25% for other virtual machines (steal in /proc/stat) (more than 10%)"
    ) in report["invalid_reasons"]
    # no steal worth a percent: other processes alone, as before steal was read
    result["load"]["steal_cpu_s"] = 0.05
    (report,) = get_reports([result])
    assert (
        "busy machine: other processes used 30% of its CPU time (more than 10%)"
        in (report["invalid_reasons"])
    )


def test_a_load_meter_reads_steal_from_proc_stat(tmp_path: Any, monkeypatch: Any) -> None:
    proc_stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal
    proc_stat.write_text("cpu  1000 0 100 5000 0 0 0 200 0 0\n")
    monkeypatch.setattr(stats, "PROC_STAT", str(proc_stat))
    meter = stats.LoadMeter()
    proc_stat.write_text("cpu  1300 0 100 5100 0 0 0 700 0 0\n")  # 3 s busy, 5 s stolen
    load = meter.stop()
    assert load["machine_cpu_s"] == pytest.approx(800 / stats.CLOCK_TICKS)
    assert load["steal_cpu_s"] == pytest.approx(500 / stats.CLOCK_TICKS)
    # a kernel without the steal column: none counted
    proc_stat.write_text("cpu  1000 0 100 5000 0 0 0\n")
    meter = stats.LoadMeter()
    assert meter.stop()["steal_cpu_s"] == 0


def test_a_load_meter_counts_its_own_process_as_its_own() -> None:
    meter = stats.LoadMeter()
    x = 0
    for i in range(2_000_000):  # some CPU time of our own
        x += i
    fields = stats.load_fields(meter.stop())
    # what others used is never negative, and our own busy loop is not counted as theirs
    assert fields["other_cpu_s"] is not None and fields["other_cpu_s"] >= 0
    assert meter.stop()["own_cpu_s"] > 0


def test_the_printed_table_shows_each_interval_as_plus_minus() -> None:
    import io

    from neuronperf_core.reporting import print_reports

    (report,) = get_reports([raw_result([400.0, 420.0, 380.0, 400.0, 410.0, 390.0], [2.0] * 6)])
    out = io.StringIO()
    print_reports([report], cols=["throughput_avg", "latency_ms_p50", "batch_size"], file=out)
    row = out.getvalue().splitlines()[-1]
    half = u.plus_minus(report, "throughput_avg")
    assert half is not None and half > 0
    assert f"{report['throughput_avg']:.3f} +/- {half:.3f}" in row
    assert "2.000 +/- 0.000" in row  # every latency was 2 ms: an interval of width 0

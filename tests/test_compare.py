"""compare: matching two runs config by config, ratios, verdicts, the gate and the table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neuronperf as npf
from neuronperf_core.compare import (
    DEFAULT_GATE,
    KEY_FIELDS,
    METRICS,
    CompareError,
    Comparison,
    compare_reports,
    format_comparison,
)
from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.reporting import write_json


def report(**fields: Any) -> dict[str, Any]:
    """A finished report of config b1 n1 w1 on the CPU; ``fields`` override."""
    out: dict[str, Any] = {
        "model_name": "m",
        "device_type": "cpu",
        "status": "finished",
        "error": None,
        "batch_size": 1,
        "n_models": 1,
        "workers_per_model": 1,
        "pipeline_size": 1,
        "cast_mode": None,
        "throughput_avg": 100.0,
        "throughput_peak": 110.0,
        "latency_ms_p0": 5.0,
        "latency_ms_p50": 10.0,
        "latency_ms_p90": 12.0,
        "latency_ms_p95": 14.0,
        "latency_ms_p99": 20.0,
        "latency_ms_p100": 40.0,
        "latency_ms_avg": 10.5,
        "latency_ms_std": 2.0,
        "latency_samples": 1000,
    }
    out.update(fields)
    return out


def verdicts(comparison: Comparison, index: int = 0) -> dict[str, str]:
    return {c.metric: c.verdict for c in comparison.rows[index].changes}


# -- matching -------------------------------------------------------------------------


def test_configs_match_on_the_key_fields_in_the_old_runs_order() -> None:
    old = [report(batch_size=1), report(batch_size=8), report(batch_size=8, n_models=2)]
    new = [report(batch_size=8, n_models=2), report(batch_size=1), report(batch_size=8)]
    comparison = compare_reports(old, new)
    assert [r.label for r in comparison.rows] == ["b1 n1 w1", "b8 n1 w1", "b8 n2 w1"]
    assert comparison.rows[1].key == (8, 1, 1, 1, None, "cpu", None)
    assert comparison.only_old == comparison.only_new == ()


def test_model_name_is_not_part_of_the_match() -> None:
    comparison = compare_reports([report(model_name="A")], [report(model_name="B")])
    (row,) = comparison.rows
    assert (row.old_model_name, row.new_model_name) == ("A", "B")
    assert "old: A, new: B" in format_comparison(comparison)


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("batch_size", 2),
        ("n_models", 2),
        ("workers_per_model", 2),
        ("pipeline_size", 2),
        ("cast_mode", "fp16"),
        ("device_type", "cuda"),
    ],
)
def test_each_key_field_separates_configs(field: str, other: Any) -> None:
    comparison = compare_reports([report()], [report(**{field: other})])
    assert comparison.rows == ()
    assert [u.key for u in comparison.only_old] == [tuple(report().get(f) for f in KEY_FIELDS)]
    assert [u.key[KEY_FIELDS.index(field)] for u in comparison.only_new] == [other]


def test_unmatched_configs_are_listed_per_run_with_their_status() -> None:
    old = [report(), report(batch_size=4, status="error", error="boom")]
    new = [report(), report(batch_size=16), report(batch_size=32)]
    comparison = compare_reports(old, new)
    assert [(u.label, u.status) for u in comparison.only_old] == [("b4 n1 w1", "error")]
    assert [u.label for u in comparison.only_new] == ["b16 n1 w1", "b32 n1 w1"]
    text = format_comparison(comparison)
    assert "only in old: b4 n1 w1 (error)\n" in text
    assert "only in new: b16 n1 w1 (finished)\n" in text
    assert "only in new: b32 n1 w1 (finished)\n" in text


def test_a_missing_cast_mode_reads_as_none() -> None:
    v1_report = report()
    del v1_report["cast_mode"]  # NeuronPerf 1.x reports lack it
    comparison = compare_reports([v1_report], [report()])
    assert len(comparison.rows) == 1


def test_labels_name_the_device_where_two_configs_differ_only_there() -> None:
    run = [report(device_type="cpu"), report(device_type="cuda"), report(batch_size=2)]
    comparison = compare_reports(run, run)
    assert [r.label for r in comparison.rows] == ["b1 n1 w1 cpu", "b1 n1 w1 cuda", "b2 n1 w1"]


def test_unfinished_configs_are_kept_without_ratios() -> None:
    old = [report(), report(batch_size=2)]
    new = [report(status="error", error="out of memory"), report(batch_size=2, status="killed")]
    comparison = compare_reports(old, new)
    first, second = comparison.rows
    assert first.changes == second.changes == ()
    assert not first.finished
    assert (first.status, first.new_error) == ("old: finished, new: error", "out of memory")
    assert second.status == "old: finished, new: killed"
    assert first.change("throughput_avg") is None
    assert "b1 n1 w1" in format_comparison(comparison)
    assert "old: finished, new: error" in format_comparison(comparison)


# -- ratios and verdicts --------------------------------------------------------------


def test_ratios_are_new_over_old_and_verdicts_follow_the_direction() -> None:
    old = report()
    new = report(
        throughput_avg=150.0,  # higher: better
        latency_ms_p50=5.0,  # lower: better
        latency_ms_p90=24.0,  # higher: worse
        latency_ms_p95=14.2,  # +1.4%: within noise
        latency_ms_p99=30.0,  # higher: worse
    )
    comparison = compare_reports([old], [new])
    (row,) = comparison.rows
    assert [c.metric for c in row.changes] == list(METRICS)
    ratios = {c.metric: c.ratio for c in row.changes}
    assert ratios == pytest.approx(
        {
            "throughput_avg": 1.5,
            "latency_ms_p50": 0.5,
            "latency_ms_p90": 2.0,
            "latency_ms_p95": 14.2 / 14.0,
            "latency_ms_p99": 1.5,
        }
    )
    assert verdicts(comparison) == {
        "throughput_avg": "better",
        "latency_ms_p50": "better",
        "latency_ms_p90": "worse",
        "latency_ms_p95": "within noise",
        "latency_ms_p99": "worse",
    }
    change = row.change("throughput_avg")
    assert change is not None
    assert (change.old, change.new) == (100.0, 150.0)


def test_lower_throughput_is_worse_and_higher_latency_is_worse() -> None:
    comparison = compare_reports([report()], [report(throughput_avg=50.0, latency_ms_p50=20.0)])
    assert verdicts(comparison)["throughput_avg"] == "worse"
    assert verdicts(comparison)["latency_ms_p50"] == "worse"


@pytest.mark.parametrize(
    ("new_throughput", "verdict"),
    [
        (105.0, "within noise"),  # exactly +5%: the edge is inside (1.05 - 1 > 0.05 in floats)
        (95.0, "within noise"),  # exactly -5%
        (105.01, "better"),
        (94.99, "worse"),
        (100.0, "within noise"),
    ],
)
def test_the_noise_band_edge_is_inside(new_throughput: float, verdict: str) -> None:
    comparison = compare_reports([report()], [report(throughput_avg=new_throughput)])
    assert verdicts(comparison)["throughput_avg"] == verdict


def test_the_noise_band_is_the_users_threshold() -> None:
    new = [report(throughput_avg=108.0)]
    assert verdicts(compare_reports([report()], new))["throughput_avg"] == "better"
    assert verdicts(compare_reports([report()], new, noise_pct=10))["throughput_avg"] == (
        "within noise"
    )
    zero = compare_reports([report()], [report(throughput_avg=100.001)], noise_pct=0)
    assert verdicts(zero)["throughput_avg"] == "better"
    assert verdicts(zero)["latency_ms_p50"] == "within noise"  # unchanged stays within noise


def test_metrics_missing_on_either_side_are_not_compared() -> None:
    old = report(latency_ms_p90=None, latency_ms_p95=float("nan"))
    del old["latency_ms_p99"]
    comparison = compare_reports([old], [report()])
    assert [c.metric for c in comparison.rows[0].changes] == ["throughput_avg", "latency_ms_p50"]
    assert "N/A" in format_comparison(comparison)  # the p99 column


def test_an_old_value_of_zero_has_no_ratio_but_a_verdict() -> None:
    comparison = compare_reports([report(throughput_avg=0.0)], [report(throughput_avg=10.0)])
    change = comparison.rows[0].change("throughput_avg")
    assert change is not None
    assert (change.ratio, change.verdict) == (None, "better")


# -- the gate -------------------------------------------------------------------------


def gated(comparison: Comparison, pct: float, statistics: Any = DEFAULT_GATE) -> list[str]:
    """The labels of the configs that fail the gate."""
    return [row.label for row, failures in comparison.gate(pct, statistics).configs if failures]


def test_the_gate_is_on_throughput_and_p50_by_default() -> None:
    old = [report(batch_size=b) for b in (1, 2, 3, 4, 5, 6)]
    new = [
        report(batch_size=1, throughput_avg=90.0),  # -10%: not more than 10
        report(batch_size=2, throughput_avg=89.0),  # -11%
        report(batch_size=3, latency_ms_p50=11.0),  # +10%: not more than 10
        report(batch_size=4, latency_ms_p50=11.5),  # +15%
        report(batch_size=5, latency_ms_p99=100.0, latency_ms_p90=100.0),  # only tail latency
        report(batch_size=6, throughput_avg=200.0, latency_ms_p50=1.0),  # faster
    ]
    comparison = compare_reports(old, new)  # no windows, no histograms: untested changes
    assert gated(comparison, 10) == ["b2 n1 w1", "b4 n1 w1"]
    assert gated(comparison, 12) == ["b4 n1 w1"]
    assert gated(comparison, 0) == ["b1 n1 w1", "b2 n1 w1", "b3 n1 w1", "b4 n1 w1"]
    assert gated(comparison, 10, ["p99"]) == ["b5 n1 w1"]
    assert gated(comparison, 10, "throughput,p50,p90") == ["b2 n1 w1", "b4 n1 w1", "b5 n1 w1"]
    assert verdicts(comparison, 4)["latency_ms_p99"] == "worse"  # seen in the table
    gate = comparison.gate(10)
    assert not gate.passed
    assert gate.messages() == [
        "b2 n1 w1: throughput -11.0% (no interval: the reports hold no windows or histograms "
        "to test it on): slower by more than 10% (untested)",
        "b4 n1 w1: p50 +15.0% (no interval: the reports hold no windows or histograms to "
        "test it on): slower by more than 10% (untested)",
    ]


def test_the_gate_counts_configs_that_stopped_finishing_or_are_missing() -> None:
    old = [report(), report(batch_size=2, status="error"), report(batch_size=4)]
    new = [report(status="error"), report(batch_size=2, throughput_avg=1.0), report(batch_size=3)]
    # batch 1 finished before and failed now: the gate's business; batch 2 never finished
    # (nothing to compare), batch 3 is new, batch 4 is missing
    gate = compare_reports(old, new).gate(5)
    assert [row.label for row, failures in gate.configs if failures] == ["b1 n1 w1"]
    assert gate.messages() == [
        "b1 n1 w1: did not finish: old: finished, new: error",
        "b4 n1 w1: missing from the new run",
    ]
    data = gate.to_dict()
    assert data["pass"] is False and [c["pass"] for c in data["configs"]] == [False, True]
    assert [m["label"] for m in data["missing"]] == ["b4 n1 w1"]


@pytest.mark.parametrize("pct", [-1, float("nan"), float("inf"), True, "5"])
def test_the_gate_rejects_a_bad_percentage(pct: Any) -> None:
    with pytest.raises(CompareError, match="pct must be a finite number >= 0"):
        compare_reports([report()], [report()]).gate(pct)


@pytest.mark.parametrize("statistics", [["p75"], [], "throughput,latency"])
def test_the_gate_rejects_unknown_statistics(statistics: Any) -> None:
    with pytest.raises(CompareError, match="choose from throughput, p50, p90, p95, p99"):
        compare_reports([report()], [report()]).gate(5, statistics)


# -- significance ------------------------------------------------------------------------


def windowed(throughput: float, p50: float, spread: float, seed: int, n: int = 10) -> Any:
    """A report whose n windows scatter by ``spread`` (relative) around its figures."""
    rng = np.random.default_rng(seed)
    rates = throughput * (1 + spread * rng.standard_normal(n))
    p50s = p50 * (1 + spread * rng.standard_normal(n))
    windows = {"window_s": 1.0, "throughput": rates.tolist(), "latency_ms_p50": p50s.tolist()}
    return report(throughput_avg=throughput, latency_ms_p50=p50, windows=windows)


def test_a_change_far_beyond_the_windows_scatter_is_significant() -> None:
    comparison = compare_reports([windowed(100, 10, 0.01, 1)], [windowed(90, 11, 0.01, 2)])
    throughput = comparison.rows[0].change("throughput_avg")
    p50 = comparison.rows[0].change("latency_ms_p50")
    assert throughput is not None and p50 is not None
    assert throughput.significant is True and throughput.verdict == "worse"
    assert throughput.change_pct == pytest.approx(-10.0)
    assert throughput.interval_pct is not None
    low, high = throughput.interval_pct
    assert -12.0 < low < -10.0 < high < -8.0
    assert p50.significant is True and p50.verdict == "worse"
    assert gated(comparison, 5) == ["b1 n1 w1"]
    message = comparison.gate(5).messages()[0]
    assert message.startswith("b1 n1 w1: throughput -10.0% (95% interval -1")
    assert message.endswith("slower by more than 5%, significant")


def test_a_gate_failure_says_when_a_run_shared_a_busy_machine() -> None:
    old = windowed(100, 10, 0.01, 1) | {"other_cpu_share": 0.02}
    new = windowed(90, 10, 0.01, 2) | {"other_cpu_share": 0.65}
    (failure,) = compare_reports([old], [new]).gate(5).failures
    assert failure.message().endswith(
        "significant; busy machine: others used 65% (new run) of the CPU"
    )
    assert failure.to_dict()["busy"] == "busy machine: others used 65% (new run) of the CPU"
    quiet = compare_reports([old], [new | {"other_cpu_share": 0.05}]).gate(5).failures
    assert quiet[0].busy is None and "busy" not in quiet[0].message()


def test_a_change_within_the_windows_scatter_is_not_significant_and_passes() -> None:
    comparison = compare_reports([windowed(100, 10, 0.2, 1)], [windowed(90, 11, 0.2, 2)])
    change = comparison.rows[0].change("throughput_avg")
    assert change is not None and change.significant is False
    assert change.interval_pct is not None and change.interval_pct[0] < 0 < change.interval_pct[1]
    assert verdicts(comparison)["throughput_avg"] == "within noise"  # -10%, but not significant
    assert gated(comparison, 5) == []
    assert comparison.gate(5).passed


def test_latency_percentiles_are_tested_on_the_histograms_too() -> None:
    from neuronperf_core.histogram import LatencyHistogram

    rng = np.random.default_rng(5)

    def run(scale: float, n: int) -> Any:
        latency_ns = rng.lognormal(np.log(1e6 * scale), 0.3, n)
        histogram = LatencyHistogram.of(latency_ns).to_dict()
        return report(latency_ms_p99=float(np.percentile(latency_ns, 99)) / 1e6,
                      latency_histogram=histogram)  # fmt: skip

    # 100,000 samples each: a 10% rise of p99 is far outside both runs' intervals
    comparison = compare_reports([run(1.0, 100_000)], [run(1.1, 100_000)])
    change = comparison.rows[0].change("latency_ms_p99")
    assert change is not None and change.significant is True
    # 500 samples each: p99's interval is wide, the same rise is not significant
    comparison = compare_reports([run(1.0, 500)], [run(1.1, 500)])
    change = comparison.rows[0].change("latency_ms_p99")
    assert change is not None and change.significant is False


def test_identical_windows_make_an_equal_change_insignificant() -> None:
    same = windowed(100, 10, 0.05, 3)
    comparison = compare_reports([same], [dict(same)])
    change = comparison.rows[0].change("throughput_avg")
    assert change is not None and change.change_pct == 0.0 and change.significant is False


# -- output ---------------------------------------------------------------------------


def test_to_dict_is_plain_json() -> None:
    old = [report(), report(batch_size=2, throughput_avg=0.0), report(batch_size=3)]
    new = [report(throughput_avg=120.0), report(batch_size=2, status="error", error="x")]
    new += [report(batch_size=4, cast_mode="fp16")]
    comparison = compare_reports(old, new, noise_pct=2)
    data = comparison.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["noise_pct"] == 2.0
    assert data["key_fields"] == list(KEY_FIELDS)
    first = data["rows"][0]
    assert first["key"] == {
        "batch_size": 1,
        "n_models": 1,
        "workers_per_model": 1,
        "pipeline_size": 1,
        "cast_mode": None,
        "device_type": "cpu",
        "arrival_rate": None,  # a closed loop
    }
    assert data["peaks"] == []
    assert first["changes"]["throughput_avg"] == {
        "metric": "throughput_avg",
        "old": 100.0,
        "new": 120.0,
        "ratio": 1.2,
        "change_pct": pytest.approx(20.0),
        "interval_pct": None,  # these reports hold no windows or histograms
        "significant": None,
        "verdict": "better",
    }
    assert data["rows"][1]["status"] == "old: finished, new: error"
    assert data["rows"][1]["changes"] == {}
    assert [u["label"] for u in data["only_old"]] == ["b3 n1 w1"]
    assert [u["label"] for u in data["only_new"]] == ["b4 n1 w1 fp16"]


def test_the_table_has_one_aligned_line_per_config() -> None:
    old = [report(), report(batch_size=16, throughput_avg=2000.0)]
    new = [
        report(throughput_avg=123.0, latency_ms_p50=9.9, latency_ms_p99=30.0),
        report(batch_size=16, throughput_avg=1000.0),
    ]
    text = format_comparison(compare_reports(old, new))
    lines = text.splitlines()
    assert "5%" in lines[0] and "not significant at 95%" in lines[0]
    header = next(line for line in lines if line.startswith("config"))
    first = next(line for line in lines if line.startswith("b1 n1 w1"))
    second = next(line for line in lines if line.startswith("b16 n1 w1"))
    assert first.split() == [
        "b1", "n1", "w1", "100.0", "123.0", "1.23x", "better", "0.99x", "within", "noise",
        "1.50x", "worse",
    ]  # fmt: skip
    assert second.split()[3:7] == ["2000.0", "1000.0", "0.50x", "worse"]
    # right-aligned ratios end where the header's "tput" ends
    end = header.index(" tput ") + len(" tput")
    assert first[end - 5 : end] == "1.23x"
    assert second[end - 5 : end] == "0.50x"
    assert "\x1b" not in text  # words, no colour codes


def test_the_table_fits_the_width_it_is_given() -> None:
    """At 100 columns a comparison of fp32 configs with one failure fits: headers and text
    wrap, numbers stay whole; the failure's statuses wrap inside its own verdict cell."""
    old = [report(batch_size=b, cast_mode="fp32", throughput_avg=1327523.3) for b in (1, 32)]
    new = [report(batch_size=1, cast_mode="fp32", status="error", throughput_avg=None)]
    new.append(report(batch_size=32, cast_mode="fp32", throughput_avg=1194771.0))
    comparison = compare_reports(old, new)
    natural = format_comparison(comparison).splitlines()
    assert max(map(len, natural)) > 100
    assert any("old: finished, new: error" in line for line in natural)
    lines = format_comparison(comparison, width=100).splitlines()
    assert max(map(len, lines[2:])) <= 100  # the table; the note above it is a sentence
    (row,) = [line for line in lines if line.startswith("b32 n1 w1")]
    assert row.split()[3:6] == ["1327523.3", "1194771.0", "0.90x"]
    assert "old:" in " ".join(lines) and "new: error" in " ".join(lines)


def test_an_empty_comparison_says_so() -> None:
    text = format_comparison(compare_reports([report()], [report(batch_size=2)]))
    assert "(no config found in both runs)" in text


# -- input errors ---------------------------------------------------------------------


def test_a_duplicate_config_in_one_run_is_an_error() -> None:
    run = [report(model_name="a"), report(batch_size=2), report(model_name="b")]
    with pytest.raises(CompareError) as caught:
        compare_reports([report()], run)
    message = str(caught.value)
    assert "The new run holds config 'b1 n1 w1'" in message
    assert "twice: new[0] and new[2]" in message
    assert isinstance(caught.value, NeuronPerfError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("old", "message"),
    [
        (report(), r"The old run must be a list of report dicts, got dict"),
        ("reports.json", r"The old run must be a list of report dicts, got str"),
        (42, r"The old run must be a list of report dicts, got int"),
        ([report(), ["x"]], r"old\[1\] is not a report dict: got list"),
        (
            [{k: v for k, v in report().items() if k not in ("batch_size", "device_type")}],
            r"old\[0\] lacks 'batch_size', 'device_type'",
        ),
        ([report(batch_size=[1, 2])], r"old\[0\] has a config field that is not a plain value"),
        ([report(throughput_avg="N/A")], r"throughput_avg is 'N/A', expected a number"),
    ],
)
def test_malformed_runs_are_errors(old: Any, message: str) -> None:
    with pytest.raises(CompareError, match=message):
        compare_reports(old, [report()])


@pytest.mark.parametrize("noise_pct", [-0.1, math.nan, math.inf, None])
def test_a_bad_noise_threshold_is_an_error(noise_pct: Any) -> None:
    with pytest.raises(CompareError, match="noise_pct must be a finite number >= 0"):
        compare_reports([report()], [report()], noise_pct=noise_pct)


# -- real runs ------------------------------------------------------------------------


def test_two_real_runs_compare_through_their_json_files(tmp_path: Path) -> None:
    def run() -> Any:
        return npf.cpu.benchmark(
            npf.DummyModel,
            np.ones(4),
            duration=60,
            max_infers=50,  # bounds the run: it ends after 50 inferences, long before 60 s
            n_models=1,
            workers_per_model=[1, 2],
            stats_interval=0,
            results_dir=None,
            runner="threads",
            verbosity=0,
        )

    old_file = write_json(run(), tmp_path / "old.json")
    new_file = write_json(run(), tmp_path / "new.json")
    old = json.loads(Path(old_file).read_text())
    new = json.loads(Path(new_file).read_text())
    comparison = compare_reports(old, new)
    assert [r.label for r in comparison.rows] == ["b1 n1 w1", "b1 n1 w2"]
    for row in comparison.rows:
        assert row.finished
        assert [c.metric for c in row.changes] == list(METRICS)
        assert all(c.verdict in ("better", "worse", "within noise") for c in row.changes)
    json.dumps(comparison.to_dict(), allow_nan=False)
    assert format_comparison(comparison).count("\nb1 n1 w") == 2


# -- open loop: rate sweeps and peak searches -----------------------------------------------


def at(rate: float, **fields: Any) -> dict[str, Any]:
    """An open-loop report of config b1 n1 w1 at ``rate``; ``fields`` override."""
    open_loop = {
        "arrival_rate": rate,
        "arrivals": "poisson",
        "offered_rate": rate,
        "achieved_rate": rate,
        "late_at_end": 0,
        "throughput_avg": rate,
    }
    return report(**(open_loop | fields))


def test_open_loop_reports_pair_by_config_and_arrival_rate() -> None:
    old = [at(100.0), at(400.0), at(100.0, batch_size=8)]
    new = [at(400.0, achieved_rate=300.0), at(100.0, batch_size=8), at(100.0), at(800.0)]
    comparison = compare_reports(old, new)  # one config at two rates is no duplicate
    assert [r.label for r in comparison.rows] == [
        "b1 n1 w1 @ 100/s",
        "b1 n1 w1 @ 400/s",
        "b8 n1 w1 @ 100/s",
    ]
    assert [r.key[KEY_FIELDS.index("arrival_rate")] for r in comparison.rows] == [100, 400, 100]
    assert [u.label for u in comparison.only_new] == ["b1 n1 w1 @ 800/s"]
    assert comparison.only_old == ()
    # the achieved rate is compared beside throughput and latency, better higher
    achieved = comparison.rows[1].change("achieved_rate")
    assert achieved is not None
    assert (achieved.old, achieved.new, achieved.verdict) == (400.0, 300.0, "worse")
    assert comparison.rows[0].change("achieved_rate").verdict == "within noise"  # type: ignore[union-attr]


def test_a_closed_loop_report_has_no_achieved_rate_to_compare() -> None:
    (row,) = compare_reports([report()], [report()]).rows
    assert [c.metric for c in row.changes] == list(METRICS)


def test_the_open_loop_table_shows_each_rate_with_achieved_rate_and_latencies() -> None:
    old = [at(100.0), at(1500.0, achieved_rate=900.0, latency_ms_p50=300.0, latency_ms_p99=700.0)]
    new = [at(100.0, latency_ms_p99=30.0), at(1500.0, achieved_rate=1450.0, latency_ms_p50=2.5)]
    new.append(at(537.5, status="error", error="boom"))
    text = format_comparison(compare_reports(old, new))
    lines = text.splitlines()
    assert "open loop: one row per config and arrival rate" in text
    header = next(line for line in lines if line.startswith("config"))
    assert header.split()[:5] == ["config", "rate/s", "achieved/s", "achieved", "verdict"]
    assert "p50 ms" in header and "p99 ms" in header
    low = next(line for line in lines if line.split()[3:4] == ["100"])
    assert low.split()[:3] == ["b1", "n1", "w1"]
    assert "100.0 -> 100.0" in low and "20.0 -> 30.0" in low and "1.50x" in low
    high = next(line for line in lines if line.split()[3:4] == ["1500"])
    assert "900.0 -> 1450.0" in high and "1.61x" in high and "300.0 -> 2.5 " in high
    assert "only in new: b1 n1 w1 @ 537.5/s (error)" in lines


def test_a_closed_loop_run_against_an_open_loop_one_says_they_measure_different_things() -> None:
    with pytest.raises(CompareError) as caught:
        compare_reports([report(), report(batch_size=2)], [at(100.0), at(400.0)])
    message = str(caught.value)
    assert message.startswith(
        "The old run is closed loop and the new run open loop: they measure different things."
    )
    assert "run the other with the same --arrival-rate" in message
    with pytest.raises(CompareError, match="old run is open loop and the new run closed loop"):
        compare_reports([at(100.0)], [report()])
    # a run that holds both compares each with its like
    both = [report(), at(100.0)]
    comparison = compare_reports(both, [at(100.0)])
    assert [r.label for r in comparison.rows] == ["b1 n1 w1 @ 100/s"]
    assert [u.label for u in comparison.only_old] == ["b1 n1 w1"]
    lines = format_comparison(compare_reports(both, both)).splitlines()
    assert [line.split()[3:5] for line in lines if line.startswith("b1 n1 w1")] == [
        ["closed", "loop"],
        ["100", "100.0"],
    ]


def searched(
    rates: list[float], peak: float | None, bound_ms: float = 20.0, **fields: Any
) -> list[dict[str, Any]]:
    """The reports of a peak search of b1 n1 w1 under a p99 bound: its closed-loop probe,
    then a step at each rate, ``peak`` marked."""
    search = {"latency_bound_ms": bound_ms, "latency_percentile": 99, "peak_rate": peak}
    probe = report(**search, peak_step=0, within_bound=True, is_peak=False)
    return [probe] + [
        at(
            rate,
            **search,
            peak_step=step,
            within_bound=peak is not None and rate <= peak,
            is_peak=rate == peak,
            **fields,
        )
        for step, rate in enumerate(rates, start=1)
    ]


def test_peak_searches_compare_their_peak_rates() -> None:
    old = searched([100.0, 200.0, 400.0, 800.0, 600.0], peak=400.0)
    new = searched([100.0, 200.0, 400.0, 800.0, 600.0], peak=600.0)
    comparison = compare_reports(old, new)
    # the steps pair by rate like any sweep, the closed-loop probes with each other
    assert [r.label for r in comparison.rows][:2] == ["b1 n1 w1", "b1 n1 w1 @ 100/s"]
    assert len(comparison.rows) == 6
    (peak,) = comparison.peaks
    assert peak.label == "b1 n1 w1"
    assert peak.old is not None and peak.new is not None
    assert (peak.old.rate, peak.new.rate, peak.ratio) == (400.0, 600.0, 1.5)
    assert peak.same_bound
    assert peak.describe() == "b1 n1 w1 (p99 <= 20 ms): peak 400/s -> 600/s (+50.0%)"
    text = format_comparison(comparison)
    assert "largest rate within the latency bound, old -> new:\n" in text
    assert "  b1 n1 w1 (p99 <= 20 ms): peak 400/s -> 600/s (+50.0%)\n" in text
    data = comparison.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["peaks"][0]["old"] == {
        "rate": 400.0,
        "bound_ms": 20.0,
        "percentile": 99.0,
        "requests_per_dollar": None,
        "stopped": None,
    }
    assert data["peaks"][0]["change_pct"] == pytest.approx(50.0)


def test_a_peak_search_reads_its_peak_from_the_marked_report() -> None:
    old = searched([100.0, 400.0], peak=None)
    old[1] |= {"is_peak": True, "peak_rate": None}  # peak_rate missing: the report's own rate
    new = searched([100.0, 400.0], peak=None)
    for step in new:
        del step["is_peak"]  # no step marked: the search's peak_rate where the steps carry it
        step["peak_rate"] = 250.0
    (peak,) = compare_reports(old, new).peaks
    assert (peak.old.rate, peak.new.rate) == (100.0, 250.0)  # type: ignore[union-attr]


def test_peaks_say_when_none_met_the_bound_the_bounds_differ_or_one_run_did_not_search() -> None:
    none_within = compare_reports(searched([100.0], peak=None), searched([100.0], peak=100.0))
    (peak,) = none_within.peaks
    assert peak.ratio is None
    assert peak.describe() == "b1 n1 w1 (p99 <= 20 ms): peak none within the bound -> 100/s"

    bounds = compare_reports(
        searched([100.0], peak=100.0), searched([100.0], peak=100.0, bound_ms=10.0)
    )
    assert bounds.peaks[0].describe() == (
        "b1 n1 w1: peak 100/s -> 100/s (+0.0%); the bounds differ (old p99 <= 20 ms, "
        "new p99 <= 10 ms): the peaks answer different questions"
    )

    only_old = compare_reports(searched([100.0], peak=100.0), [at(100.0)])
    assert only_old.peaks[0].describe() == ("b1 n1 w1 (p99 <= 20 ms): peak 100/s -> no peak search")
    sweeps = compare_reports([at(100.0)], [at(100.0)])  # plain sweeps: no peaks
    assert sweeps.peaks == ()
    assert "largest rate" not in format_comparison(sweeps)
    # a sweep given a bound but no search holds the bound, not a peak
    bound = {"latency_bound_ms": 20.0, "latency_percentile": 99, "within_bound": True}
    assert compare_reports([at(100.0, **bound)], [at(100.0, **bound)]).peaks == ()


def test_a_search_step_run_again_is_compared_by_its_rerun() -> None:
    old = searched([100.0, 200.0], peak=200.0)
    rerun = at(200.0, **{k: old[2][k] for k in old[2] if k.startswith(("latency_", "peak_"))})
    old.append(rerun | {"latency_ms_p50": 30.0})  # the step at 200/s was invalid: run again
    new = searched([100.0, 200.0], peak=200.0)
    (row,) = [r for r in compare_reports(old, new).rows if r.label == "b1 n1 w1 @ 200/s"]
    assert row.change("latency_ms_p50").old == 30.0  # type: ignore[union-attr]
    with pytest.raises(CompareError, match=r"holds config 'b1 n1 w1 @ 200/s' .* twice"):
        compare_reports([at(200.0), at(200.0)], new)  # outside a search: a duplicate


def test_a_search_that_stopped_early_says_so() -> None:
    new = searched([100.0], peak=100.0, peak_stopped="step 2 was invalid twice")
    (peak,) = compare_reports(searched([100.0], peak=100.0), new).peaks
    assert peak.describe().endswith("; the new search stopped early: step 2 was invalid twice")


def test_peaks_show_requests_per_dollar_when_both_runs_priced_them() -> None:
    old = searched([100.0], peak=100.0, requests_per_dollar=1_000_000.0)
    new = searched([100.0], peak=100.0, requests_per_dollar=1_250_000.5)
    (peak,) = compare_reports(old, new).peaks
    assert peak.describe().endswith("; requests per dollar 1,000,000 -> 1,250,000")


def test_two_real_rate_sweeps_compare_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    from neuronperf_core.cli import main

    def load(path: str, device_id: int = 0) -> Any:
        def model(x: Any) -> Any:
            time.sleep(0.001)
            return x

        return model

    def run(name: str) -> str:
        reports = npf.benchmark(
            load, "sleeper", np.zeros((1, 4)), batch_sizes=[1], n_models=[1],
            workers_per_model=[1], arrival_rate=[50, 200], duration=1, runner="threads",
            results_dir=None, verbosity=0,
        )  # fmt: skip
        assert [r["status"] for r in reports] == ["finished", "finished"]
        return write_json(reports, tmp_path / name)

    old, new = run("old.json"), run("new.json")
    capsys.readouterr()
    assert main(["report", old, new]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("b1 n1 w1")]
    assert [row[3] for row in rows] == ["50", "200"]  # one row per rate
    for row in rows:
        assert row[5] == "->" and row[7].endswith("x")  # achieved old -> new, its ratio
    # the same seed offers the same arrivals: both runs were offered the same requests
    old_reports, new_reports = (json.loads(Path(f).read_text()) for f in (old, new))
    for o, n in zip(old_reports, new_reports, strict=True):
        assert o["total_infs"] + o["late_at_end"] == n["total_infs"] + n["late_at_end"]
    closed = write_json([report()], tmp_path / "closed.json")
    assert main(["report", closed, new]) == 2
    assert "they measure different things" in capsys.readouterr().err

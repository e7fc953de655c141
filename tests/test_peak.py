"""The peak search (``find_peak``, ``latency_bound_ms``): the algorithm driven by a fake
model whose latency grows with the rate (a known peak), how steps are judged, the options it
refuses before anything loads, ``within_bound`` without a search, and one short real search
through ``npf.benchmark`` and the command line's table."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neuronperf as npf
from neuronperf_core import uncertainty
from neuronperf_core.benchmarking import peak, stats
from neuronperf_core.benchmarking.peak import FAILED, INVALID, MET, MISSED, Bound, search
from neuronperf_core.options import OptionError
from neuronperf_core.reporting import REPORT_FIELDS
from neuronperf_core.tables import print_peak_search

# -- a fake model -------------------------------------------------------------------------


def report(rate: float | None, p99: float, **fields: Any) -> dict[str, Any]:
    """A finished, valid report of a step at ``rate`` with the given p99."""
    return {
        "status": "finished",
        "valid": True,
        "invalid_reasons": [],
        "latency_ms_p50": p99 / 2,
        "latency_ms_p99": p99,
        "late_at_end": None if rate is None else 0,
        "total_infs": int(10 * (rate or 1000)),
        "batch_size": 1,
        "throughput_avg": rate,
        **fields,
    }


class Fake:
    """A model whose p99 is 1 ms + rate / 100 ms: within a bound B up to 100 (B - 1) /s.
    Records each (rate, scale) it is asked for."""

    def __init__(self, served: float = 2000.0) -> None:
        self.asked: list[tuple[float | None, float]] = []
        self.served = served

    def p99(self, rate: float) -> float:
        return 1.0 + rate / 100

    def __call__(self, rate: float | None, scale: float) -> dict[str, Any] | None:
        self.asked.append((rate, scale))
        if rate is None:  # the closed-loop probe
            return report(None, 5.0, throughput_avg=self.served * 4, batch_size=4)
        return report(rate, self.p99(rate))

    @property
    def rates(self) -> list[float | None]:
        return [rate for rate, _ in self.asked]


TRUE_PEAK = 730.0  # p99 = 1 + 730 / 100 = 8.3 ms
BOUND = Bound(8.3)


def check_found(found: peak.Peak) -> None:
    """The peak is a rate that met the bound, no more than TOLERANCE below the true peak,
    and the lowest rate that missed is above the true peak."""
    assert found.stopped is None
    assert found.rate is not None and found.missed is not None
    assert found.rate <= TRUE_PEAK < found.missed
    assert found.missed - found.rate <= peak.TOLERANCE * found.rate
    assert (TRUE_PEAK - found.rate) / TRUE_PEAK <= peak.TOLERANCE
    step = found.peak_step
    assert step is not None and step.met and step.rate == found.rate


def test_a_search_from_below_doubles_until_a_rate_misses_then_bisects() -> None:
    fake = Fake()
    found = search(fake, BOUND, start=100)
    assert fake.rates[:4] == [100, 200, 400, 800]  # 800 misses: the bracket is 400..800
    assert all(400 < r < 800 for r in fake.rates[4:] if r is not None)
    assert all(scale == 1.0 for _, scale in fake.asked)
    check_found(found)
    assert [s.number for s in found.steps] == list(range(1, len(fake.rates) + 1))


def test_a_search_from_above_halves_until_a_rate_meets() -> None:
    fake = Fake()
    found = search(fake, BOUND, start=5000)
    assert fake.rates[:4] == [5000, 2500, 1250, 625]  # 625 meets: the bracket is 625..1250
    check_found(found)


def test_without_a_start_a_closed_loop_probe_sets_it_to_half_of_what_it_served() -> None:
    fake = Fake(served=1500)  # throughput 6000 records/s at batch 4: 1500 calls/s
    seen: list[peak.Step] = []
    found = search(fake, BOUND, on_step=seen.append)
    assert fake.asked[0] == (None, 1.0)
    assert fake.rates[1] == 750.0  # half of 1500 calls/s; misses (p99 8.5 ms)
    assert fake.rates[2] == 375.0
    assert found.steps[0].number == 0 and found.steps[0].rate is None
    assert seen == found.steps  # each step heard of as it was judged
    check_found(found)


def test_an_invalid_step_runs_again_for_twice_the_duration() -> None:
    fake = Fake()

    def measure(rate: float | None, scale: float) -> dict[str, Any] | None:
        got = fake(rate, scale)
        if rate == 200 and scale == 1.0:  # the first run at 200/s was too noisy
            return {**got, "valid": False, "invalid_reasons": ["not stable"]}  # type: ignore[dict-item]
        return got

    found = search(measure, BOUND, start=100)
    assert fake.asked[:3] == [(100, 1.0), (200, 1.0), (200, 2.0)]
    assert [s.outcome for s in found.steps[:3]] == [MET, INVALID, MET]
    assert found.steps[1].why == "invalid: not stable"
    check_found(found)


def test_a_step_invalid_twice_stops_the_search_and_says_why() -> None:
    fake = Fake()

    def measure(rate: float | None, scale: float) -> dict[str, Any] | None:
        got = fake(rate, scale)
        if rate is not None and rate >= 400:
            reasons = ["busy machine: other processes used 40% of its CPU time (more than 10%)"]
            return {**got, "valid": False, "invalid_reasons": reasons}  # type: ignore[dict-item]
        return got

    found = search(measure, Bound(100.0), start=100)  # every rate within: 400 cannot be judged
    assert fake.asked == [(100, 1.0), (200, 1.0), (400, 1.0), (400, 2.0)]
    assert found.stopped is not None
    assert found.stopped.startswith("the step at 400/s was invalid: busy machine")
    assert found.stopped.endswith("again when run for 2x the duration")
    assert found.rate == 200 and found.missed is None  # the best it showed, said to be early


def test_a_search_stopped_by_unstable_steps_suggests_a_wider_tolerance() -> None:
    def unstable(rate: float | None, scale: float) -> dict[str, Any] | None:
        reasons = ["not stable: last 3 of 10 windows within 2% (throughput) and 40% (p50)"]
        return {**report(rate, 2.0), "valid": False, "invalid_reasons": reasons,
                "stability_pct": 10.0}  # fmt: skip

    found = search(unstable, BOUND, start=100)
    assert found.stopped is not None and found.stopped.endswith(
        "a wider tolerance (stability_pct=20, say) lets steps be judged"
    )


def test_a_step_invalid_twice_above_the_bound_misses() -> None:
    fake = Fake()

    def measure(rate: float | None, scale: float) -> dict[str, Any] | None:
        got = fake(rate, scale)
        if rate is not None and rate >= 800:  # at the edge of what it serves: never stable
            reasons = ["not stable: last 3 of 10 windows within 3% (throughput) and 700% (p50)"]
            return {**got, "valid": False, "invalid_reasons": reasons}  # type: ignore[dict-item]
        return got

    found = search(measure, BOUND, start=100)
    assert fake.asked[:5] == [(100, 1.0), (200, 1.0), (400, 1.0), (800, 1.0), (800, 2.0)]
    assert [s.outcome for s in found.steps[3:5]] == [INVALID, MISSED]
    assert found.steps[4].why.startswith("p99 9 ms > 8.3 ms, in a run invalid again (not stable")
    check_found(found)


def test_the_search_stops_at_the_step_cap_and_says_so() -> None:
    fake = Fake()
    found = search(fake, BOUND, start=100, tolerance=1e-9, max_steps=6)
    assert len(fake.asked) == 6
    assert found.stopped is not None and found.stopped.startswith("the step cap (6) was reached")
    assert found.rate is not None and found.rate <= TRUE_PEAK < found.missed  # type: ignore[operator]


def test_a_failed_or_interrupted_step_ends_the_search() -> None:
    def failing(rate: float | None, scale: float) -> dict[str, Any] | None:
        return {**report(rate, 2.0), "status": "error", "error": "RuntimeError: boom"}

    found = search(failing, BOUND, start=100)
    assert [s.outcome for s in found.steps] == [FAILED]
    assert found.stopped == "the step at 100/s did not finish (error: RuntimeError: boom)"

    calls: list[float | None] = []

    def stopped(rate: float | None, scale: float) -> dict[str, Any] | None:
        calls.append(rate)
        return report(rate, 2.0) if len(calls) < 2 else None  # Ctrl-C during the second

    found = search(stopped, BOUND, start=100)
    assert found.stopped == peak.INTERRUPTED and found.rate == 100


def test_no_rate_within_the_bound_is_said() -> None:
    found = search(Fake(), Bound(0.5), start=100, max_steps=4)  # p99 is never under 1 ms
    assert found.rate is None and found.peak_step is None
    assert found.stopped is not None and "no rate met the bound" in found.stopped


def test_a_step_whose_queue_grew_misses_however_short_its_latency() -> None:
    # 2% of the requests offered were still queued at the end: no steady p99 to judge
    behind = report(500, 2.0, late_at_end=100, total_infs=4900)
    assert BOUND.judge(behind)[0] == MISSED and "fell behind" in BOUND.judge(behind)[1]
    kept_up = report(500, 2.0, late_at_end=40, total_infs=4960)  # 0.8%: kept up
    assert BOUND.judge(kept_up) == (MET, "p99 2 ms <= 8.3 ms")
    assert BOUND.judge(report(500, 9.0))[0] == MISSED
    p50 = Bound(8.3, 50)  # the bound may hold another percentile
    assert p50.field == "latency_ms_p50" and p50.judge(report(500, 9.0))[0] == MET
    # an overload misses, though its report is invalid (its latency grew: not stable)
    overload = report(900, 50.0, late_at_end=300, total_infs=8700, valid=False)
    assert BOUND.judge(overload)[0] == MISSED
    assert BOUND.judge(report(500, 2.0, valid=False))[0] == INVALID  # run it again
    assert BOUND.within(report(500, 2.0, valid=False)) is False  # not shown to hold
    assert BOUND.within({"status": "error"}) is None  # nothing measured to judge


def test_the_step_fields_are_report_fields() -> None:
    from neuronperf_core.reporting import PEAK_FIELDS

    assert set(PEAK_FIELDS) <= set(REPORT_FIELDS)
    fake = Fake()
    found = search(fake, BOUND, start=100)
    fields = [
        {**peak.step_fields(s, BOUND), **peak.result_fields(found, s, cost_per_hour=3.6)}
        for s in found.steps
    ]
    assert {f for step in fields for f in step} == set(PEAK_FIELDS)
    top = [f for f in fields if f["is_peak"]]
    assert len(top) == 1 and top[0]["requests_per_dollar"] == pytest.approx(found.rate * 1000)  # type: ignore[operator]
    assert all(f["peak_rate"] == found.rate for f in fields)
    assert [f["within_bound"] for f in fields] == [s.met for s in found.steps]


# -- options: refused before anything loads -----------------------------------------------


def never_loaded(_: str, device_id: int = 0) -> Any:
    raise AssertionError("nothing may load before the options are checked")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"find_peak": True}, "pass the bound, in milliseconds, e.g. latency_bound_ms=20."),
        ({"latency_bound_ms": 20, "duration": 0}, "a run shorter than 10 s is never valid"),
        ({"latency_bound_ms": 20, "duration": 5}, "Pass duration=10 or more"),
        ({"latency_bound_ms": 20, "arrival_rate": [10, 20]}, "names several: pass one"),
        ({"latency_bound_ms": 20, "max_infers": 100}, "max_infers=100 would end steps early"),
        ({"latency_bound_ms": 0}, "latency_bound_ms must be milliseconds above 0"),
        ({"latency_bound_ms": 20, "latency_percentile": 97}, "must be one of 50, 90, 95, 99"),
        ({"find_peak": "yes"}, "find_peak must be True, False or None"),
    ],
)
def test_a_search_it_cannot_run_is_refused_before_anything_loads(
    options: dict[str, Any], message: str
) -> None:
    settings = {"duration": 10, "results_dir": None, "verbosity": 0, **options}
    with pytest.raises(OptionError, match=re.escape(message)):
        npf.benchmark(never_loaded, "m", np.zeros((1, 4)), batch_sizes=[1], **settings)


def test_evaluate_takes_no_latency_bound() -> None:
    rows = [(np.zeros((1, 4)), np.zeros(1))]
    for given in ({"latency_bound_ms": 20}, {"find_peak": True, "latency_bound_ms": 20}):
        with pytest.raises(OptionError, match="apply to benchmark only"):
            npf.evaluate(never_loaded, "m", rows, metrics="accuracy", **given)


# -- real runs ----------------------------------------------------------------------------


def sleeper(_: str, device_id: int = 0) -> Callable[[Any], Any]:
    def model(x: Any) -> Any:
        time.sleep(0.001)
        return x

    return model


@pytest.fixture
def short_valid_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps of a second and a half can be valid (the p99 intervals need 368 samples), on a
    machine shared with other jobs: what these tests check is the search's wiring, not this
    machine's quiet (each rule has its own tests). Stability too: on a loaded CI machine a
    1 ms model's window p50s were once 197 % apart."""
    monkeypatch.setattr(uncertainty, "MIN_VALID_DURATION_S", 0.0)
    monkeypatch.setattr(stats, "BUSY_SHARE", 1.0)
    judged = uncertainty.stability

    def always_stable(w: Any, tolerance: float, open_loop: bool = False) -> tuple[bool, str]:
        return True, judged(w, tolerance, open_loop)[1]

    monkeypatch.setattr(uncertainty, "stability", always_stable)


QUICK = {
    "batch_sizes": [1],
    "n_models": [1],
    "workers_per_model": [1],
    "runner": "threads",
    "window_s": 0.4,  # three windows in a step of 1.5 s
    "verbosity": 0,
}


def test_a_bound_without_a_search_marks_each_report(short_valid_runs: None) -> None:
    reports = npf.benchmark(
        sleeper, "sleeper", np.zeros((1, 4)), arrival_rate=[400, 500], latency_bound_ms=200,
        latency_percentile=95, find_peak=False, duration=1.5, results_dir=None, **QUICK,
    )  # fmt: skip
    assert [r["arrival_rate"] for r in reports] == [400, 500]  # the rates given, no search
    for r in reports:
        assert r["latency_bound_ms"] == 200 and r["latency_percentile"] == 95
        assert r["valid"] is True, r["invalid_reasons"]
        # a 1 ms model at half load, far within 200 ms
        assert r["within_bound"] is True, (r["latency_ms_p95"], r["late_at_end"])
        assert r["peak_step"] is None and r["peak_rate"] is None and r["is_peak"] is None


def test_a_real_search_runs_its_steps_as_configs_and_writes_each(
    short_valid_runs: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(peak, "TOLERANCE", 0.25)  # a few steps are enough to check the wiring
    results = tmp_path / "peak.json"
    reports = npf.benchmark(
        sleeper, "sleeper", np.zeros((1, 4)), latency_bound_ms=10, duration=1.5,
        cost_per_hour=3.6, results_file=results, **QUICK,
    )  # fmt: skip
    assert [r["peak_step"] for r in reports] == list(range(len(reports)))  # the probe first
    probe, *steps = reports
    assert probe["arrival_rate"] is None and probe["offered_rate"] is None  # a closed loop
    served = probe["throughput_avg"]
    assert steps[0]["arrival_rate"] == pytest.approx(served / 2)
    assert all(r["status"] == "finished" and r["latency_bound_ms"] == 10 for r in reports)
    # a 1 ms sleep serves at most 1000/s: twice what the probe served misses
    (top,) = [r for r in reports if r["is_peak"]]
    assert top["within_bound"] is True and top["latency_ms_p99"] <= 10
    assert top["arrival_rate"] == top["peak_rate"] < 1000
    assert top["requests_per_dollar"] == pytest.approx(top["peak_rate"] * 1000)
    above = [r for r in steps if r["arrival_rate"] > top["peak_rate"]]
    assert above and not any(r["within_bound"] for r in above)
    assert reports[0]["peak_stopped"] is None  # the bracket closed
    # every step is in the results file, with its marks
    written = json.loads(results.read_text())
    written = written["reports"] if isinstance(written, dict) else written
    assert [r["peak_step"] for r in written] == [r["peak_step"] for r in reports]
    assert [r["is_peak"] for r in written] == [r["is_peak"] for r in reports]
    # the table the command line prints, which npf.print_reports prints too
    out = io.StringIO()
    print_peak_search(reports, file=out)
    same = io.StringIO()
    npf.print_reports(reports, file=same)
    assert same.getvalue() == out.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:6] == ["step", "rate/s", "offered/s", "achieved/s", "late", "p99"]
    assert lines[2].split()[:2] == ["0", "probe"] and "<- peak" in out.getvalue()
    assert lines[-1].startswith(f"peak (b1 n1 w1): {top['peak_rate']:.4g} requests/s, p99 ")


# -- the command line ---------------------------------------------------------------------

DOUBLE = Path(__file__).with_name("cli_framework_double.py")


@pytest.fixture
def neuronperf(fake_site: Any, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`python -m neuronperf ...` in a folder holding a compiled model of the framework
    double (``tests/cli_framework_double.py``, as tests/test_cli.py runs it)."""
    fake_site.add_dist(
        "npf-scale-double", "1.0", {"scale": "cli_framework_double"},
        {"cli_framework_double": DOUBLE.read_text()},
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(fake_site.root)}
    env.pop("NEURONPERF_DISABLE_PLUGINS", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "neuronperf", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    made = run("compile", "cli_framework_double:make_model", "--input-shape", "1x4",
               "--batch-sizes", "1", "--out", "models")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return run


def test_on_the_command_line_only_find_peak_searches(neuronperf: Any) -> None:
    # --slo-ms alone marks each report: the rates given are swept, however short the run
    # (a search would refuse 0.3 s steps, which can never be valid)
    quick = ["--duration", "0.3", "--n-models", "1", "--workers-per-model", "1"]
    swept = neuronperf("benchmark", "models/make_model.json", "--slo-ms", "1000",
                       "--arrival-rate", "50,100", *quick, "--json")  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    reports = json.loads(swept.stdout)["reports"]
    assert [r["arrival_rate"] for r in reports] == [50, 100]
    for r in reports:
        assert r["latency_bound_ms"] == 1000 and r["peak_step"] is None
        assert r["valid"] is False and r["within_bound"] is False  # 0.3 s: not shown to hold
    # --find-peak searches, so it needs a bound and steps that can be valid: said in flags
    refused = neuronperf("benchmark", "models/make_model.json", "--find-peak", *quick)
    assert refused.returncode == 2
    assert "pass the bound, in milliseconds, e.g. --slo-ms 20." in refused.stderr
    refused = neuronperf("benchmark", "models/make_model.json", "--find-peak", "--slo-ms", "20",
                         *quick)  # fmt: skip
    assert refused.returncode == 2 and "Pass --duration 10 or more" in refused.stderr

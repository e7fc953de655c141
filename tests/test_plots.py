"""plots: config labels, the PNG plot_reports writes, and its errors."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neuronperf as npf
from neuronperf_core import plots
from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.plots import DPI, FIGSIZE_IN, PlotError, config_label, plot_reports

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPECTED_SIZE = (1200, 500)


def report(**fields: Any) -> dict[str, Any]:
    """A finished report with the fields plots read; ``fields`` override them."""
    out: dict[str, Any] = {
        "model_name": "m",
        "device_type": "cpu",
        "status": "finished",
        "error": None,
        "batch_size": 8,
        "n_models": 2,
        "workers_per_model": 4,
        "pipeline_size": 1,
        "cast_mode": None,
        "throughput_avg": 1000.0,
        "throughput_peak": 1100.0,
        "latency_ms_p0": 1.0,
        "latency_ms_p50": 2.0,
        "latency_ms_p90": 3.0,
        "latency_ms_p95": 3.5,
        "latency_ms_p99": 5.0,
        "latency_ms_p100": 9.0,
        "latency_ms_avg": 2.2,
        "latency_ms_std": 0.8,
        "latency_samples": 1000,
    }
    out.update(fields)
    return out


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which PNG requires to come first."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def matplotlib() -> Any:
    return pytest.importorskip("matplotlib")


# -- labels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({}, "b8 n2 w4"),
        ({"pipeline_size": 2}, "b8 n2 w4 p2"),
        ({"cast_mode": "fp16"}, "b8 n2 w4 fp16"),
        ({"pipeline_size": 3, "cast_mode": "bf16"}, "b8 n2 w4 p3 bf16"),
        ({"pipeline_size": None, "cast_mode": ""}, "b8 n2 w4"),
        ({"batch_size": None}, "b? n2 w4"),
    ],
)
def test_config_label(fields: dict[str, Any], label: str) -> None:
    assert config_label(report(**fields)) == label


def test_equal_labels_are_told_apart_by_model_then_device_then_number() -> None:
    reports = [
        report(model_name="a"),
        report(model_name="b"),
        report(batch_size=1, device_type="cpu"),
        report(batch_size=1, device_type="cuda"),
        report(batch_size=2),
        report(batch_size=2),
        report(batch_size=4),
    ]
    assert plots._distinct_labels(reports) == [
        "b8 n2 w4 a",
        "b8 n2 w4 b",
        "b1 n2 w4 cpu",
        "b1 n2 w4 cuda",
        "b2 n2 w4 #1",
        "b2 n2 w4 #2",
        "b4 n2 w4",
    ]


def test_log_scale_only_for_a_spread_over_100_and_positive_values() -> None:
    assert not plots._log_scale_fits([1.0, 100.0])
    assert plots._log_scale_fits([1.0, 100.5])
    assert not plots._log_scale_fits([0.0, 1000.0])  # a log axis cannot show 0


# -- the PNG --------------------------------------------------------------------------


def test_size_constants_make_1200_by_500_pixels() -> None:
    assert (FIGSIZE_IN[0] * DPI, FIGSIZE_IN[1] * DPI) == EXPECTED_SIZE


def test_writes_a_png_of_the_documented_size(matplotlib: Any, tmp_path: Path) -> None:
    reports = [
        report(),
        report(batch_size=1, pipeline_size=2, cast_mode="fp16", throughput_avg=300.0),
        # a spread over 100: the log-scale branch is drawn too
        report(batch_size=64, latency_ms_p50=50.0, latency_ms_p99=400.0, latency_ms_p100=900.0),
    ]
    target = tmp_path / "plot.png"
    assert plot_reports(reports, target, title="a title") == os.fspath(target)
    assert png_size(target) == EXPECTED_SIZE
    assert plot_reports(reports, str(target)) == str(target)  # str filenames too


def figure_of(reports: list[dict[str, Any]]) -> Any:
    """The figure plot_reports would save, to look into."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kept = [row for i, r in enumerate(reports) if (row := plots._row(r, i)) is not None]
    return plots._figure(kept, None, Figure, FigureCanvasAgg)


def sweep() -> list[dict[str, Any]]:
    """Batch sizes 1, 8, 32 x copies 1, 2 x workers 1, 2, the small batches crowded
    together near the origin as a tiny model's are."""
    return [
        report(
            batch_size=b, n_models=n, workers_per_model=w,
            throughput_avg=30000.0 * b**0.3 * n * (1 + 0.1 * w),
            latency_ms_p50=0.015 + 0.0003 * b + 0.0001 * w,
            latency_ms_p99=0.03 + 0.02 * b, latency_ms_p100=0.5,
        )
        for b in (1, 8, 32) for n in (1, 2) for w in (1, 2)
    ]  # fmt: skip


def test_throughput_axis_says_what_and_in_which_unit(matplotlib: Any) -> None:
    throughput_axes = figure_of(sweep()).axes[0]
    assert throughput_axes.get_ylabel() == "average throughput (inferences per second)"
    assert throughput_axes.get_xlabel() == "latency (ms)"


def test_lines_join_configs_that_differ_in_batch_size_or_copies(matplotlib: Any) -> None:
    throughput_axes = figure_of(sweep()).axes[0]
    lines = [line for line in throughput_axes.get_lines() if len(line.get_xdata()) >= 2]
    solid = [line for line in lines if line.get_linestyle() == "-" and line.get_linewidth() > 1]
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert len(solid) == 4 and all(len(line.get_xdata()) == 3 for line in solid)  # n x w
    assert len(dashed) == 6 and all(len(line.get_xdata()) == 2 for line in dashed)  # b x w
    # a batch-size line runs through its configs in order of batch size
    (first,) = [line for line in solid if line.get_ydata()[0] == sweep()[0]["throughput_avg"]]
    assert list(first.get_ydata()) == [r["throughput_avg"] for r in sweep()[:12:4]]
    legend = [t.get_text() for t in throughput_axes.get_legend().get_texts()]
    assert {"n1 w1", "n2 w2", "batch size grows", "copies grow"} <= set(legend)


def test_point_labels_do_not_overlap(matplotlib: Any) -> None:
    figure = figure_of(sweep())
    renderer = figure.canvas.get_renderer()
    notes = [t for t in figure.axes[0].texts if t.get_text().startswith("b")]
    assert sorted(t.get_text() for t in notes) == sorted(["b1", "b8", "b32"] * 4)
    boxes = [t.get_window_extent(renderer) for t in notes]
    overlapping = [
        (notes[i].get_text(), notes[j].get_text())
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if plots._overlap(boxes[i], boxes[j]) > 0
    ]
    assert overlapping == []


def test_reports_without_optional_percentiles_still_plot(matplotlib: Any, tmp_path: Path) -> None:
    minimal = report(
        latency_ms_p0=None, latency_ms_p90=None, latency_ms_p95=None, latency_ms_p100=None
    )
    target = tmp_path / "plot.png"
    plot_reports([minimal], target)
    assert png_size(target) == EXPECTED_SIZE


def test_unfinished_or_unmeasured_configs_are_left_out(matplotlib: Any, tmp_path: Path) -> None:
    finished = report()
    left_out = [
        report(batch_size=1, status="error", error="boom"),
        report(batch_size=2, status="killed"),
        report(batch_size=4, throughput_avg=None),
        report(batch_size=16, latency_ms_p99=None),
        report(batch_size=32, latency_ms_p50=float("nan")),
    ]
    alone, with_others = tmp_path / "alone.png", tmp_path / "with_others.png"
    plot_reports([finished], alone)
    plot_reports([*left_out, finished], with_others)
    # Agg renders deterministically: the same figure, the same bytes.
    assert alone.read_bytes() == with_others.read_bytes()


def test_the_write_replaces_an_old_file_and_leaves_no_temp_file(
    matplotlib: Any, tmp_path: Path
) -> None:
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    plot_reports([report()], target)
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    assert os.listdir(tmp_path) == ["plot.png"]


def test_a_failed_write_keeps_the_old_file(
    matplotlib: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")

    def fail(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(plots.os, "replace", fail)
    with pytest.raises(PlotError, match=r"cannot write the plot to .*disk full"):
        plot_reports([report()], target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["plot.png"]


def test_real_benchmark_reports_plot(matplotlib: Any, tmp_path: Path) -> None:
    reports = npf.cpu.benchmark(
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
    assert [r["status"] for r in reports] == ["finished", "finished"]
    target = tmp_path / "real.png"
    plot_reports(reports, target)
    assert png_size(target) == EXPECTED_SIZE


# -- errors ---------------------------------------------------------------------------


def test_no_finished_config_is_an_error(tmp_path: Path) -> None:
    reports = [report(status="error", error="boom"), report(throughput_avg=None)]
    with pytest.raises(PlotError, match="No finished configs to plot: of 2 report"):
        plot_reports(reports, tmp_path / "plot.png")
    with pytest.raises(PlotError, match="No finished configs"):
        plot_reports([], tmp_path / "plot.png")
    assert not (tmp_path / "plot.png").exists()


def test_missing_matplotlib_is_an_error_that_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes an import fail; submodules too, or a cached one would import.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotError) as caught:
        plot_reports([report()], tmp_path / "plot.png")
    assert str(caught.value) == "plotting needs matplotlib: pip install 'neuronperf-core[plot]'"
    assert isinstance(caught.value, NeuronPerfError)
    assert isinstance(caught.value, ValueError)


def test_a_missing_folder_is_an_error_that_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such"
    with pytest.raises(PlotError, match=re.escape(f"the folder {str(folder)!r} does not exist")):
        plot_reports([report()], folder / "plot.png")
    assert not (tmp_path / "no").exists()


def test_one_report_instead_of_a_list_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PlotError, match=r"wrap it in a list"):
        plot_reports(report(), tmp_path / "plot.png")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reports", "message"),
    [
        ([("not", "a", "dict")], r"reports\[0\] is not a report dict: got tuple"),
        ([report(throughput_avg="12.5")], r"reports\[0\]\['throughput_avg'\] is '12.5'"),
        ([report(), report(latency_ms_p50=True)], r"reports\[1\]\['latency_ms_p50'\] is True"),
    ],
)
def test_malformed_reports_are_errors(tmp_path: Path, reports: list[Any], message: str) -> None:
    with pytest.raises(PlotError, match=message):
        plot_reports(reports, tmp_path / "plot.png")


def test_importing_neuronperf_does_not_import_matplotlib() -> None:
    code = (
        "import sys, neuronperf, neuronperf_core.plots, neuronperf_core.compare; "
        "sys.exit(3 if 'matplotlib' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr or "matplotlib was imported"


# -- a rate sweep ---------------------------------------------------------------------


def at(rate: float, **fields: Any) -> dict[str, Any]:
    """An open-loop report of b8 n2 w4 offered ``rate`` requests per second, its latency
    growing with the rate; ``fields`` override."""
    open_loop = {
        "arrival_rate": rate,
        "arrivals": "poisson",
        "offered_rate": rate * 0.98,  # Poisson arrivals: a little off what was asked
        "achieved_rate": min(rate * 0.98, 500.0),
        "late_at_end": 0,
        "latency_ms_p50": 1.0 + rate / 100,
        "latency_ms_p90": 2.0 + rate / 50,
        "latency_ms_p99": 3.0 + rate / 20,
    }
    return report(**(open_loop | fields))


def rate_sweep() -> list[dict[str, Any]]:
    """Two configs, each at three rates (given out of order); b8 peaks at 400/s under a
    30 ms p99 bound."""
    search = {"latency_bound_ms": 30.0, "latency_percentile": 99, "peak_rate": 400.0}
    return [
        report(**search, peak_step=0, is_peak=False),  # the closed-loop probe: not drawn
        at(800.0, **search, peak_step=1, within_bound=False, is_peak=False),
        at(100.0, **search, peak_step=2, within_bound=True, is_peak=False),
        at(400.0, **search, peak_step=3, within_bound=True, is_peak=True),
        *(at(rate, batch_size=1, offered_rate=rate) for rate in (100.0, 400.0, 800.0)),
    ]


def lines_of(axes: Any, style: str, colour: Any = None) -> list[Any]:
    from matplotlib.colors import same_color

    return [
        line
        for line in axes.get_lines()
        if line.get_linestyle() == style
        and line.get_marker() == "o"
        and (colour is None or same_color(line.get_color(), colour))
    ]


def test_a_rate_sweep_draws_latency_percentiles_against_the_offered_rate(matplotlib: Any) -> None:
    latency_axes = figure_of(rate_sweep()).axes[0]
    assert latency_axes.get_xlabel() == "offered rate (requests per second)"
    assert latency_axes.get_ylabel() == "latency (ms), from each request's arrival"
    assert latency_axes.get_xlim()[0] == latency_axes.get_ylim()[0] == 0  # linear, from 0
    for p, style in ((50, ":"), (90, "--"), (99, "-")):
        # one line per config, in order of rate, at the offered rate (not the one asked for)
        b8, b1 = lines_of(latency_axes, style)
        assert list(b8.get_xdata()) == [98.0, 392.0, 784.0]
        assert list(b8.get_ydata()) == [at(r)[f"latency_ms_p{p}"] for r in (100.0, 400.0, 800.0)]
        assert list(b1.get_xdata()) == [100.0, 400.0, 800.0]
        assert b1.get_color() != b8.get_color()
    legend = [t.get_text() for t in latency_axes.get_legend().get_texts()]
    assert legend == [
        "b8 n2 w4", "b1 n2 w4", "p50", "p90", "p99", "bound: p99 <= 30 ms",
        "peak within the bound",
    ]  # fmt: skip


def test_a_search_step_run_again_is_drawn_by_its_rerun(matplotlib: Any) -> None:
    reports = rate_sweep()
    reports.insert(1, at(800.0, peak_step=1, latency_ms_p99=999.0))  # invalid, then run again
    b8, _ = lines_of(figure_of(reports).axes[0], "-")
    assert list(b8.get_xdata()) == [98.0, 392.0, 784.0]
    assert b8.get_ydata()[-1] == at(800.0)["latency_ms_p99"]  # the rerun's
    plain = [at(800.0, latency_ms_p99=999.0), at(800.0)]  # outside a search: both drawn
    (p99,) = lines_of(figure_of(plain).axes[0], "-")
    assert sorted(p99.get_ydata()) == [at(800.0)["latency_ms_p99"], 999.0]


def test_the_offered_rate_falls_back_to_the_rate_asked_for(matplotlib: Any) -> None:
    reports = [at(rate, offered_rate=None) for rate in (100.0, 200.0)]
    (p99,) = lines_of(figure_of(reports).axes[0], "-")
    assert list(p99.get_xdata()) == [100.0, 200.0]


def test_the_bound_is_a_line_and_the_peak_is_marked(matplotlib: Any) -> None:
    latency_axes, achieved_axes = figure_of(rate_sweep()).axes
    (bound,) = [line for line in latency_axes.get_lines() if line.get_linestyle() == "-."]
    assert list(bound.get_ydata()) == [30.0, 30.0]
    (star,) = [line for line in latency_axes.get_lines() if line.get_marker() == "*"]
    assert (list(star.get_xdata()), list(star.get_ydata())) == (
        [392.0],
        [at(400.0)["latency_ms_p99"]],
    )
    assert [t.get_text() for t in latency_axes.texts] == ["peak 400/s"]
    (star,) = [line for line in achieved_axes.get_lines() if line.get_marker() == "*"]
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([392.0], [392.0])
    # a plain sweep has neither
    plain = figure_of([at(100.0), at(400.0)]).axes[0]
    assert not [line for line in plain.get_lines() if line.get_marker() == "*"]
    assert not [line for line in plain.get_lines() if line.get_linestyle() == "-."]
    assert "bound" not in " ".join(t.get_text() for t in plain.get_legend().get_texts())


def test_a_peak_of_a_percentile_the_report_lacks_is_marked_on_the_bound(matplotlib: Any) -> None:
    search = {"latency_bound_ms": 30.0, "latency_percentile": 99.9}
    reports = [at(100.0, **search, is_peak=True), at(400.0, **search, is_peak=False)]
    latency_axes = figure_of(reports).axes[0]
    (star,) = [line for line in latency_axes.get_lines() if line.get_marker() == "*"]
    assert list(star.get_ydata()) == [30.0]
    legend = [t.get_text() for t in latency_axes.get_legend().get_texts()]
    assert "bound: p99.9 <= 30 ms" in legend


def test_the_achieved_rate_is_drawn_against_the_offered_rate(matplotlib: Any) -> None:
    achieved_axes = figure_of(rate_sweep()).axes[1]
    assert achieved_axes.get_ylabel() == "achieved rate (requests per second)"
    b8 = next(line for line in lines_of(achieved_axes, "-") if line.get_label() == "b8 n2 w4")
    assert list(b8.get_xdata()) == [98.0, 392.0, 784.0]
    assert list(b8.get_ydata()) == [98.0, 392.0, 500.0]  # it falls behind at 800/s
    (equal,) = [line for line in achieved_axes.get_lines() if line.get_linestyle() == "--"]
    assert list(equal.get_xdata()) == list(equal.get_ydata()) == [98.0, 800.0]  # all rates


def test_configs_alike_but_for_their_arrivals_are_named_by_them(matplotlib: Any) -> None:
    reports = [at(100.0), at(100.0, arrivals="constant"), at(200.0, arrivals="constant")]
    legend = [t.get_text() for t in figure_of(reports).axes[0].get_legend().get_texts()]
    assert legend[:2] == ["b8 n2 w4 poisson", "b8 n2 w4 constant"]


def test_a_rate_sweep_writes_a_png_of_the_documented_size(matplotlib: Any, tmp_path: Path) -> None:
    reports = [*rate_sweep(), at(5000.0, latency_ms_p99=900.0)]  # log axes too
    target = tmp_path / "sweep.png"
    plot_reports(reports, target)
    assert png_size(target) == EXPECTED_SIZE


def test_closed_and_open_loop_reports_in_one_plot_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(PlotError, match="mix closed-loop configs and open-loop ones"):
        plot_reports([report(), at(100.0)], tmp_path / "plot.png")
    assert not (tmp_path / "plot.png").exists()


def test_a_real_rate_sweep_plots(matplotlib: Any, tmp_path: Path) -> None:
    import time

    def load(path: str, device_id: int = 0) -> Any:
        def model(x: Any) -> Any:
            time.sleep(0.001)
            return x

        return model

    reports = npf.benchmark(
        load, "sleeper", np.zeros((1, 4)), batch_sizes=[1], n_models=[1], workers_per_model=[1],
        arrival_rate=[50, 200], duration=1, runner="threads", results_dir=None, verbosity=0,
    )  # fmt: skip
    assert [r["status"] for r in reports] == ["finished", "finished"]
    (p99,) = lines_of(figure_of(reports).axes[0], "-")
    assert list(p99.get_xdata()) == sorted(r["offered_rate"] for r in reports)
    target = tmp_path / "real.png"
    plot_reports(reports, target)
    assert png_size(target) == EXPECTED_SIZE

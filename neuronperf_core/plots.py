"""Reports -> one PNG with two panels: throughput against latency, and latency percentiles.

``plot_reports`` draws only configs whose status is "finished" and that have
``throughput_avg``, ``latency_ms_p50`` and ``latency_ms_p99``:

- left, "which config do I deploy": average throughput (y, inferences per second)
  against latency (x, ms); each config is a filled marker at its p50 latency and a
  hollow one at its p99, joined by a thin line. Configs that differ only in batch
  size share a colour and a solid line (in order of batch size), and configs that
  differ only in copies (``n_models``) a dashed one, so how throughput scales is
  seen at a glance; the legend names each colour's config less its batch size, and
  each point is labelled with its batch size ("b8"), placed where it overlaps no
  other label.
- right: each config's latency percentiles as one row: a thin line from p0 to
  p100, a thick bar from p50 to p99, a tick at p50. These are the percentiles
  the report holds, not a histogram of the samples.

A rate sweep (open-loop reports: ``arrival_rate`` set) draws instead, also in two panels:

- left: latency p50 (dotted), p90 (dashed) and p99 (solid) against the offered rate
  (``offered_rate``, else ``arrival_rate``), one colour per config; a peak search's latency
  bound (``latency_bound_ms``) as a red dash-dot line, and its peak (the report with
  ``is_peak``) as a star on the searched percentile, labelled with its rate.
- right: the achieved rate against the offered rate, beside the line where they are
  equal: where a config falls below it, requests queue faster than it serves them.

Closed-loop and open-loop reports measure different things: one plot of both is an error.
A peak search's closed-loop probe (``peak_step`` 0) has no rate and is left out of its
plot; a step the search ran again is drawn by its rerun.

The latency axes (and the rate axes) turn logarithmic when the largest value shown is more
than ``LOG_SCALE_SPREAD`` times the smallest.

matplotlib is imported only when a plot is drawn (``pip install
'neuronperf-core[plot]'``), so ``import neuronperf`` stays light. The figure is
drawn with matplotlib's object API and the Agg canvas, never pyplot: no global
backend state, no display needed, safe from threads.
"""

from __future__ import annotations

import io
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.files import atomic_write
from neuronperf_core.report_fields import PERCENTILES, config_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

__all__ = [
    "DPI",
    "FIGSIZE_IN",
    "LOG_SCALE_SPREAD",
    "PlotError",
    "config_label",
    "plot_reports",
]

FIGSIZE_IN: Final[tuple[float, float]] = (12.0, 5.0)
"""Figure size in inches (width, height); at ``DPI`` the PNG is 1200 x 500 pixels."""
DPI: Final[int] = 100
LOG_SCALE_SPREAD: Final[float] = 100.0
"""A latency axis is logarithmic when max / min of what it shows exceeds this."""

_INSTALL_HINT = "plotting needs matplotlib: pip install 'neuronperf-core[plot]'"


class PlotError(NeuronPerfError, ValueError):
    """Nothing to plot, matplotlib missing, or a file that cannot be written where asked."""


def plot_reports(
    reports: Sequence[Mapping[str, Any]],
    filename: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> str:
    """Write a PNG of ``reports`` (``FIGSIZE_IN`` at ``DPI``) to ``filename``; returns it.

    Configs not "finished", or without throughput or p50/p99 latency (or, in a rate
    sweep, without a rate), are left out. ``title`` defaults to the model name and device
    type when all reports share them.
    The write is atomic: a crash leaves the old file or the new one.
    """
    if isinstance(reports, Mapping):
        raise PlotError(
            "plot_reports() takes a list of report dicts, got one report (a dict); "
            "wrap it in a list: plot_reports([report], filename)."
        )
    rows = [_row(r, i) for i, r in enumerate(reports)]
    kept = [r for r in rows if r is not None]
    if not kept:
        raise PlotError(
            f"No finished configs to plot: of {len(rows)} report(s), none has status "
            "'finished' with throughput_avg, latency_ms_p50 and latency_ms_p99. "
            "Check the reports' 'status' and 'error' fields."
        )
    open_loop = {_is_open_loop(r) for r, _ in kept if r.get("peak_step") is None}
    if len(open_loop) > 1:
        raise PlotError(
            "The reports mix closed-loop configs and open-loop ones (an arrival_rate): they "
            "measure different things (throughput at saturation against latency at a set "
            "rate) and share no axes. Plot each kind apart."
        )
    path = Path(filename)
    folder = path.parent
    if not folder.is_dir():
        raise PlotError(
            f"Cannot write the plot to {os.fspath(filename)!r}: the folder {os.fspath(folder)!r} "
            "does not exist. Create it first or choose another filename."
        )

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise PlotError(_INSTALL_HINT) from e

    figure = _figure(kept, title, Figure, FigureCanvasAgg)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    try:
        atomic_write(path, buffer.getvalue())
    except OSError as exc:  # a folder of that name, no permission, a full disk
        raise PlotError(f"cannot write the plot to {path}: {exc.strerror or exc}") from exc
    return os.fspath(filename)


def _figure(
    kept: Sequence[tuple[Mapping[str, Any], dict[str, float]]],
    title: str | None,
    figure_class: type[Figure],
    canvas_class: Any,
) -> Figure:
    """The figure of the configs to draw, laid out, its point labels placed."""
    if any(_is_open_loop(report) for report, _ in kept):
        return _rate_figure(kept, title, figure_class, canvas_class)
    reports = [report for report, _ in kept]
    labels = _distinct_labels(reports)
    values = [v for _, v in kept]
    figure = figure_class(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    canvas_class(figure)  # attaches itself: savefig renders with Agg, no pyplot
    throughput_axes, percentile_axes = figure.subplots(1, 2)
    colours = _series_colours(reports)
    points = _draw_throughput_latency(throughput_axes, reports, labels, values, colours)
    _draw_percentiles(percentile_axes, labels, values, colours)
    if title is None:
        title = _default_title(reports)
    if title:
        figure.suptitle(title)
    figure.draw_without_rendering()  # the layout, so that labels are placed where they land
    _place_labels(throughput_axes, points)
    return figure


# ---------------------------------------------------------------- data


def _row(report: Any, index: int) -> tuple[Mapping[str, Any], dict[str, float]] | None:
    """The numbers to draw of one report, or None when it is left out."""
    if not isinstance(report, Mapping):
        raise PlotError(
            f"reports[{index}] is not a report dict: got {type(report).__name__}. "
            "Pass the list of dicts benchmark() or get_reports() returns."
        )
    if report.get("status") != "finished":
        return None
    fields = ["throughput_avg", *(f"latency_ms_p{p}" for p in PERCENTILES), *_OPEN_LOOP_FIELDS]
    values: dict[str, float] = {}
    for field in fields:
        v = report.get(field)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise PlotError(
                f"reports[{index}][{field!r}] is {v!r}, expected a number or None. "
                "Plot reports as benchmark() returns them or as loaded from their JSON file "
                "(CSV files hold text)."
            )
        if math.isfinite(v):
            values[field] = float(v)
    if not {"throughput_avg", "latency_ms_p50", "latency_ms_p99"} <= values.keys():
        return None
    if _is_open_loop(report):
        rate = values.get("offered_rate", values.get("arrival_rate"))
        if rate is None:
            return None
        values["rate"] = rate  # the x of a rate sweep: what was offered, else what was asked
    return report, values


# A rate sweep's numbers, and a peak search's
_OPEN_LOOP_FIELDS = (
    "arrival_rate", "offered_rate", "achieved_rate", "latency_bound_ms", "latency_percentile",
    "peak_rate",
)  # fmt: skip
_Row = tuple[Mapping[str, Any], dict[str, float]]  # a report and the numbers drawn of it


def _is_open_loop(report: Mapping[str, Any]) -> bool:
    return report.get("arrival_rate") is not None


def _distinct_labels(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """``config_label`` of each, extended where two would read the same: the model name,
    then the device type where those tell them apart, else a number."""
    labels = [config_label(r) for r in reports]
    for field in ("model_name", "device_type"):
        counts = Counter(labels)
        groups: dict[str, set[Any]] = {}
        for label, r in zip(labels, reports, strict=True):
            groups.setdefault(label, set()).add(str(r.get(field)))
        labels = [
            f"{label} {r.get(field)}" if counts[label] > 1 and len(groups[label]) > 1 else label
            for label, r in zip(labels, reports, strict=True)
        ]
    counts = Counter(labels)
    seen: Counter[str] = Counter()
    out = []
    for label in labels:
        seen[label] += 1
        out.append(f"{label} #{seen[label]}" if counts[label] > 1 else label)
    return out


def _default_title(reports: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for field in ("model_name", "device_type"):
        distinct = {r.get(field) for r in reports}
        if len(distinct) == 1 and None not in distinct:
            parts.append(str(distinct.pop()))
    return " on ".join(parts)


def _log_scale_fits(latencies: Sequence[float]) -> bool:
    low, high = min(latencies), max(latencies)
    return low > 0 and high / low > LOG_SCALE_SPREAD  # a log axis cannot show 0


# ---------------------------------------------------------------- drawing


# The key fields of a config; configs alike in all but one of them lie on one line.
_KEY_FIELDS = (
    "model_name", "device_type", "cast_mode", "pipeline_size", "workers_per_model",
    "n_models", "batch_size",
)  # fmt: skip
# The fields lines are drawn along, and how: batch size solid in the series colour,
# copies dashed in grey.
_ALONG: dict[str, Literal["-", "--"]] = {"batch_size": "-", "n_models": "--"}
_ALONG_WORDS = {"batch_size": "batch size grows", "n_models": "copies grow"}
# Where a point's label may go, in points from the point: right, above, left, below, ...
_LABEL_SPOTS = (
    (5, 4, "left", "bottom"), (5, -4, "left", "top"), (-5, 4, "right", "bottom"),
    (-5, -4, "right", "top"), (0, 8, "center", "bottom"), (0, -8, "center", "top"),
    (9, 0, "left", "center"), (-9, 0, "right", "center"), (12, 12, "left", "bottom"),
    (-12, -12, "right", "top"), (12, -12, "left", "top"), (-12, 12, "right", "bottom"),
)  # fmt: skip


def _alike(report: Mapping[str, Any], but: str) -> tuple[str, ...]:
    return tuple(str(report.get(f)) for f in _KEY_FIELDS if f != but)


def _series_colours(reports: Sequence[Mapping[str, Any]]) -> list[Any]:
    """One colour per series (configs alike but for their batch size), in order of first
    appearance."""
    series = list(dict.fromkeys(_alike(r, "batch_size") for r in reports))
    palette = _colours(len(series))
    return [palette[series.index(_alike(r, "batch_size"))] for r in reports]


def _draw_throughput_latency(
    axes: Axes,
    reports: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    values: Sequence[Mapping[str, float]],
    colours: Sequence[Any],
) -> list[tuple[float, float, str, Any]]:
    """Draw the left panel; the points to label: (p50, throughput, label, colour)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    handles: dict[str, Any] = {}
    for field, style in _ALONG.items():  # the lines first: the markers sit on them
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, r in enumerate(reports):
            groups.setdefault(_alike(r, field), []).append(i)
        for members in groups.values():
            if len({reports[i].get(field) for i in members}) < 2:
                continue
            members = sorted(members, key=lambda i: reports[i].get(field) or 0)
            colour = colours[members[0]] if field == "batch_size" else "grey"
            xs = [values[i]["latency_ms_p50"] for i in members]
            ys = [values[i]["throughput_avg"] for i in members]
            axes.plot(xs, ys, linestyle=style, color=colour, linewidth=1.2, alpha=0.8, zorder=1)
            handles[field] = Line2D(
                [], [], color="grey", linestyle=style, label=_ALONG_WORDS[field]
            )
    series: dict[str, Any] = {}
    points = []
    for label, v, colour in zip(labels, values, colours, strict=True):
        y = v["throughput_avg"]
        p50, p99 = v["latency_ms_p50"], v["latency_ms_p99"]
        axes.plot([p50, p99], [y, y], color=colour, linewidth=0.6, alpha=0.6, zorder=2)
        axes.plot([p50], [y], marker="o", markersize=7, color=colour, linestyle="none", zorder=3)
        axes.plot(
            [p99], [y], marker="o", markersize=7, markerfacecolor="none",
            markeredgecolor=colour, linestyle="none", zorder=3,
        )  # fmt: skip
        batch, _, rest = label.partition(" ")
        series.setdefault(rest or label, colour)
        points.append((p50, y, batch if rest else label, colour))
    if _log_scale_fits([x for v in values for x in (v["latency_ms_p50"], v["latency_ms_p99"])]):
        axes.set_xscale("log")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.set_ylim(bottom=0)
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("average throughput (inferences per second)")
    axes.set_title("Throughput against latency, per config")
    axes.grid(True, alpha=0.3)
    legend = [
        *(Line2D([], [], color=c, marker="o", label=name) for name, c in series.items()),
        Line2D([], [], marker="o", color="grey", linestyle="none", label="p50 latency"),
        Line2D(
            [], [], marker="o", color="grey", markerfacecolor="none", linestyle="none",
            label="p99 latency",
        ),
        *handles.values(),
    ]  # fmt: skip
    _legend_below(axes, legend)
    return points


def _place_labels(axes: Axes, points: Sequence[tuple[float, float, str, Any]]) -> None:
    """Label each point where its label overlaps no label placed before it, no marker and
    stays inside the axes; where no spot is free, the one that overlaps least."""
    renderer = axes.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = axes.get_window_extent(renderer)
    to_display = axes.transData.transform
    half = 4.0 * axes.figure.dpi / 72  # a marker's half width, in pixels
    taken = []
    for x, y in (to_display((px, py)) for px, py, _, _ in points):
        taken.append(_box(x - half, y - half, x + half, y + half))
    for px, py, text, colour in points:
        best: tuple[float, Any] | None = None
        for dx, dy, ha, va in _LABEL_SPOTS:
            note = axes.annotate(
                text, (px, py), xytext=(dx, dy), textcoords="offset points",
                ha=ha, va=va, fontsize=8, color=colour, annotation_clip=False,
            )  # fmt: skip
            note.set_in_layout(False)  # placed after the layout: it must not move it
            box = note.get_window_extent(renderer).expanded(1.3, 1.3)  # a little space
            cost = sum(_overlap(box, other) for other in taken)
            cost += box.width * box.height - _overlap(box, frame)  # outside the axes
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, note)
            else:
                note.remove()
            if cost == 0:
                break
        assert best is not None
        taken.append(best[1].get_window_extent(renderer).expanded(1.3, 1.3))


def _box(x0: float, y0: float, x1: float, y1: float) -> Bbox:
    from matplotlib.transforms import Bbox

    return Bbox([[x0, y0], [x1, y1]])


def _overlap(a: Bbox, b: Bbox) -> float:
    width = float(min(a.x1, b.x1) - max(a.x0, b.x0))
    height = float(min(a.y1, b.y1) - max(a.y0, b.y0))
    return max(0.0, width) * max(0.0, height)


def _draw_percentiles(
    axes: Axes,
    labels: Sequence[str],
    values: Sequence[Mapping[str, float]],
    colours: Sequence[Any],
) -> None:
    from matplotlib.lines import Line2D

    shown: list[float] = []
    for row, (v, colour) in enumerate(zip(values, colours, strict=True)):
        p50, p99 = v["latency_ms_p50"], v["latency_ms_p99"]
        low, high = v.get("latency_ms_p0", p50), v.get("latency_ms_p100", p99)
        axes.hlines(row, low, high, color=colour, linewidth=1)
        axes.hlines(row, p50, p99, color=colour, linewidth=7, alpha=0.5)
        axes.plot([p50], [row], marker="|", markersize=14, markeredgewidth=2, color="black")
        for p in (90, 95):  # inside the bar: small dots, when the report has them
            if f"latency_ms_p{p}" in v:
                axes.plot([v[f"latency_ms_p{p}"]], [row], marker=".", color="black")
        shown += [low, high]
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_ylim(len(labels) - 0.5, -0.5)  # the first config on top
    if _log_scale_fits(shown):
        axes.set_xscale("log")
    axes.set_xlabel("latency (ms), percentiles from the reports (not a histogram)")
    axes.set_title("Latency percentiles, per config")
    axes.grid(True, axis="x", alpha=0.3)
    _legend_below(
        axes,
        [
            Line2D([], [], color="grey", linewidth=1, label="p0 to p100"),
            Line2D([], [], color="grey", linewidth=7, alpha=0.5, label="p50 to p99"),
            Line2D([], [], color="black", marker="|", markersize=10, linestyle="none", label="p50"),
            Line2D([], [], color="black", marker=".", linestyle="none", label="p90, p95"),
        ],
    )


# ---------------------------------------------------------------- a rate sweep

# the latency percentiles drawn against the rate, and their line styles
_RATE_PERCENTILES: dict[int, Literal[":", "--", "-"]] = {50: ":", 90: "--", 99: "-"}
_BOUND_COLOUR = "tab:red"


def _rate_figure(
    kept: Sequence[_Row],
    title: str | None,
    figure_class: type[Figure],
    canvas_class: Any,
) -> Figure:
    """The figure of a rate sweep: latency and achieved rate against the offered rate."""
    reports = [report for report, _ in kept]
    figure = figure_class(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    canvas_class(figure)
    latency_axes, achieved_axes = figure.subplots(1, 2)
    series = _rate_series(kept)
    _draw_rate_latency(latency_axes, series)
    _draw_achieved(achieved_axes, series)
    if title is None:
        title = _default_title(reports)
    if title:
        figure.suptitle(title)
    return figure


class _Series:
    """One config's reports of a rate sweep, in order of rate."""

    def __init__(self, label: str, colour: Any, rows: list[_Row]) -> None:
        self.label, self.colour = label, colour
        self.rows = sorted(rows, key=lambda row: row[1]["rate"])

    def line(self, field: str) -> tuple[list[float], list[float]]:
        """The rates and ``field`` of the reports that hold it."""
        points = [(v["rate"], v[field]) for _, v in self.rows if field in v]
        return [x for x, _ in points], [y for _, y in points]

    def peaks(self) -> list[dict[str, float]]:
        """The numbers of the report of a peak search's peak (``is_peak``), if any."""
        return [v for r, v in self.rows if r.get("is_peak") is True]


def _rate_series(kept: Sequence[_Row]) -> list[_Series]:
    """The configs of a sweep (alike in every key field and in their arrival process), in
    order of first appearance, each labelled and coloured."""
    groups: dict[tuple[str, ...], list[_Row]] = {}
    steps: dict[tuple[Any, ...], int] = {}  # a peak search's steps by config and rate
    for row in kept:
        report = row[0]
        if not _is_open_loop(report):  # a peak search's closed-loop probe: it has no rate
            continue
        key = (*_alike(report, ""), str(report.get("arrivals")))
        group = groups.setdefault(key, [])
        if report.get("peak_step") is not None:
            at = (*key, report["arrival_rate"])
            if at in steps:  # an invalid step run again: the rerun stands for it
                group[steps[at]] = row
                continue
            steps[at] = len(group)
        group.append(row)
    firsts = [rows[0][0] for rows in groups.values()]
    labels = [  # alike but for their arrivals (poisson and constant): named by those
        f"{config_label(r)} {r.get('arrivals')}" if "#" in label else label
        for label, r in zip(_distinct_labels(firsts), firsts, strict=True)
    ]
    colours = _colours(len(groups))
    return [
        _Series(label, colour, rows)
        for label, colour, rows in zip(labels, colours, groups.values(), strict=True)
    ]


def _draw_rate_latency(axes: Axes, series: Sequence[_Series]) -> None:
    """Latency percentiles against the offered rate; the bounds and the peaks."""
    from matplotlib.lines import Line2D

    from neuronperf_core.compare import rate_text

    shown: list[float] = []
    rates: list[float] = []
    for s in series:
        for p, style in _RATE_PERCENTILES.items():
            xs, ys = s.line(f"latency_ms_p{p}")
            axes.plot(xs, ys, linestyle=style, marker="o", markersize=3, color=s.colour)
            shown += ys
            rates += xs
    bounds = {
        (v["latency_bound_ms"], v.get("latency_percentile"))
        for s in series
        for _, v in s.rows
        if "latency_bound_ms" in v
    }
    handles = [Line2D([], [], color=s.colour, marker="o", label=s.label) for s in series]
    handles += [
        Line2D([], [], color="grey", linestyle=style, label=f"p{p}")
        for p, style in _RATE_PERCENTILES.items()
    ]
    for bound, percentile in sorted(bounds, key=lambda b: (b[0], b[1] or 0)):
        which = "" if percentile is None else f"p{percentile:g} "
        label = f"bound: {which}<= {bound:g} ms"
        axes.axhline(bound, color=_BOUND_COLOUR, linestyle="-.", linewidth=1.2, label=label)
        handles.append(Line2D([], [], color=_BOUND_COLOUR, linestyle="-.", label=label))
        shown.append(bound)
    peaks = [(s, v) for s in series for v in s.peaks()]
    for s, v in peaks:
        percentile = v.get("latency_percentile", 99.0)
        # on the searched percentile where the report holds it, else where the bound is
        y = v.get(f"latency_ms_p{percentile:g}", v.get("latency_bound_ms"))
        if y is None:
            continue
        axes.plot(
            [v["rate"]], [y], marker="*", markersize=16, color=s.colour,
            markeredgecolor="black", linestyle="none", zorder=4,
        )  # fmt: skip
        peak_rate = v.get("peak_rate", v.get("arrival_rate", v["rate"]))  # as searched
        left = v["rate"] > (min(rates) + max(rates)) / 2  # the label stays inside the axes
        axes.annotate(
            f"peak {rate_text(peak_rate)}/s", (v["rate"], y), xytext=(-10 if left else 10, -12),
            textcoords="offset points", ha="right" if left else "left", fontsize=8,
            color=s.colour,
        )  # fmt: skip
    if peaks:
        handles.append(_peak_handle())
    if _log_scale_fits(shown):
        axes.set_yscale("log")
    else:
        axes.set_ylim(bottom=0)  # a linear latency axis from 0: the rise reads at its size
    if rates and _log_scale_fits(rates):
        axes.set_xscale("log")
    else:
        axes.set_xlim(left=0)
    axes.set_xlabel("offered rate (requests per second)")
    axes.set_ylabel("latency (ms), from each request's arrival")
    axes.set_title("Latency against offered rate, per config")
    axes.grid(True, alpha=0.3)
    _legend_below(axes, handles)


def _draw_achieved(axes: Axes, series: Sequence[_Series]) -> None:
    """The achieved rate against the offered rate, and the line where they are equal."""
    from matplotlib.lines import Line2D

    rates: list[float] = []
    for s in series:
        xs, ys = s.line("achieved_rate")
        axes.plot(xs, ys, marker="o", markersize=4, color=s.colour, label=s.label)
        rates += [*xs, *ys]
        for v in s.peaks():
            if "achieved_rate" in v:
                axes.plot(
                    [v["rate"]], [v["achieved_rate"]], marker="*", markersize=16,
                    color=s.colour, markeredgecolor="black", linestyle="none", zorder=4,
                )  # fmt: skip
    every = [v["rate"] for s in series for _, v in s.rows]
    low, high = min(every + rates), max(every + rates)
    # above the configs' lines (dashes let them show through): one that keeps up lies on it
    axes.plot([low, high], [low, high], color="black", linestyle="--", linewidth=0.8, zorder=3)
    if _log_scale_fits([low, high]):
        axes.set_xscale("log")
        axes.set_yscale("log")
    else:
        axes.set_xlim(left=0)
        axes.set_ylim(bottom=0)
    axes.set_xlabel("offered rate (requests per second)")
    axes.set_ylabel("achieved rate (requests per second)")
    axes.set_title("Achieved against offered rate: below the line, requests queue")
    axes.grid(True, alpha=0.3)
    handles = [Line2D([], [], color=s.colour, marker="o", label=s.label) for s in series]
    handles.append(
        Line2D([], [], color="black", linestyle="--", linewidth=0.8, label="achieved = offered")
    )
    if any(s.peaks() for s in series):
        handles.append(_peak_handle())
    _legend_below(axes, handles)


def _legend_below(axes: Axes, handles: Sequence[Any]) -> None:
    """The legend under the axes, up to 4 to a row: inside, it would hide points, lines or
    whisker ends."""
    axes.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncols=min(4, len(handles)),
        fontsize=8,
    )


def _peak_handle() -> Any:
    from matplotlib.lines import Line2D

    return Line2D(
        [], [], marker="*", markersize=12, color="grey", markeredgecolor="black",
        linestyle="none", label="peak within the bound",
    )  # fmt: skip


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ---------------------------------------------------------------- writing

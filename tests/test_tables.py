"""The one table style: natural width by default, fitted to a width when given, numbers whole;
and the default table of reports, closed and open loop."""

from __future__ import annotations

import io
from typing import Any

import pytest

from neuronperf_core.reporting import SUMMARY_COLS, SUMMARY_OPEN_LOOP_COLS, print_reports
from neuronperf_core.tables import Column, print_table, render, terminal_width

COLUMNS = [Column("config"), Column("latency_ms_p50", numeric=True), Column("note")]
ROWS = [
    ["b1 n1 w1", "0.022 +/- 1e-05", "digits_mlp_b1_p1_dndaj3vb.pt2"],
    ["b32 n2 w2", "12.5 +/- 0.037", "a note of several words that wraps"],
]


def test_natural_width_one_line_per_row_and_a_rule_under_the_header() -> None:
    lines = render(COLUMNS, ROWS).splitlines()
    assert len(lines) == 2 + len(ROWS)
    assert lines[1] == "  ".join("-" * w for w in (9, 15, 34))
    assert lines[2].split()[:3] == ["b1", "n1", "w1"]
    assert lines[2].endswith("digits_mlp_b1_p1_dndaj3vb.pt2")  # text left, no trailing space
    assert lines[3].index("12.5 +/- 0.037") + len("12.5 +/- 0.037") == 9 + 2 + 15  # right


def test_a_narrow_width_wraps_headers_then_text_and_keeps_numbers_whole() -> None:
    lines = render(COLUMNS, ROWS, width=40).splitlines()
    assert max(map(len, lines)) <= 40
    text = "\n".join(lines)
    for number in ("0.022", "12.5", "1e-05", "0.037"):
        assert number in text  # never broken
    assert "latency_ms_" in lines[0] and "p50" in lines[1]  # the header wraps after a _


def test_too_narrow_to_fit_is_as_narrow_as_it_gets() -> None:
    lines = render(COLUMNS, ROWS, width=5).splitlines()
    assert max(map(len, lines)) > 5
    assert "0.022" in "\n".join(lines)


def test_the_width_comes_from_columns_else_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "77")
    assert terminal_width(io.StringIO()) == 77
    monkeypatch.delenv("COLUMNS")
    assert terminal_width(io.StringIO()) is None  # a file or a pipe: natural width
    out = io.StringIO()
    print_table(COLUMNS, ROWS, file=out)
    assert "\x1b" not in out.getvalue()  # no styling off a terminal
    assert out.getvalue() == render(COLUMNS, ROWS)


# -- the default table of reports ----------------------------------------------------------


def reports(open_loop: bool) -> list[dict[str, Any]]:
    """Two configs' reports; open loop: each at its own arrival rate, the second behind."""
    out = []
    for workers, rate, achieved, late in ((1, 100.0, 98.5, 0), (2, 1500.0, 927.9, 1091)):
        r: dict[str, Any] = {
            "model_name": "m", "status": "finished", "batch_size": 1, "n_models": 1,
            "workers_per_model": workers, "pipeline_size": 1, "model_filename": "m.pt",
            "throughput_avg": achieved, "throughput_peak": achieved * 1.1,
            "latency_ms_p50": 1.1, "latency_ms_p99": 2.9,
        }  # fmt: skip
        if open_loop:
            r |= {"arrival_rate": rate, "achieved_rate": achieved, "late_at_end": late}
        out.append(r)
    return out


def table(rows: list[dict[str, Any]], **options: Any) -> list[list[str]]:
    """print_reports' table, as the cells of each line (header first, the rule left out)."""
    out = io.StringIO()
    print_reports(rows, file=out, **options)
    lines = out.getvalue().splitlines()
    return [lines[0].split()] + [line.split() for line in lines[2:]]


@pytest.fixture
def natural_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # one line per row


@pytest.mark.usefixtures("natural_width")
def test_the_default_table_of_an_open_loop_shows_the_rates_and_what_was_late() -> None:
    header, *rows = table(reports(open_loop=True))
    at = SUMMARY_COLS.index("latency_ms_p99") + 1
    assert header == [
        *SUMMARY_COLS[:at], "arrival_rate", "achieved_rate", "late_at_end", *SUMMARY_COLS[at:],
        "throughput_peak",
    ]  # fmt: skip
    assert [row[at : at + 3] for row in rows] == [  # best throughput first
        ["1500.0", "927.900", "1091"],
        ["100.000", "98.500", "0"],
    ]
    # the CLI's table of a run where a config failed: the default columns, then the status
    header, *_ = table(reports(open_loop=True), cols=[*SUMMARY_COLS, "status"])
    assert header[at : at + 3] == list(SUMMARY_OPEN_LOOP_COLS)


@pytest.mark.usefixtures("natural_width")
def test_closed_loop_tables_and_chosen_columns_are_unchanged() -> None:
    header, *_ = table(reports(open_loop=False))
    assert header == [*SUMMARY_COLS, "throughput_peak"]
    header, *_ = table(reports(open_loop=True), cols=["latency_ms_p99", "workers_per_model"])
    assert header == ["latency_ms_p99", "workers_per_model", "throughput_peak"]
    mixed = [*reports(open_loop=False), *reports(open_loop=True)]  # a search's probe and steps
    header, *rows = table(mixed, sort_by=None)
    assert header[3:6] == list(SUMMARY_OPEN_LOOP_COLS)
    assert rows[0][3:6] == ["N/A", "N/A", "N/A"]

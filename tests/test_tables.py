"""The one table style: natural width by default, fitted to a width when given, numbers whole."""

from __future__ import annotations

import io

import pytest

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

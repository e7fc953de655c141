"""The one table style of everything neuronperf prints for people: reports, the comparison
of two runs, and the command line's listings (compile, plugins).

A header rule under the column names, numbers right-aligned, text left-aligned, two spaces
between columns. A table fits the width it is given: ``COLUMNS`` when set, else the
terminal's; printed to a file or a pipe, it keeps its natural width (nothing wrapped, so
``grep`` and ``awk`` see whole rows). When a table is too wide, long headers wrap first, after
an underscore (``latency_ms_`` over ``p50``: the field name still reads whole), then text
cells wrap at spaces and fold long words (file names); a number never breaks, though its
"+/- h" may go to the next line.

rich draws the table (bold headers on a terminal); it is imported only when a table is
drawn, so ``neuronperf --help`` does not pay for it.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["GAP", "Column", "print_peak_search", "print_table", "render", "terminal_width"]

GAP = 2  # spaces between columns
TEXT_MIN = 12  # a word longer than this may be folded, down to this width


@dataclass(frozen=True)
class Column:
    """A column's header, and whether it holds numbers (right-aligned, never broken)."""

    header: str
    numeric: bool = False


def terminal_width(out: TextIO) -> int | None:
    """The width a table printed to ``out`` must fit: ``COLUMNS`` when set (as click and rich
    read it), else the terminal's when ``out`` is one; None for a file or a pipe."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if out.isatty():
            return os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor
        pass
    return None


def print_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], file: TextIO | None = None
) -> None:
    """Print a table to ``file`` (stdout), as wide as ``terminal_width`` allows."""
    import sys

    out = file if file is not None else sys.stdout
    styled = _isatty(out) and "NO_COLOR" not in os.environ
    out.write(render(columns, rows, width=terminal_width(out), styled=styled))
    out.flush()


def render(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    styled: bool = False,
) -> str:
    """The table as text, each line ending in a newline; at most ``width`` characters wide
    where the columns can shrink that far (None: the natural width)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    widths = _fit(columns, rows, width)
    table = Table(
        box=None,
        pad_edge=False,
        padding=(0, GAP // 2),
        header_style="bold" if styled else None,
    )
    headers = [
        _wrap(column.header, w, _HEADER_BREAKS) for column, w in zip(columns, widths, strict=True)
    ]
    for column, header, w in zip(columns, headers, widths, strict=True):
        table.add_column(
            Text(header),
            justify="right" if column.numeric else "left",
            width=w,
            no_wrap=True,  # _wrap has placed every line break
            overflow="fold",  # only what _wrap left too long: never, while widths hold
        )
    for row in rows:
        table.add_row(
            *(
                Text(_wrap(cell, w, _NUMBER_BREAKS if c.numeric else _CELL_BREAKS))
                for c, cell, w in zip(columns, row, widths, strict=True)
            )
        )
    total = sum(widths) + GAP * (len(widths) - 1)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(total, 1),
        force_terminal=styled,
        no_color=not styled,
        color_system="standard" if styled else None,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )
    console.print(table)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    below_header = max(header.count("\n") for header in headers) + 1
    lines.insert(below_header, (" " * GAP).join("-" * w for w in widths))  # the header rule
    return "".join(line + "\n" for line in lines)


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


_HEADER_BREAKS = r"(?<=[ _])"  # after a space or an underscore: latency_ ms_ p50
_CELL_BREAKS = r"(?<=[ _./-])"  # and after a period, slash or hyphen: digits_ b8_ x.pt2
_NUMBER_BREAKS = r"(?<= )(?=\+/-)"  # a number whole; its "+/- h" on the next line


def _parts(text: str, breaks: str) -> list[str]:
    return [part for part in re.split(breaks, text) if part]


def _wrap(text: str, width: int, breaks: str) -> str:
    """``text`` in lines of at most ``width``, broken where ``breaks`` allows, and anywhere
    in a part longer than ``width``."""
    lines: list[str] = []
    for given in text.splitlines() or [""]:
        current = ""
        for part in _parts(given, breaks):
            while len(part.rstrip()) > width:  # no place to break: fold
                if current:
                    lines.append(current)
                    current = ""
                lines.append(part[:width])
                part = part[width:]
            if current and len(current) + len(part.rstrip()) > width:
                lines.append(current)
                current = ""
            current += part
        lines.append(current)
    return "\n".join(line.rstrip() for line in lines)


def _fit(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None) -> list[int]:
    """Each column's width: its natural width, shrunk while the table is wider than ``width``,
    each step taken from the column whose narrowing adds the fewest lines to the table (so
    headers wrap before rows do, and a long text column gives way before a short label);
    between equals, a header wraps first, then the widest column gives way."""
    natural, least = [], []
    for i, column in enumerate(columns):
        longest_cell = max((len(line) for row in rows for line in row[i].splitlines()), default=0)
        header_parts = _parts(column.header, _HEADER_BREAKS)
        header_min = max((len(p.rstrip()) for p in header_parts), default=0)
        natural.append(max(len(column.header), longest_cell))
        if column.numeric:
            parts = [len(p.rstrip()) for row in rows for p in _parts(row[i], _NUMBER_BREAKS)]
            least.append(max(header_min, max(parts, default=0)))
        else:  # down to its longest word (wrapped between words), folded no narrower than TEXT_MIN
            words = [len(p.rstrip()) for row in rows for p in _parts(row[i], _CELL_BREAKS)]
            least.append(max(header_min, min(max(words, default=0), TEXT_MIN)))
    widths = list(natural)
    if width is None:
        return widths
    lines = _LineCounts(columns, rows)
    while (excess := sum(widths) + GAP * (len(widths) - 1) - width) > 0:
        step = max(1, excess // 8)  # long tables: a few coarse steps, not one per character
        options = []
        for i in range(len(columns)):
            if widths[i] > least[i]:
                trial = list(widths)
                trial[i] = max(least[i], widths[i] - step)
                options.append((lines.total(trial), not columns[i].numeric, -widths[i], i, trial))
        if not options:
            break  # as narrow as it gets: wider than asked
        widths = min(options)[-1]
    return widths


class _LineCounts:
    """How many lines a table takes at given column widths (each column's wrap cached)."""

    def __init__(self, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        self.columns, self.rows = columns, rows
        self.cache: dict[tuple[int, int], tuple[int, list[int]]] = {}

    def column(self, i: int, width: int) -> tuple[int, list[int]]:
        """The lines of column ``i``'s header, and of each of its cells, at ``width``."""
        if (i, width) not in self.cache:
            column = self.columns[i]
            header = _wrap(column.header, width, _HEADER_BREAKS).count("\n") + 1
            breaks = _NUMBER_BREAKS if column.numeric else _CELL_BREAKS
            cells = [_wrap(row[i], width, breaks).count("\n") + 1 for row in self.rows]
            self.cache[(i, width)] = (header, cells)
        return self.cache[(i, width)]

    def total(self, widths: Sequence[int]) -> int:
        counts = [self.column(i, w) for i, w in enumerate(widths)]
        header = max(c[0] for c in counts)
        rows: list[tuple[int, ...]] = list(zip(*(c[1] for c in counts), strict=True))
        return header + sum(max(row) for row in rows)


def print_peak_search(reports: Sequence[Mapping[str, Any]], file: TextIO | None = None) -> None:
    """The steps of one peak search (``benchmarking.peak``) as a table, then its peak line:
    each step's rate, the offered and achieved rates, the requests still queued at the end,
    the percentile held to the bound, whether the step kept within it, whether it was valid,
    and how long it ran."""
    import sys

    from neuronperf_core.benchmarking.peak import peak_line

    out = file if file is not None else sys.stdout
    name = f"p{reports[0]['latency_percentile']:g}"

    def number(value: Any, digits: int) -> str:
        return "N/A" if value is None else f"{value:.{digits}f}"

    def yes(value: Any) -> str:
        return "N/A" if value is None else "yes" if value else "no"

    columns = [
        Column("step", numeric=True),
        Column("rate/s", numeric=True),
        Column("offered/s", numeric=True),
        Column("achieved/s", numeric=True),
        Column("late", numeric=True),
        Column(f"{name} ms", numeric=True),
        Column("within bound"),
        Column("valid"),
        Column("s", numeric=True),
        Column("peak"),
    ]
    rows = []
    for r in reports:
        probe = r["peak_step"] == 0
        rows.append(
            [
                str(r["peak_step"]),
                "probe" if probe else number(r.get("arrival_rate"), 1),
                number(r.get("offered_rate"), 1),
                number(r.get("achieved_rate"), 1),
                "N/A" if r.get("late_at_end") is None else str(r["late_at_end"]),
                number(r.get(f"latency_ms_{name}"), 3),
                yes(r.get("within_bound")),
                yes(r.get("valid")),
                number(r.get("total_s"), 1),
                "<- peak" if r.get("is_peak") else "",
            ]
        )
    print_table(columns, rows, file=out)
    out.write(peak_line(reports) + "\n")
    out.flush()

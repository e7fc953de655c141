"""The one table style of everything neuronperf prints for people: reports, the comparison
of two runs, and the command line's listings (compile, plugins).

A header rule under the column names, numbers right-aligned, text left-aligned, two spaces
between columns. A table fits the width it is given: ``COLUMNS`` when set, else the
terminal's; printed to a file or a pipe, it keeps its natural width (nothing wrapped, so
``grep`` and ``awk`` see whole rows). When a table is too wide, long headers wrap first, after
an underscore (``latency_ms_`` over ``p50``: the field name still reads whole), then text
cells wrap at spaces and fold long words (file names); numbers never wrap.

rich draws the table (bold headers on a terminal); it is imported only when a table is
drawn, so ``neuronperf --help`` does not pay for it.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

__all__ = ["GAP", "Column", "print_table", "render", "terminal_width"]

GAP = 2  # spaces between columns
TEXT_MIN = 12  # a text column is not squeezed below this (or its longest header part)


@dataclass(frozen=True)
class Column:
    """A column's header, and whether it holds numbers (right-aligned, never wrapped)."""

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
    headers = [_wrap(column.header, w) for column, w in zip(columns, widths, strict=True)]
    for column, header, w in zip(columns, headers, widths, strict=True):
        table.add_column(
            Text(header),
            justify="right" if column.numeric else "left",
            width=w,
            no_wrap=column.numeric,
            overflow="fold",  # only what _wrap left too long: never, while widths hold
        )
    for row in rows:
        table.add_row(
            *(
                Text(cell if c.numeric else _wrap(cell, w))
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


def _parts(text: str) -> list[str]:
    """Where text may wrap: after a space, an underscore, a period, a slash or a hyphen
    (``latency_`` ``ms_`` ``p50``; ``digits_`` ``b8_`` ``x.pt2``)."""
    return [part for part in re.split(r"(?<=[ _./-])", text) if part]


def _wrap(text: str, width: int) -> str:
    """``text`` in lines of at most ``width``, broken where ``_parts`` allows, and anywhere
    in a part longer than ``width``."""
    lines: list[str] = []
    for given in text.splitlines() or [""]:
        current = ""
        for part in _parts(given):
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
    """Each column's width: its natural width, shrunk while the table is wider than ``width``:
    headers first (they wrap once, rows would wrap on every line), then text cells."""
    natural, least = [], []
    for i, column in enumerate(columns):
        cells = [len(line) for row in rows for line in row[i].splitlines() or [""]]
        longest_cell = max(cells, default=0)
        header_min = max((len(p.rstrip()) for p in _parts(column.header)), default=0)
        natural.append(max(len(column.header), longest_cell))
        if column.numeric:
            least.append(max(header_min, longest_cell))
        else:
            least.append(max(header_min, min(longest_cell, TEXT_MIN)))
    widths = list(natural)
    if width is None:
        return widths
    for numeric in (True, False):
        shrinkable = [i for i, c in enumerate(columns) if c.numeric == numeric]
        while sum(widths) + GAP * (len(widths) - 1) > width:
            slack = [(widths[i] - least[i], i) for i in shrinkable if widths[i] > least[i]]
            if not slack:
                break
            widths[max(slack)[1]] -= 1
    return widths

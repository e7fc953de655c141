"""What every report holds, known without numpy: the latency percentiles reported, which
fields are better high, and a config's short label. Shared by reporting, the text
comparison and the plots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PERCENTILES = (0, 50, 90, 95, 99, 100)  # latency_ms_p{p} in every report
HIGHER_IS_BETTER = frozenset({"throughput_avg", "throughput_peak"})
"""The report fields whose best value is the highest; for the others (latency, cost, the
config's own fields) the lowest comes first."""


def higher_is_better(field: str) -> bool:
    """Whether a table sorted on ``field`` shows the highest value first (best first)."""
    return field in HIGHER_IS_BETTER


def config_label(report: Mapping[str, Any]) -> str:
    """A short label of a report's config: "b8 n2 w4", plus "p2" when the pipeline size
    is not 1 and the cast mode when set ("b8 n2 w4 p2 fp16"). Missing values show "?"."""

    def value(field: str) -> str:
        v = report.get(field)
        return "?" if v is None else str(v)

    parts = [f"b{value('batch_size')}", f"n{value('n_models')}", f"w{value('workers_per_model')}"]
    pipeline_size = report.get("pipeline_size")
    if pipeline_size is not None and pipeline_size != 1:
        parts.append(f"p{pipeline_size}")
    cast_mode = report.get("cast_mode")
    if cast_mode is not None and cast_mode != "":
        parts.append(str(cast_mode))
    return " ".join(parts)

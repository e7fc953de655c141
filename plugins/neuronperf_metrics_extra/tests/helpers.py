"""Shared by the tests: this distribution's names, and ways to feed a metric its data
(one batch, record by record, or in shards merged with aggregate)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings

from neuronperf_core.metrics.base import BaseEvalMetric

DIST = "neuronperf-metrics-extra"
ENTRY_POINT = "metrics_extra"  # the entry point's name in pyproject.toml
SOURCE_ROOT = Path(__file__).resolve().parents[1] / "src"  # plugins/neuronperf_metrics_extra/src
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def by_batch(cls: type[BaseEvalMetric], outputs: Any, targets: Any, **options: Any) -> Any:
    """The metric over one process_batch call."""
    metric = cls(**options)
    metric.process_batch(outputs, targets)
    return cls.aggregate([metric])


def by_record(cls: type[BaseEvalMetric], outputs: Any, targets: Any, **options: Any) -> Any:
    """The metric over one process_record call per record."""
    metric = cls(**options)
    for output, target in zip(outputs, targets, strict=True):
        metric.process_record(output, target)
    return cls.aggregate([metric])


def by_shards(
    cls: type[BaseEvalMetric], outputs: Any, targets: Any, n_shards: int, **options: Any
) -> Any:
    """The metric over ``n_shards`` instances (one unused), each given a slice, then merged."""
    outputs, targets = np.asarray(outputs), np.asarray(targets)
    metrics = [cls(**options)]  # an instance that saw nothing merges as a no-op
    for part in np.array_split(np.arange(len(targets)), n_shards):
        if part.size:
            metric = cls(**options)
            metric.process_batch(outputs[part], targets[part])
            metrics.append(metric)
    return cls.aggregate(metrics)


def entry_point_found() -> bool:
    """Whether neuronperf can discover this plugin's entry point (installed, or metadata on
    sys.path)."""
    return any(ep.name == ENTRY_POINT for ep in entry_points(group="neuronperf"))


def is_installed() -> bool:
    """Whether an installed copy (site-packages, the nox session) provides the distribution,
    rather than build metadata left in the source tree or an editable install of it."""
    try:
        dist = distribution(DIST)
    except PackageNotFoundError:
        return False
    editable = '"editable": true' in (dist.read_text("direct_url.json") or "")
    return not editable and Path(str(dist.locate_file(""))).resolve() != SOURCE_ROOT

"""What every metric of the package promises: shards merge to the single pass, aggregate
changes nothing, instances survive pickling (worker processes send them back), and
empty input is a clear error."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from typing import Any

import neuronperf_metrics_extra as extra
import numpy as np
import pytest
from helpers import by_batch

from neuronperf_core.errors import MetricError

RNG = np.random.default_rng(0)
N = 3000
LABELS = RNG.integers(0, 4, N)
SCORES = RNG.random(N)
BINARY = (RNG.random(N) < SCORES).astype(int)
X = RNG.normal(5.0, 2.0, N)
SEQUENCES = RNG.integers(0, 2, (N, 5))

# metric name -> (outputs, targets)
DATA: dict[str, tuple[Any, Any]] = {
    "BalancedAccuracy": (RNG.integers(0, 4, N), LABELS),
    "MatthewsCorrelation": (RNG.integers(0, 4, N), LABELS),
    "CohenKappa": (RNG.integers(0, 4, N), LABELS),
    "ConfusionMatrix": (RNG.integers(0, 4, N), LABELS),
    "LogLoss": (RNG.dirichlet(np.ones(4), N), LABELS),
    "ExpectedCalibrationError": (SCORES, BINARY),
    "ROCAUC": (SCORES, BINARY),
    "AveragePrecision": (SCORES, BINARY),
    "RootMeanSquaredError": (X + RNG.normal(0, 1, N), X),
    "R2Score": (X + RNG.normal(0, 1, N), X),
    "MeanAbsolutePercentageError": (X + RNG.normal(0, 1, N), X),
    "ExplainedVariance": (X + RNG.normal(0, 1, N), X),
    "MaxError": (X + RNG.normal(0, 1, N), X),
    "PearsonCorrelation": (X + RNG.normal(0, 1, N), X),
    "Perplexity": (np.log(RNG.random((N, 5))), RNG.random((N, 5)) < 0.8),
    "ExactMatch": (np.where(RNG.random((N, 1)) < 0.5, SEQUENCES, 1 - SEQUENCES), SEQUENCES),
}
parametrize_all = pytest.mark.parametrize("name", sorted(DATA))


def same(a: Any, b: Any) -> bool:
    return bool(np.allclose(a, b, rtol=1e-10, atol=1e-12))


def test_the_table_covers_every_metric() -> None:
    exported = {n for n in extra.__all__ if n not in ("BinningWarning", "__version__")}
    assert set(DATA) == exported


@parametrize_all
def test_shards_merge_to_the_single_pass(name: str) -> None:
    cls = getattr(extra, name)
    outputs, targets = DATA[name]
    whole = by_batch(cls, outputs, targets)
    for n_shards in (2, 7, 50):
        metrics = [cls()]  # an instance that saw nothing
        for part in np.array_split(np.arange(N), n_shards):
            metric = cls()
            metric.process_batch(outputs[part], targets[part])
            metrics.append(metric)
        assert same(cls.aggregate(metrics), whole)


@parametrize_all
def test_aggregate_changes_nothing_and_instances_pickle(name: str) -> None:
    cls = getattr(extra, name)
    outputs, targets = DATA[name]
    a, b = cls(), cls()
    a.process_batch(outputs[: N // 2], targets[: N // 2])
    b.process_batch(outputs[N // 2 :], targets[N // 2 :])
    first = cls.aggregate([a, b])
    assert same(cls.aggregate([a, b]), first)
    assert same(cls.aggregate([pickle.loads(pickle.dumps(a)), b]), first)


@parametrize_all
def test_empty_input_is_a_clear_error(name: str) -> None:
    cls: Callable[[], Any] = getattr(extra, name)
    with pytest.raises(MetricError, match=rf"{name}\.process_batch: (outputs|targets) is empty"):
        cls().process_batch(np.zeros((0,)), np.zeros((0,)))
    with (
        pytest.raises(MetricError, match=rf"{name}\.aggregate: (nothing was processed|no token)"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        getattr(extra, name).aggregate([cls()])

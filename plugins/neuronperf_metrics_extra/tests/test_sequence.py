"""Perplexity and ExactMatch against the formulas, scikit-learn and torchmetrics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from helpers import PROPERTY, by_batch, by_record, by_shards
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from neuronperf_metrics_extra import ExactMatch, Perplexity
from scipy.special import log_softmax
from sklearn import metrics as skm

from neuronperf_core.errors import MetricError

# -- Perplexity --------------------------------------------------------------------------


def token_log_likelihoods(
    rng: np.random.Generator, n: int, t: int, vocab: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits (n, t, vocab), target ids (n, t) and the log-likelihood of each target."""
    logits = rng.normal(0.0, 2.0, (n, t, vocab))
    ids = rng.integers(0, vocab, (n, t))
    log_p = np.take_along_axis(log_softmax(logits, axis=-1), ids[..., np.newaxis], -1)[..., 0]
    return logits, ids, log_p


@PROPERTY
@given(
    log_p=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 8)),
        elements=st.floats(-30.0, 0.0),
    ),
    data=st.data(),
)
def test_perplexity_is_exp_of_the_mean_negative_log_likelihood(
    log_p: np.ndarray, data: st.DataObject
) -> None:
    mask = data.draw(hnp.arrays(np.bool_, log_p.shape))
    mask[0, 0] = True  # at least one token counted
    expected = math.exp(-log_p[mask].mean())
    assert by_batch(Perplexity, log_p, mask) == pytest.approx(expected, rel=1e-12)
    assert by_record(Perplexity, log_p, mask.astype(int)) == pytest.approx(expected, rel=1e-12)
    assert by_shards(Perplexity, log_p, mask, 3) == pytest.approx(expected, rel=1e-12)
    unmasked = math.exp(-log_p.mean())
    assert by_batch(Perplexity, log_p, None) == pytest.approx(unmasked, rel=1e-12)


def test_perplexity_matches_torchmetrics() -> None:
    torch = pytest.importorskip("torch")
    text = pytest.importorskip("torchmetrics.functional.text")
    rng = np.random.default_rng(0)
    logits, ids, log_p = token_log_likelihoods(rng, 64, 12, 50)
    ids[rng.random(ids.shape) < 0.2] = -100  # padding, ignored
    expected = float(
        text.perplexity(torch.from_numpy(logits), torch.from_numpy(ids), ignore_index=-100)
    )
    value = by_batch(Perplexity, log_p, ids != -100)
    assert value == pytest.approx(expected, rel=1e-9)


def test_a_token_of_probability_zero_makes_perplexity_infinite() -> None:
    assert by_batch(Perplexity, [[0.0, -math.inf]], None) == math.inf
    assert by_batch(Perplexity, [[-1000.0]], None) == math.inf  # exp overflows: inf, no error


@pytest.mark.parametrize(
    ("outputs", "targets", "message"),
    [
        ([[-0.5, 0.2]], None, r"outputs contains 0.2 > 0; expected log-likelihoods"),
        ([[-0.5, math.nan]], None, r"outputs contains 1 NaN value\(s\)"),
        ([-0.5, -0.2], None, r"outputs has shape \(2,\); expected \(N, T\) per-token"),
        (
            [[-0.5, -0.2]],
            [[1, 1, 0]],
            r"the mask \(targets\) has shape \(1, 3\) but outputs \(1, 2\)",
        ),
        (
            [[-0.5, -0.2]],
            [[17, 4]],
            r"the mask \(targets\) holds values other than 0 and 1.* not token ids",
        ),
        ([], None, r"outputs is empty"),
    ],
)
def test_perplexity_bad_batches_raise_clear_errors(
    outputs: Any, targets: Any, message: str
) -> None:
    with pytest.raises(MetricError, match=rf"Perplexity\.process_batch: {message}"):
        Perplexity().process_batch(outputs, targets)


def test_perplexity_with_every_token_masked_raises_at_aggregate() -> None:
    metric = Perplexity()
    metric.process_record([-0.1, -0.2], [0, 0])
    with pytest.raises(MetricError, match=r"no token was counted .* every token masked out"):
        Perplexity.aggregate([metric])
    with pytest.raises(MetricError, match=r"process_record: outputs has shape \(1, 2\); expected"):
        metric.process_record([[-0.1, -0.2]], None)


# -- ExactMatch --------------------------------------------------------------------------


@PROPERTY
@given(
    targets=hnp.arrays(
        np.int64, st.tuples(st.integers(1, 20), st.integers(1, 6)), elements=st.integers(0, 1)
    ),
    data=st.data(),
)
def test_exact_match_is_sklearn_subset_accuracy(targets: np.ndarray, data: st.DataObject) -> None:
    """On 0/1 tokens scikit-learn's accuracy of multilabel rows is the exact-match ratio."""
    outputs = data.draw(hnp.arrays(np.int64, targets.shape, elements=st.integers(0, 1)))
    expected = skm.accuracy_score(targets, outputs)
    assert by_batch(ExactMatch, outputs, targets) == pytest.approx(expected)
    assert by_record(ExactMatch, outputs, targets) == pytest.approx(expected)
    assert by_shards(ExactMatch, outputs, targets, 3) == pytest.approx(expected)


def test_exact_match_of_scores_with_padding_matches_torchmetrics() -> None:
    torch = pytest.importorskip("torch")
    tmf = pytest.importorskip("torchmetrics.functional.classification")
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 5, (2000, 6))
    scores = rng.random((2000, 6, 5))
    sure = rng.random(2000) < 0.5  # half the sequences predicted exactly
    scores[sure] += 2.0 * np.eye(5)[targets[sure]]
    targets[rng.random(targets.shape) < 0.2] = -1  # padding
    expected = float(
        tmf.multiclass_exact_match(
            torch.from_numpy(scores.argmax(-1)), torch.from_numpy(targets), 5, ignore_index=-1
        )
    )
    assert by_batch(ExactMatch, scores, targets, ignore_index=-1) == pytest.approx(expected)
    assert by_record(ExactMatch, scores, targets, ignore_index=-1) == pytest.approx(expected)


def test_exact_match_records_of_other_lengths_and_strings() -> None:
    metric = ExactMatch()
    metric.process_record([1, 2, 3], [1, 2, 3])  # match
    metric.process_record([1, 2], [1, 2, 3])  # shorter: no match
    metric.process_record("the cat", "the cat")  # match
    metric.process_record("the cat", "a cat")  # no match
    metric.process_batch(["x", "y"], ["x", "z"])  # one match
    assert ExactMatch.aggregate([metric]) == 3 / 6


@pytest.mark.parametrize(
    ("outputs", "targets", "message"),
    [
        ([[1, 2]], [1, 2], r"targets has shape \(2,\); expected \(N, T\) token ids"),
        ([[1, 2, 3]], [[1, 2]], r"predicted tokens have shape \(1, 3\) but targets \(1, 2\)"),
        ([1, 2], [[1, 2]], r"outputs has shape \(2,\); expected \(N, T\) token ids or \(N, T, V\)"),
        ([[1.0, math.nan]], [[1, 2]], r"outputs contains 1 NaN value\(s\)"),
        (["a", "b"], ["a"], r"got 2 output strings but 1 targets"),
        ([], [], r"targets is empty"),
    ],
)
def test_exact_match_bad_batches_raise_clear_errors(
    outputs: Any, targets: Any, message: str
) -> None:
    with pytest.raises(MetricError, match=rf"ExactMatch\.process_batch: {message}"):
        ExactMatch().process_batch(outputs, targets)


def test_exact_match_aggregate_of_nothing_raises() -> None:
    with pytest.raises(MetricError, match=r"ExactMatch\.aggregate: nothing was processed"):
        ExactMatch.aggregate([ExactMatch()])

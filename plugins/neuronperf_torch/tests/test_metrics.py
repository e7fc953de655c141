"""The topk metric against torchmetrics and a numpy reference, merging, ties, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from neuronperf_torch.metrics import TopK
from torchmetrics.functional.classification import multiclass_accuracy

from neuronperf_core.errors import MetricError


def reference(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Plain numpy: is the target among the k largest scores (no ties in the data)?"""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([t in row for t, row in zip(targets, top, strict=True)]))


def torchmetrics_topk(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    return float(
        multiclass_accuracy(
            torch.from_numpy(scores),
            torch.from_numpy(targets),
            num_classes=scores.shape[1],
            top_k=k,
            average="micro",
        )
    )


def scored(k: int, outputs: object, targets: object) -> float:
    metric = TopK(k=k)
    metric.process_batch(outputs, targets)
    return TopK.aggregate([metric])


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_matches_torchmetrics_and_numpy_on_logits_and_probabilities(k: int) -> None:
    rng = np.random.default_rng(k)
    logits = rng.normal(size=(500, 10)).astype(np.float32)
    targets = rng.integers(0, 10, size=500)
    probabilities = torch.softmax(torch.from_numpy(logits), 1).numpy()
    expected = reference(logits, targets, k)
    assert expected == pytest.approx(torchmetrics_topk(logits, targets, k), abs=1e-6)
    assert scored(k, logits, targets) == pytest.approx(expected)
    assert scored(k, probabilities, targets) == pytest.approx(expected)
    assert scored(k, torch.from_numpy(logits), torch.from_numpy(targets)) == pytest.approx(expected)


def test_default_k_is_one_and_equals_accuracy_of_the_argmax() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 4))
    targets = rng.integers(0, 4, size=200)
    metric = TopK()
    assert metric.k == 1
    metric.process_batch(logits, targets)
    assert TopK.aggregate([metric]) == pytest.approx(np.mean(logits.argmax(1) == targets))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 8).flatmap(
        lambda c: st.tuples(
            st.just(c),
            st.integers(1, c - 1),
            st.lists(st.integers(1, 12), min_size=1, max_size=5),
            st.integers(0, 2**31 - 1),
        )
    )
)
def test_shards_merge_to_the_whole(case: tuple[int, int, list[int], int]) -> None:
    """Scoring shards in separate instances and aggregating equals scoring everything at once."""
    n_classes, k, shard_sizes, seed = case
    rng = np.random.default_rng(seed)
    n = sum(shard_sizes)
    scores = rng.permuted(np.tile(np.arange(n_classes, dtype=float), (n, 1)), axis=1)  # no ties
    targets = rng.integers(0, n_classes, size=n)
    shards, start = [], 0
    for size in shard_sizes:
        metric = TopK(k=k)
        metric.process_batch(scores[start : start + size], targets[start : start + size])
        shards.append(metric)
        start += size
    assert TopK.aggregate(shards) == pytest.approx(reference(scores, targets, k))
    assert TopK.aggregate(shards) == pytest.approx(torchmetrics_topk(scores, targets, k))


def test_records_and_batches_agree_and_a_batch_of_one_scores_as_a_record() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(30, 6))
    targets = rng.integers(0, 6, size=30)
    per_record, batch_of_one = TopK(k=2), TopK(k=2)
    for row, target in zip(scores, targets, strict=True):
        per_record.process_record(row, int(target))
        batch_of_one.process_record(row[np.newaxis], np.array([target]))  # (1, C) output
    assert TopK.aggregate([per_record]) == pytest.approx(reference(scores, targets, 2))
    assert TopK.aggregate([batch_of_one]) == TopK.aggregate([per_record])
    assert per_record.total == 30


def test_ties_are_shared_evenly_whatever_the_class_order() -> None:
    # target 0 ties with 3 classes (scores equal), one class above: top-2 has room for 1 of 3.
    scores = np.array([[0.5, 0.5, 0.5, 0.9]])
    assert scored(2, scores, [0]) == pytest.approx(1 / 3)
    assert scored(2, scores[:, ::-1].copy(), [3]) == pytest.approx(1 / 3)
    assert scored(1, np.array([[1.0, 1.0]]), [1]) == pytest.approx(0.5)
    assert scored(1, np.array([[1.0, 2.0]]), [1]) == 1.0


def test_bfloat16_tensors_are_read() -> None:
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 1.0]], dtype=torch.bfloat16)
    assert scored(1, logits, torch.tensor([1, 2])) == 0.5


@pytest.mark.parametrize(
    ("outputs", "targets", "k", "message"),
    [
        (np.zeros(3), [0], 1, r"outputs has shape \(3,\); expected \(N, C\)"),
        (np.zeros((2, 3)), [0], 1, "got 2 output rows but 1 targets"),
        (np.zeros((2, 3)), [[0, 1], [1, 0]], 1, r"targets has shape \(2, 2\)"),
        (np.zeros((2, 3)), [0, 3], 1, r"target class 3 is outside 0..2"),
        (np.zeros((2, 3)), [0, -1], 1, "is outside 0..2"),
        (np.zeros((2, 3)), [0.5, 1], 1, "0.5, which is not a class index"),
        (np.zeros((2, 3)), [0, 1], 3, "k=3 but the outputs have only 3 classes"),
        (np.zeros((2, 1)), [0, 0], 1, "topk needs at least 2 classes"),
        (np.array([[np.nan, 1.0, 0.0]]), [0], 1, "NaN"),
        (np.zeros((0, 3)), [], 1, "empty"),
        (None, [0], 1, "output.* is None|outputs is None"),
    ],
)
def test_bad_input_is_refused_with_a_message(
    outputs: object, targets: object, k: int, message: str
) -> None:
    with pytest.raises(MetricError, match=message):
        TopK(k=k).process_batch(outputs, targets)


def test_record_errors() -> None:
    with pytest.raises(MetricError, match="target has 2 values for one output vector"):
        TopK().process_record(np.zeros(3), [0, 1])
    with pytest.raises(MetricError, match=r"output has shape \(1, 2, 3\)"):
        TopK().process_record(np.zeros((1, 2, 3)), 0)


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "2"])
def test_k_must_be_a_positive_whole_number(k: object) -> None:
    with pytest.raises(ValueError, match="k must be a whole number >= 1"):
        TopK(k=k)  # type: ignore[arg-type]


def test_aggregate_errors() -> None:
    from neuronperf_core.metrics.classification import Accuracy

    with pytest.raises(MetricError, match="nothing was processed"):
        TopK.aggregate([TopK(), TopK()])
    with pytest.raises(MetricError, match="got a Accuracy"):
        TopK.aggregate([Accuracy()])

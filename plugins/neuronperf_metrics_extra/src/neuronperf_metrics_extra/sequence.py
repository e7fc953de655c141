"""Sequence metrics: Perplexity from per-token log-likelihoods, and ExactMatch.

State is a sum and a count, so instances that saw different shards merge
exactly in ``aggregate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.inputs import (
    check_finite,
    metric_instances,
    nothing_processed,
    to_numpy,
)

__all__ = ["ExactMatch", "Perplexity"]


class Perplexity(BaseEvalMetric):
    """exp(-sum(log p(token)) / n_tokens) over every counted token of every sequence.

    Inputs:

    - ``process_record(output, target)``: ``output`` is a sequence's per-token
      log-likelihoods, shape (T,): the natural log of the probability the model
      gave each target token (``log_softmax(logits)`` gathered at the target
      ids), so every value is <= 0. ``target`` is ``None`` (count every token)
      or a (T,) mask: 1 or True for tokens to count, 0 or False for padding.
    - ``process_batch(outputs, targets)``: (N, T) log-likelihoods and an (N, T)
      mask, or ``None``.

    A token of probability 0 (log-likelihood -inf) makes the perplexity inf.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0.0  # sum of -log p over counted tokens
        self.tokens = 0  # tokens counted

    def process_record(self, output: Any = None, target: Any = None) -> None:
        self._add(output, target, "Perplexity.process_record", ndim=1)

    def process_batch(self, outputs: Any, targets: Any = None) -> None:
        self._add(outputs, targets, "Perplexity.process_batch", ndim=2)

    def _add(self, outputs: Any, mask: Any, where: str, ndim: int) -> None:
        log_p = to_numpy(outputs, where, "outputs")
        if log_p.ndim != ndim:
            raise MetricError(
                f"{where}: outputs has shape {log_p.shape}; expected "
                f"{'(T,)' if ndim == 1 else '(N, T)'} per-token "
                "log-likelihoods (one sequence per row). Gather log_softmax(logits) at the "
                "target token ids first."
            )
        check_finite(log_p, where, "outputs", allow_inf=True)  # -inf: a token of probability 0
        if (log_p > 0).any():
            raise MetricError(
                f"{where}: outputs contains {float(log_p.max())!r} > 0; expected "
                "log-likelihoods (natural log of probabilities, <= 0). Probabilities need "
                "np.log, logits log_softmax and a gather at the target token ids."
            )
        if mask is None:
            self.total -= float(log_p.sum(dtype=np.float64))
            self.tokens += int(log_p.size)
            return
        keep = _mask(mask, log_p.shape, where)
        self.total -= float(log_p[keep].sum(dtype=np.float64))
        self.tokens += int(np.count_nonzero(keep))

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """exp of the mean negative log-likelihood over the tokens of all instances."""
        items = metric_instances(cls, metrics)
        tokens = sum(m.tokens for m in items)
        if tokens == 0:
            raise MetricError(
                f"{cls.__name__}.aggregate: no token was counted (no record processed, or every "
                "token masked out); expected at least one. Check the dataset and the masks."
            )
        mean = math.fsum(m.total for m in items) / tokens
        try:
            return math.exp(mean)
        except OverflowError:
            return math.inf


def _mask(mask: Any, shape: tuple[int, ...], where: str) -> NDArray[np.bool_]:
    """A 0/1 mask of ``shape`` as booleans."""
    arr = to_numpy(mask, where, "targets (the token mask)")
    if arr.shape != shape:
        raise MetricError(
            f"{where}: the mask (targets) has shape {arr.shape} but outputs {shape}; expected "
            "one mask value per token, or targets=None to count every token."
        )
    if arr.dtype.kind != "b" and ((arr != 0) & (arr != 1)).any():
        raise MetricError(
            f"{where}: the mask (targets) holds values other than 0 and 1; expected 1 for "
            "tokens to count and 0 for padding (targets are a mask, not token ids)."
        )
    keep: NDArray[np.bool_] = arr.astype(bool, copy=False)
    return keep


class ExactMatch(BaseEvalMetric):
    """The share of sequences whose every token equals the target's.

    Inputs:

    - ``process_record(output, target)``: ``target`` is a (T,) sequence of
      token ids; ``output`` is (T,) token ids or (T, V) per-token scores (their
      argmax over the last axis). Sequences of different lengths do not match.
      Two strings are compared as they are.
    - ``process_batch(outputs, targets)``: (N, T) targets, (N, T) ids or
      (N, T, V) scores (shapes must match: pad both); or two lists of N strings.

    ``ignore_index``: target positions holding this id (padding) are not
    compared.
    """

    def __init__(self, *, ignore_index: int | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.matches = 0  # sequences that matched
        self.total = 0  # sequences scored

    def process_record(self, output: Any = None, target: Any = None) -> None:
        where = "ExactMatch.process_record"
        if isinstance(output, str) and isinstance(target, str):
            self.matches += output == target
            self.total += 1
            return
        predicted, tgt = self._tokens(output, target, where, target_ndim=1)
        if predicted.shape == tgt.shape:
            self.matches += int(self._equal(predicted, tgt).all())
        self.total += 1

    def process_batch(self, outputs: Any, targets: Any) -> None:
        where = "ExactMatch.process_batch"
        if _strings(outputs) and _strings(targets):
            if len(outputs) != len(targets):
                raise MetricError(
                    f"{where}: got {len(outputs)} output strings but {len(targets)} targets; "
                    "expected one target per output."
                )
            self.matches += sum(o == t for o, t in zip(outputs, targets, strict=True))
            self.total += len(targets)
            return
        predicted, tgt = self._tokens(outputs, targets, where, target_ndim=2)
        if predicted.shape != tgt.shape:
            raise MetricError(
                f"{where}: predicted tokens have shape {predicted.shape} but targets "
                f"{tgt.shape}; expected (N, T) for both. Pad outputs and targets to one length "
                "(ignore_index marks padding), or score records one at a time."
            )
        self.matches += int(np.count_nonzero(self._equal(predicted, tgt).all(axis=1)))
        self.total += int(tgt.shape[0])

    def _tokens(
        self, outputs: Any, targets: Any, where: str, target_ndim: int
    ) -> tuple[NDArray[Any], NDArray[Any]]:
        """Predicted token ids and target ids (argmax taken over scores)."""
        tgt = to_numpy(targets, where, "targets")
        shape = "(T,)" if target_ndim == 1 else "(N, T)"
        if tgt.ndim != target_ndim:
            raise MetricError(
                f"{where}: targets has shape {tgt.shape}; expected {shape} token ids."
            )
        check_finite(tgt, where, "targets")
        out = to_numpy(outputs, where, "outputs")
        if out.ndim == target_ndim + 1:
            check_finite(out, where, "outputs", allow_inf=True)
            out = out.argmax(axis=-1)
        elif out.ndim == target_ndim:
            check_finite(out, where, "outputs")
        else:
            scores = "(T, V)" if target_ndim == 1 else "(N, T, V)"
            raise MetricError(
                f"{where}: outputs has shape {out.shape}; expected {shape} token ids or "
                f"{scores} per-token scores."
            )
        return out, tgt

    def _equal(self, predicted: NDArray[Any], tgt: NDArray[Any]) -> NDArray[np.bool_]:
        equal: NDArray[np.bool_] = predicted == tgt
        if self.ignore_index is not None:
            equal |= tgt == self.ignore_index
        return equal

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """The share of matching sequences over all instances."""
        items = metric_instances(cls, metrics)
        total = sum(m.total for m in items)
        if total == 0:
            raise nothing_processed(cls.__name__)
        return sum(m.matches for m in items) / total


def _strings(values: Any) -> bool:
    """Whether ``values`` is a non-empty list or tuple of strings."""
    return (
        isinstance(values, (list, tuple))
        and len(values) > 0
        and all(isinstance(v, str) for v in values)
    )

"""Evaluation metrics: the base class, the registry and the built-in metrics."""

from neuronperf_core.metrics.base import BaseEvalMetric

__all__ = ["BaseEvalMetric"]

"""Benchmark and evaluate plain Python models (a class or a callable) on the CPU."""

from __future__ import annotations

import time
from typing import Any

from neuronperf_core.benchmarking import benchmark as _engine


class DummyModel:
    """A stand-in model: returns its first input, optionally after sleeping ``latency_s``."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s

    def __call__(self, *inputs: Any) -> Any:
        if self.latency_s:
            time.sleep(self.latency_s)
        return inputs[0] if inputs else None


class _Loader:
    """load_fn for a model class (instantiated per copy) or a ready callable; picklable."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, model_filename: str, device_id: int = 0) -> Any:
        return self.model() if isinstance(self.model, type) else self.model


def _name(model: Any) -> str:
    return getattr(model, "__name__", None) or type(model).__name__


def benchmark(model: Any, inputs: Any, **kwargs: Any) -> Any:
    """``neuronperf.benchmark`` for a model class or callable on the CPU."""
    kwargs.setdefault("device_type", "cpu")
    kwargs.setdefault("model_name", _name(model))
    return _engine.benchmark(_Loader(model), kwargs["model_name"], inputs, **kwargs)


def evaluate(model: Any, dataset: Any, metrics: Any = "accuracy", **kwargs: Any) -> Any:
    """``neuronperf.evaluate`` for a model class or callable on the CPU."""
    kwargs.setdefault("device_type", "cpu")
    kwargs.setdefault("model_name", _name(model))
    return _engine.evaluate(_Loader(model), kwargs["model_name"], dataset, metrics, **kwargs)

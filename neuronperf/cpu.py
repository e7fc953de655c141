"""``neuronperf.cpu``: benchmark and evaluate plain Python models on the CPU."""

from neuronperf_core.cpu import DummyModel, benchmark, evaluate

__all__ = ["DummyModel", "benchmark", "evaluate"]

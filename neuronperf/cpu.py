"""``neuronperf.cpu``: benchmark and evaluate plain Python models (a class or a callable) on
the CPU; the core's functions bound to the Python backend."""

from neuronperf_core.api import bind
from neuronperf_core.cpu import DummyModel, PythonBackend

_bound = bind(PythonBackend(), __name__)
backend = _bound.backend
compile = _bound.compile
benchmark = _bound.benchmark
evaluate = _bound.evaluate

__all__ = ["DummyModel", "backend", "benchmark", "compile", "evaluate"]

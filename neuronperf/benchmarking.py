"""``neuronperf.benchmarking``, NeuronPerf 1.x's module path for ``benchmark`` and
``set_verbosity``: ``neuronperf.benchmarking.benchmark(load_fn, model_filename, inputs, ...)``
is ``npf.benchmark``. Compiling moved to the framework plugins (``npf.torch.compile``)."""

from typing import Any

from neuronperf import benchmark, evaluate
from neuronperf_core.benchmarking.sweep import set_verbosity

__all__ = ["benchmark", "evaluate", "set_verbosity"]


def __getattr__(name: str) -> Any:
    if name == "compile":  # 1.x's benchmarking.compile(compile_fn, ...): say where it went
        import neuronperf

        return neuronperf.compile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""neuronperf: benchmark and evaluate models on AWS Neuron, CPU and CUDA.

``import neuronperf as npf`` gives the names users know from NeuronPerf 1.x.
Framework submodules (``npf.torch``) come from plugin distributions
(``pip install neuronperf-torch``) and resolve on first use.
"""

from __future__ import annotations

from typing import Any

from neuronperf_core import __version__, cpu, model_index
from neuronperf_core.benchmarking.benchmark import benchmark, evaluate, set_verbosity
from neuronperf_core.cpu import DummyModel
from neuronperf_core.errors import MetricError, NeuronPerfError, RegistrationError, UnknownNameError
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.registry import (
    list_metrics,
    register_metric,
    register_metric_from_existing,
)
from neuronperf_core.reporting import get_reports, print_reports, write_csv, write_json
from neuronperf_core.timing import Timer, timestamp_convert

__all__ = [
    "BaseEvalMetric",
    "DummyModel",
    "MetricError",
    "NeuronPerfError",
    "RegistrationError",
    "Timer",
    "UnknownNameError",
    "__version__",
    "benchmark",
    "cpu",
    "evaluate",
    "get_reports",
    "list_metrics",
    "model_index",
    "print_reports",
    "register_metric",
    "register_metric_from_existing",
    "set_verbosity",
    "timestamp_convert",
    "write_csv",
    "write_json",
]


def __getattr__(name: str) -> Any:
    # npf.<framework>: whatever the plugin registered under that framework name.
    if name.startswith("_"):
        raise AttributeError(f"module 'neuronperf' has no attribute {name!r}")
    from neuronperf_core.plugins import get_host

    frameworks = get_host().frameworks
    if name in frameworks:
        return frameworks.get(name).value
    raise AttributeError(
        f"module 'neuronperf' has no attribute {name!r}. If {name!r} is a framework, install "
        f"its plugin distribution (for PyTorch: pip install neuronperf-torch); "
        "`neuronperf plugins` lists the installed ones."
    )

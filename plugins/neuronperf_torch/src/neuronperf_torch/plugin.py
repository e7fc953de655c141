"""The hook implementations of neuronperf-torch: entry point ``torch`` of group ``neuronperf``.

Imported whenever plugins are discovered (``neuronperf plugins``,
``npf.list_metrics()``), so it imports nothing heavy: the framework is
registered by the import path of its module, and the topk metric uses numpy only.
"""

from __future__ import annotations

from neuronperf_core.hookspecs import RegisterFramework, RegisterMetric, hookimpl


@hookimpl
def neuronperf_register_frameworks(register: RegisterFramework) -> None:
    register(
        "torch",
        "neuronperf_torch.api",
        description="PyTorch on Neuron (torch-neuronx), CPU and CUDA: compile, benchmark, evaluate",
    )


@hookimpl
def neuronperf_register_metrics(register: RegisterMetric) -> None:
    from neuronperf_torch.metrics import TopK

    register("TopK", TopK, description=TopK.formula)

"""The hook implementations of neuronperf-torch: entry point ``torch`` of group ``neuronperf``.

Imported whenever plugins are discovered (``neuronperf plugins``,
``npf.list_metrics()``), so it imports nothing heavy: the backend object imports torch
on first real use, and the topk metric is registered by import path (its module, which
uses numpy, is imported on first use).
"""

from __future__ import annotations

from typing import Any

from neuronperf_core.hookspecs import RegisterBackend, RegisterMetric, hookimpl


@hookimpl
def neuronperf_register_backends(register: RegisterBackend) -> None:
    from neuronperf_torch.backend import TorchBackend

    register(TorchBackend())


@hookimpl
def neuronperf_register_metrics(register: RegisterMetric) -> None:
    register(
        "TopK",
        "neuronperf_torch.metrics:TopK",
        description="records whose target class is among the k highest scores / records (k=1)",
    )


@hookimpl
def neuronperf_register_commands(cli: Any) -> None:
    from neuronperf_torch.demo import register_demo_command

    register_demo_command(cli)

"""neuronperf-torch: the PyTorch framework of neuronperf (Neuron, CPU, CUDA) and the topk metric.

Users reach it as ``npf.torch`` (``import neuronperf as npf``) or ``import
neuronperf.torch``; both are this distribution's ``neuronperf_torch.api``.
This package imports nothing heavy: torch loads on first real use.
"""

from __future__ import annotations

__version__ = "0.1.0"

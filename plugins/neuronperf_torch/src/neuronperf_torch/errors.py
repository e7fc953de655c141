"""The exceptions of the torch plugin: each says what was wrong and what to do."""

from __future__ import annotations

from neuronperf_core.errors import NeuronPerfError


class TorchArgumentError(NeuronPerfError, ValueError):
    """compile(), benchmark() or evaluate() got arguments they cannot use."""


class InputShapeError(TorchArgumentError):
    """An input does not match the shapes or dtypes a model was compiled for."""


class DeviceUnavailableError(NeuronPerfError, RuntimeError):
    """The requested device (Neuron, CUDA) or enough copies of it is not available here."""


class UnsafeArtifactError(NeuronPerfError, ValueError):
    """A model file that would unpickle Python objects (which can run arbitrary code)."""

"""neuronperf-core: the framework-neutral core of neuronperf.

Users import ``neuronperf``; plugin authors import ``neuronperf_core`` for
``hookimpl`` and ``BaseEvalMetric``. Importing this package never imports torch.
"""

__version__ = "0.1.0"

from neuronperf_core.hookspecs import hookimpl
from neuronperf_core.metrics.base import BaseEvalMetric

__all__ = ["BaseEvalMetric", "__version__", "hookimpl"]

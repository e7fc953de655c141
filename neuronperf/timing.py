"""``neuronperf.timing``, NeuronPerf 1.x's module path for ``Timer`` and ``timestamp_convert``:
the module ``neuronperf_core.timing`` itself, which takes this module's place when it is
imported (so ``import neuronperf.timing``, ``from neuronperf.timing import ...`` and
``npf.timing`` all give the same module)."""

import sys

from neuronperf_core import timing as _core
from neuronperf_core.timing import *  # noqa: F403  (its names, for type checkers)

sys.modules[__name__] = _core

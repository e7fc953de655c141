"""``neuronperf.reporting``, NeuronPerf 1.x's module path for ``get_reports``,
``print_reports``, ``write_csv`` and ``write_json``: the module ``neuronperf_core.reporting``
itself, which takes this module's place when it is imported (so ``import
neuronperf.reporting``, ``from neuronperf.reporting import ...`` and ``npf.reporting`` all
give the same module)."""

import sys

from neuronperf_core import reporting as _core
from neuronperf_core.reporting import *  # noqa: F403  (its names, for type checkers)

sys.modules[__name__] = _core

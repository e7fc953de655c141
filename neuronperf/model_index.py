"""``neuronperf.model_index``, NeuronPerf 1.x's module path for ``create``, ``load``,
``save``, ``append``, ``filter``, ``copy``, ``move`` and ``delete``: the module
``neuronperf_core.model_index`` itself, which takes this module's place when it is imported
(so ``import neuronperf.model_index``, ``from neuronperf.model_index import ...`` and
``npf.model_index`` all give the same module)."""

import sys

from neuronperf_core import model_index as _core
from neuronperf_core.model_index import *  # noqa: F403  (its names, for type checkers)

sys.modules[__name__] = _core

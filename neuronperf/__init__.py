"""neuronperf: benchmark and evaluate models on AWS Neuron, CPU and CUDA.

``import neuronperf as npf`` gives the names users know from NeuronPerf 1.x.
Framework submodules (``npf.torch``) come from plugin distributions
(``pip install neuronperf-torch``) and resolve on first use.

Importing it stays fast (no numpy, no benchmark engine): the names whose modules
need them (reporting, timing, ``set_verbosity``, ``DummyModel``, ``model_index``)
are imported on first access, through the module's ``__getattr__``. So are 1.x's module
paths: ``neuronperf.benchmarking``, ``neuronperf.reporting``, ``neuronperf.timing`` and
``neuronperf.model_index`` (``import neuronperf.reporting``, ``from neuronperf.timing
import Timer``, or as attributes).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

from neuronperf_core import __version__
from neuronperf_core.errors import (
    MetricError,
    NeuronPerfError,
    RegistrationError,
    UndefinedMetricWarning,
    UnknownNameError,
)
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.registry import (
    list_metrics,
    register_metric,
    register_metric_from_existing,
)

if TYPE_CHECKING:
    from neuronperf_core import model_index
    from neuronperf_core.benchmarking.sweep import set_verbosity
    from neuronperf_core.cpu import DummyModel
    from neuronperf_core.reporting import get_reports, print_reports, write_csv, write_json
    from neuronperf_core.timing import Timer, timestamp_convert

# Public names imported on first access: name -> (module, attribute; None for the module).
_LAZY: dict[str, tuple[str, str | None]] = {
    "model_index": ("neuronperf_core.model_index", None),
    "benchmarking": ("neuronperf.benchmarking", None),  # 1.x's module paths
    "reporting": ("neuronperf.reporting", None),
    "timing": ("neuronperf.timing", None),
    "set_verbosity": ("neuronperf_core.benchmarking.sweep", "set_verbosity"),
    "DummyModel": ("neuronperf_core.cpu", "DummyModel"),
    "get_reports": ("neuronperf_core.reporting", "get_reports"),
    "print_reports": ("neuronperf_core.reporting", "print_reports"),
    "write_csv": ("neuronperf_core.reporting", "write_csv"),
    "write_json": ("neuronperf_core.reporting", "write_json"),
    "Timer": ("neuronperf_core.timing", "Timer"),
    "timestamp_convert": ("neuronperf_core.timing", "timestamp_convert"),
}

__all__ = [
    "BaseEvalMetric",
    "DummyModel",
    "MetricError",
    "NeuronPerfError",
    "RegistrationError",
    "Timer",
    "UndefinedMetricWarning",
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


def benchmark(load_fn: Any, model_filename: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
    """NeuronPerf 1.x's benchmark: ``load_fn(model_filename, device_id=...)`` loads each copy
    (a model index, a model file, or any name ``load_fn`` takes). Framework plugins offer the
    same without a load_fn: ``npf.torch.benchmark(model_index_or_path, inputs, ...)``."""
    from neuronperf_core.cpu import load_fn_target

    return _load_fn_module(load_fn).benchmark(
        load_fn_target(model_filename), inputs, *args, **kwargs
    )


def evaluate(load_fn: Any, model_filename: Any, dataset: Any, *args: Any, **kwargs: Any) -> Any:
    """``benchmark`` as an evaluation of ``dataset`` (see ``npf.torch.evaluate``)."""
    from neuronperf_core.cpu import load_fn_target

    return _load_fn_module(load_fn).evaluate(
        load_fn_target(model_filename), dataset, *args, **kwargs
    )


def _load_fn_module(load_fn: Any) -> ModuleType:
    from neuronperf_core.api import bind
    from neuronperf_core.cpu import PythonBackend
    from neuronperf_core.options import OptionError

    if not callable(load_fn):
        raise OptionError(
            f"load_fn must be callable as load_fn(model_filename, device_id=...), got {load_fn!r}."
        )
    return bind(PythonBackend(load_fn, ("neuron", "cpu", "cuda")), f"{__name__}")


def framework(name: str) -> ModuleType:
    """``npf.<name>``: the core's compile, benchmark and evaluate bound to backend ``name``
    (``npf.torch``), built on first use."""
    from neuronperf_core.api import bind
    from neuronperf_core.plugins import get_host

    full = f"{__name__}.{name}"
    module = sys.modules.get(full)
    if module is None:
        module = bind(get_host().backends.get(name).value, full)
        sys.modules[full] = module  # `import neuronperf.torch` finds it too
    return module


def _missing_framework(name: str) -> str:
    return (
        f"neuronperf has no framework {name!r}. Framework submodules come from plugin "
        f"distributions: for PyTorch, pip install neuronperf-torch. `neuronperf plugins` "
        "lists the installed ones (and any that failed to load)."
    )


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "cpu":  # a real submodule, imported on first use (it imports the engine)
        return importlib.import_module(f"{__name__}.cpu")
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value  # later accesses skip __getattr__
        return value
    from neuronperf_core.plugins import get_host

    if name in get_host().backends:
        return framework(name)
    if name == "compile":  # NeuronPerf 1.x's npf.compile(compile_fn, ...)
        raise AttributeError(
            "neuronperf has no top-level compile(): compiling is framework-specific, so it "
            "lives in the framework plugin: npf.torch.compile(model, inputs, ...) "
            "(pip install neuronperf-torch)."
        )
    raise AttributeError(_missing_framework(name))


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _FrameworkFinder(importlib.abc.MetaPathFinder):
    """Makes ``import neuronperf.torch`` import the module the torch plugin registered."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != __name__ or not name or "." in name or name.startswith("_"):
            return None
        from neuronperf_core.plugins import get_host

        if name not in get_host().backends:
            raise ModuleNotFoundError(_missing_framework(name), name=fullname)
        return importlib.util.spec_from_loader(fullname, _FrameworkLoader(name))


class _FrameworkLoader(importlib.abc.Loader):
    def __init__(self, name: str) -> None:
        self.name = name

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return framework(self.name)  # the plugin's module itself, not a copy

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed by its own import


if not any(isinstance(f, _FrameworkFinder) for f in sys.meta_path):
    sys.meta_path.append(_FrameworkFinder())  # last: real submodules (neuronperf.cpu) win

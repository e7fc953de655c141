"""What the command line's arguments name: models, frameworks, input arrays, datasets, metrics.

Everything here checks its argument and fails with a ``UsageError`` that says
what was wrong and what to write instead, before any model is compiled or loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from neuronperf_core.errors import NeuronPerfError

# numpy names the command line accepts for random inputs; bfloat16 is a cast mode, not an
# input dtype (numpy has none): models compiled with --cast-modes bf16 take float32 inputs.
DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
INTEGER_HIGH = 2  # random integer inputs are 0s and 1s: valid token ids and masks for any model


class UsageError(NeuronPerfError, ValueError):
    """A command-line argument that cannot be used as given."""


# -- small values ---------------------------------------------------------------------------


def positive_int_list(text: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]`` (an argparse ``type``)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise ValueError(
            f"expected positive integers separated by commas, like 1,8,32; got {text!r}"
        )
    return values


def name_list(text: str) -> list[str]:
    """``"fp32,bf16"`` -> ``["fp32", "bf16"]`` (an argparse ``type``)."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values:
        raise ValueError(f"expected names separated by commas, got {text!r}")
    return values


def shape(text: str) -> tuple[int, ...]:
    """``"1x3x224x224"`` -> ``(1, 3, 224, 224)`` (an argparse ``type``)."""
    try:
        dims = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise ValueError(
            f"expected positive dimensions joined by x, batch first, like 1x3x224x224; got {text!r}"
        )
    return dims


def dtype(text: str) -> str:
    """A numpy dtype name from ``DTYPES`` (an argparse ``type``)."""
    if text not in DTYPES:
        hint = " (bfloat16 is a cast mode: compile with --cast-modes bf16)" if "bf" in text else ""
        raise ValueError(f"unsupported dtype {text!r}{hint}; use one of {', '.join(DTYPES)}")
    return text


# -- models and frameworks ------------------------------------------------------------------


def is_object_spec(spec: str) -> bool:
    """``package.module:factory`` or ``path/to/file.py:factory`` (and not an existing file)."""
    module, sep, attr = spec.rpartition(":")
    return bool(sep and module and attr.isidentifier() and not Path(spec).exists())


def load_object(spec: str, what: str) -> Any:
    """Import ``module:attr``; call it when it is a class or a function (a factory)."""
    module_name, _, attr = spec.rpartition(":")
    try:
        module = _import(module_name)
    except UsageError:
        raise
    except Exception as exc:  # the user's module failed while importing: show why
        raise UsageError(f"importing {module_name!r} for {what} failed: {exc!r}") from exc
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{module_name!r} has no {attr!r} (from {what} {spec!r})") from None
    if inspect.isclass(value) or inspect.isfunction(value):
        try:
            return value()
        except TypeError as exc:
            raise UsageError(
                f"{spec} must be callable without arguments to build {what}: {exc}"
            ) from exc
    return value


def _import(module_name: str) -> ModuleType:
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise UsageError(f"{path} does not exist")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"{path} is not an importable Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # pickling by reference (fresh interpreters) needs it
        spec.loader.exec_module(module)
        return module
    if importlib.util.find_spec(module_name.partition(".")[0]) is None:
        raise UsageError(
            f"no module named {module_name!r}: install it, run from the folder that holds it, "
            "or give a file instead (path/to/file.py:factory)"
        )
    return importlib.import_module(module_name)


def existing_path(text: str, what: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise UsageError(f"{what} {text} does not exist")
    return path


@dataclass(frozen=True)
class Framework:
    name: str
    module: ModuleType
    distribution: str | None

    def need(self, function: str) -> Any:
        """The framework module's ``function``, or a clear error when it does not offer it."""
        value = getattr(self.module, function, None)
        if value is None:
            raise UsageError(
                f"the {self.name!r} framework ({self.distribution or 'a plugin'}) does not offer "
                f"{function}() to the command line; use it from Python, or upgrade the plugin"
            )
        return value


def installed_frameworks() -> list[tuple[str, str | None]]:
    """(name, distribution) of every framework the plugins registered; imports nothing heavy."""
    from neuronperf_core.plugins import get_host

    host = get_host()
    providers = {p.name: p.distribution for p in host.plugins}
    return [(entry.name, providers.get(entry.provider)) for entry in host.frameworks]


def framework(name: str) -> Framework:
    from neuronperf import framework as import_framework

    found = dict(installed_frameworks())
    if name not in found:
        raise UsageError(f"no framework {name!r} is installed; {_frameworks_hint()}")
    return Framework(name, import_framework(name), found[name])


def framework_for(target: Any, what: str, chosen: str | None) -> Framework:
    """The framework that takes ``target`` (a path or a model object): ``chosen`` when
    given, else the installed framework whose ``owns(target)`` says yes."""
    if chosen is not None:
        return framework(chosen)
    names = [name for name, _ in installed_frameworks()]
    if not names:
        raise UsageError(f"no framework plugin is installed; {_frameworks_hint()}")
    owners = []
    for name in names:
        fw = framework(name)
        owns = getattr(fw.module, "owns", None)
        if owns is None or owns(target):
            owners.append(fw)
    if len(owners) == 1:
        return owners[0]
    if not owners:
        raise UsageError(
            f"no installed framework plugin can load {what} ({', '.join(names)} said no); "
            f"{_frameworks_hint()}"
        )
    raise UsageError(
        f"several frameworks can load {what} ({', '.join(f.name for f in owners)}): "
        "choose one with --framework"
    )


def framework_offering(function: str, path: str, chosen: str | None) -> Framework:
    """The framework to call ``function`` on ``path`` with: ``chosen``; else of the installed
    frameworks that offer it, the one that owns ``path``, or the only one."""
    if chosen is not None:
        return framework(chosen)
    able = [framework(name) for name, _ in installed_frameworks()]
    able = [fw for fw in able if hasattr(fw.module, function)]
    owners = [fw for fw in able if getattr(fw.module, "owns", lambda _: False)(path)]
    if len(owners) == 1:
        return owners[0]
    if len(able) == 1:
        return able[0]  # its own error says best what it cannot read
    if not able:
        raise UsageError(f"no installed framework plugin can read {path}; {_frameworks_hint()}")
    raise UsageError(
        f"several frameworks could read {path} ({', '.join(f.name for f in owners or able)}): "
        "choose one with --framework"
    )


def _frameworks_hint() -> str:
    return (
        "framework plugins come from their own distributions (PyTorch: pip install "
        "neuronperf-torch); `neuronperf plugins` lists what is installed and what failed to load"
    )


# -- arrays: inputs and datasets ------------------------------------------------------------


def read_arrays(path: Path, fw: Framework | None) -> list[Any]:
    """The arrays of an input or dataset file: ``.npz`` here (file order), other formats
    (``.pt``) by the framework."""
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:  # never unpickle a data file
                keys = list(data.files)
                arrays = [data[key] for key in keys]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise UsageError(f"cannot read {path} as .npz arrays: {exc}") from exc
        if not arrays:
            raise UsageError(f"{path} holds no arrays")
        scalars = [key for key, a in zip(keys, arrays, strict=True) if a.ndim == 0]
        if scalars:
            raise UsageError(
                f"{path}: {', '.join(scalars)} is a single value; every array needs a first "
                "(batch or record) dimension"
            )
        return arrays
    if fw is None:
        raise UsageError(f"{path}: only .npz files can be read without a framework")
    from_framework: list[Any] = fw.need("read_arrays")(path)
    return from_framework


def random_inputs(
    shapes: Sequence[tuple[int, ...]], dtypes: Sequence[str], batch_sizes: Sequence[int] | None
) -> list[Any]:
    """One random input per batch size: each shape with its first dimension set to the batch
    size (one input of the shapes as given when ``batch_sizes`` is None)."""
    if len(dtypes) not in (1, len(shapes)):
        raise UsageError(
            f"{len(shapes)} --input-shape but {len(dtypes)} --dtype: give one --dtype for all "
            "inputs, or one per --input-shape"
        )
    kinds = list(dtypes) * len(shapes) if len(dtypes) == 1 else list(dtypes)
    rng = np.random.default_rng(0)

    def one(batch: int | None) -> Any:
        arrays = []
        for dims, kind in zip(shapes, kinds, strict=True):
            full = dims if batch is None else (batch, *dims[1:])
            if np.issubdtype(np.dtype(kind), np.floating):
                arrays.append(rng.standard_normal(full).astype(kind))
            else:
                arrays.append(rng.integers(0, INTEGER_HIGH, full).astype(kind))
        return arrays[0] if len(arrays) == 1 else tuple(arrays)

    if batch_sizes is None:
        return [one(None)]
    return [one(b) for b in batch_sizes]


def sliced_inputs(
    arrays: Sequence[Any], batch_sizes: Sequence[int] | None, path: Path
) -> list[Any]:
    """One input per batch size: the first ``b`` rows of every array (all rows when
    ``batch_sizes`` is None)."""
    rows = min(len(a) for a in arrays)
    inputs = []
    wanted: Sequence[int | None] = batch_sizes or [None]
    for batch in wanted:
        if batch is not None and rows < batch:
            raise UsageError(
                f"{path} holds {rows} rows; batch size {batch} needs at least {batch}: save more "
                "rows, or choose smaller --batch-sizes"
            )
        picked = [a if batch is None else a[:batch] for a in arrays]
        inputs.append(picked[0] if len(picked) == 1 else tuple(picked))
    return inputs


# -- metrics --------------------------------------------------------------------------------


def metric_names(specs: Sequence[str]) -> list[str]:
    """Registered metric names for ``specs``, registering the parametrised ones.

    ``NAME:KEY=VALUE[:KEY=VALUE]`` is metric NAME built with those keyword arguments
    (``precision:average=macro``); ``NAME_N`` is NAME built with ``k=N`` when NAME takes
    ``k`` (``topk_5``: the evaluation guide's naming, as in ``topk_3``).
    """
    from neuronperf_core.metrics.registry import get_metric, register_metric_from_existing

    names = []
    for spec in specs:
        base, *settings = spec.split(":")
        options = dict(_option(spec, s) for s in settings)
        if not options:
            base, options = _k_shorthand(spec)
        if options and spec not in registered_metrics():
            register_metric_from_existing(base, spec, **options)
        get_metric(spec)  # unknown names fail here, with the closest known names
        names.append(spec)
    return names


def registered_metrics() -> Any:
    from neuronperf_core.plugins import get_host

    return get_host().metrics


def _k_shorthand(spec: str) -> tuple[str, dict[str, Any]]:
    base, sep, number = spec.rpartition("_")
    if not sep or not number.isdigit() or spec in registered_metrics():
        return spec, {}
    metrics = registered_metrics()
    if base not in metrics:
        return spec, {}
    if "k" not in inspect.signature(metrics.get(base).value).parameters:
        return spec, {}
    return base, {"k": int(number)}


def _option(spec: str, setting: str) -> tuple[str, Any]:
    key, sep, text = setting.partition("=")
    if not sep or not key.isidentifier():
        raise UsageError(
            f"metric {spec!r}: expected NAME:KEY=VALUE settings, like precision:average=macro"
        )
    value: Any = text
    for convert in (int, float):
        try:
            value = convert(text)
            break
        except ValueError:
            continue
    else:
        value = {"true": True, "false": False, "none": None}.get(text.lower(), text)
    return key, value

"""What the command line's arguments name: models, backends, input arrays and datasets.

Everything here checks its argument and fails with a ``UsageError`` that says
what was wrong and what to write instead, before any model is compiled or loaded.
Imports nothing heavy at module level (numpy inside the functions that need it), and
never the user package ``neuronperf``: only ``neuronperf_core``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from neuronperf_core.errors import NeuronPerfError

if TYPE_CHECKING:
    from neuronperf_core.backend import Backend

# numpy names the command line accepts for random inputs; bfloat16 is a cast mode, not an
# input dtype (numpy has none): models compiled with --cast-modes bf16 take float32 inputs.
DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
INTEGER_HIGH = 2  # random integer inputs are 0s and 1s: valid token ids and masks for any model


class UsageError(NeuronPerfError, ValueError):
    """A command-line argument that cannot be used as given."""


# -- small values ---------------------------------------------------------------------------


def positive_int_list(text: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]`` (a click type: ``flags``)."""
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
    """``"fp32,bf16"`` -> ``["fp32", "bf16"]`` (a click type: ``flags``)."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values:
        raise ValueError(f"expected names separated by commas, got {text!r}")
    return values


def shape(text: str) -> tuple[int, ...]:
    """``"1x3x224x224"`` -> ``(1, 3, 224, 224)`` (a click type: ``flags``)."""
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
    """A numpy dtype name from ``DTYPES`` (a click type: ``flags``)."""
    if text not in DTYPES:
        hint = " (bfloat16 is a cast mode: compile with --cast-modes bf16)" if "bf" in text else ""
        raise ValueError(f"unsupported dtype {text!r}{hint}; use one of {', '.join(DTYPES)}")
    return text


# -- models and backends --------------------------------------------------------------------


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
    except (Exception, SystemExit) as exc:  # the user's module failed while importing
        raise UsageError(
            f"importing {module_name!r} for {what} failed: {_raised(exc)} (-v shows where)"
        ) from exc
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{module_name!r} has no {attr!r} (from {what} {spec!r})") from None
    if not (inspect.isclass(value) or inspect.isfunction(value)):
        return value
    try:
        inspect.signature(value).bind()
    except TypeError as exc:
        raise UsageError(
            f"{spec} must be callable without arguments to build {what}: {exc}"
        ) from None
    except ValueError:
        pass  # no signature to read (a builtin): calling it says
    try:
        return value()
    except (Exception, SystemExit) as exc:  # the user's factory: their error, said as theirs
        raise UsageError(
            f"{spec}() raised {_raised(exc)} while building {what} (-v shows where)"
        ) from exc


def _raised(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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
    here = os.getcwd()  # as `python -m` and uvicorn do: the current folder's modules import
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
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


def backend_named(name: str) -> Backend:
    """The installed backend ``name`` (``--backend``)."""
    from neuronperf_core.plugins import get_host

    backends = get_host().backends
    if name not in backends:
        known = ", ".join(e.name for e in backends) or "none"
        raise UsageError(f"no backend {name!r} is installed (installed: {known}); {_hint()}")
    return backends.get(name).value


def backend_for(target: Any, what: str, chosen: str | None) -> Backend:
    """The backend that takes ``target`` (a path or a model object): ``chosen`` when given,
    else the installed backend whose ``owns(target)`` says yes."""
    if chosen is not None:
        return backend_named(chosen)
    backends = _installed()
    if not backends:
        raise UsageError(f"no framework plugin is installed; {_hint()}")
    owners = [b for b in backends if b.owns(target)]
    if len(owners) == 1:
        return owners[0]
    if not owners:
        names = ", ".join(b.name for b in backends)
        raise UsageError(
            f"no installed framework plugin can load {what} ({names} said no); {_hint()}"
        )
    raise UsageError(
        f"several backends can load {what} ({', '.join(b.name for b in owners)}): choose one "
        "with --backend"
    )


def backend_reading(path: Path, chosen: str | None) -> Backend:
    """The backend to read the saved model ``path`` with: ``chosen``; else the one that owns
    it, or the only one installed (its own error says best what it cannot read)."""
    if chosen is not None:
        return backend_named(chosen)
    backends = _installed()
    owners = [b for b in backends if b.owns(path)]
    if len(owners) == 1:
        return owners[0]
    if len(backends) == 1:
        return backends[0]
    if not backends:
        raise UsageError(f"no framework plugin is installed to read {path}; {_hint()}")
    raise UsageError(
        f"{'several' if owners else 'no'} installed backends can read {path} "
        f"({', '.join(b.name for b in owners or backends)}): choose one with --backend"
    )


def _installed() -> list[Backend]:
    from neuronperf_core.plugins import get_host

    return [entry.value for entry in get_host().backends]


def _hint() -> str:
    return (
        "framework plugins come from their own distributions (PyTorch: pip install "
        "neuronperf-torch); `neuronperf plugins` lists what is installed and what failed to load"
    )


# -- arrays: inputs and datasets ------------------------------------------------------------


def read_arrays(path: Path, backend: Backend | None) -> list[Any]:
    """The arrays of an input or dataset file: ``.npz`` here (file order, never unpickled),
    other formats (``.pt``) by the backend."""
    if path.suffix == ".npz":
        import numpy as np

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
    if backend is None:
        raise UsageError(f"{path}: only .npz files can be read without a framework plugin")
    return list(backend.read_arrays(path))


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
    import numpy as np

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

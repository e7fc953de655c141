"""What the ``neuronperf`` command line asks of the torch framework: which targets it owns,
and how to read input and dataset files.

- ``owns(target)``: a ``torch.nn.Module`` or ``ExportedProgram``; a ``.pt2`` archive with
  this plugin's metadata; a TorchScript ``.pt`` archive (what torch-neuronx models are, this
  plugin's and NeuronPerf 1.x's, or a model traced with ``torch.jit.trace`` for CPU or
  CUDA); a model index whose finished configs are such files.
- ``read_arrays(path)``: the tensors of a ``.pt`` file, read with
  ``torch.load(weights_only=True)``, which builds tensors and plain containers only and
  never runs code from the file.
- ``dataset_from_arrays(arrays)``: columns of records as a ``TensorDataset`` that
  ``evaluate`` batches to each compiled batch size.

Nothing here imports torch at module level: ``owns`` on a path reads zip listings only.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuronperf_torch import export, neuron
from neuronperf_torch.errors import TorchArgumentError

logger = logging.getLogger("neuronperf.torch")

ARRAYS_SUFFIX = ".pt"
_SAVE_HINT = "Save one with torch.save((x, y), path): a tensor, or a tuple, list or dict of them."


# -- owns -------------------------------------------------------------------------------


def _is_torch_object(target: Any) -> bool:
    torch = sys.modules.get("torch")
    if torch is None:  # not imported yet: nothing can be a torch object
        return False
    exported = getattr(getattr(torch, "export", None), "ExportedProgram", None)
    kinds = (torch.nn.Module,) + ((exported,) if isinstance(exported, type) else ())
    return isinstance(target, kinds)


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive (torch.jit.save) holds code/ and constants.pkl; torch.save's
    archives hold neither. Reads the zip listing only."""
    return export.is_torchscript(path)


def _owns_artifact(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix == export.EXTENSION:
        meta = export.read_meta(path)  # a .pt2 without it runs nowhere: no device recorded
        return meta is not None and "batch_size" in meta
    if suffix == neuron.EXTENSION:
        return export.read_meta(path) is not None or _is_torchscript(path)
    return False


def _owns_index(path: Path) -> bool:
    from neuronperf_core import model_index

    configs = model_index.load(path)["model_configs"]
    files = [
        Path(c["filename"])
        for c in configs
        if c.get("status") == "finished" and c.get("filename") is not None
    ]
    return bool(files) and all(f.is_file() and _owns_artifact(f) for f in files)


def owns(target: Any) -> bool:
    """Whether this framework can take ``target``: a torch module or ExportedProgram, a model
    file this plugin writes (``.pt2``, or a TorchScript ``.pt`` as torch-neuronx saves), or a
    model index (``.json``) whose finished configs are such files. Never raises."""
    if not isinstance(target, (str, os.PathLike)):
        return _is_torch_object(target)
    try:
        path = Path(target)
        if not path.is_file():
            return False  # missing: the caller says so itself
        if path.suffix.lower() == ".json":
            return _owns_index(path)
        return _owns_artifact(path)
    except Exception as exc:  # a probe: whatever cannot be read is not ours
        logger.debug("owns(%r): no (%s: %s)", target, type(exc).__name__, exc)
        return False


# -- read_arrays ------------------------------------------------------------------------


def _tensor_list(value: Any, path: str) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        items, what = list(value.values()), "dict"
    elif isinstance(value, (tuple, list)):
        items, what = list(value), type(value).__name__
    else:
        raise TorchArgumentError(
            f"{path} holds a {type(value).__name__}; an input or dataset file must hold a "
            f"tensor, or a tuple, list or dict of tensors. {_SAVE_HINT}"
        )
    if not items:
        raise TorchArgumentError(f"{path} holds an empty {what}, no arrays. {_SAVE_HINT}")
    for i, item in enumerate(items):
        if not isinstance(item, torch.Tensor):
            where = f"key {list(value)[i]!r}" if isinstance(value, dict) else f"item {i}"
            hint = (
                " Convert numpy arrays with torch.from_numpy before saving."
                if type(item).__module__ == "numpy"
                else ""
            )
            raise TorchArgumentError(
                f"{path}: {where} of the {what} is a {type(item).__name__}, not a tensor "
                f"(nested containers are not read either).{hint} {_SAVE_HINT}"
            )
    return items


def read_arrays(path: str | os.PathLike[str]) -> list[Any]:
    """The tensors of a ``.pt`` input or dataset file, in order (a dict: its values).

    Read with ``torch.load(weights_only=True)``, onto the CPU: a file holding any other
    Python object is refused, since reading it would mean unpickling, which can run code.
    """
    name = os.fspath(path)
    if Path(name).suffix.lower() != ARRAYS_SUFFIX:
        raise TorchArgumentError(
            f"{name}: the torch framework reads arrays from {ARRAYS_SUFFIX} files (torch.save); "
            f"neuronperf reads .npz files itself. {_SAVE_HINT}"
        )
    if not Path(name).is_file():
        raise TorchArgumentError(f"{name} does not exist (or is not a file).")
    if _safe_is_torchscript(name):  # torch.load would warn, then refuse it
        raise TorchArgumentError(f"{name} is a TorchScript model, not arrays. {_SAVE_HINT}")
    import torch

    try:
        value = torch.load(name, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickler_reason(exc)
        if reason.startswith("Unsupported global"):  # any object but a tensor or container
            raise TorchArgumentError(
                f"refusing to read {name}: it holds Python objects other than tensors and "
                "plain containers, which only full unpickling reads, and that can run "
                f"arbitrary code ({reason}). {_SAVE_HINT}"
            ) from exc
        raise TorchArgumentError(
            f"cannot read {name}: it is unreadable, not a file torch.save wrote, or damaged "
            f"({reason or exc}). {_SAVE_HINT}"
        ) from exc
    except Exception as exc:  # torch.load's errors for damaged files vary (RuntimeError, EOF)
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise TorchArgumentError(
            f"cannot read {name}: it is unreadable, not a file torch.save wrote, or damaged "
            f"({type(exc).__name__}: {detail}). {_SAVE_HINT}"
        ) from exc
    return _tensor_list(value, name)


def _unpickler_reason(exc: Exception) -> str:
    """What torch's long weights_only message says went wrong, e.g. "Unsupported global:
    GLOBAL os.system" (an object) or "Unsupported operand 110" (not a pickle)."""
    match = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
    if match is None:
        return ""
    reason = match.group(1).strip()
    return reason.split(" was not an allowed global")[0]


def _safe_is_torchscript(name: str) -> bool:
    return _is_torchscript(Path(name))  # never raises


# -- dataset_from_arrays -------------------------------------------------------------------


def _column(array: Any, i: int) -> Any:
    import torch

    if isinstance(array, torch.Tensor):
        return array
    if type(array).__module__ == "numpy" and hasattr(array, "dtype"):
        import numpy as np

        array = np.asarray(array)  # a numpy scalar too, caught below as a 0-d column
        if not array.flags.writeable:  # torch.from_numpy warns on read-only memory
            array = array.copy()
        try:
            return torch.from_numpy(array)
        except TypeError as exc:
            raise TorchArgumentError(
                f"column {i} has numpy dtype {array.dtype}, which torch cannot hold: {exc}. "
                "Use numeric arrays."
            ) from exc
    raise TorchArgumentError(
        f"column {i} is a {type(array).__name__}; each column must be a numpy array or a tensor."
    )


def dataset_from_arrays(arrays: Sequence[Any]) -> Any:
    """A ``TensorDataset`` of records ``(*inputs, target)`` from columns (numpy arrays or
    tensors; numpy shares memory through ``torch.from_numpy``): record i is every column's
    row i, so all columns need the same first dimension, and the last column is the target.
    """
    from torch.utils.data import TensorDataset

    if isinstance(arrays, (str, bytes)) or not isinstance(arrays, Sequence):
        raise TorchArgumentError(
            f"arrays is a {type(arrays).__name__}; pass a list of columns: the inputs, then "
            "the target."
        )
    if len(arrays) < 2:
        raise TorchArgumentError(
            f"got {len(arrays)} array(s); an evaluation dataset needs at least 2 columns: the "
            "model's input(s), then the target."
        )
    columns = [_column(a, i) for i, a in enumerate(arrays)]
    scalars = [i for i, c in enumerate(columns) if c.dim() == 0]
    if scalars:
        raise TorchArgumentError(
            f"column(s) {scalars} are scalars; each column needs one row per record (its "
            "first dimension)."
        )
    lengths = [int(c.shape[0]) for c in columns]
    if len(set(lengths)) > 1:
        raise TorchArgumentError(
            f"the columns have different numbers of records (first dimensions {lengths}); "
            "every input and the target need one row per record."
        )
    if lengths[0] == 0:
        raise TorchArgumentError("the columns hold no records: there is nothing to evaluate.")
    return TensorDataset(*columns)


# -- read_model ---------------------------------------------------------------------------

MODEL_SUFFIX = ".pt2"


def read_model(path: str | os.PathLike[str]) -> Any:
    """A saved, not yet compiled model for ``neuronperf compile``: a ``.pt2`` archive from
    ``torch.export.save``, checked to hold no pickled objects before it loads."""
    path = Path(path)
    if path.is_file() and export.is_torchscript(path):
        raise TorchArgumentError(
            f"{path} is a TorchScript model, traced already: neuronperf compile reads models "
            f"to compile from {MODEL_SUFFIX} archives (torch.export.save). Benchmark it as "
            f"it is: neuronperf benchmark {path} --batch-sizes N --input-shape ... (add "
            "--device cpu for a model traced with torch.jit.trace)."
        )
    if path.suffix != MODEL_SUFFIX:
        raise TorchArgumentError(
            f"{path}: neuronperf compile reads saved models from {MODEL_SUFFIX} archives "
            "(torch.export.save(torch.export.export(model, example_args), 'model.pt2')); a "
            "pickled module would run code from the file. Or pass package.module:factory."
        )
    if not path.is_file():
        raise TorchArgumentError(f"{path} does not exist")
    export.check_safe(path)
    import torch

    module = torch.export.load(path).module()
    # Its train/eval mode was fixed at export time and it refuses train() and eval(), which
    # compile calls on every model: make them the no-ops they are for it.
    module.train = types.MethodType(lambda self, mode=True: self, module)  # type: ignore[method-assign]
    module.eval = types.MethodType(lambda self: self, module)  # type: ignore[method-assign]
    return module

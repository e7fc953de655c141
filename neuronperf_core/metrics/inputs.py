"""Input conversion and checks for metrics: shared by the built-ins and public for plugins.

Records and batches may be Python scalars, (nested) lists, numpy arrays or
torch tensors. Torch is never imported: an object with ``.detach`` and ``.cpu``
is treated as a tensor. Every problem raises :class:`MetricError` with a
message that says what was wrong, what was expected and what to do; nothing is
silently coerced into a wrong number.

``where`` arguments name the caller (``"F1Score.process_batch"``) and prefix
every message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError
from neuronperf_core.metrics.base import BaseEvalMetric

__all__ = [
    "batch_labels",
    "check_finite",
    "is_tensor",
    "metric_instances",
    "nothing_processed",
    "output_label",
    "regression_pair",
    "scalar_label",
    "target_label",
    "to_numpy",
]

_NUMERIC_KINDS = frozenset("biuf")  # bool, signed int, unsigned int, float
_INT64_LIMIT = 2.0**63
_M = TypeVar("_M", bound=BaseEvalMetric)
_LABEL_HINT = (
    "Class labels must be integers (map class names to integer ids first); "
    "pass per-class scores as a vector (one score per class) to have their argmax taken."
)


def is_tensor(value: object) -> bool:
    """Whether ``value`` looks like a torch tensor (has ``.detach`` and ``.cpu``)."""
    return hasattr(value, "detach") and hasattr(value, "cpu")


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tensor_to_numpy(value: Any, where: str, what: str) -> NDArray[Any]:
    tensor = value.detach().cpu()
    try:
        return np.asarray(tensor.numpy())
    except TypeError:
        pass  # a dtype numpy lacks (bfloat16): go through float32
    try:
        return np.asarray(tensor.float().numpy())
    except Exception as exc:  # pragma: no cover - exotic tensor types
        raise MetricError(
            f"{where}: {what} is a tensor ({type(value).__name__}, dtype "
            f"{getattr(value, 'dtype', '?')}) that could not be converted to a numpy array "
            f"({exc}); expected a numeric tensor. Convert it yourself, e.g. "
            f"tensor.float().cpu().numpy()."
        ) from exc


def _object_problem(arr: NDArray[Any]) -> str:
    for index, item in enumerate(arr.flat):
        if (
            item is None
            or isinstance(item, (str, bytes))
            or not isinstance(item, (int, float, np.number, np.bool_))
        ):
            return f"a non-numeric element {_short_repr(item)} at flat index {index}"
    return "values of Python object dtype (integers too large for int64, or mixed types)"


def to_numpy(value: Any, where: str, what: str) -> NDArray[Any]:
    """``value`` as a non-empty numpy array of a bool, integer or float dtype.

    Accepts scalars, lists, tuples, numpy arrays and tensors (also lists of
    tensors). Does not copy numpy input. Raises MetricError for None, strings,
    objects, ragged lists, complex numbers and empty input.
    """
    if type(value) is np.ndarray:
        arr = value
    elif value is None:
        raise MetricError(
            f"{where}: {what} is None; expected a number, a list or array of numbers, or a "
            "tensor. Check that the model returns an output and the dataset yields a target "
            "for every record."
        )
    elif isinstance(value, (str, bytes)):
        raise MetricError(
            f"{where}: {what} is a {type(value).__name__} ({_short_repr(value)}); expected a "
            f"number, a list or array of numbers, or a tensor. {_LABEL_HINT}"
        )
    elif is_tensor(value):
        arr = _tensor_to_numpy(value, where, what)
    else:
        if isinstance(value, (list, tuple)) and value and is_tensor(value[0]):
            value = [_tensor_to_numpy(v, where, what) if is_tensor(v) else v for v in value]
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise MetricError(
                f"{where}: {what} could not be read as a numeric array ({exc}); expected "
                "a number or a rectangular list/array of numbers (every row the same length). "
                "Pad or split ragged records, or pass them one at a time to process_record."
            ) from exc
    kind = arr.dtype.kind
    if kind not in _NUMERIC_KINDS:
        if kind == "O":
            problem = _object_problem(arr)
        elif kind in "US":
            problem = "strings"
        elif kind == "c":
            problem = "complex numbers"
        else:
            problem = f"values of dtype {arr.dtype}"
        raise MetricError(
            f"{where}: {what} contains {problem}; expected real numbers (a bool, integer or "
            f"float dtype). {_LABEL_HINT}"
        )
    if arr.size == 0:
        raise MetricError(
            f"{where}: {what} is empty (shape {arr.shape}); expected at least one value. "
            "Skip empty batches instead of passing them to the metric."
        )
    return arr


def check_finite(arr: NDArray[Any], where: str, what: str, *, allow_inf: bool = False) -> None:
    """Raise MetricError if ``arr`` holds NaN (or +-inf unless ``allow_inf``)."""
    if arr.dtype.kind != "f":
        return
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if not bad.any():
        return
    first = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape) if arr.ndim else ()
    n_nan = int(np.count_nonzero(np.isnan(arr)))
    n_inf = int(np.count_nonzero(np.isinf(arr))) if not allow_inf else 0
    found = ", ".join(
        part
        for part in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} infinite" if n_inf else "")
        if part
    )
    at = f" (first at index {tuple(int(i) for i in first)})" if arr.ndim else ""
    expected = "no NaN" if allow_inf else "finite values"
    raise MetricError(
        f"{where}: {what} contains {found} value(s){at}; expected {expected}. A NaN usually "
        "means the model diverged or the data has missing values: fix or drop those records "
        "before scoring them."
    )


def scalar_label(value: Any, where: str, what: str) -> int:
    """A scalar (Python or numpy int, bool, integer-valued float) as a Python int label."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            raise MetricError(
                f"{where}: {what} is NaN; expected an integer class label. Fix or drop the "
                "record (a NaN usually means the model diverged or the label is missing)."
            )
        if math.isinf(number):
            raise MetricError(f"{where}: {what} is {number}; expected an integer class label.")
        if not number.is_integer():
            raise MetricError(
                f"{where}: {what} is {number!r}, which is not an integer-valued class label. "
                "If it is a probability or score, pass the per-class scores as a vector, or "
                "threshold/round it to a label first (e.g. int(p > 0.5))."
            )
        return int(number)
    arr = to_numpy(value, where, what)  # raises for None, str, objects
    if arr.ndim != 0:
        raise MetricError(f"{where}: {what} has shape {arr.shape}; expected a scalar class label.")
    return scalar_label(arr.item(), where, what)


def output_label(value: Any, where: str) -> int:
    """The class predicted by one record's output: a label, or the argmax of a score vector."""
    if isinstance(value, (int, float, np.number, np.bool_)):
        return scalar_label(value, where, "output")
    arr = to_numpy(value, where, "output")
    if arr.ndim == 0:
        return scalar_label(arr.item(), where, "output")
    if arr.ndim == 1:
        if arr.shape[0] < 2:
            raise MetricError(
                f"{where}: output is a vector with a single element ({arr[0].item()!r}); "
                "expected a scalar class label or a vector of per-class scores (at least 2 "
                "classes). If it is a label, pass a scalar (output.item()); if it is one binary "
                "logit or probability, threshold it to a label first (e.g. int(p > 0.5))."
            )
        check_finite(arr, where, "output", allow_inf=True)
        return int(arr.argmax())
    raise MetricError(
        f"{where}: output has shape {arr.shape}; expected a scalar class label or a 1-D vector "
        "of per-class scores. For a batch of records use process_batch(outputs, targets); for "
        "a batch of one, pass output[0]."
    )


def target_label(value: Any, where: str) -> int:
    """One record's target as a Python int class label."""
    if isinstance(value, (int, float, np.number, np.bool_)):
        return scalar_label(value, where, "target")
    arr = to_numpy(value, where, "target")
    if arr.ndim != 0:
        raise MetricError(
            f"{where}: target has shape {arr.shape}; expected a scalar class label. Pass "
            "target.item() for a one-element target, target.argmax() for a one-hot target, or "
            "use process_batch(outputs, targets) for a batch."
        )
    return scalar_label(arr.item(), where, "target")


def _labels_array(arr: NDArray[Any], where: str, what: str) -> NDArray[np.int64]:
    kind = arr.dtype.kind
    if kind == "f":
        check_finite(arr, where, what)
        fractional = arr != np.floor(arr)
        if fractional.any():
            index = int(np.flatnonzero(fractional)[0])
            raise MetricError(
                f"{where}: {what} contains values that are not integer class labels "
                f"(e.g. {arr[index].item()!r} at index {index}); a 1-D array is read as labels. "
                "Pass per-class scores with shape (N, C) to have their argmax taken, or threshold/"
                "round probabilities to labels first (e.g. (p > 0.5).astype(int))."
            )
        if float(np.abs(arr).max()) >= _INT64_LIMIT:
            raise MetricError(
                f"{where}: {what} contains labels beyond the int64 range; expected class ids."
            )
    elif kind == "u" and arr.dtype.itemsize == 8 and int(arr.max()) >= 2**63:
        raise MetricError(
            f"{where}: {what} contains labels beyond the int64 range; expected class ids."
        )
    return arr.astype(np.int64, copy=False)


def batch_labels(
    outputs: Any, targets: Any, where: str
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Predicted and true labels of a batch, as two int64 arrays of length N.

    ``outputs`` is (N,) labels or (N, C) scores (argmax taken); ``targets`` is (N,) labels.
    """
    out = to_numpy(outputs, where, "outputs")
    tgt = to_numpy(targets, where, "targets")
    if tgt.ndim != 1:
        hint = (
            "pass targets.ravel()"
            if tgt.ndim == 2 and tgt.shape[1] == 1
            else "pass targets.argmax(axis=1) for one-hot targets"
            if tgt.ndim == 2
            else "wrap a single record's target in a list or use process_record"
        )
        raise MetricError(
            f"{where}: targets has shape {tgt.shape}; expected shape (N,), one class label "
            f"per record: {hint}."
        )
    if out.ndim == 0 or out.ndim > 2:
        raise MetricError(
            f"{where}: outputs has shape {out.shape}; expected (N,) class labels or (N, C) "
            "per-class scores, one row per record. For a single record use process_record."
        )
    if out.shape[0] != tgt.shape[0]:
        raise MetricError(
            f"{where}: got {out.shape[0]} outputs (shape {out.shape}) but {tgt.shape[0]} "
            f"targets (shape {tgt.shape}); expected one target per output. Check that outputs "
            "and targets come from the same batch."
        )
    if out.ndim == 2:
        if out.shape[1] < 2:
            raise MetricError(
                f"{where}: outputs has shape {out.shape}: one score per record; expected (N,) "
                "labels or (N, C) scores with C >= 2. If the column holds labels pass "
                "outputs.ravel(); if it holds binary logits/probabilities, threshold them "
                "first (e.g. (p > 0.5).astype(int).ravel())."
            )
        check_finite(out, where, "outputs", allow_inf=True)
        pred = out.argmax(axis=1).astype(np.int64, copy=False)
    else:
        pred = _labels_array(out, where, "outputs")
    return pred, _labels_array(tgt, where, "targets")


def regression_pair(
    output: Any, target: Any, where: str, *, batch: bool
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Output and target of a regression record (or batch) as numeric arrays of one shape."""
    names = ("outputs", "targets") if batch else ("output", "target")
    out = to_numpy(output, where, names[0])
    tgt = to_numpy(target, where, names[1])
    if batch and (out.ndim == 0 or tgt.ndim == 0):
        raise MetricError(
            f"{where}: outputs has shape {out.shape} and targets shape {tgt.shape}; a batch "
            "needs a leading axis N (one row per record). For a single record use "
            "process_record."
        )
    if out.shape != tgt.shape:
        raise MetricError(
            f"{where}: {names[0]} has shape {out.shape} but {names[1]} has shape {tgt.shape}; "
            "expected the same shape (nothing is broadcast, as that would silently change the "
            f"mean). Reshape one to match, e.g. {names[0]}.reshape({names[1]}.shape) or "
            "squeeze a trailing axis of size 1."
        )
    return out, tgt


def metric_instances(cls: type[_M], metrics: Iterable[BaseEvalMetric]) -> list[_M]:
    """The metrics to aggregate as a list, all of one class (the class of the first)."""
    if isinstance(metrics, BaseEvalMetric):
        raise MetricError(
            f"{cls.__name__}.aggregate got a single metric instance; expected an iterable of "
            "instances (one per worker). Pass [metric]."
        )
    items = list(metrics)
    if not items:
        raise MetricError(
            f"{cls.__name__}.aggregate got no metric instances; expected the instances that "
            "processed the records (one per worker)."
        )
    first = type(items[0])
    if not issubclass(first, cls):
        raise MetricError(
            f"{cls.__name__}.aggregate got a {first.__name__}; expected {cls.__name__} "
            "instances. Aggregate each metric with its own class."
        )
    for item in items:
        if type(item) is not first:
            raise MetricError(
                f"{cls.__name__}.aggregate got a {type(item).__name__} among {first.__name__} "
                "instances; expected instances of one metric. Aggregate each metric separately."
            )
    return cast("list[_M]", items)


def nothing_processed(name: str) -> MetricError:
    """The error ``aggregate`` raises when no instance saw a record."""
    return MetricError(
        f"{name}.aggregate: nothing was processed (0 records in all instances); expected at "
        "least one record. Check that the dataset is not empty and that process_record or "
        "process_batch was called."
    )

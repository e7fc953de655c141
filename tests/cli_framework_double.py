"""A TEST DOUBLE of a framework plugin, for the command line's tests without torch.

It implements the framework contract the ``neuronperf`` command line uses (see
``neuronperf_core.hookspecs.neuronperf_register_frameworks``) for a toy model in
plain numpy, and times nothing itself: benchmark and evaluate go through the real
engine. The tests install it as a fake distribution (a ``.dist-info`` folder), so
plugin discovery finds it through a real entry point.

Models: ``ScaleModel(scale)`` multiplies its input; as a classifier its output row
``x * scale`` is scored against the target (argmax). Artifacts are JSON files
``*.scale`` holding the scale and batch size; a saved source model is ``*.scalemodel``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

import neuronperf as npf
from neuronperf_core import hookimpl, model_index
from neuronperf_core.errors import NeuronPerfError

ARTIFACT = ".scale"
SOURCE = ".scalemodel"


class ScaleModel:
    def __init__(self, scale: float = 2.0) -> None:
        self.scale = scale

    def __call__(self, x: Any) -> Any:
        return np.asarray(x) * self.scale


def make_model() -> ScaleModel:
    return ScaleModel(2.0)


@hookimpl
def neuronperf_register_frameworks(register: Any) -> None:
    register("scale", __name__, description="a test double of a framework plugin")


# -- the framework contract -------------------------------------------------------------------


def owns(target: Any) -> bool:
    if isinstance(target, ScaleModel):
        return True
    path = Path(os.fspath(target)) if isinstance(target, str | os.PathLike) else None
    if path is None or not path.is_file():
        return False
    if path.suffix in (ARTIFACT, SOURCE):
        return True
    if path.suffix == ".json":
        try:
            configs = model_index.load(path)["model_configs"]
        except NeuronPerfError:
            return False
        return all((c["filename"] or ARTIFACT).endswith(ARTIFACT) for c in configs)
    return False


def read_model(path: Path) -> ScaleModel:
    if Path(path).suffix != SOURCE:
        raise NeuronPerfError(f"{path}: the scale double reads {SOURCE} files only")
    return ScaleModel(json.loads(Path(path).read_text())["scale"])


def dataset_from_arrays(arrays: list[Any]) -> list[tuple[Any, ...]]:
    return list(zip(*arrays, strict=True))  # records: (*inputs, target)


def compile(
    model: ScaleModel,
    inputs: list[Any],
    batch_sizes: list[int],
    models_dir: str,
    model_name: str,
    filename: str,
    **_: Any,
) -> str:
    index = None
    for batch, x in zip(batch_sizes, inputs, strict=True):
        if np.asarray(x).shape[0] != batch:
            raise NeuronPerfError(f"input for batch size {batch} has {np.asarray(x).shape[0]}")
        artifact = Path(models_dir) / f"{model_name}_b{batch}{ARTIFACT}"
        artifact.write_text(json.dumps({"scale": model.scale, "batch_size": batch}))
        one = model_index.create(str(artifact), batch_size=batch, model_name=model_name)
        index = one if index is None else model_index.append(index, one)
    return model_index.save(index, filename)


def _load(filename: str, device_id: int = 0) -> ScaleModel:
    return ScaleModel(json.loads(Path(filename).read_text())["scale"])


def benchmark(model_filename: str, inputs: Any, **kwargs: Any) -> Any:
    kwargs.update(device_type="cpu", multiprocess=False)
    return npf.benchmark(_load, model_filename, inputs, **kwargs)


def evaluate(
    model_filename: str, dataset: Any, metrics: Any, batch_sizes: Any = None, **kwargs: Any
) -> Any:
    """One engine run per batch size, each over the records batched to that size."""
    kwargs.update(device_type="cpu", multiprocess=False)
    results_file = kwargs.pop("results_file", None)
    records = list(dataset)
    configs = model_index.load(model_filename)["model_configs"]
    reports = []
    for batch in batch_sizes or sorted({c["batch_size"] for c in configs}):
        # the engine scores a batch of 1 record by record: give it the records themselves
        rows = (
            records
            if batch == 1
            else [
                tuple(np.stack(col) for col in zip(*records[i : i + batch], strict=True))
                for i in range(0, len(records) - batch + 1, batch)
            ]
        )
        reports += npf.evaluate(
            _load, model_filename, rows, metrics, batch_sizes=[batch], results_dir=None, **kwargs
        )
        if results_file is not None:
            npf.write_json(reports, results_file)  # all batch sizes so far, as the engine would
    return reports

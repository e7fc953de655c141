"""The core's pipeline against backends that do only what the contract asks."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import neuronperf as npf
from neuronperf_core import api
from neuronperf_core.cpu import PythonBackend


class Rows:
    """Re-iterable rows over whatever it wraps: a careless backend's batches()."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __iter__(self) -> Iterator[Any]:
        return iter(self.data)


class WrappingBackend(PythonBackend):
    def batches(self, dataset: Any, batch_size: int, target_col: int, options: Any) -> Any:
        return Rows(dataset)


class Count(npf.BaseEvalMetric):
    def __init__(self) -> None:
        self.n = 0

    def process_record(self, output: Any = None, target: Any = None) -> None:
        self.n += 1

    @staticmethod
    def aggregate(metrics: Any) -> int:
        return sum(m.n for m in metrics)


def test_a_one_shot_dataset_keeps_the_row_the_core_peeked_at() -> None:
    rows = ((i, i) for i in range(10))  # a generator: one pass only
    (report,) = api.evaluate(
        WrappingBackend(), lambda x: x, rows, metrics=[Count], results_dir=None, verbosity=0
    )
    assert report["Count"] == 10
    assert report["total_infs"] == 10


def test_evaluate_shows_its_own_defaults() -> None:
    parameters = inspect.signature(npf.cpu.evaluate).parameters
    for name, value in api.EVALUATE_DEFAULTS.items():
        assert parameters[name].default == value


def test_compile_returns_the_index_file_it_wrote(tmp_path: Any) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from cli_framework_double import ScaleBackend, ScaleModel

    written = api.compile(
        ScaleBackend(),
        ScaleModel(2.0),
        [np.ones((1, 3))],
        models_dir=tmp_path / "models",
        filename=tmp_path / "idx",  # save() adds .json, as 1.x did
        verbosity=0,
    )
    assert written.endswith("idx.json")
    assert npf.model_index.load(written)["model_configs"][0]["status"] == "finished"

"""The ``python`` backend: any Python callable as the model, no framework, no compiling.

``npf.cpu`` is this backend on the CPU: ``npf.cpu.benchmark(Model, inputs, ...)`` with a
model class (built once per copy) or a ready callable. NeuronPerf 1.x's top-level
``npf.benchmark(load_fn, model_filename, inputs, ...)`` is the same backend with the
user's ``load_fn``, on any device the user's loader handles (placement is the loader's).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from neuronperf_core import devices
from neuronperf_core.backend import CompilePlan, CompileSpec, LoadFn, RunPlan
from neuronperf_core.builtin_runners import choose_runner
from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.options import DEVICE_ONLY, BenchmarkOptions, CompileOptions, OptionError

logger = logging.getLogger("neuronperf.cpu")


class DummyModel:
    """A stand-in model: returns its first input, optionally after sleeping ``latency_s``."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s

    def __call__(self, *inputs: Any) -> Any:
        if self.latency_s:
            time.sleep(self.latency_s)
        return inputs[0] if inputs else None


class ModelLoader:
    """load_fn for a model class (built in each copy) or a ready callable; picklable."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, model_filename: str, device_id: int = 0) -> Any:
        return self.model() if isinstance(self.model, type) else self.model


class NamedModel:
    """A model known only by the name its ``load_fn`` takes (NeuronPerf 1.x's
    ``model_filename`` that is not a file)."""

    def __init__(self, name: str) -> None:
        self.__name__ = name


class PythonBackend:
    """Python callables, or whatever a user's ``load_fn`` loads."""

    name = "python"
    description = "any Python callable, or a model your own load_fn loads (NeuronPerf 1.x)"
    extras: tuple[str, ...] = ()

    def __init__(
        self, load_fn: LoadFn | None = None, device_types: tuple[str, ...] = ("cpu",)
    ) -> None:
        self.load_fn = load_fn
        self.device_types = device_types

    def owns(self, target: object) -> bool:
        return callable(target) and not isinstance(target, (str, os.PathLike))

    def model_meta(self, path: Path) -> Mapping[str, Any] | None:
        return None

    def plan_compile(self, model: Any, options: CompileOptions) -> CompilePlan:
        raise NeuronPerfError(
            "Python callables run as they are: there is nothing to compile. Benchmark the "
            "model itself, e.g. npf.cpu.benchmark(Model, inputs, batch_sizes=[1])."
        )

    def compile_one(
        self, model: Any, example: Any, spec: CompileSpec, path: Path, plan: CompilePlan
    ) -> dict[str, Any]:
        raise NeuronPerfError("Python callables run as they are: there is nothing to compile.")

    def plan_run(
        self, target: Any, configs: Sequence[Mapping[str, Any]], options: BenchmarkOptions
    ) -> RunPlan:
        device = options.device_type or self.device_types[0]
        if options.intra_op_threads is not None:
            raise OptionError(
                f"intra_op_threads={options.intra_op_threads}: a Python callable runs as it "
                "is, and neuronperf cannot set its framework's thread count. Set it in your "
                "model or load_fn (torch.set_num_threads, OMP_NUM_THREADS, ...), or use a "
                "framework's backend (npf.torch)."
            )
        if options.transfer == DEVICE_ONLY:
            raise OptionError(
                "transfer='device': a Python callable gets its input as you pass it, and "
                "neuronperf does not move it anywhere, so there is no transfer to leave out. "
                "Pass the input already on the device (and have the model leave its output "
                "there), or use a framework's backend (npf.torch) with transfer='device'."
            )
        if self.load_fn is None and not callable(target):
            raise NeuronPerfError(
                f"the model must be a class or a callable, got {type(target).__name__} "
                f"{target!r}: pass the model itself, e.g. npf.cpu.benchmark(MyModel, inputs)."
            )
        load_fn = self.load_fn if self.load_fn is not None else ModelLoader(target)
        if device == "cpu":
            max_copies: int | None = devices.cpu_cores()
        elif device == "neuron":
            max_copies = devices.neuron_core_count() or None
        else:
            max_copies = None  # the user's loader places copies; the core cannot count
        return RunPlan(device, choose_runner(options), max_copies, load_fn, model_files=False)

    def coerce_inputs(
        self, inputs: Any, batch_sizes: Sequence[int], options: BenchmarkOptions | None
    ) -> Any:
        for name in ("eval_target_col", "dataloader_kwargs"):
            if options is not None and getattr(options, name) is not None:
                raise OptionError(
                    f"{name} only applies when evaluating a dataset: pass eval_metrics=[...] "
                    "too (Python models take their inputs as given)."
                )
        return inputs

    def batch_size_of(self, model_input: Any) -> int | None:
        first = model_input[0] if isinstance(model_input, tuple) and model_input else model_input
        shape = getattr(first, "shape", None)
        # batch first; a 1-D array may as well be one record's features: no batch dimension
        return int(shape[0]) if shape is not None and len(shape) >= 2 else None

    def check_input(self, config: Mapping[str, Any], model_input: Any, what: str) -> None:
        pass  # a Python callable says itself what it takes

    def batches(
        self, dataset: Any, batch_size: int, target_col: int, options: BenchmarkOptions
    ) -> Iterable[tuple[Any, ...]]:
        rows: Iterable[tuple[Any, ...]] = dataset  # batched already: tuple(*INPUTS, TARGET)
        return rows

    def read_model(self, path: Path) -> Any:
        raise NeuronPerfError(f"{path}: Python callables are not read from files.")

    def read_arrays(self, path: Path) -> list[Any]:
        raise NeuronPerfError(f"{path}: only .npz files can be read without a framework plugin.")

    def dataset_from_arrays(self, arrays: Sequence[Any]) -> Any:
        return list(zip(*arrays, strict=True))


def load_fn_target(model_filename: Any) -> Any:
    """What npf.benchmark(load_fn, model_filename, ...) runs: an index or model file when
    one exists there, else a model known by that name to the user's load_fn."""
    text = os.fspath(model_filename)
    if text.endswith(".json") or Path(text).exists():
        return text
    return NamedModel(text)

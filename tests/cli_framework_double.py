"""A TEST DOUBLE of a framework plugin, for the command line's tests without torch.

``ScaleBackend`` satisfies ``neuronperf_core.backend.Backend`` for a toy model in plain
numpy and times nothing itself: compile, benchmark and evaluate go through the core
(``neuronperf_core.api``) and the real engine. It is registered through
``neuronperf_register_backends`` as backend ``scale`` (``npf.scale``), and adds the command
``neuronperf scale-hello`` through ``neuronperf_register_commands``. The tests install it
as a fake distribution (a ``.dist-info`` folder), so plugin discovery finds it through a
real entry point.

Models: ``ScaleModel(scale)`` multiplies its input; as a classifier its output row
``x * scale`` is scored against the target (argmax). Artifacts are JSON files ``*.scale``
holding the scale, batch size and input shape; a saved source model is ``*.scalemodel``.
Like any plugin, it imports nothing heavy at import time: numpy inside the functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from neuronperf_core import hookimpl, model_index
from neuronperf_core.backend import CompilePlan, CompileSpec, RunPlan
from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.options import BenchmarkOptions, CompileOptions

ARTIFACT = ".scale"
SOURCE = ".scalemodel"


class ScaleModel:
    def __init__(self, scale: float = 2.0) -> None:
        self.scale = scale

    def __call__(self, x: Any) -> Any:
        import numpy as np

        return np.asarray(x) * self.scale


def make_model() -> ScaleModel:
    return ScaleModel(2.0)


def load(filename: str, device_id: int = 0) -> ScaleModel:
    """A compiled ``.scale`` file as a model (module level: copies may run elsewhere)."""
    return ScaleModel(json.loads(Path(filename).read_text())["scale"])


class Batches:
    """Records ``(x, y)`` as rows ``(X, Y)`` of ``batch_size``: the last partial batch padded
    (its target keeps the real length); at batch size 1 the target is the record's own."""

    def __init__(self, records: Sequence[tuple[Any, ...]], batch_size: int, target_col: int):
        self.records = records
        self.batch_size = batch_size
        self.target_col = target_col

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        import numpy as np

        b = self.batch_size
        for start in range(0, len(self.records), b):
            chunk = list(self.records[start : start + b])
            n = len(chunk)
            chunk += [chunk[-1]] * (b - n)
            columns = [np.stack(col) for col in zip(*chunk, strict=True)]
            col = self.target_col % len(columns)
            target = chunk[0][col] if b == 1 else columns[col][:n]
            yield (*columns[:col], target, *columns[col + 1 :])


class ScaleBackend:
    """The toy framework: compile writes the scale to a file, a copy multiplies by it."""

    name = "scale"
    description = "a test double of a framework plugin"
    device_types = ("cpu",)
    extras = ("load",)
    load = staticmethod(load)

    def owns(self, target: object) -> bool:
        if isinstance(target, ScaleModel):
            return True
        if not isinstance(target, (str, os.PathLike)):
            return False
        path = Path(target)
        if not path.is_file():
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

    def model_meta(self, path: Path) -> Mapping[str, Any] | None:
        if Path(path).suffix != ARTIFACT:
            return None
        data = json.loads(Path(path).read_text())
        return {"batch_size": data["batch_size"], "input_shapes": data["input_shapes"]}

    # -- compile ------------------------------------------------------------------------

    def plan_compile(self, model: Any, options: CompileOptions) -> CompilePlan:
        if not isinstance(model, ScaleModel):
            raise NeuronPerfError(f"the scale double compiles ScaleModel, not {type(model)}")
        if options.compiler_kwargs:
            raise NeuronPerfError(f"no compiler keywords here: {sorted(options.compiler_kwargs)}")
        return CompilePlan(options.device_type or "cpu", options.cast_modes or [None], ARTIFACT)

    def compile_one(
        self, model: Any, example: Any, spec: CompileSpec, path: Path, plan: CompilePlan
    ) -> dict[str, Any]:
        import numpy as np

        shapes = [list(np.asarray(example).shape)]
        path.write_text(
            json.dumps(
                {"scale": model.scale, "batch_size": spec.batch_size, "input_shapes": shapes}
            )
        )
        return {"input_shapes": shapes}

    # -- run ----------------------------------------------------------------------------

    def plan_run(
        self, target: Any, configs: Sequence[Mapping[str, Any]], options: BenchmarkOptions
    ) -> RunPlan:
        if isinstance(target, ScaleModel):
            raise NeuronPerfError("compile the ScaleModel first: the double runs .scale files")
        return RunPlan(options.device_type or "cpu", options.runner or "threads", None, load)

    def coerce_inputs(
        self, inputs: Any, batch_sizes: Sequence[int], options: BenchmarkOptions | None
    ) -> Any:
        import numpy as np

        if isinstance(inputs, list):
            return [np.asarray(x) for x in inputs]
        return np.asarray(inputs)

    def batch_size_of(self, model_input: Any) -> int | None:
        import numpy as np

        shape = np.shape(model_input)
        return int(shape[0]) if shape else None

    def check_input(self, config: Mapping[str, Any], model_input: Any, what: str) -> None:
        import numpy as np

        want = config.get("input_shapes")
        got = [list(np.shape(model_input))]
        if want is not None and got != want:
            raise NeuronPerfError(
                f"{what} has shape {got[0]}; the model was compiled for {want[0]}"
            )
        if want is None and self.batch_size_of(model_input) != config["batch_size"]:
            raise NeuronPerfError(f"{what} is not of batch size {config['batch_size']}")

    def batches(
        self, dataset: Any, batch_size: int, target_col: int, options: BenchmarkOptions
    ) -> Batches:
        return Batches(list(dataset), batch_size, target_col)

    # -- the command line ---------------------------------------------------------------

    def read_model(self, path: Path) -> ScaleModel:
        if Path(path).suffix != SOURCE:
            raise NeuronPerfError(f"{path}: the scale double reads {SOURCE} files only")
        return ScaleModel(json.loads(Path(path).read_text())["scale"])

    def read_arrays(self, path: Path) -> list[Any]:
        raise NeuronPerfError(f"{path}: the scale double reads no array files (.npz only)")

    def dataset_from_arrays(self, arrays: Sequence[Any]) -> list[tuple[Any, ...]]:
        return list(zip(*arrays, strict=True))  # records: (*inputs, target)


@hookimpl
def neuronperf_register_backends(register: Any) -> None:
    register(ScaleBackend())


@hookimpl
def neuronperf_register_commands(cli: Any) -> None:
    import click

    @cli.command(name="scale-hello", help="Say hello from the scale double.")
    @click.option("--name", default="world")
    def hello(name: str) -> None:
        click.echo(f"hello {name}, from the scale backend")

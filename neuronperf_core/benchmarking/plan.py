"""From benchmark() arguments to the list of configs to run, checked before any model loads."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from neuronperf_core import model_index
from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.errors import NeuronPerfError

DEFAULT_WORKERS_PER_MODEL = (1, 2)  # 1 for the lowest latency, 2 for peak throughput
INSTANCE_TYPE_FILE = "/sys/devices/virtual/dmi/id/product_name"  # e.g. "inf2.xlarge" on EC2
NEURON_SYSFS = "/sys/devices/virtual/neuron_device"


class BenchmarkArgumentError(NeuronPerfError, ValueError):
    """benchmark() or evaluate() got arguments it cannot run."""


def as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple, range)) else [value]


def positive_ints(name: str, values: list[Any]) -> list[int]:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BenchmarkArgumentError(
                f"{name} must be whole numbers of at least 1, got {value!r}; e.g. {name}=[1, 2]."
            )
    return values


def instance_type() -> str | None:
    """The EC2 instance type from local DMI data (no network metadata service)."""
    try:
        name = Path(INSTANCE_TYPE_FILE).read_text().strip()
    except OSError:
        return None
    return name if "." in name else None  # EC2 names look like "inf2.xlarge"


def max_copies(device_type: str) -> int:
    """How many model copies the device allows by default: CPU cores or NeuronCores."""
    if device_type == "neuron":
        total = 0
        for counter in Path(NEURON_SYSFS).glob("neuron*/core_count"):
            try:
                total += int(counter.read_text())
            except (OSError, ValueError):
                continue
        return max(total, 1)
    if device_type == "cpu":
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
    return 1  # CUDA and others: the framework plugin passes n_models


def model_configs(
    model_filename: str,
    batch_sizes: list[int] | None,
    pipeline_sizes: list[int] | None,
    cast_modes: list[Any] | None,
) -> tuple[str, list[dict[str, Any]]]:
    """The model name and the index configs to benchmark (finished ones, filtered)."""
    if str(model_filename).endswith(".json"):
        index = model_index.load(model_filename)
        configs = model_index.filter(
            index,
            status="finished",
            batch_size=batch_sizes,
            pipeline_size=pipeline_sizes,
            cast_mode=cast_modes,
        )["model_configs"]
        if not configs:
            raise BenchmarkArgumentError(
                f"no finished config of the model index {model_filename} matches "
                f"batch_sizes={batch_sizes}, pipeline_sizes={pipeline_sizes}, "
                f"cast_modes={cast_modes}; the index holds "
                + ", ".join(
                    f"(batch {c['batch_size']}, pipeline {c['pipeline_size']}, "
                    f"cast {c.get('cast_mode')}, {c.get('status')})"
                    for c in index["model_configs"]
                )
            )
        return index["model_name"], configs
    if len(pipeline_sizes or [1]) > 1 or len(cast_modes or [0]) > 1:
        raise BenchmarkArgumentError(
            f"{model_filename} is one model file, compiled for one pipeline size and cast mode; "
            "pass one value of each, or a model index (.json) that holds several."
        )
    # One model for several batch sizes: a model that takes any batch (a Python
    # callable, a dynamic-batch artifact); input i goes with batch_sizes[i].
    configs = [
        {
            "filename": str(model_filename),
            "input_idx": i,
            "batch_size": batch_size,
            "pipeline_size": (pipeline_sizes or [1])[0],
            "cast_mode": (cast_modes or [None])[0],
        }
        for i, batch_size in enumerate(batch_sizes or [1])
    ]
    return Path(model_filename).stem, configs


def match_inputs(
    inputs: Any, configs: list[dict[str, Any]], batch_sizes: list[int] | None
) -> list[Any]:
    """The input of each config, matched by batch size (or input_idx), never by position alone.

    ``inputs`` is a list with one input per batch size (in the order of
    ``batch_sizes`` when given, else in the order of the index's input_idx);
    anything that is not a list is the one input of every config.
    """
    if not isinstance(inputs, list):
        sizes = sorted({c["batch_size"] for c in configs})
        if len(sizes) > 1:
            raise BenchmarkArgumentError(
                f"one input for configs of batch sizes {sizes}: pass a list with one input per "
                "batch size, or batch_sizes=[...] naming the one this input is for."
            )
        return [inputs] * len(configs)
    if not inputs:
        raise BenchmarkArgumentError("inputs is an empty list: pass one input per batch size.")
    if batch_sizes is not None:
        if len(inputs) != len(batch_sizes):
            raise BenchmarkArgumentError(
                f"got {len(inputs)} inputs for {len(batch_sizes)} batch sizes {batch_sizes}: "
                "pass one input per batch size, in the same order."
            )
        return [inputs[batch_sizes.index(c["batch_size"])] for c in configs]
    matched = []
    for config in configs:
        if config["input_idx"] >= len(inputs):
            raise BenchmarkArgumentError(
                f"the config for batch size {config['batch_size']} was compiled from input "
                f"{config['input_idx']}, but only {len(inputs)} inputs were given; pass the "
                "inputs used to compile, or batch_sizes=[...] naming the batch size of each."
            )
        matched.append(inputs[config["input_idx"]])
    return matched


def check_dataset(dataset: Any, eval_target_col: int) -> tuple[Iterable[Any], int]:
    """Check the first row is a tuple with a target column; return the dataset (unconsumed)."""
    if not isinstance(dataset, Iterable):
        raise BenchmarkArgumentError(
            f"the evaluation dataset must be an iterable of tuple(*INPUTS, TARGET), "
            f"got {type(dataset).__name__}."
        )
    rows = iter(dataset)
    one_shot = rows is dataset
    try:
        first = next(rows)
    except StopIteration:
        raise BenchmarkArgumentError("the evaluation dataset is empty.") from None
    if one_shot:  # a generator: put the row we read back in front
        dataset = itertools.chain([first], rows)
    if not isinstance(first, tuple):
        raise BenchmarkArgumentError(
            f"each dataset row must be a tuple(*INPUTS, TARGET); the first row is a "
            f"{type(first).__name__}. Yield (input, target) pairs, e.g. `(x, y)`."
        )
    if len(first) < 2:
        raise BenchmarkArgumentError(
            f"each dataset row needs at least one input and a target; the first row has "
            f"{len(first)} column."
        )
    if not -len(first) <= eval_target_col < len(first):
        raise BenchmarkArgumentError(
            f"eval_target_col={eval_target_col} is out of range for rows of {len(first)} "
            f"columns; use 0..{len(first) - 1} (or -1 for the last)."
        )
    return dataset, eval_target_col % len(first)


def sweep(
    model_name: str,
    configs: Sequence[dict[str, Any]],
    inputs: Sequence[Any],
    n_models: list[int],
    workers_per_model: list[int],
    *,
    device_type: str,
    runner: str,
    duration: float,
    max_infers: int | None,
) -> list[tuple[BenchmarkConfig, Any]]:
    """Each model config x workers_per_model x n_models, in 1.x's order, with its input."""
    known = {"filename", "input_idx", "batch_size", "pipeline_size", "cast_mode", "status"}
    machine = instance_type()
    return [
        (
            BenchmarkConfig(
                model_name=model_name,
                model_filename=config["filename"],
                input_idx=config["input_idx"],
                batch_size=config["batch_size"],
                pipeline_size=config["pipeline_size"],
                cast_mode=config.get("cast_mode"),
                n_models=n,
                workers_per_model=workers,
                device_type=device_type,
                runner=runner,
                duration=duration,
                max_infers=max_infers,
                instance_type=machine,
                extra={k: v for k, v in config.items() if k not in known},
            ),
            model_input,
        )
        for config, model_input in zip(configs, inputs, strict=True)
        for workers in workers_per_model
        for n in n_models
    ]

"""From the checked options to the list of jobs to run, before any model loads: which
configs of a model index (or model file, or model object), which input goes with each,
and the sweep of copies and workers."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuronperf_core import devices, model_index
from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.options import OptionError

if TYPE_CHECKING:
    from neuronperf_core.backend import Backend, RunPlan
    from neuronperf_core.benchmarking.worker import Job
    from neuronperf_core.options import BenchmarkOptions

logger = logging.getLogger("neuronperf.benchmark")

DEFAULT_WORKERS_PER_MODEL = (1, 2)  # 1 for the lowest latency, 2 for peak throughput


class BenchmarkArgumentError(OptionError):
    """benchmark() or evaluate() got arguments it cannot run (an OptionError: every bad
    keyword value raises one)."""


@dataclass(frozen=True)
class Selection:
    """The model's name, the configs to run, and the batch sizes the user named (None: all
    of the index's, matched to inputs by ``input_idx``)."""

    model_name: str
    configs: list[dict[str, Any]]
    batch_sizes: list[int] | None


def select(backend: Backend, target: Any, options: BenchmarkOptions) -> Selection:
    """The configs to run: a model index's finished ones (filtered), one model file's (its
    record from the backend fills what the user left out), or a model object's (one config
    per batch size)."""
    batch_sizes, casts = options.batch_sizes, options.cast_modes
    if target is None:
        raise BenchmarkArgumentError(
            "the model is None: pass a model index (.json) from compile, one compiled model "
            "file, or (for backends that run them as they are) the model itself."
        )
    if isinstance(target, (str, os.PathLike)):
        path = Path(target)
        if not path.exists():
            raise BenchmarkArgumentError(
                f"{path} does not exist: pass a model index (.json) from compile, or one "
                "compiled model file."
            )
        meta: Mapping[str, Any] = {}
        if path.suffix != ".json":
            meta = backend.model_meta(path) or {}
            if batch_sizes is None and "batch_size" in meta:
                batch_sizes = [meta["batch_size"]]
            if casts is None and "cast_mode" in meta:
                casts = [meta["cast_mode"]]
        name, configs = model_configs(os.fspath(path), batch_sizes, options.pipeline_sizes, casts)
        if meta and configs[0]["batch_size"] == meta.get("batch_size"):
            keys = ("input_shapes", "input_dtypes", "device_type")
            configs[0].update({k: meta[k] for k in keys if k in meta})
    else:
        name, configs = (
            name_of(target),
            model_configs(name_of(target), batch_sizes, options.pipeline_sizes, casts)[1],
        )
    if options.model_name is None and options.results_file is None and options.results_dir:
        _check_index_name(name, target)
    return Selection(options.model_name or name, configs, options.batch_sizes or batch_sizes)


def _check_index_name(name: str, target: Any) -> None:
    """A model index from someone else names the results file: refuse a name that is a path
    (``"../../x"``) with an error that says where it came from."""
    from neuronperf_core.files import OutputPathError, safe_name

    try:
        safe_name(name, "model_name")
    except OutputPathError:
        raise BenchmarkArgumentError(
            f"{os.fspath(target)} names its model {name!r}, which cannot be part of a results "
            "file's name (it holds a path separator): pass model_name='...' to name the run."
        ) from None


def name_of(model: Any) -> str:
    """A model object's name: its own ``__name__``, else its class's."""
    return str(getattr(model, "__name__", None) or type(model).__name__)


def model_configs(
    model_filename: str,
    batch_sizes: list[int] | None,
    pipeline_sizes: list[int] | None,
    cast_modes: list[Any] | None,
) -> tuple[str, list[dict[str, Any]]]:
    """The model name and the index configs to benchmark (finished ones, filtered), their
    filenames absolute, so that every copy finds its model from any current directory."""
    if str(model_filename).endswith(".json"):
        index = model_index.resolve(model_filename)
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


def missing_files(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The model files of ``configs`` that do not exist."""
    return [
        str(c["filename"])
        for c in configs
        if c["filename"] is None or not os.path.exists(c["filename"])
    ]


def check_model_files(target: Any, configs: Iterable[Mapping[str, Any]]) -> None:
    """Refuse configs whose model files are gone, before a copy fails to load each."""
    missing = missing_files(configs)
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise BenchmarkArgumentError(
            f"{os.fspath(target)} lists {len(missing)} model file(s) that do not exist: "
            f"{shown}. Were they moved or deleted? Compile the model again, or move an index "
            "together with its models (model_index.move); batch_sizes=[...] selects the "
            "configs whose files are there."
        )


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
    if batch_sizes is not None and len(inputs) == len(batch_sizes):
        return [inputs[batch_sizes.index(c["batch_size"])] for c in configs]
    if batch_sizes is not None and any(c["input_idx"] >= len(inputs) for c in configs):
        raise BenchmarkArgumentError(
            f"got {len(inputs)} inputs for {len(batch_sizes)} batch sizes {batch_sizes}: "
            "pass one input per batch size, in the same order."
        )
    # the inputs of the whole index, in input_idx order (as in 1.x, batch_sizes may then
    # select some of its configs: benchmark(index, [x1, x4], batch_sizes=[4]))
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


def check_dataset(dataset: Any) -> None:
    """Refuse what cannot be an evaluation dataset (a number, None, a file name) before
    anything loads; what it yields is checked on its first row (``check_row``)."""
    if isinstance(dataset, (str, bytes, os.PathLike)):
        raise BenchmarkArgumentError(
            f"the evaluation dataset is a file name ({os.fspath(dataset)!r}); pass the data "
            "itself: rows tuple(*INPUTS, TARGET) (e.g. list(zip(x, y))), or a dataset the "
            "backend reads (a torch Dataset or DataLoader). On the command line, "
            "--dataset FILE reads .npz files."
        )
    if not isinstance(dataset, Iterable) and not hasattr(type(dataset), "__getitem__"):
        raise BenchmarkArgumentError(
            f"the evaluation dataset {dataset!r:.40} ({type(dataset).__name__}) holds no "
            "rows: pass rows tuple(*INPUTS, TARGET) (e.g. list(zip(x, y))), or a "
            "dataset the backend reads (a torch Dataset or DataLoader)."
        )


def warn_batch_mismatch(
    backend: Backend, config: Mapping[str, Any], model_input: Any, what: str, verbosity: int
) -> None:
    """Say when an input's first dimension is not its config's batch size: throughput counts
    ``batch_size`` records per inference, so it would be off by their ratio. A warning, not
    an error: a backend that knows its models' shapes refuses such inputs in its own
    ``check_input``; for a plain callable the first dimension may not be the batch."""
    got = backend.batch_size_of(model_input)
    batch = config["batch_size"]
    if got is None or got == batch or verbosity < 1:
        return
    logger.warning(
        "%s has first dimension %d: throughput counts batch size %d per inference, %gx "
        "the %d records the model is given. Pass batch_sizes=[%d] naming the input's batch "
        "size, or an input whose first dimension is %d.",
        what, got, batch, batch / got, got, got, batch,
    )  # fmt: skip


def check_row(first: Any, target_col: int) -> int:
    """Check a dataset's first row is ``tuple(*INPUTS, TARGET)``; the target column, >= 0."""
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
    if not -len(first) <= target_col < len(first):
        raise BenchmarkArgumentError(
            f"eval_target_col={target_col} is out of range for rows of {len(first)} "
            f"columns; use 0..{len(first) - 1} (or -1 for the last)."
        )
    return target_col % len(first)


def jobs(
    selection: Selection,
    inputs: Sequence[Any],
    n_models: list[int],
    run: RunPlan,
    options: BenchmarkOptions,
    dataset: Iterable[Any] | None = None,
    target_col: int = -1,
    metrics: list[Any] | None = None,
) -> list[Job]:
    """Each config x workers_per_model x n_models, in 1.x's order, as a job with its input
    (or the evaluation rows)."""
    from neuronperf_core.benchmarking.worker import Job

    known = {"filename", "input_idx", "batch_size", "pipeline_size", "cast_mode", "status"}
    machine = devices.instance_type()
    workers_list = options.workers_per_model or list(DEFAULT_WORKERS_PER_MODEL)
    rates, trace = arrivals_of(options, evaluating=dataset is not None)
    return [
        Job(
            config=BenchmarkConfig(
                model_name=selection.model_name,
                model_filename=config["filename"],
                input_idx=config["input_idx"],
                batch_size=config["batch_size"],
                pipeline_size=config["pipeline_size"],
                cast_mode=config.get("cast_mode"),
                n_models=n,
                workers_per_model=workers,
                device_type=run.device_type,
                runner=run.runner,
                duration=options.duration,
                max_infers=options.max_infers,
                until_stable=options.until_stable,
                window_s=options.window_s,
                stability_pct=options.stability_pct,
                warmup_infers=options.warmup_infers,
                warmup_seconds=options.warmup_seconds,
                intra_op_threads=options.intra_op_threads,
                arrival_rate=rate,
                arrivals=options.arrivals,
                arrival_seed=options.arrival_seed,
                instance_type=machine,
                extra={
                    **{k: v for k, v in config.items() if k not in known},
                    **(run.report_fields(n, workers) if run.report_fields else {}),
                },
            ),
            load_fn=run.load_fn,
            model_input=model_input,
            copy_setup=run.copy_setup,
            env_setup_fn=options.env_setup_fn,
            setup_fn=options.setup_fn,
            preprocess_fn=options.preprocess_fn,
            postprocess_fn=options.postprocess_fn,
            dataset=dataset,
            dataset_loader_fn=options.dataset_loader_fn,
            eval_target_col=target_col,
            metrics=metrics or [],
            death_hints=dict(run.death_hints),
            config_timeout=options.config_timeout or None,
            trace_ns=trace,
        )
        for config, model_input in zip(selection.configs, inputs, strict=True)
        for workers in workers_list
        for n in n_models
        for rate in rates
    ]


def arrivals_of(
    options: BenchmarkOptions, evaluating: bool = False
) -> tuple[list[float | None], Any]:
    """The open loop's rates to sweep ([None]: a closed loop, or a replay at its own rate)
    and the replayed trace (None unless ``arrivals`` names a file), read and checked now,
    before any model loads."""
    from neuronperf_core.benchmarking import arrivals

    process = options.arrivals
    rates: list[float | None] = [None]
    if options.arrival_rate is not None:
        rates = list(options.arrival_rate)
    replay = process not in arrivals.PROCESSES
    if options.arrival_rate is None and not replay:
        if process != arrivals.POISSON:  # asked for an arrival process without a rate
            raise BenchmarkArgumentError(
                f"arrivals={process!r} needs a rate in requests per second, e.g. "
                "arrival_rate=[100]; without one each worker sends its next request when "
                "the last returns (a closed loop)."
            )
        return rates, None
    if evaluating:
        raise BenchmarkArgumentError(
            "an evaluation scores every record once, as fast as it can: arrival_rate and "
            "arrivals apply to benchmark only. Leave them out of evaluate."
        )
    if options.duration == 0:
        raise BenchmarkArgumentError(
            "an open loop (arrival_rate, arrivals) sends requests for duration seconds: "
            "duration=0 (one pass) gives it no time. Pass duration=10 or more."
        )
    return rates, arrivals.read_trace(process) if replay else None

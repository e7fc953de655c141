"""``npf.torch``: compile, benchmark and evaluate PyTorch models on Neuron, CPU and CUDA.

::

    import neuronperf as npf

    index = npf.torch.compile(model, [x1, x4], batch_sizes=[1, 4], device_type="cpu")
    reports = npf.torch.benchmark(index, [x1, x4], duration=10)
    reports = npf.torch.evaluate(index, dataset, metrics=["accuracy", "topk"])

The device comes from the model index (``device_type`` at compile time;
Neuron by default, as in NeuronPerf 1.x). Everything is checked before a
model loads: the device and the number of copies it allows, and every input's
shapes and dtypes against what each config was compiled for.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import secrets
import string
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from neuronperf_core.benchmarking import benchmark as engine
from neuronperf_core.benchmarking.plan import as_list, match_inputs, model_configs, positive_ints
from neuronperf_core.reporting import get_reports, write_json
from neuronperf_torch import data as torch_data
from neuronperf_torch import devices, export, neuron
from neuronperf_torch.datafiles import dataset_from_arrays, owns, read_arrays, read_model
from neuronperf_torch.demo import demo
from neuronperf_torch.errors import DeviceUnavailableError, InputShapeError, TorchArgumentError
from neuronperf_torch.loading import Loader

__all__ = [
    "benchmark",
    "compile",
    "dataset_from_arrays",
    "demo",
    "evaluate",
    "load",
    "owns",
    "read_arrays",
    "read_model",
]

logger = logging.getLogger("neuronperf.torch")


# -- inputs -------------------------------------------------------------------------------


def _as_input(value: Any, what: str) -> Any:
    """A tensor, or a tuple of tensors (model(*input)); numpy arrays become tensors."""
    if isinstance(value, torch.Tensor):
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        return torch.from_numpy(value)
    if isinstance(value, tuple):
        return tuple(_as_input(v, what) if not isinstance(v, tuple) else v for v in value)
    raise TorchArgumentError(
        f"{what} is a {type(value).__name__}; expected a tensor or a tuple of tensors (passed "
        "as model(*input)). Give one such input per batch size, in a list."
    )


def _tensors(model_input: Any) -> tuple[Any, ...]:
    return model_input if isinstance(model_input, tuple) else (model_input,)


def _describe(model_input: Any) -> tuple[list[list[int] | None], list[str | None]]:
    items = _tensors(model_input)
    shapes = [list(t.shape) if isinstance(t, torch.Tensor) else None for t in items]
    dtypes = [
        str(t.dtype).removeprefix("torch.") if isinstance(t, torch.Tensor) else None for t in items
    ]
    return shapes, dtypes


def _batch_dim(model_input: Any) -> int | None:
    for item in _tensors(model_input):
        if isinstance(item, torch.Tensor):
            return int(item.shape[0]) if item.dim() else None
    return None


def check_input(config: dict[str, Any], model_input: Any, what: str = "the input") -> None:
    """Raise InputShapeError unless ``model_input`` fits the compiled config."""
    batch = config["batch_size"]
    label = f"batch size {batch}, cast mode {config.get('cast_mode')}"
    shapes, dtypes = _describe(model_input)
    want_shapes, want_dtypes = config.get("input_shapes"), config.get("input_dtypes")
    fix = (
        "Pass one input per compiled batch size (a list, in the order of batch_sizes), each "
        "shaped as at compile time."
    )
    if want_shapes is not None:
        if len(shapes) != len(want_shapes):
            raise InputShapeError(
                f"{what} has {len(shapes)} tensors, but the model ({label}) was compiled for "
                f"{len(want_shapes)}. {fix}"
            )
        for i, (got, want) in enumerate(zip(shapes, want_shapes, strict=True)):
            if got != want:
                raise InputShapeError(
                    f"{what}: tensor {i} has shape {got}, but the model ({label}) was compiled "
                    f"for shape {want}. {fix}"
                )
        if want_dtypes is not None:
            for i, (got_dtype, want_dtype) in enumerate(zip(dtypes, want_dtypes, strict=True)):
                if got_dtype != want_dtype:
                    raise InputShapeError(
                        f"{what}: tensor {i} has dtype {got_dtype}, but the model ({label}) "
                        f"takes {want_dtype}. Convert it, e.g. x.to(torch.{want_dtype})."
                    )
        return
    got_batch = _batch_dim(model_input)
    if got_batch != batch:
        raise InputShapeError(
            f"{what} has batch dimension {got_batch}, but the model was compiled for {label}. "
            f"{fix} For a single model file, pass batch_sizes=[n] naming its batch size."
        )


def _examples(inputs: Any) -> list[tuple[Any, ...]]:
    items = inputs if isinstance(inputs, list) else [inputs]
    if not items:
        raise TorchArgumentError("inputs is an empty list: pass one example input per batch size.")
    return [_tensors(_as_input(item, f"inputs[{i}]")) for i, item in enumerate(items)]


def _compile_batch_sizes(examples: list[tuple[Any, ...]], batch_sizes: Any) -> list[int]:
    found = [_batch_dim(example) for example in examples]
    if batch_sizes is None:
        for i, size in enumerate(found):
            if size is None:
                raise TorchArgumentError(
                    f"inputs[{i}] has no tensor with a batch dimension; pass batch_sizes=[...]."
                )
        return [int(s) for s in found if s is not None]
    sizes = positive_ints("batch_sizes", as_list(batch_sizes) or [])
    if len(sizes) != len(examples):
        raise TorchArgumentError(
            f"got {len(examples)} example inputs for {len(sizes)} batch sizes {sizes}: pass one "
            "example input per batch size, in the same order."
        )
    for i, (size, got) in enumerate(zip(sizes, found, strict=True)):
        if got != size:
            raise InputShapeError(
                f"inputs[{i}] has batch dimension {got}, but batch_sizes[{i}] is {size}: each "
                "example input must have its batch size as the first dimension."
            )
    return [int(size) for size in sizes]


def _suffix() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


# -- compile ------------------------------------------------------------------------------


def _check_keywords(
    function: Any, kwargs: dict[str, Any], taken: tuple[str, ...], name: str
) -> None:
    """Refuse keywords ``function`` does not take before anything compiles (1.x's
    ``performance_levels``, say), rather than record the same TypeError for every config."""
    accepted = [p for p in inspect.signature(function).parameters if p not in taken]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TorchArgumentError(
            f"compile() got {', '.join(map(repr, unknown))}, which it would pass to {name}, "
            f"and {name} takes none of them; its keywords are {', '.join(accepted)}."
        )


def compile(
    model: Any,
    inputs: Any,
    batch_sizes: int | list[int] | None = None,
    pipeline_sizes: int | list[int] | None = None,
    cast_modes: str | list[str] | None = None,
    models_dir: str | os.PathLike[str] = "models",
    model_name: str | None = None,
    filename: str | os.PathLike[str] | None = None,
    compiler_args: str | list[str] | None = None,
    compiler_target: str | None = None,
    *,
    device_type: str = "neuron",
    verbosity: int = 1,
    **kwargs: Any,
) -> str:
    """Compile ``model`` once per (input, pipeline size, cast mode); return the model index file.

    ``inputs``: one example input per batch size (a tensor, or a tuple of
    tensors passed as ``model(*input)``); ``batch_sizes`` names their batch
    sizes (default: each input's first dimension). Artifacts go to
    ``{models_dir}/{model_name}_b{B}_p{P}_{8 chars}.pt2`` (CPU, CUDA:
    torch.export) or ``.pt`` (Neuron: torch_neuronx.trace); the index
    (``filename``, default ``{model_name}_{8 chars}.json``) is rewritten after
    every config. A config that fails is recorded with ``status: "error"`` and
    its error, and the others go on.

    ``device_type``: "neuron" (needs torch-neuronx; ``cast_modes`` are
    auto-cast modes such as "none", "matmult-bf16", "all-fp16";
    ``compiler_target`` inf2/trn1/trn1n/trn2; ``compiler_args`` extra
    neuronx-cc flags; ``kwargs`` go to ``torch_neuronx.trace``), "cpu" or
    "cuda" (``cast_modes`` are the dtype the model runs in: "fp32", "bf16",
    "fp16"; ``kwargs`` go to ``torch.export.export``).
    """
    device = devices.device_type_of(device_type)
    examples = _examples(inputs)
    sizes = _compile_batch_sizes(examples, batch_sizes)
    pipelines = positive_ints("pipeline_sizes", as_list(pipeline_sizes) or [1])
    casts = as_list(cast_modes)
    if device == devices.NEURON:
        neuron.check_pipeline_sizes(pipelines)
        user_args = neuron.arg_list(compiler_args)
        target = neuron.resolve_target(compiler_target, user_args)
        casts = neuron.resolve_cast_modes(casts, user_args)
        if not devices.neuron_installed():
            raise DeviceUnavailableError(
                "compiling for device_type='neuron' needs torch-neuronx, which is not installed: "
                f"{devices.NEURON_INSTALL_HINT}."
            )
        import torch_neuronx

        taken = ("func", "example_inputs", "compiler_args")  # compiler_args= is ours to pass
        _check_keywords(torch_neuronx.trace, kwargs, taken, "torch_neuronx.trace")
    else:
        if any(p != 1 for p in pipelines):
            raise TorchArgumentError(
                f"pipeline_sizes={pipelines}: pipelining is a Neuron feature; use "
                f"pipeline_sizes=[1] on {device}."
            )
        if compiler_args is not None or compiler_target is not None:
            raise TorchArgumentError(
                "compiler_args and compiler_target are Neuron compiler options; for "
                f"device_type={device!r} pass torch.export.export keyword arguments instead."
            )
        casts = casts or [export.DEFAULT_CAST_MODE]
        unknown = [c for c in casts if c not in export.CAST_MODES]
        if unknown:
            raise TorchArgumentError(
                f"cast modes {unknown} are not {device} dtypes; use "
                f"{', '.join(repr(c) for c in export.CAST_MODES)} (the dtype the model runs in)."
            )
        _check_keywords(torch.export.export, kwargs, ("mod", "args"), "torch.export.export")
        if device == devices.CUDA and not torch.cuda.is_available():
            raise DeviceUnavailableError(
                "compiling for device_type='cuda' exports the model on the GPU, but torch sees "
                "no CUDA GPU here. Compile on the GPU machine, or use device_type='cpu'."
            )
    from neuronperf_core import model_index

    name = model_name or type(model).__name__
    index_file = os.fspath(filename) if filename is not None else f"{name}_{_suffix()}.json"
    folder = Path(models_dir)
    index: dict[str, Any] | None = None
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        for input_idx, (example, batch) in enumerate(zip(examples, sizes, strict=True)):
            shapes, dtypes = _describe(example)
            for pipeline in pipelines:
                for cast in casts:
                    ext = neuron.EXTENSION if device == devices.NEURON else export.EXTENSION
                    path = folder / f"{name}_b{batch}_p{pipeline}_{_suffix()}{ext}"
                    common: dict[str, Any] = {
                        "device_type": device,
                        "input_shapes": shapes,
                        "input_dtypes": dtypes,
                        "torch_version": torch.__version__,
                    }
                    if device == devices.NEURON:
                        args = neuron.compiler_args_for(user_args, target, cast)
                        scope, cast_type = neuron.split_cast_mode(cast)
                        common.update(
                            compiler_target=target,
                            compiler_args=args,
                            auto_cast=scope,
                            auto_cast_type=cast_type,
                        )
                    meta = {"batch_size": batch, "pipeline_size": pipeline, "cast_mode": cast}
                    meta.update(common)
                    start = time.perf_counter()
                    try:
                        if device == devices.NEURON:
                            extra = neuron.compile_artifact(
                                model,
                                example,
                                compiler_args=args,
                                path=path,
                                meta=meta,
                                trace_kwargs=kwargs,
                            )
                        else:
                            extra = export.compile_artifact(
                                model,
                                example,
                                device=device,
                                cast_mode=cast,
                                path=path,
                                meta=meta,
                                export_kwargs=kwargs,
                            )
                        status, error, artifact = "finished", None, os.fspath(path)
                    except Exception as exc:
                        status, error, artifact, extra = (
                            "error",
                            f"{type(exc).__name__}: {exc}",
                            None,
                            {},
                        )
                        path.unlink(missing_ok=True)
                        logger.warning(
                            "compiling %s (batch size %d, cast mode %s) failed: %s",
                            name,
                            batch,
                            cast,
                            error,
                        )
                    compile_s = round(time.perf_counter() - start, 3)
                    if error is not None:
                        extra["error"] = error
                    entry = model_index.create(
                        artifact,
                        input_idx=input_idx,
                        batch_size=batch,
                        pipeline_size=pipeline,
                        cast_mode=cast,
                        compile_s=compile_s,
                        model_name=name,
                        status=status,
                        **common,
                        **extra,
                    )
                    index = entry if index is None else model_index.append(index, entry)
                    model_index.save(index, index_file)
                    if verbosity >= 1 and status == "finished":
                        logger.info("compiled %s in %.2f s", artifact, compile_s)
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    return index_file


# -- benchmark and evaluate --------------------------------------------------------------


def _configs(
    path: str, batch_sizes: Any, pipeline_sizes: Any, cast_modes: Any
) -> tuple[str, list[dict[str, Any]], list[int] | None, list[Any] | None]:
    """The model name, the configs to run, and the batch sizes and cast modes that select
    them (for one model file: read from the file's metadata when not given)."""
    batch_list, casts = as_list(batch_sizes), as_list(cast_modes)
    pipelines = as_list(pipeline_sizes)
    meta: dict[str, Any] = {}
    if not path.endswith(".json"):
        if not Path(path).exists():
            raise TorchArgumentError(
                f"{path} does not exist: pass a model index (.json) from npf.torch.compile, or "
                "one compiled model file."
            )
        meta = export.read_meta(path) or {}
        if batch_list is None and "batch_size" in meta:
            batch_list = [meta["batch_size"]]
        if casts is None and "cast_mode" in meta:
            casts = [meta["cast_mode"]]
    name, configs = model_configs(path, batch_list, pipelines, casts)
    if meta and configs[0]["batch_size"] == meta.get("batch_size"):
        keys = ("input_shapes", "input_dtypes", "device_type")
        configs[0].update({k: meta[k] for k in keys if k in meta})
    return name, configs, batch_list, casts


def _device_of(device_type: str | None, configs: list[dict[str, Any]]) -> str:
    compiled = {c["device_type"] for c in configs if c.get("device_type")}
    if device_type is None:
        if len(compiled) > 1:
            raise TorchArgumentError(
                f"the selected configs were compiled for different devices {sorted(compiled)}: "
                "pass device_type= to choose one."
            )
        return compiled.pop() if compiled else devices.NEURON  # NeuronPerf 1.x's default
    device = devices.device_type_of(device_type)
    wrong = sorted(compiled - {device})
    if wrong:
        raise TorchArgumentError(
            f"device_type={device!r}, but the model was compiled for {', '.join(wrong)}: "
            f"pass device_type={wrong[0]!r} (or leave it out to use the model's), or compile "
            f"for {device!r}."
        )
    return device


def _default_n_models(device: str, configs: list[dict[str, Any]]) -> list[int]:
    if device == devices.CPU:
        most = devices.cpu_cores()
    elif device == devices.CUDA:
        most = torch.cuda.device_count() if torch.cuda.is_available() else 1
    else:
        pipeline = max(c["pipeline_size"] for c in configs)
        most = max(1, len(devices.neuron_cores()) // pipeline)
    return sorted({1, most})


def _placement(
    device: str, n_list: list[int], configs: list[dict[str, Any]]
) -> dict[tuple[int, int], list[str]]:
    """Check the device and the copies it allows (before loading); each copy's placement."""
    pipelines = sorted({c["pipeline_size"] for c in configs})
    if device == devices.CPU:
        devices.check_cpu(max(n_list))
        return {}
    if device == devices.CUDA:
        return {(n, p): devices.cuda_placement(n) for n in n_list for p in pipelines}
    neuron.check_pipeline_sizes(pipelines)
    return {(n, p): devices.neuron_placement(n, p) for n in n_list for p in pipelines}


def benchmark(
    model_index_or_path: str | os.PathLike[str],
    inputs: Any,
    batch_sizes: int | list[int] | None = None,
    duration: float = 120,
    n_models: int | list[int] | None = None,
    pipeline_sizes: int | list[int] | None = None,
    cast_modes: str | list[str] | None = None,
    workers_per_model: int | list[int] | None = None,
    env_setup_fn: Callable[[int, dict[str, Any]], Any] | None = None,
    setup_fn: Callable[[int, dict[str, Any], Any], Any] | None = None,
    preprocess_fn: Callable[..., Any] | None = None,
    postprocess_fn: Callable[..., Any] | None = None,
    dataset_loader_fn: Callable[[Any, int, int], Any] | None = None,
    multiprocess: bool = True,
    multiinterpreter: bool = False,
    return_timers: bool = False,
    stats_interval: float = 0.5,
    device_type: str | None = None,
    cost_per_hour: float | None = None,
    model_name: str | None = None,
    verbosity: int = 1,
    max_infers: int | None = None,
    eval_metrics: str | list[str] | None = None,
    eval_target_col: int | None = None,
    *,
    runner: str | None = None,
    results_dir: str | os.PathLike[str] | None = ".",
    results_file: str | os.PathLike[str] | None = None,
    dataloader_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Benchmark a model index from ``compile`` (or one model file); see ``neuronperf.benchmark``.

    ``inputs``: one input per compiled batch size (a list in the order of
    ``batch_sizes`` or of the index), or a torch ``Dataset``/``DataLoader``
    whose first batch of each batch size is the input. With ``eval_metrics``
    it is the evaluation dataset instead: a ``Dataset`` of records (batched
    here, ``dataloader_kwargs`` passed to the ``DataLoader``), a
    ``DataLoader`` of the compiled batch size, or any iterable of batched
    ``tuple(*INPUTS, TARGET)`` rows.

    ``device_type`` defaults to the device the index was compiled for. Copies
    run in fresh interpreters (never forked: see ``devices.choose_runner``),
    or as threads in this process with ``multiprocess=False``; ``runner=``
    names one directly. Scripts need an ``if __name__ == "__main__":`` guard.

    Reports are rewritten after every config to ``results_file``, or to a new
    ``{model_name}.results-YYYYmmdd-HHMMSS.json`` in ``results_dir``.
    """
    path = os.fspath(model_index_or_path)
    name, configs, batch_list, casts = _configs(path, batch_sizes, pipeline_sizes, cast_modes)
    model_name = model_name or name
    device = _device_of(device_type, configs)
    n_list = positive_ints("n_models", as_list(n_models) or _default_n_models(device, configs))
    chosen_runner = devices.choose_runner(device, runner, multiprocess, multiinterpreter)
    placement = _placement(device, n_list, configs)
    env_setup = devices.EnvSetup(
        device, chosen_runner, devices.cpu_cores(), placement, env_setup_fn
    )
    common: dict[str, Any] = {
        "duration": duration,
        "n_models": n_list,
        "pipeline_sizes": pipeline_sizes,
        "cast_modes": casts,
        "workers_per_model": workers_per_model,
        "env_setup_fn": env_setup,
        "setup_fn": setup_fn,
        "preprocess_fn": preprocess_fn,
        "multiprocess": chosen_runner != "threads",
        "multiinterpreter": chosen_runner == "interpreters",
        "stats_interval": stats_interval,
        "device_type": device,
        "cost_per_hour": cost_per_hour,
        "model_name": model_name,
        "verbosity": verbosity,
        "max_infers": max_infers,
        "runner": chosen_runner,
    }
    loader = Loader(device, chosen_runner)
    if not as_list(eval_metrics):
        if torch_data.kind_of(inputs) is not None:
            sizes = list(dict.fromkeys(c["batch_size"] for c in configs))
            inputs = [
                torch_data.first_batch(inputs, size, dataloader_kwargs, eval_target_col)
                for size in sizes
            ]
            batch_list, eval_target_col = sizes, None
        elif dataloader_kwargs:
            torch_data.check_loader_kwargs(inputs, dataloader_kwargs)  # raises: not torch data
        if isinstance(inputs, list):
            inputs = [_as_input(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
        else:
            inputs = _as_input(inputs, "inputs")
        for config, model_input in zip(
            configs, match_inputs(inputs, configs, batch_list), strict=True
        ):
            check_input(config, model_input, f"the input for batch size {config['batch_size']}")
        with _caller_threads_kept():
            return engine.benchmark(
                loader,
                path,
                inputs,
                batch_sizes=batch_list,
                postprocess_fn=postprocess_fn,
                dataset_loader_fn=dataset_loader_fn,
                return_timers=return_timers,
                eval_target_col=eval_target_col,
                results_dir=results_dir,
                results_file=results_file,
                **common,
            )
    with _caller_threads_kept():
        return _evaluate_by_batch_size(
            loader,
            path,
            inputs,
            configs,
            eval_metrics,
            -1 if eval_target_col is None else eval_target_col,
            postprocess_fn,
            dataset_loader_fn,
            dataloader_kwargs,
            return_timers,
            engine.results_file_path(results_dir, results_file, model_name),
            common,
        )


@contextlib.contextmanager
def _caller_threads_kept() -> Iterator[None]:
    """Copies run as threads here set this process's intra-op threads (EnvSetup): give the
    caller back the count it had."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _evaluate_by_batch_size(
    loader: Loader,
    path: str,
    dataset: Any,
    configs: list[dict[str, Any]],
    eval_metrics: Any,
    target_col: int,
    postprocess_fn: Callable[..., Any] | None,
    dataset_loader_fn: Callable[[Any, int, int], Any] | None,
    dataloader_kwargs: dict[str, Any] | None,
    return_timers: bool,
    results_file: Path | None,
    common: dict[str, Any],
) -> Any:
    """One engine run per batch size: each reads the dataset as batches of its size."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for config in configs:
        groups.setdefault(config["batch_size"], []).append(config)
    kind = torch_data.kind_of(dataset)
    if dataloader_kwargs:
        torch_data.check_loader_kwargs(dataset, dataloader_kwargs)
    if kind is None and len(groups) > 1 and iter(dataset) is dataset:
        raise TorchArgumentError(
            f"the dataset is a one-shot iterator, and the configs have several batch sizes "
            f"{sorted(groups)}: pass batch_sizes=[...] with one of them, or a re-iterable "
            "dataset (a list, or a torch Dataset)."
        )
    sources: list[tuple[int, Any, Any]] = []
    for batch, group in groups.items():  # check every batch size before any model loads
        loader_fn = dataset_loader_fn
        if dataset_loader_fn is not None:
            source: Any = dataset
        elif kind is not None:
            source = torch_data.EvalSource(dataset, batch, target_col, dataloader_kwargs)
            loader_fn = torch_data.load_shard
        else:
            source = torch_data.rows_source(dataset, batch, target_col)
        first, source = torch_data.peek(source)
        if not isinstance(first, tuple) or len(first) < 2:
            raise TorchArgumentError(
                "each evaluation row must be a tuple(*INPUTS, TARGET) with at least one input; "
                f"the first row is a {type(first).__name__}."
            )
        if not -len(first) <= target_col < len(first):
            raise TorchArgumentError(
                f"eval_target_col={target_col} is out of range for rows of {len(first)} "
                f"columns; use 0..{len(first) - 1} (or -1 for the last)."
            )
        model_input = torch_data.input_columns(first, target_col)
        for config in group:
            check_input(
                config,
                model_input if len(model_input) > 1 else model_input[0],
                f"the dataset's first batch (for batch size {batch})",
            )
        sources.append((batch, source, loader_fn))
    results: list[Any] = []
    for batch, source, loader_fn in sources:
        results += engine.benchmark(
            loader,
            path,
            source,
            batch_sizes=[batch],
            postprocess_fn=torch_data.FirstRecord(postprocess_fn) if batch == 1 else postprocess_fn,
            dataset_loader_fn=loader_fn,
            return_timers=return_timers,
            eval_metrics=eval_metrics,
            eval_target_col=target_col,
            results_dir=None,
            **common,
        )
        if results_file is not None:
            reports = get_reports(results, common["cost_per_hour"]) if return_timers else results
            write_json(reports, results_file)
    return results


def evaluate(
    model_index_or_path: str | os.PathLike[str],
    dataset: Any,
    metrics: str | list[str] = "accuracy",
    eval_target_col: int | None = None,
    **kwargs: Any,
) -> Any:
    """Score the model on ``dataset``: ``benchmark`` with n_models=1, 2 workers, duration=0.

    ``dataset``: a torch ``Dataset`` of ``(*inputs, target)`` records (batched to
    each compiled batch size; ``dataloader_kwargs`` go to its ``DataLoader``),
    a ``DataLoader`` of the compiled batch size, or any iterable of batched
    ``tuple(*INPUTS, TARGET)`` rows. Every record is scored once; metric values
    land in the reports under their names.
    """
    for key, value in engine.EVALUATE_DEFAULTS.items():
        kwargs.setdefault(key, value)
    return benchmark(
        model_index_or_path,
        dataset,
        eval_metrics=metrics,
        eval_target_col=eval_target_col,
        **kwargs,
    )


def load(
    model_filename: str | os.PathLike[str], device_type: str | None = None, device_id: int = 0
) -> Any:
    """Load one compiled model file, called as the benchmark workers call it: under
    inference mode, inputs moved to the GPU for CUDA (checked safe first)."""
    path = os.fspath(model_filename)
    meta = export.read_meta(path) or {}
    device = devices.device_type_of(device_type or meta.get("device_type") or devices.NEURON)
    return Loader(device, "threads", engine=False)(path, device_id)

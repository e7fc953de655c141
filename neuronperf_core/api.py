"""compile, benchmark and evaluate: the only public signatures, the same for every backend.

``npf.torch.benchmark(...)`` is ``benchmark(torch_backend, ...)``: the core checks the
options, selects the configs, matches inputs, plans the sweep, picks the runner, loops
over batch sizes when evaluating and writes the model index and results files; the
backend answers only what needs its framework (``neuronperf_core.backend``).
"""

from __future__ import annotations

import inspect
import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any

from neuronperf_core import files
from neuronperf_core.backend import Backend, CompileSpec, RunPlan
from neuronperf_core.benchmarking import peak
from neuronperf_core.benchmarking import plan as planning
from neuronperf_core.benchmarking.plan import BenchmarkArgumentError
from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.options import BenchmarkOptions, CompileOptions, OptionError

logger = logging.getLogger("neuronperf.api")

Reports = list[dict[str, Any]]  # return_timers=True: (config, results) pairs instead

# evaluate(): one copy, in this process, one pass: replicating a model does not change its
# accuracy, and a fresh interpreter per copy would cost more than scoring a dataset.
# workers_per_model=2 was faster on CPU (bench/evaluate.py on a 2-core machine shared with
# other jobs; bench/RESULTS.md): 2 workers of 1 intra-op thread took 0.66x to 0.86x the
# time of 1 worker of 2 threads, for a 64-256-256-10 and a 64-2048-2048-10 MLP at batch
# sizes 1 and 64. Not the default: one busy machine, where OpenMP teams of 2 threads
# contend with other jobs and single calls varied 10x; confirm on a quiet one first.
EVALUATE_DEFAULTS: Mapping[str, Any] = {
    "n_models": 1,
    "workers_per_model": 1,
    "duration": 0,
    "multiprocess": False,
}


# -- compile ------------------------------------------------------------------------------


def compile(backend: Backend, model: Any, inputs: Any, **kwargs: Any) -> str:
    """Compile ``model`` once per (example input, pipeline size, cast mode); return the path
    of the model index, rewritten after every config. A config that fails is recorded with
    ``status: "error"`` and its error, and the others go on."""
    from neuronperf_core import model_index
    from neuronperf_core.benchmarking.progress import say

    options = CompileOptions.from_kwargs(kwargs)
    if options.device_type is not None and options.device_type not in backend.device_types:
        raise _unknown_device(backend, options.device_type)
    folder = Path(options.models_dir)
    if folder.exists() and not folder.is_dir():
        raise OptionError(f"models_dir {folder} is a file, not a folder: name a folder.")
    plan = backend.plan_compile(model, options)
    examples = inputs if isinstance(inputs, list) else [inputs]
    if not examples:
        raise OptionError("inputs is an empty list: pass one example input per batch size.")
    examples = list(backend.coerce_inputs(examples, [], None))  # a list in, a list out
    sizes = _compile_batch_sizes(backend, examples, options.batch_sizes)
    name = files.safe_name(options.model_name or planning.name_of(model), "model_name")
    index_file = (
        Path(options.filename)
        if options.filename is not None
        else Path(f"{name}_{files.random_suffix()}.json")
    )
    folder.mkdir(parents=True, exist_ok=True)  # once every check passed: none left empty
    index: dict[str, Any] | None = None
    written = os.fspath(index_file)
    for input_idx, (example, batch) in enumerate(zip(examples, sizes, strict=True)):
        for pipeline in options.pipeline_sizes or [1]:
            for cast in plan.cast_modes:
                spec = CompileSpec(input_idx, batch, pipeline, cast)
                path = (
                    folder / f"{name}_b{batch}_p{pipeline}_{files.random_suffix()}{plan.extension}"
                )
                start = time.perf_counter()
                try:
                    extra = backend.compile_one(model, example, spec, path, plan)
                    status, artifact = "finished", os.fspath(path)
                except Exception as exc:
                    extra = {"error": f"{type(exc).__name__}: {exc}"}
                    status, artifact = "error", None
                    path.unlink(missing_ok=True)
                    logger.warning(
                        "compiling %s (batch size %d, cast mode %s) failed: %s",
                        name, batch, cast, extra["error"],
                    )  # fmt: skip
                entry = model_index.create(
                    artifact,
                    input_idx=input_idx,
                    batch_size=batch,
                    pipeline_size=pipeline,
                    cast_mode=cast,
                    compile_s=round(time.perf_counter() - start, 3),
                    model_name=name,
                    status=status,
                    **{"device_type": plan.device_type, **plan.index_fields, **extra},
                )
                first = index is None
                index = entry if index is None else model_index.append(index, entry)
                written = model_index.save(index, index_file)  # may add ".json"
                if first:  # once, where a script's user would otherwise not look
                    message = f"compiling {name}; model index: {Path(written).absolute()}"
                    say(message, options.verbosity)
    return written


def _compile_batch_sizes(
    backend: Backend, examples: list[Any], batch_sizes: list[int] | None
) -> list[int]:
    found = [backend.batch_size_of(example) for example in examples]
    if batch_sizes is None:
        for i, size in enumerate(found):
            if size is None:
                raise OptionError(
                    f"inputs[{i}] has no batch dimension; pass batch_sizes=[...] naming the "
                    "batch size of each example input."
                )
        return [int(s) for s in found if s is not None]
    if len(batch_sizes) != len(examples):
        raise OptionError(
            f"got {len(examples)} example inputs for {len(batch_sizes)} batch sizes "
            f"{batch_sizes}: pass one example input per batch size, in the same order."
        )
    for i, (size, got) in enumerate(zip(batch_sizes, found, strict=True)):
        if got is not None and got != size:
            raise OptionError(
                f"inputs[{i}] has batch dimension {got}, but batch_sizes[{i}] is {size}: each "
                "example input must have its batch size as the first dimension."
            )
    return batch_sizes


# -- benchmark and evaluate ---------------------------------------------------------------


def benchmark(backend: Backend, target: Any, inputs: Any, **kwargs: Any) -> Reports:
    """Benchmark every finished config of a model index (or one model file, or a model
    object) over the sweep; one report per config (with ``return_timers``, NeuronPerf
    1.x's ``(config, results)`` pairs, whose results carry the raw result under "raw").

    Per config x ``workers_per_model`` x ``n_models``: each copy is placed, loaded, set up
    and warmed up, then its workers run for ``duration`` seconds. With ``eval_metrics``
    the run is an evaluation of the dataset ``inputs``: see ``evaluate``. Reports are
    rewritten after every config to ``results_file``, or to a new
    ``{model_name}.results-YYYYmmdd-HHMMSS.json`` in ``results_dir``.
    """
    options = BenchmarkOptions.from_kwargs(kwargs)
    peak.check(options, evaluating=bool(options.eval_metrics))  # before any work
    planned = peak.planned(options)  # a peak search: one job per config, its steps its own
    planning.arrivals_of(planned, evaluating=bool(options.eval_metrics))
    if options.eval_metrics:
        return _evaluate(backend, target, inputs, options)
    if options.dataset_loader_fn is not None:
        raise BenchmarkArgumentError(
            "dataset_loader_fn only applies when evaluating a dataset: pass eval_metrics=[...] too."
        )
    selection = planning.select(backend, target, options)
    run = _plan_run(backend, target, selection, options)
    n_list = _n_models(options, run, selection.configs)
    sizes = list(dict.fromkeys(c["batch_size"] for c in selection.configs))
    model_inputs = backend.coerce_inputs(inputs, sizes, options)
    matched = planning.match_inputs(model_inputs, selection.configs, selection.batch_sizes)
    for config, model_input in zip(selection.configs, matched, strict=True):
        what = f"the input for batch size {config['batch_size']}"
        backend.check_input(config, model_input, what)
        planning.warn_batch_mismatch(backend, config, model_input, what, options.verbosity)
    jobs = planning.jobs(selection, matched, n_list, run, planned)
    return _run(jobs, run, selection.model_name, options, evaluating=False)


def evaluate(
    backend: Backend,
    target: Any,
    dataset: Any,
    metrics: Any = "accuracy",
    eval_target_col: int | None = None,
    **kwargs: Any,
) -> Reports:
    """Score the model on ``dataset`` (rows ``tuple(*INPUTS, TARGET)``, or what the backend
    reads, a torch Dataset say): every record once, at every selected batch size, the last
    partial batch padded and only its real records scored. ``metrics``: names or specs
    (``"precision:average=macro"``, ``"topk:k=5"``). Defaults: one copy, one worker, in
    this process (``EVALUATE_DEFAULTS``); the values land in the reports under the names."""
    if metrics is None or (isinstance(metrics, (list, tuple)) and not metrics):
        raise OptionError(
            f"metrics={metrics!r} names no metric: pass at least one, e.g. metrics='accuracy' "
            "(npf.list_metrics() lists them)."
        )
    given = {**kwargs, "eval_metrics": metrics, "eval_target_col": eval_target_col}
    options = BenchmarkOptions.from_kwargs(given, EVALUATE_DEFAULTS)
    return _evaluate(backend, target, dataset, options)


def _evaluate(backend: Backend, target: Any, dataset: Any, options: BenchmarkOptions) -> Reports:
    from neuronperf_core.metrics.specs import resolve_metrics

    planning.check_dataset(dataset)
    peak.check(options, evaluating=True)
    metrics = resolve_metrics(options.eval_metrics or [])
    selection = planning.select(backend, target, options)
    run = _plan_run(backend, target, selection, options)
    n_list = _n_models(options, run, selection.configs)
    target_col = -1 if options.eval_target_col is None else options.eval_target_col
    sizes = list(dict.fromkeys(c["batch_size"] for c in selection.configs))
    one_shot = _is_one_shot(dataset)
    if one_shot:
        _, dataset = _peek(dataset)  # an empty dataset says so first
    if one_shot and len(sizes) > 1:
        raise _one_shot_error(dataset, f"configs of batch sizes {sizes}")
    jobs = []
    for batch in sizes:  # every batch size checked before any model loads
        group = [c for c in selection.configs if c["batch_size"] == batch]
        if options.dataset_loader_fn is not None:
            rows: Any = dataset  # the user's dataset_loader_fn gives each worker its rows
        else:
            rows = backend.batches(dataset, batch, target_col, options)
        first, rows = _peek(rows, one_shot)
        col = planning.check_row(first, target_col)
        model_input = first[:col] + first[col + 1 :]
        one_input = model_input if len(model_input) > 1 else model_input[0]
        what = f"the dataset's first batch (for batch size {batch})"
        for config in group:
            backend.check_input(config, one_input, what)
            planning.warn_batch_mismatch(backend, config, one_input, what, options.verbosity)
        sub = planning.Selection(selection.model_name, group, [batch])
        jobs += planning.jobs(sub, [None] * len(group), n_list, run, options, rows, col, metrics)
    if one_shot and len(jobs) > 1:
        raise _one_shot_error(dataset, f"{len(jobs)} configs (n_models x workers_per_model)")
    return _run(jobs, run, selection.model_name, options, evaluating=True)


def _one_shot_error(dataset: Any, what: str) -> BenchmarkArgumentError:
    return BenchmarkArgumentError(
        f"the evaluation dataset is an iterator ({type(dataset).__name__}), which can be read "
        f"only once, but the run has {what}: pass a dataset that can be iterated again (a "
        "list, or an object whose __iter__ starts over), or one batch size and one value of "
        "n_models and workers_per_model."
    )


def _plan_run(
    backend: Backend, target: Any, selection: planning.Selection, options: BenchmarkOptions
) -> RunPlan:
    if options.device_type is not None and options.device_type not in backend.device_types:
        raise _unknown_device(backend, options.device_type)
    run = backend.plan_run(target, selection.configs, options)
    if run.runner != "ray" and (options.ray_address or options.ray_placement):
        given = "ray_address" if options.ray_address else "ray_placement"
        raise OptionError(
            f"{given} applies to runner='ray' (the neuronperf-ray plugin), and this run uses "
            f"runner={run.runner!r}: pass runner='ray' (--runner ray) too, or leave {given} out."
        )
    if run.model_files:
        planning.check_model_files(target, selection.configs)
    return run


def _n_models(
    options: BenchmarkOptions, run: RunPlan, configs: Sequence[Mapping[str, Any]]
) -> list[int]:
    """The copies to sweep: as given, or 1 and as many as the device holds; never more than
    it holds (checked here, for every backend, before anything loads), unless the runner
    places copies on other machines (``places_copies``: a cluster), whose capacity it checks."""
    if run.max_copies is None:
        return options.n_models or [1]
    n_list = options.n_models or sorted({1, max(1, run.max_copies)})
    too_many = [n for n in n_list if n > run.max_copies]
    if too_many and not getattr(_runner(run), "places_copies", False):
        pipelines = sorted({c["pipeline_size"] for c in configs})
        of = f" of pipeline size {pipelines[-1]}" if pipelines[-1] != 1 else ""
        raise BenchmarkArgumentError(
            f"n_models={max(too_many)}: the {run.device_type} device holds {run.max_copies} "
            f"copies{of} here. Pass n_models={max(1, run.max_copies)} or fewer (if another "
            "process holds part of the device, stop it first)."
        )
    return n_list


def _run(
    jobs: list[Any],
    run: RunPlan,
    model_name: str,
    options: BenchmarkOptions,
    *,
    evaluating: bool,
) -> Reports:
    from neuronperf_core.benchmarking.sweep import StopOnSignals, run_sweep

    runner = _runner(run)
    check = getattr(runner, "check", None)
    if check is not None:
        for job in jobs:
            check(job)  # e.g. a fresh interpreter needs a job it can receive
    # the runner's own session around the whole run (a Ray runner connects to its cluster)
    runner_session = getattr(runner, "session", None)
    with StopOnSignals():  # Ctrl-C, SIGTERM: the sweep stops and returns what finished
        results_path = None
        try:
            # created now: the name is the run's alone, and the folder writable
            results_path = files.results_path(options.results_dir, options.results_file, model_name)
            with (
                run.session() if run.session is not None else nullcontext(),
                runner_session(jobs, options) if runner_session is not None else nullcontext(),
            ):
                return run_sweep(jobs, runner, options, results_path, evaluating=evaluating)
        finally:
            files.release(results_path)  # removed if no report replaced what it holds


def _runner(run: RunPlan) -> Any:
    from neuronperf_core.plugins import get_host

    return get_host().runners.get(run.runner).value


def _unknown_device(backend: Backend, device: str) -> OptionError:
    return OptionError(
        f"device_type={device!r} is not a device the {backend.name!r} backend runs on; use "
        f"one of {', '.join(repr(d) for d in backend.device_types)}."
    )


def _is_one_shot(data: Any) -> bool:
    try:
        return iter(data) is data
    except TypeError:
        return False
    except NeuronPerfError:  # a backend's own, about the rows
        raise
    except Exception as exc:  # the user's dataset code, before anything loads
        raise _unreadable(exc) from exc


def _unreadable(exc: Exception) -> BenchmarkArgumentError:
    return BenchmarkArgumentError(
        f"reading the first row of the evaluation dataset failed: {type(exc).__name__}: {exc}"
    )


def _peek(rows: Any, one_shot: bool = False) -> tuple[Any, Any]:
    """The first row, and rows to read afterwards: a one-shot iterator re-chained, and so
    are rows a backend built over a one-shot dataset (``one_shot``), whatever they look
    like, so the row read here is never lost."""
    try:
        iterator = iter(rows)
    except TypeError:
        raise BenchmarkArgumentError(
            f"the evaluation dataset must be an iterable of tuple(*INPUTS, TARGET), got "
            f"{type(rows).__name__}."
        ) from None
    except NeuronPerfError:  # a backend's own, about the rows
        raise
    except Exception as exc:  # the user's dataset code, before anything loads
        raise _unreadable(exc) from exc
    try:
        first = next(iterator)
    except StopIteration:
        raise BenchmarkArgumentError("the evaluation dataset is empty: nothing to score.") from None
    except NeuronPerfError:
        raise
    except Exception as exc:
        raise _unreadable(exc) from exc
    if iterator is rows or one_shot:
        return first, itertools.chain([first], iterator)
    return first, rows


# -- npf.<backend> ------------------------------------------------------------------------


def bind(backend: Backend, module_name: str) -> ModuleType:
    """The module ``npf.<name>``: compile, benchmark and evaluate bound to ``backend`` (with
    NeuronPerf 1.x's positional order and signatures that list every keyword), plus the
    backend's own public ``extras`` (``load``, ...)."""
    module = ModuleType(module_name, backend.description)

    def compile_(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> str:
        return compile(backend, model, inputs, **_keywords(args, kwargs, CompileOptions, ()))

    def benchmark_(target: Any, inputs: Any, *args: Any, **kwargs: Any) -> Reports:
        return benchmark(backend, target, inputs, **_keywords(args, kwargs, BenchmarkOptions, ()))

    def evaluate_(target: Any, dataset: Any, *args: Any, **kwargs: Any) -> Reports:
        given = _keywords(args, kwargs, BenchmarkOptions, _EVALUATE_FIRST)
        metrics = given.pop("metrics", "accuracy")
        return evaluate(backend, target, dataset, metrics, **given)

    bound: tuple[tuple[str, Callable[..., Any], tuple[str, str], type[Any]], ...] = (
        ("compile", compile_, ("model", "inputs"), CompileOptions),
        ("benchmark", benchmark_, ("model_index_or_path", "inputs"), BenchmarkOptions),
        ("evaluate", evaluate_, ("model_index_or_path", "dataset"), BenchmarkOptions),
    )
    for name, function, first, options_type in bound:
        function.__name__ = function.__qualname__ = name
        function.__module__ = module_name
        function.__doc__ = globals()[name].__doc__
        setattr(function, "__signature__", _signature(first, options_type, name))  # noqa: B010
        setattr(module, name, function)
    extras = tuple(getattr(backend, "extras", ()))
    for name in extras:
        setattr(module, name, getattr(backend, name))
    module.backend = backend  # type: ignore[attr-defined]
    module.__all__ = ["backend", "benchmark", "compile", "evaluate", *extras]  # type: ignore[attr-defined]
    return module


_EVALUATE_FIRST = ("metrics", "eval_target_col")  # evaluate's own positional order


def _positional_names(options_type: type[Any], first: tuple[str, ...]) -> list[str]:
    from dataclasses import fields

    own = ("eval_metrics",) if "metrics" in first else ()  # evaluate's is `metrics`
    rest = [f.name for f in fields(options_type) if f.name not in (*first, *own)]
    if options_type is CompileOptions:
        rest.remove("compiler_kwargs")
    return [*first, *rest]


def _keywords(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options_type: type[Any],
    first: tuple[str, ...],
) -> dict[str, Any]:
    """Positional arguments after the first two, named in NeuronPerf 1.x's order."""
    if not args:
        return kwargs
    names = _positional_names(options_type, first)
    if len(args) > len(names):
        raise OptionError(f"got {len(args) + 2} positional arguments; pass the rest by keyword.")
    given = dict(zip(names, args, strict=False))
    twice = sorted(set(given) & set(kwargs))
    if twice:
        raise OptionError(f"{', '.join(twice)} given both by position and by keyword.")
    return {**given, **kwargs}


def _signature(first: tuple[str, ...], options_type: type[Any], name: str) -> inspect.Signature:
    from dataclasses import fields

    P = inspect.Parameter
    defaults = {f.name: f.default for f in fields(options_type)}
    defaults.update(metrics="accuracy")
    if name == "evaluate":
        defaults.update(EVALUATE_DEFAULTS)
    extra = _EVALUATE_FIRST if name == "evaluate" else ()
    params = [P(n, P.POSITIONAL_OR_KEYWORD) for n in first]
    params += [
        P(n, P.POSITIONAL_OR_KEYWORD, default=defaults[n])
        for n in _positional_names(options_type, extra)
    ]
    if name == "compile":
        params.append(P("compiler_kwargs", P.VAR_KEYWORD))
    return inspect.Signature(params)


__all__ = ["EVALUATE_DEFAULTS", "benchmark", "bind", "compile", "evaluate"]

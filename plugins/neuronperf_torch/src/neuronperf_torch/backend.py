"""The torch backend: what neuronperf's core asks of PyTorch (``neuronperf_core.backend``).

Users reach it as ``npf.torch``: ``compile``, ``benchmark`` and ``evaluate`` are the core's,
bound to ``TorchBackend``; this module answers only what needs torch: which files and
models are torch's, compiling one config (``torch.export`` on CPU and CUDA,
``torch_neuronx.trace`` on Neuron), the device a run needs and each copy's placement, and
inputs and datasets as tensors. Building the object imports nothing heavy; torch is
imported on first real use.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from neuronperf_core.backend import CompilePlan, CompileSpec, RunPlan, ShardedRows
from neuronperf_core.builtin_runners import choose_runner
from neuronperf_core.options import BenchmarkOptions, CompileOptions
from neuronperf_torch import devices
from neuronperf_torch.errors import DeviceUnavailableError, InputShapeError, TorchArgumentError

logger = logging.getLogger("neuronperf.torch")

# -- inputs -------------------------------------------------------------------------------


def as_input(value: Any, what: str) -> Any:
    """A tensor, or a tuple of tensors (model(*input)); numpy arrays become tensors."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        return torch.from_numpy(value)
    if isinstance(value, tuple):
        return tuple(as_input(v, what) if not isinstance(v, tuple) else v for v in value)
    raise TorchArgumentError(
        f"{what} is a {type(value).__name__}; expected a tensor or a tuple of tensors (passed "
        "as model(*input)). Give one such input per batch size, in a list."
    )


def tensors(model_input: Any) -> tuple[Any, ...]:
    return model_input if isinstance(model_input, tuple) else (model_input,)


def describe(model_input: Any) -> tuple[list[list[int] | None], list[str | None]]:
    import torch

    items = tensors(model_input)
    shapes = [list(t.shape) if isinstance(t, torch.Tensor) else None for t in items]
    dtypes = [
        str(t.dtype).removeprefix("torch.") if isinstance(t, torch.Tensor) else None for t in items
    ]
    return shapes, dtypes


def batch_dim(model_input: Any) -> int | None:
    import torch

    for item in tensors(model_input):
        if isinstance(item, torch.Tensor):
            return int(item.shape[0]) if item.dim() else None
    return None


def check_input(config: Mapping[str, Any], model_input: Any, what: str = "the input") -> None:
    """Raise InputShapeError unless ``model_input`` fits the compiled config."""
    batch = config["batch_size"]
    label = f"batch size {batch}, cast mode {config.get('cast_mode')}"
    shapes, dtypes = describe(model_input)
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
    got_batch = batch_dim(model_input)
    if got_batch != batch:
        from neuronperf_torch import export

        filename = config.get("filename")
        if filename is not None and export.is_torchscript(filename):  # records no batch size
            raise InputShapeError(
                f"{what} has batch dimension {got_batch}, but {Path(filename).name} runs at "
                f"batch size {batch} here. The file records no batch size (a TorchScript file "
                "has none): it is the one batch_sizes names, else the model index's (whose "
                "input_idx picks each config's input from the list), else 1. Pass "
                f"batch_sizes=[{got_batch}] if the model was traced at batch size {got_batch}."
            )
        raise InputShapeError(
            f"{what} has batch dimension {got_batch}, but the model was compiled for {label}. "
            f"{fix} For a single model file, pass batch_sizes=[n] naming its batch size."
        )


def _check_keywords(
    function: Any, kwargs: Mapping[str, Any], taken: tuple[str, ...], name: str
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


def _report_fields(
    fields: Mapping[str, Any],
    device: str,
    options: BenchmarkOptions,
    cores: int,
    n_models: int,
    workers: int,
) -> dict[str, Any]:
    """The run's fields, and on CPU the intra-op threads each worker gets when the user
    set none (``CopySetup``: the cores split across copies and workers)."""
    if device != devices.CPU or options.intra_op_threads is not None:
        return dict(fields)  # the report has the user's count already
    threads = devices.threads_per_worker(cores, n_models, workers)
    return {**fields, "intra_op_threads": threads}


@contextlib.contextmanager
def caller_threads_kept() -> Iterator[None]:
    """Copies run as threads here set this process's intra-op threads (CopySetup): give the
    caller back the count it had."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _unrecorded_torchscript(configs: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The TorchScript files among ``configs`` that record no device (a NeuronPerf 1.x or
    hand-traced model, by path or in a hand-built index), each with the Neuron operators
    it calls (none: traced with torch.jit.trace). Reads zip listings and code only."""
    from neuronperf_torch import export, neuron

    traced: dict[str, list[str]] = {}
    for config in configs:
        filename = config.get("filename")
        if config.get("device_type") or not filename or filename in traced:
            continue
        if export.is_torchscript(filename):
            traced[filename] = neuron.neuron_operators(export.torchscript_code(filename))
    return traced


def _no_device_message(filename: str, compiled: set[str]) -> str:
    name = Path(filename).name
    if compiled:
        return (
            f"{name} is a TorchScript file that records no device and calls no Neuron "
            f"operators, beside models for {', '.join(sorted(compiled))}: pass device_type= "
            "to choose one."
        )
    return (
        f"{name} is a TorchScript file: it records no device, and it calls no Neuron "
        "operators (traced with torch.jit.trace, not torch_neuronx.trace), so it cannot run "
        "on NeuronCores, NeuronPerf 1.x's default device. Pass device_type='cpu' (or "
        "'cuda'; on the command line, --device cpu) to run it there."
    )


def _transfer(device: str, options: BenchmarkOptions) -> str:
    """The run's transfer policy (``options.transfer``, see loading.py), refused where it
    cannot be applied."""
    from neuronperf_core.options import DEVICE_ONLY

    if options.transfer != DEVICE_ONLY:
        return options.transfer
    if options.eval_metrics is not None:
        raise TorchArgumentError(
            "transfer='device' keeps a repeated benchmark input on the device, but evaluation "
            "reads a new batch from the host at every call, so its timing always includes the "
            "copies: leave transfer out for evaluate."
        )
    if device == devices.NEURON:
        raise TorchArgumentError(
            "transfer='device' on Neuron: torch-neuronx models take and return CPU tensors and "
            "the runtime copies them inside every call, so the copies cannot be left out. "
            "Leave transfer out (end to end) on Neuron."
        )
    return options.transfer


class TorchBackend:
    """PyTorch on Neuron (torch-neuronx), CPU and CUDA."""

    name = "torch"
    description = "PyTorch on Neuron (torch-neuronx), CPU and CUDA: compile, benchmark, evaluate"
    device_types: tuple[str, ...] = devices.DEVICE_TYPES  # neuron first: 1.x default
    extras = ("load",)

    # -- what is torch's ---------------------------------------------------------------------

    def owns(self, target: object) -> bool:
        from neuronperf_torch.datafiles import owns

        return owns(target)

    def model_meta(self, path: Path) -> Mapping[str, Any] | None:
        from neuronperf_torch import export

        return export.read_meta(path)

    # -- compile ----------------------------------------------------------------------------

    def plan_compile(self, model: Any, options: CompileOptions) -> CompilePlan:
        import torch

        from neuronperf_torch import export, neuron

        device = options.device_type or devices.NEURON
        pipelines = options.pipeline_sizes or [1]
        casts: list[Any] | None = options.cast_modes
        kwargs = options.compiler_kwargs
        fields: dict[str, Any] = {"torch_version": torch.__version__}
        if device == devices.NEURON:
            if not devices.neuron_installed():  # first what is missing, then what to pass
                default = ", the default" if options.device_type is None else ""
                raise DeviceUnavailableError(
                    f"compiling for Neuron (device_type='neuron'{default}) needs torch-neuronx, "
                    "which is not installed here. Pass device_type='cpu' to compile for CPU "
                    "(or 'cuda' for a GPU); for Neuron, install torch-neuronx on an Inferentia "
                    "or Trainium instance: pip install 'neuronperf-torch[neuron]' "
                    "--extra-index-url https://pip.repos.neuron.amazonaws.com"
                )
            neuron.check_pipeline_sizes(pipelines)
            user_args = neuron.arg_list(options.compiler_args)
            target = neuron.resolve_target(options.compiler_target, user_args)
            casts = list(neuron.resolve_cast_modes(casts, user_args))
            import torch_neuronx

            taken = ("func", "example_inputs", "compiler_args")  # compiler_args= is ours to pass
            _check_keywords(torch_neuronx.trace, kwargs, taken, "torch_neuronx.trace")
            fields["compiler_target"] = target
            lnc = neuron.resolve_lnc(target, user_args)
            if lnc is not None:  # trn2: the runtime must use the same (checked before runs)
                fields["logical_nc_config"] = lnc
            settings = {"user_args": user_args, "kwargs": kwargs}
            return CompilePlan(device, casts, neuron.EXTENSION, fields, settings)
        if any(p != 1 for p in pipelines):
            raise TorchArgumentError(
                f"pipeline_sizes={pipelines}: pipelining is a Neuron feature; use "
                f"pipeline_sizes=[1] on {device}."
            )
        if options.compiler_args is not None or options.compiler_target is not None:
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
        if device == devices.CUDA and "bf16" in casts:
            devices.refuse_emulated_bf16()
        return CompilePlan(device, list(casts), export.EXTENSION, fields, {"kwargs": kwargs})

    def compile_one(
        self, model: Any, example: Any, spec: CompileSpec, path: Path, plan: CompilePlan
    ) -> dict[str, Any]:
        from neuronperf_torch import export, neuron

        example = tensors(example)
        shapes, dtypes = describe(example)
        fields: dict[str, Any] = {"input_shapes": shapes, "input_dtypes": dtypes}
        meta: dict[str, Any] = {
            "batch_size": spec.batch_size,
            "pipeline_size": spec.pipeline_size,
            "cast_mode": spec.cast_mode,
            "device_type": plan.device_type,
            **plan.index_fields,
            **fields,
        }
        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        try:
            if plan.device_type == devices.NEURON:
                args = neuron.compiler_args_for(
                    plan.settings["user_args"],
                    plan.index_fields["compiler_target"],
                    str(spec.cast_mode),
                    plan.index_fields.get("logical_nc_config"),
                )
                scope, cast_type = neuron.split_cast_mode(str(spec.cast_mode))
                fields.update(compiler_args=args, auto_cast=scope, auto_cast_type=cast_type)
                meta.update(fields)
                extra = neuron.compile_artifact(
                    model,
                    example,
                    compiler_args=args,
                    path=path,
                    meta=meta,
                    trace_kwargs=plan.settings["kwargs"],
                )
            else:
                extra = export.compile_artifact(
                    model,
                    example,
                    device=plan.device_type,
                    cast_mode=str(spec.cast_mode),
                    path=path,
                    meta=meta,
                    export_kwargs=plan.settings["kwargs"],
                )
        finally:
            if hasattr(model, "train"):
                model.train(was_training)
        return {**fields, **extra}

    # -- run ----------------------------------------------------------------------------------

    def plan_run(
        self, target: Any, configs: Sequence[Mapping[str, Any]], options: BenchmarkOptions
    ) -> RunPlan:
        import os

        from neuronperf_core import devices as machine
        from neuronperf_torch.loading import Loader

        if not isinstance(target, (str, os.PathLike)):  # each copy would fail to load it
            kind = target.__name__ if isinstance(target, type) else type(target).__name__
            raise TorchArgumentError(
                f"npf.torch runs compiled models, and {kind} is not one: "
                "compile it first, index = npf.torch.compile(model, example_inputs, "
                "device_type='cpu'), then benchmark or evaluate the index."
            )
        traced = _unrecorded_torchscript(configs)
        device = self._device_of(options.device_type, configs, traced)
        runner = choose_runner(options, no_fork=devices.FORK_HINTS[device])
        pipelines = sorted({c["pipeline_size"] for c in configs})
        placement: list[str] = []
        fields: dict[str, str] = {"transfer": _transfer(device, options)}
        death_hints: dict[str, str] = {}
        gpus: list[tuple[str, str]] | None = None
        if device == devices.CPU:
            max_copies = machine.cpu_cores()
        elif device == devices.CUDA:
            placement = devices.cuda_devices()
            max_copies = len(placement)
            if any(c.get("cast_mode") == "bf16" for c in configs):
                devices.refuse_emulated_bf16()
            # each copy checks it got its GPU (CUDA_VISIBLE_DEVICES); Ray chooses an actor's
            # GPU on its node, which this machine's UUIDs cannot name
            if runner not in ("threads", "ray"):
                gpus = list(zip(placement, devices.cuda_uuids(len(placement)), strict=True))
        else:
            from neuronperf_torch import neuron

            neuron.check_pipeline_sizes(pipelines)
            on_neuron = {f: ops for f, ops in traced.items() if ops}
            if on_neuron and not devices.neuron_installed():
                filename, operators = next(iter(on_neuron.items()))
                raise neuron.needs_torch_neuronx(filename, operators)
            neuron.check_runtime_lnc(list(configs))
            cores, fields["neuron_core_source"] = devices.neuron_cores()
            placement = [str(core) for core in cores]
            max_copies = len(cores) // pipelines[-1]
            death_hints["SIGABRT"] = neuron.ABORT_HINT
        setup = devices.CopySetup(device, runner, machine.cpu_cores(), placement)
        if device == devices.CPU:  # a copy in a process of its own gets steady_malloc
            fields["copy_malloc"] = (
                "the calling process's" if runner == "threads" else devices.STEADY_MALLOC
            )
        return RunPlan(
            device,
            runner,
            max_copies,
            Loader(device, runner, transfer=options.transfer, gpus=gpus),
            setup,
            caller_threads_kept,
            report_fields=functools.partial(
                _report_fields, fields, device, options, machine.cpu_cores()
            ),
            death_hints=death_hints,
        )

    @staticmethod
    def _device_of(
        device_type: str | None,
        configs: Sequence[Mapping[str, Any]],
        traced: Mapping[str, list[str]],
    ) -> str:
        """The device to run on: ``device_type``, else the one the configs record, else the
        one TorchScript files without a record were traced for (``traced``: file -> the
        Neuron operators it calls), else Neuron (NeuronPerf 1.x's default)."""
        from neuronperf_torch import neuron

        compiled = {c["device_type"] for c in configs if c.get("device_type")}
        plain = [f for f, operators in traced.items() if not operators]
        for filename, operators in traced.items():
            if operators:
                if device_type not in (None, devices.NEURON):
                    neuron.refuse_off_neuron(filename, operators, device_type)
                compiled.add(devices.NEURON)
        if device_type is None:
            if plain:
                raise TorchArgumentError(_no_device_message(plain[0], compiled))
            if len(compiled) > 1:
                raise TorchArgumentError(
                    f"the selected configs were compiled for different devices "
                    f"{sorted(compiled)}: pass device_type= to choose one."
                )
            return compiled.pop() if compiled else devices.NEURON  # NeuronPerf 1.x's default
        wrong = sorted(compiled - {device_type})
        if wrong:
            raise TorchArgumentError(
                f"device_type={device_type!r}, but the model was compiled for "
                f"{', '.join(wrong)}: pass device_type={wrong[0]!r} (or leave it out to use "
                f"the model's), or compile for {device_type!r}."
            )
        if device_type == devices.NEURON and plain:
            logger.warning(
                "%s calls no Neuron operators (it was traced with torch.jit.trace, not "
                "torch_neuronx.trace): on device_type='neuron' it runs on the CPU. Pass "
                "device_type='cpu' to report it as what it is.",
                plain[0],
            )
        return device_type

    def coerce_inputs(
        self, inputs: Any, batch_sizes: Sequence[int], options: BenchmarkOptions | None
    ) -> Any:
        from neuronperf_torch import data as torch_data

        loader_kwargs = options.dataloader_kwargs if options is not None else None
        drop_col = options.eval_target_col if options is not None else None
        if batch_sizes and torch_data.kind_of(inputs) is not None:
            return [
                torch_data.first_batch(inputs, size, loader_kwargs, drop_col)
                for size in batch_sizes
            ]
        if loader_kwargs:
            torch_data.check_loader_kwargs(inputs, loader_kwargs)  # raises: not torch data
        if drop_col is not None:
            raise TorchArgumentError(
                "eval_target_col applies to a dataset (a torch Dataset or DataLoader given as "
                "inputs, or any dataset with eval_metrics=[...]); these inputs are tensors."
            )
        if isinstance(inputs, list):
            return [as_input(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
        return as_input(inputs, "inputs")

    def batch_size_of(self, model_input: Any) -> int | None:
        return batch_dim(model_input)

    def check_input(self, config: Mapping[str, Any], model_input: Any, what: str) -> None:
        check_input(config, model_input, what)

    def batches(
        self, dataset: Any, batch_size: int, target_col: int, options: BenchmarkOptions
    ) -> Iterable[tuple[Any, ...]] | ShardedRows:
        from neuronperf_torch import data as torch_data

        if torch_data.kind_of(dataset) is not None:
            return torch_data.eval_rows(dataset, batch_size, target_col, options.dataloader_kwargs)
        if options.dataloader_kwargs:
            torch_data.check_loader_kwargs(dataset, options.dataloader_kwargs)  # raises
        return torch_data.rows_source(dataset, batch_size, target_col)

    # -- the command line -----------------------------------------------------------------

    def read_model(self, path: Path) -> Any:
        from neuronperf_torch.datafiles import read_model

        return read_model(path)

    def read_arrays(self, path: Path) -> list[Any]:
        from neuronperf_torch.datafiles import read_arrays

        return read_arrays(path)

    def dataset_from_arrays(self, arrays: Sequence[Any]) -> Any:
        from neuronperf_torch.datafiles import dataset_from_arrays

        return dataset_from_arrays(arrays)

    # -- extras: npf.torch.load ---------------------------------------------------------------

    @staticmethod
    def load(model_filename: str | Path, device_type: str | None = None, device_id: int = 0) -> Any:
        """Load one compiled model file, called as the benchmark workers call it: under
        inference mode, inputs moved to the GPU for CUDA (checked safe first)."""
        import os

        from neuronperf_torch import export
        from neuronperf_torch.loading import Loader

        path = os.fspath(model_filename)
        if not os.path.exists(path):  # before guessing its device from what it holds
            raise TorchArgumentError(
                f"{path} does not exist: pass a model file that npf.torch.compile wrote (a "
                ".pt2, or a TorchScript .pt)."
            )
        meta = export.read_meta(path) or {}
        recorded = device_type or meta.get("device_type")
        if recorded is None:
            config = {"filename": path}
            recorded = TorchBackend._device_of(None, [config], _unrecorded_torchscript([config]))
        device = devices.device_type_of(recorded)
        return Loader(device, "threads", engine=False)(path, device_id)

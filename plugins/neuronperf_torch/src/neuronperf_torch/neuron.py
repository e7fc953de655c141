"""Everything specific to torch-neuronx, in one module (a second Neuron backend sits beside it).

Written against the torch-neuronx API of Neuron 2.x:

- ``torch_neuronx.trace(func, example_inputs, *, compiler_workdir=None,
  compiler_args=None, ...)``: every argument after ``example_inputs`` is
  passed by keyword. ``compiler_args`` is a list of strings appended to the
  ``neuronx-cc compile`` command line; the right-most of competing flags wins.
- Cast modes are the compiler's auto-cast pair, ``none`` or
  ``{matmult|all}-{bf16|fp16|tf32|fp8_e4m3}``. ``--auto-cast`` is always passed
  (its default changed in Neuron 2.27) and recorded in the model index, as is
  ``--target`` (``compiler_target``).
- NeuronCore pipelining is torch-neuron (Inf1) only: a pipeline size other
  than 1 is an error.
- trn2 runs logical NeuronCores (LNC physical cores each, 2 by default), and a
  model must be compiled for the LNC the runtime uses: ``--logical-nc-config``
  is passed for trn2 (the user's, else ``NEURON_LOGICAL_NC_CONFIG``, else 2),
  recorded in the model index as ``logical_nc_config``, and checked against the
  runtime's before a run.
- A user's ``compiler_workdir`` is honoured: each config's compiler files go to
  a folder of their own under it (else next to the artifact).
- Artifacts are TorchScript archives saved with ``torch.jit.save``. Loading
  imports torch_neuronx first (it registers the ``neuron::`` operators) and
  then uses ``torch.jit.load``, whose unpickler builds only TorchScript objects
  and tensors and runs no Python code; the file's TorchScript code does run
  (see the TorchScript notes in export.py). Loaded models take and return CPU
  tensors.
- A TorchScript file calls Neuron operators (``ops.neuron.*``, or the
  ``torch.classes.neuron`` model it holds) when it was traced with torch-neuronx
  (or torch-neuron): it runs only on NeuronCores. One that calls none was traced
  with ``torch.jit.trace`` and runs on CPU or CUDA.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from neuronperf_torch.errors import DeviceUnavailableError, TorchArgumentError

FORMAT = "torchscript-neuronx"
EXTENSION = ".pt"
META_NAME = "neuronperf.json"
TARGETS = ("inf2", "trn1", "trn1n", "trn2")
# The compiler target of every instance family the Neuron docs list for torch-neuronx
# (inf1 is torch-neuron's): Trn2 servers and UltraServers compile as trn2.
FAMILY_TARGETS = {
    "inf2": "inf2",
    "trn1": "trn1",
    "trn1n": "trn1n",
    "trn2": "trn2",
    "trn2n": "trn2",
    "trn2u": "trn2",
}
LNC_TARGETS = ("trn2",)  # --logical-nc-config is trn2 only
AUTO_CAST = ("none", "matmult", "all")
AUTO_CAST_TYPES = ("bf16", "fp16", "tf32", "fp8_e4m3")
DEFAULT_CAST_MODE = "none"
CAST_MODES = ("none", *(f"{a}-{t}" for a in AUTO_CAST[1:] for t in AUTO_CAST_TYPES))
_CAST_FLAGS = ("--auto-cast", "--auto-cast-type")
_TARGET_FLAG = "--target"
_LNC_FLAGS = ("--logical-nc-config", "-lnc")
# A copy that dies this way on Neuron: the runtime may abort the process (c10::Error thrown
# past torch, huggingface/optimum-neuron#377) rather than raise when it cannot get its cores.
ABORT_HINT = (
    "On Neuron the runtime aborts a process this way when it cannot start, most often because "
    "another process (a notebook kernel, an earlier run) holds the NeuronCores: stop it "
    "(neuron-top shows who holds them), or pass fewer n_models."
)


@contextlib.contextmanager
def jit_deprecation_silenced() -> Iterator[None]:
    """torch 2.13 deprecates torch.jit.save/load, but torch-neuronx models and NeuronPerf 1.x
    scripts' files are TorchScript: silence only that warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        yield


def split_cast_mode(cast_mode: str) -> tuple[str, str | None]:
    """``"matmult-bf16"`` -> ("matmult", "bf16"); ``"none"`` -> ("none", None)."""
    if cast_mode not in CAST_MODES:
        raise TorchArgumentError(
            f"cast mode {cast_mode!r} is not a Neuron auto-cast mode; use one of "
            f"{', '.join(CAST_MODES)} (auto-cast scope, then the type it casts to)."
        )
    if cast_mode == "none":
        return "none", None
    scope, _, cast_type = cast_mode.partition("-")
    return scope, cast_type


def arg_list(compiler_args: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """compiler_args as a list of strings (a string is split like a shell line)."""
    if compiler_args is None:
        return []
    if isinstance(compiler_args, str):
        return shlex.split(compiler_args)
    if isinstance(compiler_args, (list, tuple)) and all(isinstance(a, str) for a in compiler_args):
        return list(compiler_args)
    raise TorchArgumentError(
        f"compiler_args must be a string or a list of strings, got {compiler_args!r}; e.g. "
        "compiler_args=['--optlevel', '3'] or '--optlevel 3'."
    )


def flag_value(args: list[str], flag: str) -> str | None:
    """The value of ``flag`` in ``args`` (``--flag=v`` or ``--flag v``); the last one wins."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def without_flags(args: list[str], flags: tuple[str, ...]) -> list[str]:
    """``args`` without ``flags`` and their values."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not any(arg.startswith(f + "=") for f in flags):
            kept.append(arg)
    return kept


def instance_target() -> str | None:
    """The --target of this EC2 instance's family, from local DMI data (inf2.xlarge -> inf2,
    trn2u.48xlarge -> trn2)."""
    from neuronperf_core.devices import instance_family

    return FAMILY_TARGETS.get(instance_family() or "")


def resolve_target(compiler_target: str | None, user_args: list[str]) -> str:
    in_args = flag_value(user_args, _TARGET_FLAG)
    if compiler_target is not None and in_args is not None and compiler_target != in_args:
        raise TorchArgumentError(
            f"compiler_target={compiler_target!r} but compiler_args hold --target {in_args}; "
            "give the target once."
        )
    target = compiler_target or in_args or instance_target()
    if target is None:
        raise TorchArgumentError(
            "Neuron compilation needs a target and this is not a Neuron instance to detect it "
            f"from: pass compiler_target= one of {', '.join(repr(t) for t in TARGETS)} (the "
            "instance family the model will run on)."
        )
    if target not in TARGETS:
        raise TorchArgumentError(
            f"compiler_target={target!r} is not a Neuron target; use one of "
            f"{', '.join(repr(t) for t in TARGETS)}."
        )
    return target


def resolve_cast_modes(cast_modes: list[str] | None, user_args: list[str]) -> list[str]:
    """The cast modes to compile; auto-cast flags in compiler_args count as one cast mode."""
    scope = flag_value(user_args, "--auto-cast")
    cast_type = flag_value(user_args, "--auto-cast-type")
    if scope is not None or cast_type is not None:
        if cast_modes is not None:
            raise TorchArgumentError(
                "both cast_modes and --auto-cast/--auto-cast-type in compiler_args: give the "
                "cast mode once, as cast_modes=['matmult-bf16'] (recorded in the model index)."
            )
        if scope in (None, "none"):
            if cast_type is not None and scope is None:
                raise TorchArgumentError(
                    "--auto-cast-type without --auto-cast: pass cast_modes=['all-"
                    f"{cast_type}'] or ['matmult-{cast_type}'] instead."
                )
            return ["none"]
        cast_modes = [f"{scope}-{cast_type or 'bf16'}"]  # bf16: the compiler's default type
    modes = list(cast_modes) if cast_modes is not None else [DEFAULT_CAST_MODE]
    for mode in modes:
        split_cast_mode(mode)
    return modes


def check_pipeline_sizes(pipeline_sizes: list[int]) -> None:
    bad = [p for p in pipeline_sizes if p != 1]
    if bad:
        raise TorchArgumentError(
            f"pipeline_sizes={pipeline_sizes}: torch-neuronx does not support NeuronCore "
            "pipelining (--neuroncore-pipeline-cores is torch-neuron on Inf1 only). Use "
            "pipeline_sizes=[1], and n_models for several NeuronCores."
        )


def resolve_lnc(target: str, user_args: list[str]) -> int | None:
    """The logical NeuronCore config to compile for: on trn2 the user's --logical-nc-config,
    else the runtime's (NEURON_LOGICAL_NC_CONFIG, else 2); None for other targets."""
    from neuronperf_core.devices import LNC_VALUES, LNC_VARIABLE, NeuronConfigError, runtime_lnc

    given = [v for v in (flag_value(user_args, f) for f in _LNC_FLAGS) if v is not None]
    if target not in LNC_TARGETS:
        if given:
            raise TorchArgumentError(
                f"compiler_args hold --logical-nc-config {given[-1]}, which only trn2 takes "
                f"(the target is {target!r}); leave it out."
            )
        return None
    if given:
        if given[-1] not in {str(v) for v in LNC_VALUES}:
            raise TorchArgumentError(
                f"--logical-nc-config {given[-1]}: use "
                f"{' or '.join(map(str, LNC_VALUES))} (physical NeuronCores per logical core)."
            )
        return int(given[-1])
    try:
        return runtime_lnc()
    except NeuronConfigError as exc:
        raise TorchArgumentError(f"{exc} ({LNC_VARIABLE} sets the LNC to compile for)") from None


def check_runtime_lnc(configs: list[Mapping[str, Any]]) -> None:
    """Refuse, before any copy loads, models compiled for another logical NeuronCore config
    than the one this machine's runtime uses (the runtime cannot run them)."""
    from neuronperf_core.devices import LNC_VARIABLE, NeuronConfigError, logical_nc_config

    try:
        runtime = logical_nc_config()
    except NeuronConfigError as exc:
        raise TorchArgumentError(str(exc)) from None
    for config in configs:
        compiled = config.get("logical_nc_config")
        if compiled is not None and runtime is not None and compiled != runtime:
            raise TorchArgumentError(
                f"{Path(config['filename']).name} was compiled with --logical-nc-config "
                f"{compiled}, but the Neuron runtime here uses {runtime} "
                f"({LNC_VARIABLE}={os.environ.get(LNC_VARIABLE, f'unset: {runtime}')}). Set "
                f"{LNC_VARIABLE}={compiled} before running, or compile it again for {runtime}."
            )


def compiler_args_for(
    user_args: list[str], target: str, cast_mode: str, lnc: int | None = None
) -> list[str]:
    """The full compiler_args of one config: the user's, then target, auto-cast and (trn2)
    the logical NeuronCore config, explicit."""
    scope, cast_type = split_cast_mode(cast_mode)
    args = without_flags(user_args, (_TARGET_FLAG, *_CAST_FLAGS, *_LNC_FLAGS))
    args += [_TARGET_FLAG, target, "--auto-cast", scope]
    if cast_type is not None:
        args += ["--auto-cast-type", cast_type]
    if lnc is not None:
        args += [_LNC_FLAGS[0], str(lnc)]
    return args


def compile_artifact(
    model: Any,
    example: tuple[Any, ...],
    *,
    compiler_args: list[str],
    path: Path,
    meta: dict[str, Any],
    trace_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Trace ``model`` with torch_neuronx, keep the compiler's workdir (beside the artifact,
    or in a folder of its own under the user's ``compiler_workdir``), save with
    torch.jit.save. Returns extra keys for the model index."""
    import torch
    import torch_neuronx

    kwargs = dict(trace_kwargs)
    user_workdir = kwargs.pop("compiler_workdir", None)
    if user_workdir is not None:  # one folder per config: they would overwrite each other
        workdir = Path(user_workdir) / path.stem
    else:
        workdir = path.with_name(path.stem + ".neuronx-cc")
    path.parent.mkdir(parents=True, exist_ok=True)
    traced = torch_neuronx.trace(
        model,
        example,
        compiler_workdir=str(workdir),
        compiler_args=compiler_args,
        **kwargs,
    )
    with jit_deprecation_silenced():
        torch.jit.save(traced, str(path), _extra_files={META_NAME: json.dumps(meta)})
    return {"format": FORMAT, "compiler_workdir": str(workdir)}


# torch-neuronx's operators (neuron::forward_v2...), torch-neuron's (neuron::forward_1),
# the model object they hold (torch.classes.neuron.Model), and namespaces that start so.
_NEURON_OPERATOR = re.compile(r"\b(?:ops|classes)\.(neuron[A-Za-z0-9_]*)\.([A-Za-z0-9_]+)")


def neuron_operators(code: Mapping[str, str]) -> list[str]:
    """The Neuron operators and classes TorchScript ``code`` (export.torchscript_code) names,
    as ``namespace::name``; empty for a model traced with torch.jit.trace."""
    return sorted(
        {f"{m[1]}::{m[2]}" for text in code.values() for m in _NEURON_OPERATOR.finditer(text)}
    )


def refuse_off_neuron(path: str | Path, operators: list[str], device: str) -> None:
    """Raise a clear error when a TorchScript file that calls Neuron ``operators``
    (``neuron_operators``) is to run on ``device`` (cpu, cuda:0): they run on NeuronCores."""
    if operators:
        raise TorchArgumentError(
            f"{path} was traced with torch-neuronx: it calls {', '.join(operators[:3])}, which "
            "run only on NeuronCores, so it cannot run with "
            f"device_type={device.split(':')[0]!r}. Run it with device_type='neuron' on an "
            "Inferentia or Trainium instance with torch-neuronx installed; for the CPU, trace "
            "the model with torch.jit.trace or compile it with npf.torch.compile(..., "
            "device_type='cpu')."
        )


def needs_torch_neuronx(path: str | Path, operators: list[str]) -> DeviceUnavailableError:
    """The error for a file that calls Neuron ``operators`` where torch-neuronx is missing."""
    return DeviceUnavailableError(
        f"{path} was traced with torch-neuronx (it calls {', '.join(operators[:3])}): it runs "
        "only on NeuronCores, with torch-neuronx installed, which it is not here. Install "
        "torch-neuronx from the AWS Neuron package repository on an Inferentia or Trainium "
        "instance (pip install 'neuronperf-torch[neuron]' --extra-index-url "
        "https://pip.repos.neuron.amazonaws.com) and run it there."
    )


def _cores_context(torch_neuronx: Any) -> Callable[..., Any]:
    for owner in (torch_neuronx, getattr(torch_neuronx, "experimental", None)):
        context = getattr(owner, "neuron_cores_context", None)
        if context is not None:
            return context  # type: ignore[no-any-return]
    raise DeviceUnavailableError(
        "this torch-neuronx has no neuron_cores_context to place model copies in one process; "
        "use multiprocess=True (one process per copy, the default)."
    )


def load(path: str | Path, copy_id: int, pipeline_size: int, in_own_process: bool) -> Any:
    """Load a Neuron artifact; with several copies in one process, place each on its cores."""
    import torch
    import torch_neuronx  # registers the neuron:: operators: must precede torch.jit.load

    place: Any = contextlib.nullcontext()
    if not in_own_process:
        place = _cores_context(torch_neuronx)(
            start_nc=copy_id * pipeline_size, nc_count=pipeline_size
        )
    try:
        with place, jit_deprecation_silenced():
            return torch.jit.load(str(path))  # type: ignore[no-untyped-call]
    except RuntimeError as exc:
        text = str(exc)
        if "cannot be initialized" in text or "nrt_allocate" in text or "not available" in text:
            raise DeviceUnavailableError(
                f"the Neuron runtime could not start for copy {copy_id}: {text.strip()}. The "
                "usual cause is another process (a notebook kernel, an earlier run) holding the "
                "NeuronCores: stop it (neuron-top shows who holds them), or pass fewer n_models."
            ) from exc
        raise

"""CPU and CUDA artifacts: ``torch.export`` programs (``.pt2``), saved and loaded safely.

Why torch.export and not TorchScript: ``torch.jit.trace``/``script`` are
deprecated (torch 2.13 warns "Please switch to torch.compile or
torch.export"), and a ``.pt2`` archive stores the graph as versioned JSON
(ATen operators) and the weights as raw tensor bytes, so loading it needs no
Python code from the file. torch.export.load can still unpickle in corner
cases (tensor subclasses, custom objects, the legacy format, sample inputs
that weights_only rejects), so ``check_safe`` inspects the archive first and
refuses those.

Running a loaded program: ``ExportedProgram.module()`` wraps the graph in
Python input checks (pytree flattening, shape guards) that cost 50-100 us per
call, which would inflate a small CNN's CPU latency by tens of per cent. We
call the lifted graph directly with its weights (``lean_callable``), exactly
what ``module()`` runs underneath, and check input shapes once, before loading,
instead of on every call. Programs the direct path does not cover (buffer
mutation, custom objects, nested inputs) fall back to ``module()``.

Cast modes are the dtype the model runs in (fp32, bf16, fp16). A non-fp32
artifact includes the casts: it takes the same (fp32) inputs as the fp32 one
and returns floating outputs in the input dtype, as Neuron's auto-cast does.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuronperf_torch.errors import UnsafeArtifactError

FORMAT = "torch.export"
EXTENSION = ".pt2"
META_NAME = "neuronperf.json"  # stored in the archive's extra/ folder
CAST_MODES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DEFAULT_CAST_MODE = "fp32"


def read_meta(path: str | Path) -> dict[str, Any] | None:
    """The neuronperf metadata stored in a .pt2 or TorchScript archive (no torch import)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(f"extra/{META_NAME}"):
                    meta = json.loads(archive.read(name).decode("utf-8"))
                    return meta if isinstance(meta, dict) else None
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return None


# -- compiling ----------------------------------------------------------------------


def _cast_module(model: Any, dtype: Any, io_dtype: Any) -> Any:
    import torch
    from torch.utils._pytree import tree_map

    class CastTo(torch.nn.Module):
        """Runs ``model`` in ``dtype``; takes and returns floating tensors in ``io_dtype``."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model.to(dtype)

        def forward(self, *args: Any) -> Any:
            args = tuple(
                a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                for a in args
            )
            out = self.model(*args)
            return tree_map(
                lambda t: (
                    t.to(io_dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t
                ),
                out,
            )

    return CastTo()


def compile_artifact(
    model: Any,
    example: tuple[Any, ...],
    *,
    device: str,
    cast_mode: str,
    path: Path,
    meta: dict[str, Any],
    export_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Export ``model`` for ``example`` in ``cast_mode`` on ``device``, save it to ``path``,
    load it back and run it once (so a config that cannot run fails here, not later).

    Returns extra keys for the model index.
    """
    import torch

    dtype = getattr(torch, CAST_MODES[cast_mode])
    if device.startswith("cuda") and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise RuntimeError(
            f"this GPU ({torch.cuda.get_device_name()}) does not support bfloat16; "
            "use cast mode 'fp16' or 'fp32'"
        )
    float_inputs = [
        t.dtype for t in example if isinstance(t, torch.Tensor) and t.is_floating_point()
    ]
    io_dtype = float_inputs[0] if float_inputs else torch.float32
    module = model
    if dtype is not torch.float32 or device != "cpu":
        module = copy.deepcopy(model)  # .to() works in place: never change the user's model
    if dtype is not torch.float32:
        module = _cast_module(module, dtype, io_dtype)
    module = module.to(device).eval()
    example = tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in example)
    program = torch.export.export(module, example, **export_kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path), extra_files={META_NAME: json.dumps(meta)})
    from neuronperf_torch.loading import one_thread

    run = load(path, device)
    with torch.inference_mode(), one_thread():  # no OpenMP team here: see loading.CpuModel
        run(*example)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {"format": FORMAT, "dtype": str(dtype).removeprefix("torch.")}


# -- loading --------------------------------------------------------------------------


def check_safe(path: str | Path) -> None:
    """Refuse a .pt2 archive whose loading would unpickle Python objects."""
    import torch
    from torch.export.pt2_archive import constants as names

    problem = None
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UnsafeArtifactError(
            f"{path} is not a torch.export archive (.pt2 zip): {exc}. Re-create it with "
            "npf.torch.compile(..., device_type='cpu' or 'cuda')."
        ) from exc
    with archive:
        files = archive.namelist()
        prefix = files[0].split("/", 1)[0] + "/" if files and "/" in files[0] else ""
        relative = {f[len(prefix) :]: f for f in files if f.startswith(prefix)}
        archive_format = relative.get(names.ARCHIVE_FORMAT_PATH)
        if (
            archive_format is None
            or archive.read(archive_format).strip() != names.ARCHIVE_FORMAT_VALUE.encode()
            or "version" in relative
        ):
            problem = "it is not in the pt2 archive format (older formats are read with pickle)"
        models = [f for f in relative if f.startswith(names.MODELS_DIR) and f.endswith(".json")]
        for model_file in models if problem is None else []:
            model = model_file[len(names.MODELS_DIR) : -len(".json")]
            weights = names.WEIGHTS_CONFIG_FILENAME_FORMAT.format(model)
            consts = names.CONSTANTS_CONFIG_FILENAME_FORMAT.format(model)
            if weights not in relative or consts not in relative:
                problem = "its weights are stored in the legacy (pickled) format"
                break
            for config_name in (weights, consts):
                entries = json.loads(archive.read(relative[config_name]))["config"]
                for fqn, entry in entries.items():
                    if entry.get("use_pickle") or not str(entry.get("path_name", "")).startswith(
                        (names.WEIGHT_FILENAME_PREFIX, names.TENSOR_CONSTANT_FILENAME_PREFIX)
                    ):
                        problem = f"{fqn!r} is stored as a pickled Python object"
                        break
                if problem:
                    break
            sample = names.SAMPLE_INPUTS_FILENAME_FORMAT.format(model)
            if problem is None and sample in relative:
                data = archive.read(relative[sample])
                if data:
                    try:
                        torch.load(io.BytesIO(data), weights_only=True)
                    except Exception:
                        problem = "its sample inputs hold objects that only full unpickling reads"
            if problem:
                break
    if problem is not None:
        raise UnsafeArtifactError(
            f"refusing to load {path}: {problem}, and unpickling can run arbitrary code. "
            "Re-export the model with npf.torch.compile (plain tensors only); load it yourself "
            "with torch.export.load only if you trust where the file came from."
        )


def lean_callable(program: Any) -> Callable[..., Any] | None:
    """Call the program's graph directly with its weights; None if it needs ``module()``."""
    import torch
    from torch.export.graph_signature import InputKind, OutputKind
    from torch.utils._pytree import tree_structure, tree_unflatten

    signature = program.graph_signature
    state: list[Any] = []
    n_user = 0
    for spec in signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            n_user += 1
            continue
        if n_user or spec.kind not in (
            InputKind.PARAMETER,
            InputKind.BUFFER,
            InputKind.CONSTANT_TENSOR,
        ):
            return None  # state after user inputs, tokens or custom objects
        value = program.state_dict.get(spec.target)
        if value is None:
            value = program.constants.get(spec.target)  # non-persistent buffers, constants
        if not isinstance(value, torch.Tensor):
            return None
        state.append(value)
    if any(spec.kind != OutputKind.USER_OUTPUT for spec in signature.output_specs):
        return None  # buffer or input mutations: module() applies them
    if program.call_spec.in_spec != tree_structure(((0,) * n_user, {})):
        return None  # nested or keyword inputs
    graph = program.graph_module
    out_spec = program.call_spec.out_spec
    state_tuple = tuple(state)

    if out_spec.is_leaf():

        def run_one(*args: Any) -> Any:
            return graph(*state_tuple, *args)[0]

        return run_one

    def run(*args: Any) -> Any:
        return tree_unflatten(list(graph(*state_tuple, *args)), out_spec)

    return run


def load(path: str | Path, device: str) -> Callable[..., Any]:
    """A callable running the .pt2 program at ``path`` on ``device`` (checked safe first)."""
    import torch

    check_safe(path)
    program = torch.export.load(str(path))
    if program.graph_signature.input_specs and device != _program_device(program):
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
    run = lean_callable(program)
    return run if run is not None else program.module()


def _program_device(program: Any) -> str:
    for value in program.state_dict.values():
        return str(value.device)
    return "cpu"

"""TEST DOUBLE of ``torch_neuronx`` (AWS Neuron's PyTorch package) and of the Neuron runtime
beneath it. Not the real thing.

The tests install this file as a module named ``torch_neuronx`` on a temporary
``sys.path`` entry (spawned interpreters inherit ``sys.path``). It follows the
torch-neuronx API facts the plugin is written against
(shared/reference/torch-neuronx.md), where a lenient double would hide bugs:

- The machine (``$TORCH_NEURONX_DOUBLE_MACHINE``, a JSON file the tests write, shared
  with ``neuron_ls_double.py``): devices, physical cores per device, whether the runtime
  presents logical cores (trn2: LNC physical cores each, ``NEURON_LOGICAL_NC_CONFIG``,
  2 by default), and a folder where processes hold cores.
- ``trace``: everything after ``example_inputs`` keyword-only, ``--target`` required,
  ``--logical-nc-config`` for trn2 only. The traced model takes only the shapes it was
  traced for, as a NEFF does.
- Loading (``torch.jit.load``, after this module is imported: the model calls the
  operators ``neuron_double::*``, registered on import, so without the import the load
  fails with "Unknown builtin op", like the real ``neuron::`` operators) starts the
  runtime in the process: it refuses a model compiled for another LNC, checks
  ``NEURON_RT_VISIBLE_CORES`` against the machine, and reserves the visible cores (all
  of them when unset) for the life of the process. Cores another live process holds are
  "not available": a RuntimeError, or with ``$TORCH_NEURONX_DOUBLE_ABORT`` set the
  process aborts (SIGABRT), as the runtime may do (huggingface/optimum-neuron#377).
- ``neuron_cores_context(start_nc, nc_count)``: loads inside it go to those cores of the
  process's visible ones; a range outside them raises.

It records what it was asked, one JSON object per line in ``$TORCH_NEURONX_DOUBLE_LOG``:
``import`` (the process id and ``NEURON_RT_VISIBLE_CORES`` then), ``trace``
(``compiler_args``, ``compiler_workdir``, input shapes), ``neuron_cores_context`` and
``load`` (the cores a model went to). Models run on the CPU.
``$TORCH_NEURONX_DOUBLE_FAIL`` makes ``trace`` fail when its value appears in the
compiler arguments (to test failed configs).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

IS_TEST_DOUBLE = True
TARGETS = ("inf2", "trn1", "trn1n", "trn2")
LNC_TARGETS = ("trn2",)
DEFAULT_MACHINE = {"devices": 1, "physical_cores": 2, "logical": False, "cores_dir": None}


def _record(event: str, **fields: Any) -> None:
    log = os.environ.get("TORCH_NEURONX_DOUBLE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n")


# -- the machine and the runtime ----------------------------------------------------------


def machine() -> dict[str, Any]:
    path = os.environ.get("TORCH_NEURONX_DOUBLE_MACHINE")
    return dict(json.loads(Path(path).read_text())) if path else dict(DEFAULT_MACHINE)


def runtime_lnc(spec: dict[str, Any]) -> int:
    """Physical cores per NeuronCore the runtime presents (1 where cores are not logical)."""
    if not spec["logical"]:
        return 1
    return int(os.environ.get("NEURON_LOGICAL_NC_CONFIG") or 2)


def core_count(spec: dict[str, Any]) -> int:
    return int(spec["devices"]) * int(spec["physical_cores"]) // runtime_lnc(spec)


def visible_cores(spec: dict[str, Any]) -> list[int]:
    """The process's cores: NEURON_RT_VISIBLE_CORES (an index, a range or a list), else all."""
    text = os.environ.get("NEURON_RT_VISIBLE_CORES", "").strip()
    count = core_count(spec)
    if not text:
        return list(range(count))
    cores: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        cores.extend(range(int(first), int(last or first) + 1))
    if any(c >= count for c in cores):
        raise RuntimeError(
            f"nrt_init: NEURON_RT_VISIBLE_CORES={text} names NeuronCores this instance does "
            f"not have ({count}). Neuron runtime cannot be initialized."
        )
    return cores


# Process state, kept on torch like the operator library: this module may be imported again
# under the same name, and the operators call the functions of the first import.
_STATE: dict[str, Any] = torch.__dict__.setdefault(
    "_neuron_double_state", {"held": {}, "placement": None}
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _release(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            if path.read_text() == str(os.getpid()):
                path.unlink()


def _not_available(cores: list[int], holder: int) -> None:
    message = (
        f"nrt_allocate_neuron_cores: NeuronCore(s) {cores} not available, held by process "
        f"{holder}. Neuron runtime cannot be initialized."
    )
    if os.environ.get("TORCH_NEURONX_DOUBLE_ABORT"):
        sys.stderr.write(
            "terminate called after throwing an instance of 'c10::Error'\n  what():  "
            + message
            + "\n"
        )
        sys.stderr.flush()
        os.abort()
    raise RuntimeError(message)


def _start_runtime(spec: dict[str, Any]) -> list[int]:
    """Reserve the process's visible cores, once per process (per test machine)."""
    key = str(spec.get("cores_dir"))
    held: dict[str, list[int]] = _STATE["held"]
    if key in held:
        return held[key]
    cores = visible_cores(spec)
    taken: list[Path] = []
    if spec.get("cores_dir"):
        folder = Path(spec["cores_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        for core in cores:
            lock = folder / f"nc{core}"
            while True:
                try:
                    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    holder = int(lock.read_text() or 0)
                    if holder and holder != os.getpid() and _alive(holder):
                        _release(taken)
                        _not_available(cores, holder)
                    lock.unlink(missing_ok=True)  # a dead process's core
                    continue
                with os.fdopen(fd, "w") as f:
                    f.write(str(os.getpid()))
                taken.append(lock)
                break
        atexit.register(_release, taken)
    held[key] = cores
    return cores


def _load(compiled_lnc: int) -> int:
    """The runtime's side of loading a model (called from the model's __setstate__)."""
    spec = machine()
    lnc = runtime_lnc(spec)
    if spec["logical"] and compiled_lnc != lnc:
        raise RuntimeError(
            f"nrt_load: the NEFF was compiled for logical NeuronCore config {compiled_lnc}, but "
            f"the runtime uses {lnc} (NEURON_LOGICAL_NC_CONFIG)."
        )
    cores = _start_runtime(spec)
    start, count = _STATE["placement"] or (0, 1)
    placed = cores[start : start + count]
    _record("load", cores=placed, lnc=compiled_lnc)
    return compiled_lnc


def _run(x: torch.Tensor, shape: list[int]) -> torch.Tensor:
    if list(x.shape) != list(shape):
        raise RuntimeError(
            f"neuron_double: input of shape {list(x.shape)}, but the model was compiled for "
            f"{list(shape)}: a Neuron model takes only the shapes it was traced for."
        )
    return x.clone()


_LIBRARIES: list[Any] = torch.__dict__.setdefault("_neuron_double_libraries", [])
if not _LIBRARIES:
    _lib = torch.library.Library("neuron_double", "DEF")
    _lib.define("run(Tensor x, int[] shape) -> Tensor")
    _lib.define("load(int lnc) -> int")  # returns its argument: the load is not dead code
    _lib.impl("run", _run, "CompositeExplicitAutograd")
    _lib.impl("load", _load, "CompositeExplicitAutograd")
    _LIBRARIES.append(_lib)


# -- the model ------------------------------------------------------------------------------


def _flag(args: list[str], flag: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


class _Runtime(torch.nn.Module):
    """Holds the LNC the model was compiled for; loading it starts the runtime."""

    def __init__(self, lnc: int) -> None:
        super().__init__()
        self.lnc = lnc

    def forward(self) -> int:
        return self.lnc

    @torch.jit.export
    def __getstate__(self) -> tuple[int, bool]:
        return (self.lnc, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[int, bool]) -> None:
        self.lnc = torch.ops.neuron_double.load(state[0])
        self.training = state[1]


class _OnNeuron(torch.nn.Module):
    def __init__(self, func: Any, shapes: list[list[int]], lnc: int) -> None:
        super().__init__()
        self.func = func
        self.shapes = shapes
        self.runtime = _Runtime(lnc)

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.func(
            *(torch.ops.neuron_double.run(x, s) for x, s in zip(inputs, self.shapes, strict=True))
        )


def trace(
    func: Any,
    example_inputs: Any,
    *,
    input_output_aliases: dict[Any, Any] | None = None,
    compiler_workdir: str | None = None,
    compiler_args: str | list[str] | None = None,
    partitioner_config: Any = None,
    inline_weights_to_neff: bool = True,
    cpu_backend: bool = False,
) -> torch.jit.ScriptModule:
    args = (
        shlex.split(compiler_args) if isinstance(compiler_args, str) else list(compiler_args or [])
    )
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    shapes = [list(t.shape) for t in inputs]
    _record(
        "trace",
        compiler_args=args,
        compiler_workdir=compiler_workdir,
        cpu_backend=cpu_backend,
        input_shapes=shapes,
    )
    target = _flag(args, "--target")
    if target not in TARGETS:
        raise RuntimeError(f"neuronx-cc: --target must be one of {TARGETS}, got {target!r}")
    lnc_flag = _flag(args, "--logical-nc-config") or _flag(args, "-lnc")
    if lnc_flag is not None and target not in LNC_TARGETS:
        raise RuntimeError(f"neuronx-cc: --logical-nc-config is not supported for {target}")
    lnc = int(lnc_flag or 2) if target in LNC_TARGETS else 1
    fail = os.environ.get("TORCH_NEURONX_DOUBLE_FAIL")
    if fail and fail in " ".join(args):
        raise RuntimeError(f"neuronx-cc failed (test double, {fail!r} in the arguments)")
    if compiler_workdir is not None:
        Path(compiler_workdir).mkdir(parents=True, exist_ok=True)
        command = ["neuronx-cc", "compile", "model.hlo", "--framework", "XLA", *args]
        Path(compiler_workdir, "command.txt").write_text(shlex.join(command) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated; the real one returns one
        return torch.jit.trace(_OnNeuron(func, shapes, lnc), inputs)


@contextlib.contextmanager
def neuron_cores_context(start_nc: int = -1, nc_count: int = -1) -> Iterator[None]:
    """Loads inside go to cores ``start_nc .. start_nc + nc_count - 1`` of the visible ones."""
    _record("neuron_cores_context", start_nc=start_nc, nc_count=nc_count)
    visible = visible_cores(machine())
    if (start_nc, nc_count) == (-1, -1):  # the defaults: the runtime places the load
        yield
        return
    if start_nc < 0 or nc_count < 1 or start_nc + nc_count > len(visible):
        raise RuntimeError(
            f"neuron_cores_context(start_nc={start_nc}, nc_count={nc_count}): this process "
            f"sees {len(visible)} NeuronCores"
        )
    previous = _STATE["placement"]
    _STATE["placement"] = (start_nc, nc_count)
    try:
        yield
    finally:
        _STATE["placement"] = previous


_record("import", visible_cores=os.environ.get("NEURON_RT_VISIBLE_CORES"))

"""TEST DOUBLE of ``torch_neuronx`` (AWS Neuron's PyTorch package). Not the real thing.

The tests install this file as a module named ``torch_neuronx`` on a temporary
``sys.path`` entry (spawned interpreters inherit ``sys.path``). It follows the
torch-neuronx API facts the plugin is written against
(shared/reference/torch-neuronx.md) and records what it was asked, one JSON
object per line in the file named by ``$TORCH_NEURONX_DOUBLE_LOG``:

- ``import``: the process id and ``NEURON_RT_VISIBLE_CORES`` when it was
  imported. The real runtime reads that variable when it starts, at the first
  model load, which the plugin can only do after this import.
- ``trace``: ``compiler_args`` and ``compiler_workdir``, passed by keyword
  (everything after ``example_inputs`` is keyword-only, as in Neuron 2.x).
- ``neuron_cores_context``: ``start_nc`` and ``nc_count``.

Traced models call the operator ``neuron_double::run``, registered on import,
so ``torch.jit.load`` fails with "Unknown builtin op" unless this module was
imported first, like the real ``neuron::`` operators. Models run on the CPU.
``$TORCH_NEURONX_DOUBLE_FAIL`` makes ``trace`` fail when its value appears in
the compiler arguments (to test failed configs).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

IS_TEST_DOUBLE = True
TARGETS = ("inf2", "trn1", "trn1n", "trn2")


def _record(event: str, **fields: Any) -> None:
    log = os.environ.get("TORCH_NEURONX_DOUBLE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n")


# Keep the operator library alive for the life of the process, even if this module is
# imported again under the same name.
_LIBRARIES: list[Any] = torch.__dict__.setdefault("_neuron_double_libraries", [])
if not _LIBRARIES:
    _lib = torch.library.Library("neuron_double", "DEF")
    _lib.define("run(Tensor x) -> Tensor")
    _lib.impl("run", lambda x: x.clone(), "CompositeExplicitAutograd")
    _LIBRARIES.append(_lib)


def _flag(args: list[str], flag: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


class _OnNeuron(torch.nn.Module):
    def __init__(self, func: Any) -> None:
        super().__init__()
        self.func = func

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.func(*(torch.ops.neuron_double.run(x) for x in inputs))


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
    _record(
        "trace",
        compiler_args=args,
        compiler_workdir=compiler_workdir,
        cpu_backend=cpu_backend,
        input_shapes=[
            list(t.shape)
            for t in (example_inputs if isinstance(example_inputs, tuple) else (example_inputs,))
        ],
    )
    target = _flag(args, "--target")
    if target not in TARGETS:
        raise RuntimeError(f"neuronx-cc: --target must be one of {TARGETS}, got {target!r}")
    fail = os.environ.get("TORCH_NEURONX_DOUBLE_FAIL")
    if fail and fail in " ".join(args):
        raise RuntimeError(f"neuronx-cc failed (test double, {fail!r} in the arguments)")
    if compiler_workdir is not None:
        Path(compiler_workdir).mkdir(parents=True, exist_ok=True)
        command = ["neuronx-cc", "compile", "model.hlo", "--framework", "XLA", *args]
        Path(compiler_workdir, "command.txt").write_text(shlex.join(command) + "\n")
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated; the real one returns one
        return torch.jit.trace(_OnNeuron(func), inputs)


@contextlib.contextmanager
def neuron_cores_context(start_nc: int = -1, nc_count: int = -1) -> Iterator[None]:
    _record("neuron_cores_context", start_nc=start_nc, nc_count=nc_count)
    yield


_record("import", visible_cores=os.environ.get("NEURON_RT_VISIBLE_CORES"))

"""Devices: what is available (checked before any model loads) and where each copy runs.

Copies get processes of their own as fresh interpreters (never a fork, see
``FORK_HINTS``), or run as threads here with ``multiprocess=False``.

- cpu: each copy's workers share its part of the cores. Every worker thread
  gets ``cores // (n_models * workers_per_model)`` intra-op threads (at least
  one, and never every core: ``threads_per_worker``): OpenMP gives each calling
  thread its own team, so two workers with a copy's whole share would
  oversubscribe the cores twice over. A copy in its
  own process allocates from one malloc arena and keeps freed memory (``steady_malloc``).
- cuda: one GPU per copy. In a process of its own a copy sees only its GPU
  (``CUDA_VISIBLE_DEVICES``, set before CUDA starts); with the threads runner
  copy k uses ``cuda:k``.
  After loading, a copy in a process of its own checks that it runs on the GPU it was
  given (by UUID): ``CUDA_VISIBLE_DEVICES`` does nothing once CUDA started in a process.
- neuron: NeuronCores per copy. In a process of its own (the default, fresh
  interpreters) copy k sees cores ``p*k .. p*k+p-1`` of the visible cores
  through ``NEURON_RT_VISIBLE_CORES``, set before the runtime starts; with the
  threads runner each load is placed with ``neuron_cores_context``.

Counting devices never reserves them: NeuronCores come from ``neuron-ls`` (else sysfs
where readable, ``neuronperf_core.devices``), GPUs from ``torch.cuda.device_count()``
(NVML, fork-safe).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
from collections.abc import Iterator
from typing import Any

from neuronperf_core import devices as machine
from neuronperf_torch.errors import DeviceUnavailableError, TorchArgumentError

logger = logging.getLogger("neuronperf.torch")

CPU, CUDA, NEURON = "cpu", "cuda", "neuron"
DEVICE_TYPES = (NEURON, CPU, CUDA)
_ALIASES = {"gpu": CUDA}
NEURON_INSTALL_HINT = (
    "install torch-neuronx from the AWS Neuron package repository on an Inferentia or "
    "Trainium instance (pip install 'neuronperf-torch[neuron]' --extra-index-url "
    "https://pip.repos.neuron.amazonaws.com), or pass device_type='cpu' (or 'cuda')"
)
# Why torch copies never fork (the core then gives them fresh interpreters, which start as
# neuronperf's own entry point and never import the user's script: no main guard needed).
FORK_HINTS = {
    CPU: "torch's OpenMP pool hangs a forked child at its first parallel op once this process "
    "has run one (compiling does)",
    CUDA: "CUDA cannot be used in a forked child once this process started it",
    NEURON: "the Neuron runtime is not fork-safe (NRT_STATE_CHILD errors) and this process "
    "would hold every NeuronCore",
}


def device_type_of(device_type: str) -> str:
    """``device_type`` checked and spelled the one way ("gpu" is "cuda")."""
    name = _ALIASES.get(str(device_type).lower(), str(device_type).lower())
    if name not in DEVICE_TYPES:
        raise TorchArgumentError(
            f"device_type={device_type!r} is not one the torch plugin runs on; use one of "
            f"{', '.join(repr(d) for d in DEVICE_TYPES)} ('gpu' means 'cuda')."
        )
    return name


# glibc's mallopt parameters
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
KEEP_FREED_BELOW = 1 << 30  # return freed heap memory to the OS only above 1 GiB
MMAP_ABOVE = 32 << 20  # the largest mmap threshold glibc accepts on 64-bit
STEADY_MALLOC = "one arena, freed memory kept"  # the report's copy_malloc in a copy's process


def steady_malloc() -> bool:
    """Make this process's allocations cost the same at every inference: one malloc arena for
    every thread, and freed memory kept for reuse instead of given back to the OS.

    With glibc's defaults, whether a tensor's memory comes back from the heap or from fresh
    pages (zero-filled on first touch, a minor page fault each 4 KiB) depends on the heap's
    layout, which earlier, unrelated allocations decide: the same mid-sized CNN took 755
    faults per inference in one fresh process and 69 in another that had imported a few
    more modules, and ran 8.2 ms against 7.3 ms; with this setting both took 0 faults and
    6.6 ms (bench/RESULTS.md). A copy's process gets it before its threads allocate, so
    its figure no longer depends on what else that process did. A user's process gets the
    same with ``MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=1073741824
    MALLOC_MMAP_THRESHOLD_=33554432``. glibc only; elsewhere nothing happens.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    return all(
        mallopt(param, value)
        for param, value in (
            (M_ARENA_MAX, 1),
            (M_TRIM_THRESHOLD, KEEP_FREED_BELOW),
            (M_MMAP_THRESHOLD, MMAP_ABOVE),
        )
    )


def threads_per_worker(cores: int, n_models: int, workers_per_model: int) -> int:
    """The cores split across copies and workers, leaving one core free of a lone worker's
    team: an OpenMP team that owns every core waits at each barrier for whichever of its
    threads another process pushed off a core. On 2 shared cores, 1 copy x 1 worker of the
    demo's MLP at batch 8 ran 7,352 inferences/s with 2 threads (p99 36 ms) against
    187,529 with 1 (p99 0.07 ms); bench/busy_machine.py, bench/RESULTS.md."""
    return max(1, min(cores - 1, cores // (n_models * workers_per_model)))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops in this thread on one intra-op thread, restoring the count afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# -- Neuron -------------------------------------------------------------------------


def neuron_installed() -> bool:
    """Whether torch-neuronx can be imported (checked without importing it)."""
    return importlib.util.find_spec("torch_neuronx") is not None


def parse_core_list(text: str) -> list[int]:
    """``"0"``, ``"4-5"``, ``"0,2-3"`` -> core ids (NEURON_RT_VISIBLE_CORES syntax)."""
    cores: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        first, sep, last = part.partition("-")
        try:
            low, high = int(first), int(last) if sep else int(first)
        except ValueError:
            raise TorchArgumentError(
                f"NEURON_RT_VISIBLE_CORES={text!r} is not a core index, range or list "
                "(e.g. '0', '4-5', '0,1'); fix or unset it."
            ) from None
        cores.extend(range(low, high + 1))
    return cores


def neuron_cores() -> tuple[list[int], str]:
    """The NeuronCores this process may use (NEURON_RT_VISIBLE_CORES if set, else all the
    runtime presents: logical ones on trn2) and where that came from, for the reports; a
    clear error when torch-neuronx or the cores are missing."""
    if not neuron_installed():
        raise DeviceUnavailableError(
            "device_type='neuron' needs torch-neuronx, which is not installed: "
            f"{NEURON_INSTALL_HINT}."
        )
    visible = os.environ.get("NEURON_RT_VISIBLE_CORES", "").strip()
    if visible:
        return parse_core_list(visible), "NEURON_RT_VISIBLE_CORES"
    try:
        found = machine.count_neuron_cores()
    except machine.NeuronConfigError as exc:
        raise TorchArgumentError(str(exc)) from None
    if not found.count:
        raise DeviceUnavailableError(
            "device_type='neuron' but this machine shows no NeuronCores: neuron-ls "
            f"--json-output {'found none' if machine.neuron_ls() else 'is not installed'}, "
            f"and {machine.NEURON_SYSFS} has no neuron*/core_count this user may read (the "
            "driver makes it readable by root only). Run on an inf2/trn1/trn2 instance with "
            "the Neuron driver and tools (aws-neuronx-tools) installed, or pass "
            "device_type='cpu'."
        )
    return list(range(found.count)), str(found.source)


def _core_range(cores: list[str]) -> str:
    ids = [int(c) for c in cores]
    if ids != list(range(ids[0], ids[0] + len(ids))):
        raise DeviceUnavailableError(
            f"NeuronCores {ids} are not contiguous; NEURON_RT_VISIBLE_CORES needs a "
            "contiguous set per copy. Make the visible cores contiguous."
        )
    return str(ids[0]) if len(ids) == 1 else f"{ids[0]}-{ids[-1]}"


# -- CUDA ---------------------------------------------------------------------------


def cuda_devices() -> list[str]:
    """The CUDA_VISIBLE_DEVICES id of every GPU torch sees; an error when there is none."""
    import torch

    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "device_type='cuda' but torch sees no CUDA GPU (torch.cuda.is_available() is "
            f"False; torch {torch.__version__}). Run on a machine with an NVIDIA GPU and a CUDA "
            "build of torch, or pass device_type='cpu'."
        )
    count = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    ids = [v.strip() for v in visible.split(",")] if visible else [str(i) for i in range(count)]
    return ids[:count]


def cuda_uuids(count: int) -> list[str]:
    """The UUID of each of the first ``count`` GPUs torch sees (starts CUDA here; no
    memory is taken on the GPUs)."""
    import torch

    return [str(torch.cuda.get_device_properties(i).uuid) for i in range(count)]


def check_copy_gpu(copy_id: int, device: str, given: str, expected_uuid: str) -> None:
    """Fail a copy that runs on another GPU than the one it was given (``given``: its
    CUDA_VISIBLE_DEVICES id, ``expected_uuid``: that GPU's UUID as the caller saw it)."""
    import torch

    seen = str(torch.cuda.get_device_properties(torch.device(device)).uuid)
    if seen != expected_uuid:
        raise DeviceUnavailableError(
            f"model copy {copy_id} was given GPU {given} (UUID {expected_uuid}) but runs on "
            f"GPU UUID {seen}: CUDA had already started in the copy's process when neuronperf "
            "set CUDA_VISIBLE_DEVICES, which CUDA then ignores, so copies would share one GPU. "
            "Something the job carries started it before the copy was placed (CUDA tensors "
            "among the inputs or in the dataset, say): pass CPU tensors (the copies move them), "
            "or multiprocess=False (copy k then runs on cuda:k in this process)."
        )


def refuse_emulated_bf16() -> None:
    """Refuse bfloat16 on a GPU that only emulates it (before compute capability 8.0: T4,
    V100), as for other casts the device cannot run: emulated, it measures nothing real.
    ``is_bf16_supported()`` alone counts emulation as support."""
    import torch

    if not torch.cuda.is_bf16_supported(including_emulation=False):
        major, minor = torch.cuda.get_device_capability()
        raise TorchArgumentError(
            f"cast mode 'bf16' on {torch.cuda.get_device_name()} (compute capability "
            f"{major}.{minor}): this GPU has no bfloat16 arithmetic (8.0 and newer do) and "
            "would only emulate it, so its timings would mean nothing. Use cast mode 'fp16' or "
            "'fp32' on this GPU."
        )


class CopySetup:
    """Places copy ``copy_id`` before it loads (the core calls it in the copy's process, or in
    this one for the threads runner): CPU threads and malloc arena, or the copy's GPU or
    NeuronCores (``placement``: the visible device ids) through the runtime's variable."""

    def __init__(self, device_type: str, runner: str, cores: int, placement: list[str]) -> None:
        self.device_type = device_type
        self.runner = runner
        self.cores = cores
        self.placement = placement

    def __call__(self, copy_id: int, config: dict[str, Any]) -> None:
        import torch

        n_models, workers = config["n_models"], config["workers_per_model"]
        if self.device_type == CPU:
            if self.runner != "threads":  # a process of its own: before its threads allocate
                steady_malloc()
            threads = config.get("intra_op_threads")  # the user's count, else the cores' share
            torch.set_num_threads(threads or threads_per_worker(self.cores, n_models, workers))
        elif self.runner not in ("threads", "ray"):  # a process of its own: place it before
            # the runtime starts. Ray placed an actor on its cores or GPU and set the variable.
            if self.device_type == NEURON:
                size = config["pipeline_size"]
                variable = "NEURON_RT_VISIBLE_CORES"
                value = _core_range(self.placement[size * copy_id : size * copy_id + size])
            else:
                variable, value = "CUDA_VISIBLE_DEVICES", self.placement[copy_id]
            os.environ[variable] = value
            logger.debug("copy %d: %s=%s", copy_id, variable, value)

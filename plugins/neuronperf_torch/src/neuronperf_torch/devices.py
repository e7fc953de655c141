"""Devices: what is available (checked before any model loads) and where each copy runs.

Copies get processes of their own as fresh interpreters (never a fork, see
``choose_runner``), or run as threads here with ``multiprocess=False``.

- cpu: each copy's workers share its part of the cores. Every worker thread
  gets ``cores // (n_models * workers_per_model)`` intra-op threads (at least
  one): OpenMP gives each calling thread its own team, so two workers with a
  copy's whole share would oversubscribe the cores twice over. A copy in its
  own process also allocates from one malloc arena (``share_main_arena``).
- cuda: one GPU per copy. In a process of its own a copy sees only its GPU
  (``CUDA_VISIBLE_DEVICES``, set before CUDA starts); with the threads runner
  copy k uses ``cuda:k``.
- neuron: NeuronCores per copy. In a process of its own (the default, fresh
  interpreters) copy k sees cores ``p*k .. p*k+p-1`` of the visible cores
  through ``NEURON_RT_VISIBLE_CORES``, set before the runtime starts; with the
  threads runner each load is placed with ``neuron_cores_context``.

Counting devices never reserves them: NeuronCores come from sysfs, GPUs from
``torch.cuda.device_count()`` (NVML, fork-safe).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuronperf_torch.errors import DeviceUnavailableError, TorchArgumentError

logger = logging.getLogger("neuronperf.torch")

CPU, CUDA, NEURON = "cpu", "cuda", "neuron"
DEVICE_TYPES = (NEURON, CPU, CUDA)
_ALIASES = {"gpu": CUDA}
NEURON_SYSFS = "/sys/devices/virtual/neuron_device"  # per device: neuron*/core_count
NEURON_INSTALL_HINT = (
    "install torch-neuronx from the AWS Neuron package repository on an Inferentia or "
    "Trainium instance (pip install 'neuronperf-torch[neuron]' --extra-index-url "
    "https://pip.repos.neuron.amazonaws.com), or pass device_type='cpu' (or 'cuda')"
)
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


def cpu_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not Linux


M_ARENA_MAX = -8  # glibc's mallopt parameter


def share_main_arena() -> bool:
    """Make every thread of this process allocate from glibc's main malloc arena.

    The engine loads and warms a copy up in one thread and times it in others. With a
    malloc arena per thread, the workers' arenas start cold and are trimmed between
    inferences: a mid-sized CNN ran about 8 % slower in a worker thread (12.2 ms against
    11.3 ms, measured with bench/torch_cpu.py's model) than in the thread that warmed it
    up. One arena removes that difference. glibc only; elsewhere nothing happens.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    return bool(mallopt(M_ARENA_MAX, 1))


def threads_per_worker(cores: int, n_models: int, workers_per_model: int) -> int:
    return max(1, cores // (n_models * workers_per_model))


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


def neuron_cores() -> list[int]:
    """The NeuronCores this process may use: NEURON_RT_VISIBLE_CORES if set, else all."""
    visible = os.environ.get("NEURON_RT_VISIBLE_CORES", "").strip()
    if visible:
        return parse_core_list(visible)
    total = 0
    for counter in sorted(Path(NEURON_SYSFS).glob("neuron*/core_count")):
        try:
            total += int(counter.read_text().strip())
        except (OSError, ValueError):
            continue
    return list(range(total))


def _core_range(cores: list[int]) -> str:
    if cores != list(range(cores[0], cores[0] + len(cores))):
        raise DeviceUnavailableError(
            f"NeuronCores {cores} are not contiguous; NEURON_RT_VISIBLE_CORES needs a "
            "contiguous set per copy. Make the visible cores contiguous."
        )
    return str(cores[0]) if len(cores) == 1 else f"{cores[0]}-{cores[-1]}"


def neuron_placement(n_models: int, pipeline_size: int) -> list[str]:
    """NEURON_RT_VISIBLE_CORES of each copy: copy k gets cores p*k .. p*k+p-1 (of the visible)."""
    if not neuron_installed():
        raise DeviceUnavailableError(
            "device_type='neuron' needs torch-neuronx, which is not installed: "
            f"{NEURON_INSTALL_HINT}."
        )
    cores = neuron_cores()
    needed = n_models * pipeline_size
    if not cores:
        raise DeviceUnavailableError(
            f"device_type='neuron' but this machine shows no NeuronCores ({NEURON_SYSFS} has "
            "no neuron*/core_count): run on an inf2/trn1/trn2 instance with the Neuron driver "
            "loaded, or pass device_type='cpu'."
        )
    if needed > len(cores):
        raise DeviceUnavailableError(
            f"n_models={n_models} copies of pipeline size {pipeline_size} need {needed} "
            f"NeuronCores, but only {len(cores)} are visible ({cores}). Pass "
            f"n_models={max(1, len(cores) // pipeline_size)} or fewer. If another process (a "
            "notebook kernel, an earlier run) holds cores, stop it first: cores are never shared "
            "between processes."
        )
    return [
        _core_range(cores[pipeline_size * k : pipeline_size * k + pipeline_size])
        for k in range(n_models)
    ]


# -- CUDA ---------------------------------------------------------------------------


def cuda_placement(n_models: int) -> list[str]:
    """CUDA_VISIBLE_DEVICES of each copy (in its own process): one GPU each."""
    import torch

    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "device_type='cuda' but torch sees no CUDA GPU (torch.cuda.is_available() is "
            f"False; torch {torch.__version__}). Run on a machine with an NVIDIA GPU and a CUDA "
            "build of torch, or pass device_type='cpu'."
        )
    count = torch.cuda.device_count()
    if n_models > count:
        raise DeviceUnavailableError(
            f"n_models={n_models} copies need one GPU each, but torch sees {count}. Pass "
            f"n_models={count} or fewer."
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    ids = [v.strip() for v in visible.split(",")] if visible else [str(i) for i in range(count)]
    return ids[:n_models]


def check_cpu(n_models: int) -> None:
    cores = cpu_cores()
    if n_models > cores:
        raise DeviceUnavailableError(
            f"n_models={n_models} CPU copies on {cores} cores: each copy needs at least one "
            f"core of its own. Pass n_models={cores} or fewer."
        )


# -- runners ------------------------------------------------------------------------


def choose_runner(
    device_type: str, runner: str | None, multiprocess: bool, multiinterpreter: bool
) -> str:
    """The engine runner: a fresh interpreter per copy ("interpreters", spawn) whenever copies
    get processes of their own, on every device; "threads" with multiprocess=False.

    Never fork: on CPU a forked child hangs in its first multi-threaded op once the parent
    used torch's OpenMP pool (libgomp is not fork-safe), and CUDA and the Neuron runtime
    forbid it. Spawned children re-import the user's main module, so scripts need the usual
    ``if __name__ == "__main__":`` guard.
    """
    if runner is not None:
        if runner == "processes":
            raise TorchArgumentError(
                f"runner='processes' forks this process, which torch does not survive: "
                f"{FORK_HINTS[device_type]}. Use runner='interpreters' (the default with "
                "multiprocess=True) or multiprocess=False."
            )
        return runner
    if not multiprocess:
        return "threads"
    return "interpreters"


class EnvSetup:
    """env_setup_fn(copy_id, config): place the copy, then call the user's own (picklable)."""

    def __init__(
        self,
        device_type: str,
        runner: str,
        cores: int,
        placement: dict[tuple[int, int], list[str]] | None = None,
        user_fn: Callable[[int, dict[str, Any]], Any] | None = None,
    ) -> None:
        self.device_type = device_type
        self.runner = runner
        self.cores = cores
        self.placement = placement or {}  # (n_models, pipeline_size) -> a setting per copy
        self.user_fn = user_fn

    def __call__(self, copy_id: int, config: dict[str, Any]) -> None:
        import torch

        n_models, workers = config["n_models"], config["workers_per_model"]
        if self.device_type == CPU:
            if self.runner != "threads":  # a process of its own: before its threads allocate
                share_main_arena()
            torch.set_num_threads(threads_per_worker(self.cores, n_models, workers))
        elif self.runner != "threads":  # a process of its own: place it before the runtime starts
            variable = (
                "NEURON_RT_VISIBLE_CORES"
                if self.device_type == NEURON
                else ("CUDA_VISIBLE_DEVICES")
            )
            key = (n_models, config["pipeline_size"])
            os.environ[variable] = self.placement[key][copy_id]
            logger.debug("copy %d: %s=%s", copy_id, variable, os.environ[variable])
        if self.user_fn is not None:
            self.user_fn(copy_id, config)

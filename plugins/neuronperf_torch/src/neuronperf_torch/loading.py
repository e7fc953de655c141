"""load_fn for the engine: load one model copy and return what the workers call.

Workers run in threads the engine starts, and ``torch.inference_mode`` is
per thread, so each call enters it (about a microsecond). CUDA calls move
their inputs to the copy's GPU (a repeated input only once) and synchronise
before returning, so the latency measured is the device's time, not the time
to queue a kernel.
"""

from __future__ import annotations

import threading
from typing import Any

from neuronperf_torch import devices
from neuronperf_torch.devices import one_thread


class InferenceModel:
    """Calls the model under ``torch.inference_mode()``."""

    def __init__(self, model: Any) -> None:
        import torch

        self.model = model
        self._mode = torch.inference_mode

    def __call__(self, *args: Any) -> Any:
        with self._mode():
            return self.model(*args)


class CpuModel(InferenceModel):
    """InferenceModel for CPU copies, which keeps the loading thread single-threaded.

    The engine loads and warms a copy up in one thread (a process's main thread) and runs
    the workers in others. libgomp gives every calling thread its own OpenMP team, and once
    a second team exists the teams stop spinning between parallel regions: a worker with 2
    intra-op threads then ran a mid-sized CNN no faster than with 1 (10.6 ms against 6.2 ms
    in a thread alone). So calls from the loading thread (the warm-up) run on one intra-op
    thread and never start a team; the workers' threads get the copy's share.

    OpenMP's thread count is per thread, and a new thread starts with one per core whatever
    ``torch.set_num_threads`` said in another: the engine calls
    ``neuronperf_worker_setup`` in each worker thread before the timed window, which sets
    the copy's share there. Without it two copies of one worker each ran a team of every
    core, which spin-waited against each other (a 0.03 ms model took 16-30 ms at its median).
    """

    def __init__(self, model: Any) -> None:
        import torch

        super().__init__(model)
        self._owner = threading.get_ident()
        self._thread = threading.get_ident
        self._share = torch.get_num_threads()  # set for this copy by CopySetup before loading
        self._set_threads = torch.set_num_threads

    def neuronperf_worker_setup(self) -> None:
        self._set_threads(self._share)

    def __call__(self, *args: Any) -> Any:
        if self._thread() != self._owner:
            with self._mode():
                return self.model(*args)
        with one_thread(), self._mode():
            return self.model(*args)


class CudaModel:
    """Moves inputs to ``device``, runs under inference mode, waits for the GPU."""

    def __init__(self, model: Any, device: str) -> None:
        import torch

        self.model = model
        self.device = torch.device(device)
        self._mode = torch.inference_mode
        self._sync = torch.cuda.synchronize
        self._tensor = torch.Tensor
        self._moved: tuple[tuple[Any, ...], tuple[Any, ...]] = ((), ())

    def _to_device(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        source, moved = self._moved  # one read: another worker may replace the pair
        if len(source) == len(args) and all(a is b for a, b in zip(source, args, strict=True)):
            return moved
        moved = tuple(
            a.to(self.device, non_blocking=False) if isinstance(a, self._tensor) else a
            for a in args
        )
        self._moved = (args, moved)
        return moved

    def __call__(self, *args: Any) -> Any:
        with self._mode():
            output = self.model(*self._to_device(args))
        self._sync(self.device)
        return output


class Loader:
    """load_fn(model_filename, device_id=...): picklable, for every runner. On CPU and CUDA
    the file is a .pt2 program or a TorchScript archive (``export.load`` tells them apart)."""

    def __init__(self, device_type: str, runner: str, engine: bool = True) -> None:
        self.device_type = device_type
        self.runner = runner
        self.engine = engine  # loaded for the engine's workers (CpuModel on CPU)

    def device(self, device_id: int) -> str:
        if self.device_type == devices.CUDA:
            # In a process of its own a copy sees only its GPU (CUDA_VISIBLE_DEVICES).
            return "cuda:0" if self.runner != "threads" else f"cuda:{device_id}"
        return "cpu"

    def __call__(self, model_filename: str, device_id: int = 0) -> Any:
        if self.device_type == devices.NEURON:
            from neuronperf_torch import neuron

            model = neuron.load(
                model_filename, device_id, pipeline_size=1, in_own_process=self.runner != "threads"
            )
            return InferenceModel(model)
        from neuronperf_torch import export

        device = self.device(device_id)
        if self.device_type == devices.CUDA:
            return CudaModel(export.load(model_filename, device), device)
        if not self.engine:
            return InferenceModel(export.load(model_filename, device))
        with one_thread():  # see CpuModel: the loading thread never starts an OpenMP team
            program = export.load(model_filename, device)
        return CpuModel(program)  # outside one_thread(): it reads the copy's share of threads

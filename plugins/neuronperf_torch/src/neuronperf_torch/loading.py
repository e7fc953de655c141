"""load_fn for the engine: load one model copy and return what the workers call.

Workers run in threads the engine starts, and ``torch.inference_mode`` is
per thread, so each call enters it (about a microsecond).

What a call includes is the run's transfer policy (``transfer=``, recorded in
every report), the same on every device:

- ``end_to_end`` (the default): CPU tensors in, CPU tensors out, as a serving
  process sees it. On CUDA each call copies its inputs to the GPU and the
  outputs back; Neuron models do both inside the call (the runtime's own
  copies); on CPU there is nothing to copy. So ``postprocess_fn`` and metrics
  receive CPU tensors on every device.
- ``device``: on CUDA a repeated input is copied to the GPU once per worker and
  outputs stay there (``postprocess_fn`` then receives GPU tensors): the
  latency is the GPU's work alone. Neuron cannot separate the copies (refused
  there); on CPU it is the same as end to end.

A CUDA call waits for its own work only: each worker thread has a CUDA stream of
its own, so two workers of a copy do not wait for each other's kernels.
"""

from __future__ import annotations

import threading
from typing import Any

from neuronperf_core.options import DEVICE_ONLY, END_TO_END
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
    """Runs a copy on its GPU: each calling thread on a CUDA stream of its own, waiting for
    that stream alone (``torch.cuda.synchronize(device)`` would wait for every worker's
    kernels, and two workers on the default stream queue behind each other), with the
    transfer policy of the module docstring."""

    def __init__(self, model: Any, device: str, transfer: str = END_TO_END) -> None:
        import torch
        from torch.utils._pytree import tree_map

        self.model = model
        self.device = torch.device(device)
        self.transfer = transfer
        self._mode = torch.inference_mode
        self._tensor = torch.Tensor
        self._new_stream = torch.cuda.Stream
        self._on_stream = torch.cuda.stream
        self._set_stream = torch.cuda.set_stream
        self._tree_map = tree_map
        self._local = threading.local()  # per thread: its stream, its input moved once

    def _thread(self) -> Any:
        local = self._local
        if not hasattr(local, "stream"):
            local.stream = self._new_stream(self.device)  # type: ignore[no-untyped-call]
            local.moved = ((), ())
        return local

    def neuronperf_worker_setup(self) -> None:
        """Before the timed window, in each worker thread: its stream, made current for the
        whole thread, so what the user's functions do with the outputs is ordered after the
        call that made them (and before their memory is reused)."""
        self._set_stream(self._thread().stream)

    def _to_device(self, local: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.transfer == DEVICE_ONLY:
            source, moved = local.moved
            if len(source) == len(args) and all(a is b for a, b in zip(source, args, strict=True)):
                return moved  # type: ignore[no-any-return]
        moved = tuple(a.to(self.device) if isinstance(a, self._tensor) else a for a in args)
        if self.transfer == DEVICE_ONLY:
            local.moved = (args, moved)
        return moved

    def _to_host(self, output: Any) -> Any:
        tensor = self._tensor
        return self._tree_map(lambda t: t.cpu() if isinstance(t, tensor) else t, output)

    def __call__(self, *args: Any) -> Any:
        local = self._thread()
        with self._on_stream(local.stream), self._mode():
            output = self.model(*self._to_device(local, args))
            if self.transfer == END_TO_END:
                output = self._to_host(output)
        local.stream.synchronize()
        return output


class Loader:
    """load_fn(model_filename, device_id=...): picklable, for every runner. On CPU and CUDA
    the file is a .pt2 program or a TorchScript archive (``export.load`` tells them apart)."""

    def __init__(
        self,
        device_type: str,
        runner: str,
        engine: bool = True,
        transfer: str = END_TO_END,
        gpus: list[tuple[str, str]] | None = None,
    ) -> None:
        self.device_type = device_type
        self.runner = runner
        self.engine = engine  # loaded for the engine's workers (CpuModel on CPU)
        self.transfer = transfer
        # CUDA, a process per copy: copy k's GPU (CUDA_VISIBLE_DEVICES id, UUID), checked
        # after loading (devices.check_copy_gpu)
        self.gpus = gpus

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
            model = CudaModel(export.load(model_filename, device), device, self.transfer)
            if self.gpus is not None and self.runner != "threads":
                given, uuid = self.gpus[device_id]
                devices.check_copy_gpu(device_id, device, given, uuid)
            return model
        if not self.engine:
            return InferenceModel(export.load(model_filename, device))
        with one_thread():  # see CpuModel: the loading thread never starts an OpenMP team
            program = export.load(model_filename, device)
        return CpuModel(program)  # outside one_thread(): it reads the copy's share of threads

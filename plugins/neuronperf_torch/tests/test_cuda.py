"""CUDA. Tests marked ``needs_gpu`` run where torch sees a GPU (two for some) and are skipped
otherwise, never faked. The others check the same code paths here with CPU stand-ins, each
named as such: the ``meta`` device for a second device, a recording stand-in for CUDA
streams, a stand-in GPU (T4, V100) that only emulates bfloat16."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from neuronperf_torch import devices, export
from neuronperf_torch.errors import DeviceUnavailableError, TorchArgumentError
from neuronperf_torch.loading import CudaModel
from npt_helpers import Records, make_model

import neuronperf as npf

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
needs_gpu = pytest.mark.skipif(GPUS < 1, reason="needs a CUDA GPU (torch sees none here)")
needs_two_gpus = pytest.mark.skipif(
    GPUS < 2, reason=f"needs two CUDA GPUs (torch sees {GPUS} here)"
)
QUICK = {"duration": 0.3, "results_dir": None, "verbosity": 0, "stats_interval": 0}


class PositionModel(torch.nn.Module):
    """Adds position ids made by a factory op (torch.arange), as transformers do."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + torch.arange(x.shape[-1], dtype=x.dtype)


@pytest.fixture(scope="module")
def cuda_index(tmp_path_factory: pytest.TempPathFactory) -> str:
    if GPUS < 1:
        pytest.skip("needs a CUDA GPU (torch sees none here)")
    folder = tmp_path_factory.mktemp("cuda")
    return npf.torch.compile(  # type: ignore[no-any-return]
        make_model(),
        [torch.randn(1, 3, 8, 8), torch.randn(4, 3, 8, 8)],
        cast_modes=["fp32", "fp16"],
        device_type="cuda",
        models_dir=folder / "models",
        filename=folder / "cuda.json",
    )


# -- on a GPU ---------------------------------------------------------------------------------


@needs_gpu
def test_compiled_for_cuda_and_computes_like_the_model(cuda_index: str) -> None:
    configs = npf.model_index.load(cuda_index)["model_configs"]
    assert all(c["status"] == "finished" and c["device_type"] == "cuda" for c in configs), configs
    x = torch.randn(4, 3, 8, 8)
    model = npf.torch.load(configs[2]["filename"])
    assert isinstance(model, CudaModel)
    out = model(x)  # a CPU input is moved to the GPU, the output comes back (end to end)
    assert out.device.type == "cpu"
    with torch.no_grad():
        torch.testing.assert_close(out, make_model()(x), atol=1e-3, rtol=1e-3)


@needs_gpu
def test_benchmark_threads_and_interpreters(cuda_index: str) -> None:
    inputs = [torch.randn(1, 3, 8, 8), torch.randn(4, 3, 8, 8)]
    for multiprocess in (False, True):
        reports = npf.torch.benchmark(
            cuda_index, inputs, n_models=1, workers_per_model=1, multiprocess=multiprocess, **QUICK
        )
        assert len(reports) == 4
        for report in reports:
            assert report["status"] == "finished", report["error"]
            assert report["device_type"] == "cuda" and report["latency_ms_p50"] > 0
            assert report["transfer"] == "end_to_end"


@needs_gpu
def test_evaluate_on_cuda(cuda_index: str) -> None:
    reports = npf.torch.evaluate(
        cuda_index, Records(8), metrics=["accuracy", "topk"], cast_modes="fp32", **QUICK
    )
    assert [(r["batch_size"], r["status"]) for r in reports] == [(1, "finished"), (4, "finished")]
    assert reports[0]["accuracy"] == pytest.approx(reports[1]["accuracy"])


@needs_gpu
def test_more_copies_than_gpus_is_refused(cuda_index: str) -> None:
    from neuronperf_core.benchmarking.plan import BenchmarkArgumentError

    with pytest.raises(BenchmarkArgumentError, match=f"holds {GPUS} copies"):
        npf.torch.benchmark(
            cuda_index, [torch.randn(1, 3, 8, 8)], batch_sizes=[1], n_models=GPUS + 1, **QUICK
        )


@needs_gpu
def test_fp16_artifact_runs_in_half(cuda_index: str, tmp_path: Path) -> None:
    config = npf.model_index.load(cuda_index)["model_configs"][1]
    assert config["cast_mode"] == "fp16" and config["dtype"] == "float16"
    out = npf.torch.load(config["filename"])(torch.randn(1, 3, 8, 8))
    assert out.dtype is torch.float32  # fp16 inside, fp32 in and out


@needs_two_gpus
def test_factory_ops_follow_a_program_to_another_gpu(tmp_path: Path) -> None:
    """Point 7 on hardware: compiled on cuda:0, run on cuda:1 (npf.torch.load's device_id and
    the threads runner's copy 1)."""
    x, model = torch.randn(2, 6), PositionModel()
    index = npf.torch.compile(
        model, [x], device_type="cuda", models_dir=tmp_path, filename=tmp_path / "p"
    )
    filename = npf.model_index.load(index)["model_configs"][0]["filename"]
    out = npf.torch.load(filename, device_id=1)(x)
    with torch.no_grad():
        torch.testing.assert_close(out, model(x))
    (report,) = npf.torch.benchmark(
        index, [x], n_models=[2], workers_per_model=[1], multiprocess=False, **QUICK
    )
    assert report["status"] == "finished", report["error"]


@needs_gpu
def test_each_worker_waits_for_its_own_stream(cuda_index: str) -> None:
    """Point 8 on hardware: two worker threads of one copy run on two streams of their own,
    never the default stream."""
    model = npf.torch.load(npf.model_index.load(cuda_index)["model_configs"][0]["filename"])
    inner, seen = model.model, []

    def recording(*args: Any) -> Any:
        seen.append((threading.get_ident(), torch.cuda.current_stream().cuda_stream))
        return inner(*args)

    model.model = recording
    threads = [threading.Thread(target=model, args=(torch.randn(1, 3, 8, 8),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    streams = {stream for _, stream in seen}
    assert len(seen) == 2 and len(streams) == 2
    assert torch.cuda.default_stream().cuda_stream not in streams


@needs_gpu
def test_transfer_policy_on_the_gpu(cuda_index: str) -> None:
    """Point 9 and 12 on hardware: end to end hands CPU tensors to postprocess_fn, as on CPU
    and Neuron; device leaves them on the GPU, and says so in the report."""
    seen: list[str] = []

    def postprocess(output: torch.Tensor) -> torch.Tensor:
        seen.append(output.device.type)
        return output

    for transfer, device in (("end_to_end", "cpu"), ("device", "cuda")):
        seen.clear()
        (report,) = npf.torch.benchmark(
            cuda_index, [torch.randn(1, 3, 8, 8)], batch_sizes=[1], cast_modes=["fp32"],
            n_models=1, workers_per_model=1, multiprocess=False, postprocess_fn=postprocess,
            transfer=transfer, max_infers=5, **QUICK,
        )  # fmt: skip
        assert report["status"] == "finished", report["error"]
        assert report["transfer"] == transfer and set(seen) == {device}


@needs_two_gpus
def test_a_copy_that_lands_on_the_wrong_gpu_fails_clearly(cuda_index: str) -> None:
    """Point 10 on hardware: a CUDA tensor in the job starts CUDA in each copy's process while
    it is unpickled, before CUDA_VISIBLE_DEVICES is set: copy 1 would run on GPU 0."""
    (report,) = npf.torch.benchmark(
        cuda_index, [torch.randn(1, 3, 8, 8).cuda()], batch_sizes=[1], cast_modes=["fp32"],
        n_models=2, workers_per_model=1, **QUICK,
    )  # fmt: skip
    assert report["status"] == "error"
    assert "model copy 1 was given GPU" in report["error"]
    assert "CUDA_VISIBLE_DEVICES" in report["error"]


@needs_gpu
def test_bf16_where_the_gpu_has_it(tmp_path: Path) -> None:
    """Point 11 on hardware: compute capability 8.0 and newer compile bf16; older GPUs refuse."""
    run = lambda: npf.torch.compile(  # noqa: E731
        make_model(), [torch.randn(1, 3, 8, 8)], cast_modes=["bf16"], device_type="cuda",
        models_dir=tmp_path, filename=tmp_path / "bf16",
    )  # fmt: skip
    if torch.cuda.get_device_capability() >= (8, 0):
        assert npf.model_index.load(run())["model_configs"][0]["status"] == "finished"
    else:
        with pytest.raises(TorchArgumentError, match="only emulate it"):
            run()


# -- here, with CPU stand-ins ------------------------------------------------------------------


def test_a_program_moved_to_another_device_makes_its_factory_ops_there(tmp_path: Path) -> None:
    """Point 7: move_to_device_pass rewrote the nodes, not graph_module's code, so arange still
    made its tensor on the device the program was exported on. The meta device stands in for
    a second GPU: a meta input met a CPU arange."""
    x = torch.randn(2, 6)
    index = npf.torch.compile(
        PositionModel(), [x], device_type="cpu", models_dir=tmp_path, filename=tmp_path / "p"
    )
    filename = npf.model_index.load(index)["model_configs"][0]["filename"]
    run = export.load(filename, "meta")
    out = run(torch.empty(2, 6, device="meta"))
    assert out.device.type == "meta" and tuple(out.shape) == (2, 6)


class StandInStreams:
    """A stand-in for torch.cuda's streams (no GPU here): records which stream each thread's
    calls ran on and which streams were waited for; a device-wide synchronize fails."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.local = threading.local()
        self.waited: list[int] = []
        self.created: list[int] = []
        outer = self

        class Stream:
            def __init__(self, device: Any = None) -> None:
                self.id = len(outer.created) + 1
                outer.created.append(self.id)

            def synchronize(self) -> None:
                outer.waited.append(self.id)

        def stream(chosen: Stream) -> Iterator[None]:
            previous = getattr(outer.local, "current", 0)
            outer.local.current = chosen.id
            try:
                yield
            finally:
                outer.local.current = previous

        def set_stream(chosen: Stream) -> None:
            outer.local.current = chosen.id

        def synchronize(device: Any = None) -> None:
            raise AssertionError("waited for the whole device, every worker's kernels")

        import contextlib

        monkeypatch.setattr(torch.cuda, "Stream", Stream)
        monkeypatch.setattr(torch.cuda, "stream", contextlib.contextmanager(stream))
        monkeypatch.setattr(torch.cuda, "set_stream", set_stream)
        monkeypatch.setattr(torch.cuda, "synchronize", synchronize)

    def current(self) -> int:
        return int(getattr(self.local, "current", 0))


def test_each_worker_runs_and_waits_on_a_stream_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Point 8: two workers of a copy shared the default stream and each waited for the whole
    device, so each one's latency held the other's kernels (p50 about doubled at
    workers_per_model=2)."""
    streams = StandInStreams(monkeypatch)
    calls: list[tuple[int, int]] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        calls.append((threading.get_ident(), streams.current()))
        return x + 1

    copy = CudaModel(model, "cpu")  # the CPU stands in for the GPU's memory
    barrier = threading.Barrier(2)
    after: list[tuple[int, int]] = []

    def worker() -> None:
        copy.neuronperf_worker_setup()  # as the engine does, before the window
        barrier.wait()
        for _ in range(3):
            copy(torch.ones(2))
            after.append((threading.get_ident(), streams.current()))  # the user's functions

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_thread: dict[int, set[int]] = {}
    for thread_id, stream in calls:
        by_thread.setdefault(thread_id, set()).add(stream)
    assert len(calls) == 6 and all(len(s) == 1 for s in by_thread.values())
    used = [next(iter(s)) for s in by_thread.values()]
    assert len(set(used)) == 2 and 0 not in used  # not the default stream
    assert sorted(streams.waited) == sorted(used * 3)  # each call waited for its own
    assert sorted(after) == sorted(calls)  # and the thread's own work stays on it


def test_the_transfer_policy_is_recorded_in_every_report(cpu_index: Any) -> None:  # type: ignore[no-untyped-def]
    """Point 9: one documented policy, said in each report; device-only is an option, and
    evaluation (a new batch from the host at every call) is always end to end."""
    for transfer in ("end_to_end", "device"):
        (report,) = npf.torch.benchmark(
            cpu_index.index, [cpu_index.x1], batch_sizes=[1], n_models=1, workers_per_model=1,
            multiprocess=False, transfer=transfer, max_infers=5, **QUICK,
        )  # fmt: skip
        assert report["status"] == "finished" and report["transfer"] == transfer
    with pytest.raises(TorchArgumentError, match=r"transfer='device'.*evaluation"):
        npf.torch.evaluate(cpu_index.index, Records(4), batch_sizes=[1], transfer="device")


def test_device_only_keeps_a_repeated_input_and_the_output_where_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Point 9: with transfer='device' a repeated input is moved once per worker; end to end
    moves it at every call."""
    StandInStreams(monkeypatch)
    seen: list[torch.Tensor] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(x)
        return x

    x = torch.ones(2)
    monkeypatch.setattr(torch.Tensor, "to", lambda t, *a, **k: t.clone())  # a copy per move
    for transfer, distinct in (("device", 1), ("end_to_end", 3)):
        seen.clear()
        copy = CudaModel(model, "cpu", transfer)
        for _ in range(3):
            copy(x)
        assert len({id(t) for t in seen}) == distinct, transfer


def test_a_copy_on_another_gpu_than_it_was_given_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point 10: CUDA_VISIBLE_DEVICES does nothing once CUDA started in the copy's process; the
    copy checks the UUID of the GPU it runs on (a stand-in for the device properties here)."""
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda device: SimpleNamespace(uuid="GPU-aaaa")
    )
    devices.check_copy_gpu(0, "cuda:0", "0", "GPU-aaaa")
    with pytest.raises(
        DeviceUnavailableError,
        match=r"model copy 1 was given GPU 1 \(UUID GPU-bbbb\) but runs on GPU UUID GPU-aaaa",
    ):
        devices.check_copy_gpu(1, "cuda:0", "1", "GPU-bbbb")


@pytest.fixture
def emulating_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in Tesla T4 (compute capability 7.5): torch's is_bf16_supported() says yes,
    counting emulation; without emulation, no."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation
    )
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")


def test_bf16_is_refused_on_a_gpu_that_only_emulates_it(
    emulating_gpu: None, cpu_index: Any, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Point 11: refused before anything compiles or loads, as other casts the device cannot
    run are."""
    with pytest.raises(TorchArgumentError, match=r"'bf16' on Tesla T4 \(compute capability 7.5"):
        npf.torch.compile(
            make_model(), [torch.randn(1, 3, 8, 8)], cast_modes=["fp16", "bf16"],
            device_type="cuda", models_dir=tmp_path, filename=tmp_path / "x",
        )  # fmt: skip
    assert not list(tmp_path.iterdir())  # nothing compiled
    config = npf.model_index.load(cpu_index.index)["model_configs"][0]
    bf16 = npf.model_index.create(
        config["filename"], batch_size=1, cast_mode="bf16", model_name="m", device_type="cuda"
    )
    path = npf.model_index.save(bf16, tmp_path / "bf16.json")
    with pytest.raises(TorchArgumentError, match="only emulate it"):
        npf.torch.benchmark(path, cpu_index.x1, **QUICK)

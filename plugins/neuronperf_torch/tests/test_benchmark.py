"""npf.torch.benchmark on CPU, end to end, and the checks made before any model loads."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from neuronperf_torch import devices
from neuronperf_torch.errors import DeviceUnavailableError, InputShapeError, TorchArgumentError
from npt_helpers import Records, RecordSetup, read_lines

import neuronperf as npf
from neuronperf_core import devices as machine
from neuronperf_core.benchmarking.plan import BenchmarkArgumentError
from neuronperf_core.options import OptionError

QUICK = {"duration": 0.2, "results_dir": None, "verbosity": 0, "stats_interval": 0}


def test_index_with_two_batch_sizes_in_threads(cpu_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = str(tmp_path / "setup.jsonl")
    reports = npf.torch.benchmark(
        cpu_index.index,
        [cpu_index.x1, cpu_index.x4],
        n_models=[1, 2],
        workers_per_model=[1, 2],
        multiprocess=False,
        setup_fn=RecordSetup(log),
        **QUICK,
    )
    assert [(r["batch_size"], r["workers_per_model"], r["n_models"]) for r in reports] == [
        (b, w, n) for b in (1, 4) for w in (1, 2) for n in (1, 2)
    ]
    for report in reports:
        assert report["status"] == "finished", report["error"]
        assert report["device_type"] == "cpu" and report["runner"] == "threads"
        assert report["copy_malloc"] == "the calling process's"
        assert report["total_infs"] > 0 and report["latency_ms_p50"] > 0
        assert report["throughput_avg"] == pytest.approx(
            report["total_infs"] * report["batch_size"] / report["total_s"]
        )
    cores = machine.cpu_cores()
    for record in read_lines(log):  # each worker's share of the cores, never oversubscribed
        share = cores // (record["n_models"] * record["workers"])
        assert record["threads"] == max(1, min(cores - 1, share))  # one core left to others


@pytest.mark.parametrize("multiprocess", [False, True])
def test_intra_op_threads_are_what_each_worker_gets_and_every_report_records(
    cpu_index, tmp_path: Path, multiprocess: bool
) -> None:  # type: ignore[no-untyped-def]
    log = str(tmp_path / "setup.jsonl")
    given, default = npf.torch.benchmark(
        cpu_index.index, cpu_index.x1, batch_sizes=1, n_models=1, workers_per_model=1,
        setup_fn=RecordSetup(log), max_infers=20, multiprocess=multiprocess,
        intra_op_threads=3, **QUICK,
    ) + npf.torch.benchmark(
        cpu_index.index, cpu_index.x1, batch_sizes=1, n_models=1, workers_per_model=1,
        max_infers=20, multiprocess=multiprocess, **QUICK,
    )  # fmt: skip
    assert [r["threads"] for r in read_lines(log)] == [3]  # asked for more than this machine has
    assert given["intra_op_threads"] == 3 and "index_intra_op_threads" not in given
    assert default["intra_op_threads"] == devices.threads_per_worker(machine.cpu_cores(), 1, 1)


@pytest.mark.parametrize(
    ("cores", "n_models", "workers", "threads"),
    [(1, 1, 1, 1), (2, 1, 1, 1), (2, 2, 1, 1), (8, 1, 1, 7), (8, 2, 1, 4), (8, 3, 2, 1)],
)
def test_no_lone_worker_gets_a_team_of_every_core(
    cores: int, n_models: int, workers: int, threads: int
) -> None:
    # such a team collapses when another process takes a core (bench/busy_machine.py)
    assert devices.threads_per_worker(cores, n_models, workers) == threads


def test_each_copy_in_its_own_interpreter_gets_its_share_of_cores(
    cpu_index, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    log = str(tmp_path / "setup.jsonl")
    (report,) = npf.torch.benchmark(
        cpu_index.index,
        cpu_index.x4,
        batch_sizes=4,
        n_models=2,
        workers_per_model=1,
        setup_fn=RecordSetup(log),
        max_infers=50,
        **QUICK,
    )
    assert report["status"] == "finished", report["error"]
    assert report["multiinterpreter"] is True and report["total_infs"] == 50
    assert report["copy_malloc"] == devices.STEADY_MALLOC  # named, so a user can reproduce it
    records = read_lines(log)
    assert sorted(r["copy_id"] for r in records) == [0, 1]
    assert len({r["pid"] for r in records} | {os.getpid()}) == 3
    assert {r["threads"] for r in records} == {max(1, machine.cpu_cores() // 2)}


def test_inputs_are_matched_by_batch_size_when_filtering(cpu_index) -> None:  # type: ignore[no-untyped-def]
    (report,) = npf.torch.benchmark(
        cpu_index.index,
        [cpu_index.x4],
        batch_sizes=[4],
        n_models=1,
        workers_per_model=1,
        multiprocess=False,
        **QUICK,
    )
    assert report["batch_size"] == 4 and report["status"] == "finished"


def test_one_model_file_reads_its_batch_size_from_the_artifact(cpu_index) -> None:  # type: ignore[no-untyped-def]
    path = npf.model_index.load(cpu_index.index)["model_configs"][1]["filename"]
    (report,) = npf.torch.benchmark(
        path, cpu_index.x4, n_models=1, workers_per_model=1, multiprocess=False, **QUICK
    )
    assert report["status"] == "finished"
    assert (report["batch_size"], report["cast_mode"], report["device_type"]) == (4, "fp32", "cpu")


def test_a_dataset_as_inputs_gives_its_first_batch_of_each_size(cpu_index) -> None:  # type: ignore[no-untyped-def]
    reports = npf.torch.benchmark(
        cpu_index.index,
        Records(10),
        eval_target_col=1,  # the label column is not a model input
        n_models=1,
        workers_per_model=1,
        multiprocess=False,
        **QUICK,
    )
    assert [(r["batch_size"], r["status"]) for r in reports] == [(1, "finished"), (4, "finished")]


def test_postprocess_and_reports_written(cpu_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reports = npf.torch.benchmark(
        cpu_index.index,
        [cpu_index.x1, cpu_index.x4],
        n_models=1,
        workers_per_model=1,
        multiprocess=False,
        postprocess_fn=torch.argmax,
        duration=0.2,
        results_dir=tmp_path,
        verbosity=0,
    )
    assert all(r["status"] == "finished" and r["postprocess_avg_ms"] is not None for r in reports)
    (written,) = list(tmp_path.glob("SmallCNN.results-*.json"))
    assert len(json.loads(written.read_text())) == 2


# -- checked before loading -------------------------------------------------------------


def test_an_input_of_the_wrong_batch_size_is_refused_before_loading(cpu_index) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputShapeError) as caught:
        npf.torch.benchmark(cpu_index.index, [cpu_index.x4, cpu_index.x1], **QUICK)
    message = str(caught.value)
    assert "tensor 0 has shape [4, 3, 8, 8], but the model (batch size 1" in message
    assert "compiled for shape [1, 3, 8, 8]" in message
    assert "one input per compiled batch size" in message


def test_wrong_image_size_and_dtype_are_refused(cpu_index) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputShapeError, match="compiled for shape \\[4, 3, 8, 8\\]"):
        npf.torch.benchmark(cpu_index.index, torch.ones(4, 3, 9, 9), batch_sizes=4, **QUICK)
    with pytest.raises(InputShapeError, match=r"has dtype float64, but .* takes float32"):
        npf.torch.benchmark(cpu_index.index, cpu_index.x4.double(), batch_sizes=4, **QUICK)
    with pytest.raises(InputShapeError, match=r"has 2 tensors, but .* compiled for 1"):
        npf.torch.benchmark(cpu_index.index, (cpu_index.x4, cpu_index.x4), batch_sizes=4, **QUICK)


def test_single_file_without_metadata_checks_the_batch_dimension(tmp_path: Path) -> None:
    program = torch.export.export(torch.nn.ReLU(), (torch.ones(3, 2),))
    torch.export.save(program, str(tmp_path / "plain.pt2"))
    with pytest.raises(InputShapeError, match="batch dimension 3, but the model was compiled"):
        npf.torch.benchmark(tmp_path / "plain.pt2", torch.ones(3, 2), device_type="cpu", **QUICK)
    (report,) = npf.torch.benchmark(
        tmp_path / "plain.pt2",
        torch.ones(3, 2),
        batch_sizes=[3],
        device_type="cpu",
        n_models=1,
        workers_per_model=1,
        multiprocess=False,
        **QUICK,
    )
    assert report["status"] == "finished" and report["batch_size"] == 3


def test_device_mismatch_and_device_errors(cpu_index) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TorchArgumentError, match="compiled for cpu: pass device_type='cpu'"):
        npf.torch.benchmark(cpu_index.index, [cpu_index.x1, cpu_index.x4], device_type="neuron")
    cores = machine.cpu_cores()
    with pytest.raises(BenchmarkArgumentError, match=f"holds {cores} copies.*n_models={cores} or"):
        npf.torch.benchmark(
            cpu_index.index, [cpu_index.x1, cpu_index.x4], n_models=cores + 1, **QUICK
        )
    with pytest.raises(OptionError, match=r"runner='processes' forks.*OpenMP"):
        npf.torch.benchmark(
            cpu_index.index, [cpu_index.x1, cpu_index.x4], runner="processes", **QUICK
        )
    with pytest.raises(BenchmarkArgumentError, match="does not exist"):
        npf.torch.benchmark("missing.pt2", cpu_index.x1, **QUICK)
    with pytest.raises(TorchArgumentError, match="dataloader_kwargs apply when the data is"):
        npf.torch.benchmark(
            cpu_index.index, [cpu_index.x1, cpu_index.x4], dataloader_kwargs={"num_workers": 1}
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_before_loading(cpu_index) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TorchArgumentError, match="compiled for cpu"):
        npf.torch.benchmark(cpu_index.index, cpu_index.x1, batch_sizes=1, device_type="gpu")
    with pytest.raises(DeviceUnavailableError, match="torch sees no CUDA GPU"):
        devices.cuda_devices()


def test_the_loading_thread_runs_single_threaded_and_workers_get_their_share() -> None:
    """libgomp slows every OpenMP team once two threads of a process have one: the engine's
    warm-up (in the loading thread) must not start one. See loading.CpuModel."""
    import threading

    from neuronperf_torch.loading import CpuModel

    seen: list[tuple[int, bool]] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append((torch.get_num_threads(), torch.is_inference_mode_enabled()))
        return x

    torch.set_num_threads(2)
    wrapped = CpuModel(model)
    wrapped(torch.ones(1))
    worker = threading.Thread(target=wrapped, args=(torch.ones(1),))
    worker.start()
    worker.join()
    assert seen == [(1, True), (2, True)]
    assert torch.get_num_threads() == 2  # restored in the loading thread


OPENMP_TEAM = """
import os, sys, threading, torch
from neuronperf_torch.loading import InferenceModel, Loader
from neuronperf_torch import export

share, wrapper, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
torch.set_num_threads(share)  # the copy's share, as CopySetup sets it before loading
if wrapper == "engine":
    model = Loader("cpu", "interpreters")(path)  # what the engine's workers call
else:
    model = InferenceModel(export.load(path, "cpu"))
tasks = lambda: len(os.listdir("/proc/self/task"))
x = torch.randn(64, 256)
before = tasks()
seen = []
def work():
    getattr(model, "neuronperf_worker_setup", lambda: None)()  # as the engine's workers do
    model(x)
    seen.append(tasks())  # while this worker (and any OpenMP team it started) lives
worker = threading.Thread(target=work)
worker.start()
worker.join()
print(seen[0] - before)  # the worker itself, and its OpenMP threads
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or machine.cpu_cores() < 2, reason="/proc, 2 cores"
)
def test_a_worker_thread_runs_on_its_copys_share_of_openmp_threads(tmp_path: Path) -> None:
    """OpenMP's thread count is per thread: a worker thread started with a team of every core
    (two copies of one worker spin-waited against each other) until CpuModel set its share."""
    import subprocess

    index = npf.torch.compile(
        torch.nn.Linear(256, 256), [torch.randn(64, 256)], device_type="cpu",
        models_dir=tmp_path, filename=tmp_path / "linear.json",
    )  # fmt: skip
    (config,) = npf.model_index.load(index)["model_configs"]

    def threads_in_worker(share: int, wrapper: str) -> int:
        result = subprocess.run(
            [sys.executable, "-c", OPENMP_TEAM, str(share), wrapper, config["filename"]],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        return int(result.stdout)

    assert threads_in_worker(1, "engine") == 1  # the worker alone: a team of one is no team
    assert threads_in_worker(2, "engine") == 2  # the worker and one OpenMP thread
    assert threads_in_worker(1, "plain") > 1  # what it guards against, on this machine


FAULTS_PER_STEP = """
import ctypes, resource
from neuronperf_torch.devices import steady_malloc
assert steady_malloc()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 20 << 20
def faults(fn):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
def step():  # an inference's temporaries: two 20 MiB blocks alive at once, written, freed
    a, b = libc.malloc(SIZE), libc.malloc(SIZE)
    ctypes.memset(a, 1, SIZE)
    ctypes.memset(b, 1, SIZE)
    libc.free(b)
    libc.free(a)
print(*[faults(step) for _ in range(8)])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_copy_in_its_own_process_reuses_freed_memory() -> None:
    """steady_malloc: once warm, a step that allocates and frees the same memory faults no
    fresh pages in. With glibc's defaults each step here faults ~10,000 4-KiB pages (the
    blocks mmapped and unmapped again, or the heap trimmed), as an inference's tensors did.
    malloc directly, not torch: what is tested is the allocator setting, on its own."""
    import platform
    import subprocess

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_STEP], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    faults = [int(f) for f in result.stdout.split()]
    assert max(faults[-3:]) < 100, faults


def test_copies_as_threads_leave_the_callers_thread_count_alone(cpu_index) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(2)
    npf.torch.benchmark(
        cpu_index.index, cpu_index.x1, batch_sizes=1, duration=0.1, n_models=2,
        workers_per_model=1, multiprocess=False, results_dir=None, verbosity=0,
    )  # fmt: skip
    assert torch.get_num_threads() == 2  # CopySetup gave each of the 2 copies 1 thread

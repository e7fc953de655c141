"""TorchScript files (torch.jit.save), as NeuronPerf 1.x scripts pass them: benchmarked and
evaluated on CPU by path, through a model index and from the command line; refused with a
clear message where they cannot run (no device recorded, Neuron operators on the CPU) or
where their code names an operator that touches files.

``torch.jit.trace`` stands in for ``torch_neuronx.trace`` on the CPU; the test double of
torch_neuronx (tests/torch_neuronx_double.py) traces models that call a Neuron operator."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from neuronperf_torch import datafiles, devices, export
from neuronperf_torch.errors import (
    DeviceUnavailableError,
    InputShapeError,
    TorchArgumentError,
    UnsafeArtifactError,
)
from neuronperf_torch.loading import Loader
from npt_helpers import Records, make_data, make_model

import neuronperf as npf

THREADS = {
    "n_models": 1,
    "workers_per_model": 1,
    "multiprocess": False,
    "results_dir": None,
    "verbosity": 0,
    "stats_interval": 0,
}
X1, X4 = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 8, 8)


def trace(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated; still what 1.x files are
        torch.jit.trace(model, example).save(str(path))  # type: ignore[no-untyped-call]
    return path


@pytest.fixture
def traced(tmp_path: Path) -> tuple[Path, Path]:
    """The small CNN traced at batch sizes 1 and 4, as a 1.x script saves its models."""
    model = make_model()
    return trace(model, X1, tmp_path / "model_b1.pt"), trace(model, X4, tmp_path / "model_b4.pt")


# -- running them ---------------------------------------------------------------------------

SCRIPT_1X = """
    import torch
    import neuronperf as npf
    import neuronperf.torch


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


    if __name__ == "__main__":
        model = Net().eval()
        x1, x4 = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 8, 8)
        torch.jit.trace(model, x1).save("model_b1.pt")
        torch.jit.trace(model, x4).save("model_b4.pt")
        # n_models: 1 and 2 copies (the default sweeps up to one copy per core)
        reports = npf.torch.benchmark("model_b1.pt", [x1], batch_sizes=[1], device_type="cpu",
                                      duration=1, n_models=[1, 2])
        npf.print_reports(reports)
        print("statuses", [r["status"] for r in reports])
        print("batch sizes", sorted({r["batch_size"] for r in reports}))
"""


def test_a_1x_script_benchmarks_a_traced_file_on_the_cpu(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT_1X))
    result = subprocess.run(
        [sys.executable, "script.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        # not the C environment, where pytest's readline put COLUMNS=80; and no COLUMNS at
        # all: the table into a pipe keeps its natural width, the file name whole
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "statuses ['finished', 'finished', 'finished', 'finished']" in lines, result.stdout
    assert "batch sizes [1]" in lines
    assert sum(line.startswith("---") for line in lines) == 1, result.stdout  # one table
    assert "model_b1.pt" in result.stdout


def hand_accuracy(n: int) -> float:
    x, y = make_data(n)
    with torch.inference_mode():
        return float((make_model()(x).argmax(1) == y).float().mean())


def test_a_model_index_of_traced_files_benchmarks_and_evaluates(
    traced: tuple[Path, Path], tmp_path: Path
) -> None:
    b1, b4 = traced
    index = npf.model_index.append(
        npf.model_index.create(str(b1), input_idx=0, batch_size=1, model_name="cnn"),
        npf.model_index.create(str(b4), input_idx=1, batch_size=4, model_name="cnn"),
    )
    filename = npf.model_index.save(index, tmp_path / "cnn.json")
    assert npf.torch.backend.owns(filename) and npf.torch.backend.owns(b1)
    reports = npf.torch.benchmark(filename, [X1, X4], device_type="cpu", duration=0.2, **THREADS)
    assert [(r["status"], r["batch_size"]) for r in reports] == [("finished", 1), ("finished", 4)]
    assert all(r["throughput_avg"] > 0 for r in reports)

    n = 23  # at batch size 4: 5 full batches and 3 records, padded
    reports = npf.torch.evaluate(
        filename, Records(n), metrics=["accuracy"], device_type="cpu", **THREADS
    )
    by_batch = {r["batch_size"]: r for r in reports}
    assert [r["status"] for r in reports] == ["finished", "finished"], reports
    assert by_batch[1]["total_infs"] == n and by_batch[4]["total_infs"] == 6
    for report in reports:  # every record scored, by the traced model
        assert report["accuracy"] == pytest.approx(hand_accuracy(n))


def test_by_path_the_batch_size_comes_from_batch_sizes(traced: tuple[Path, Path]) -> None:
    _, b4 = traced
    with pytest.raises(InputShapeError, match=r"records no batch size.*batch_sizes=\[4\]"):
        npf.torch.benchmark(b4, X4, device_type="cpu", duration=0.2, **THREADS)
    (report,) = npf.torch.benchmark(
        b4, X4, batch_sizes=[4], device_type="cpu", duration=0.2, **THREADS
    )
    assert report["status"] == "finished" and report["batch_size"] == 4


def test_npf_torch_load_runs_a_traced_file_on_the_cpu(traced: tuple[Path, Path]) -> None:
    b1, _ = traced
    model = npf.torch.load(b1, device_type="cpu")
    torch.testing.assert_close(model(X1), make_model()(X1))
    copy = Loader(devices.CPU, "threads")(str(b1))  # what a benchmark copy gets
    assert type(copy).__name__ == "CpuModel"
    torch.testing.assert_close(copy(X1), make_model()(X1))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_traced_file_runs_on_cuda(traced: tuple[Path, Path]) -> None:
    b1, _ = traced
    copy = Loader(devices.CUDA, "threads")(str(b1))
    assert type(copy).__name__ == "CudaModel"
    torch.testing.assert_close(copy(X1).cpu(), make_model()(X1))
    (report,) = npf.torch.benchmark(
        b1, X1, batch_sizes=[1], device_type="cuda", duration=0.2, **THREADS
    )
    assert report["status"] == "finished", report.get("error")


# -- the device ---------------------------------------------------------------------------


def test_without_device_type_a_plain_traced_file_is_refused_naming_cpu(
    traced: tuple[Path, Path],
) -> None:
    """It records no device and calls no Neuron operator: no silent CPU run under Neuron's
    name, no torch-neuronx error either."""
    b1, _ = traced
    message = r"model_b1\.pt is a TorchScript file.*calls no Neuron operators.*device_type='cpu'"
    with pytest.raises(TorchArgumentError, match=message):
        npf.torch.benchmark(b1, X1, batch_sizes=[1], duration=0.2, **THREADS)
    with pytest.raises(TorchArgumentError, match=message):
        npf.torch.load(b1)


def neuron_traced(path: Path) -> Path:
    """A model traced with the torch_neuronx test double: its code calls neuron_double::*."""
    import torch_neuronx

    assert torch_neuronx.IS_TEST_DOUBLE
    traced = torch_neuronx.trace(make_model(), X1, compiler_args=["--target", "inf2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(traced, str(path))
    return path


def test_a_file_traced_with_neuron_operators_is_refused_on_the_cpu(
    neuronx_double: Any, tmp_path: Path
) -> None:
    path = neuron_traced(tmp_path / "model_neuron_b1.pt")
    message = (
        r"traced with torch-neuronx: it calls neuron_double::load, neuron_double::run"
        r".*device_type='cpu'"
    )
    with pytest.raises(TorchArgumentError, match=message):
        npf.torch.benchmark(path, X1, batch_sizes=[1], device_type="cpu", **THREADS)
    with pytest.raises(TorchArgumentError, match=message):
        npf.torch.load(path, device_type="cpu")
    with pytest.raises(TorchArgumentError, match=message):
        Loader(devices.CPU, "threads")(str(path))  # a copy, however it was reached
    with pytest.raises(TorchArgumentError, match=r"neuron_double::run.*device_type='cuda'"):
        npf.torch.benchmark(path, X1, batch_sizes=[1], device_type="cuda", **THREADS)


def test_a_file_traced_with_neuron_operators_runs_on_neuron_by_default(
    neuronx_double: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = neuron_traced(tmp_path / "model_neuron_b1.pt")
    (report,) = npf.torch.benchmark(path, X1, batch_sizes=[1], duration=0.2, **THREADS)
    assert report["status"] == "finished", report["error"]
    assert neuronx_double.records("neuron_cores_context")  # loaded the Neuron way
    monkeypatch.setattr(devices, "neuron_installed", lambda: False)
    with pytest.raises(DeviceUnavailableError, match=r"traced with torch-neuronx.*not here"):
        npf.torch.benchmark(path, X1, batch_sizes=[1], duration=0.2, **THREADS)


def test_the_cli_benchmarks_a_traced_file(traced: tuple[Path, Path], tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "neuronperf", "benchmark", "model_b1.pt", "--batch-sizes",
             "1", "--input-shape", "1x3x8x8", "--duration", "0.2", "--n-models", "1",
             "--workers-per-model", "1", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env={**os.environ, "NEURONPERF_CACHE_DIR": str(tmp_path / "cache")},
        )  # fmt: skip

    result = cli("--device", "cpu", "--json")
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)["reports"]
    assert report["status"] == "finished" and report["batch_size"] == 1
    refused = cli()
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "--device cpu" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_compile_from_a_traced_file_says_to_benchmark_it(traced: tuple[Path, Path]) -> None:
    b1, _ = traced
    with pytest.raises(TorchArgumentError, match="TorchScript model, traced already"):
        datafiles.read_model(b1)


# -- what loading one runs ------------------------------------------------------------------


class Touch:
    """Unpickled by Python, it would call open(marker, "w")."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (self.marker, "w"))


def test_a_python_pickle_in_a_torchscript_file_runs_nothing(
    traced: tuple[Path, Path], tmp_path: Path
) -> None:
    """torch.jit.load reads data.pkl with torch's C++ unpickler: a Python global (here
    builtins.open) is looked up as a TorchScript class of the archive, and loading fails."""
    b1, _ = traced
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(b1) as source, zipfile.ZipFile(evil, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/data.pkl"):
                data = pickle.dumps(Touch(marker), protocol=2)
            target.writestr(info.filename, data)
    with pytest.raises(TorchArgumentError, match=r"cannot load .*evil\.pt as TorchScript"):
        npf.torch.load(evil, device_type="cpu")
    with warnings.catch_warnings(), pytest.raises(RuntimeError):
        warnings.simplefilter("ignore")
        torch.jit.load(str(evil))  # type: ignore[no-untyped-call]
    assert not marker.exists()


class WritesOnLoad(torch.nn.Module):
    """Its TorchScript __setstate__ runs inside torch.jit.load and writes a file."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.weight = torch.ones(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, str, bool]:
        return (self.weight, self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, str, bool]) -> None:
        self.weight = state[0]
        self.marker = state[1]
        self.training = state[2]
        torch.save("written while loading", self.marker)


class ReadsFiles(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.from_file("/etc/hostname", size=1, dtype=torch.uint8)


def scripted(module: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(module).save(str(path))  # type: ignore[no-untyped-call]
    return path


def test_torchscript_code_that_writes_files_on_load_is_refused(tmp_path: Path) -> None:
    """The doubt export.py notes: TorchScript runs at load (__setstate__) and may call
    aten::save. Shown live with torch.jit.load, refused by neuronperf before it loads."""
    marker = tmp_path / "marker"
    path = scripted(WritesOnLoad(str(marker)), tmp_path / "writes.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(str(path))  # type: ignore[no-untyped-call]
    assert marker.exists()  # torch.jit.load alone ran the file's code
    marker.unlink()
    with pytest.raises(UnsafeArtifactError, match=r"names 'save', an operator that reads or"):
        npf.torch.load(path, device_type="cpu")
    (report,) = npf.torch.benchmark(
        path, torch.ones(2), batch_sizes=[2], device_type="cpu", duration=0.2, **THREADS
    )
    assert report["status"] == "error" and "UnsafeArtifactError" in report["error"]
    assert not marker.exists()
    reads = scripted(ReadsFiles(), tmp_path / "reads.pt")
    with pytest.raises(UnsafeArtifactError, match="names 'from_file'"):
        npf.torch.load(reads, device_type="cpu")


def test_only_plain_torchscript_zips_reach_torch_jit_load(
    traced: tuple[Path, Path], tmp_path: Path
) -> None:
    b1, _ = traced
    with zipfile.ZipFile(b1) as source:
        entries = [(i.filename, source.read(i)) for i in source.infolist()]
    root = entries[0][0].split("/", 1)[0]

    def archive(name: str, extra: list[tuple[str, bytes]], prefix: bytes = b"") -> Path:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as target:
            for filename, data in entries + extra:
                target.writestr(filename, data)
        (tmp_path / name).write_bytes(prefix + buffer.getvalue())
        return tmp_path / name

    legacy = archive("legacy.pt", [(f"{root}/model.json", b"{}")])
    with pytest.raises(UnsafeArtifactError, match="legacy TorchScript format"):
        export.check_torchscript(legacy)
    prefixed = archive("prefixed.pt", [], prefix=b"\0\0\0\0PTMF")
    with pytest.raises(UnsafeArtifactError, match="does not start as a zip file"):
        export.check_torchscript(prefixed)
    outside = archive("outside.pt", [("other/data.pkl", b"")])
    with pytest.raises(UnsafeArtifactError, match="outside the archive folder"):
        export.check_torchscript(outside)
    twice = archive("twice.pt", [(f"{root}/DATA.pkl", b"")])
    with pytest.raises(UnsafeArtifactError, match="differ only in case"):
        export.check_torchscript(twice)
    shouting = archive("shouting.pt", [(f"{root}/code/__torch__/m.PY", b"x = torch.save\n")])
    with pytest.raises(UnsafeArtifactError, match="names 'save'"):  # code torch may compile
        export.check_torchscript(shouting)
    code = export.check_torchscript(b1)  # what torch.jit.save wrote passes
    assert code and all("/code/" in name and name.endswith(".py") for name in code)

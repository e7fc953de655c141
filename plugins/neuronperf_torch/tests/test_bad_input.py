"""Bad input with the torch plugin (issue 15 points 8-10, issue 16 points 1-3): a clear error
before any work, and on the command line one line and a documented exit status.

Command-line tests run the installed ``neuronperf`` script in a subprocess (not
``python -m neuronperf``, which puts the current folder on the import path by itself).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import neuronperf as npf
from neuronperf_core.errors import NeuronPerfError

NEURONPERF = shutil.which("neuronperf", path=os.path.dirname(sys.executable))
FACTORY = """
import torch


def tinycnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 10))
"""
QUICK: dict[str, Any] = {
    "duration": 0,
    "max_infers": 5,
    "n_models": 1,
    "workers_per_model": 1,
    "stats_interval": 0,
    "results_dir": None,
}


def neuronperf(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert NEURONPERF is not None, "the neuronperf script is not installed beside python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [NEURONPERF, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "mymodels.py").write_text(FACTORY)
    return tmp_path


# -- Python ----------------------------------------------------------------------------------


def test_loading_a_missing_file_says_it_is_missing_not_that_torch_neuronx_is(
    tmp_path: Path,
) -> None:
    with pytest.raises(NeuronPerfError, match=r"missing\.pt2 does not exist") as raised:
        npf.torch.load(tmp_path / "missing.pt2")
    assert "torch_neuronx" not in str(raised.value)


def test_a_model_object_is_refused_before_any_copy_loads(cpu_index: Any) -> None:
    from npt_helpers import make_model

    for model in (make_model(), type(make_model())):
        with pytest.raises(NeuronPerfError, match="compile it first"):
            npf.torch.benchmark(model, cpu_index.x1, batch_sizes=[1], device_type="cpu", **QUICK)


def test_none_as_the_model_is_refused(cpu_index: Any) -> None:
    with pytest.raises(NeuronPerfError, match="the model is None"):
        npf.torch.benchmark(None, cpu_index.x1, device_type="cpu", **QUICK)


def test_an_index_whose_model_files_are_gone_is_refused_before_any_copy_loads(
    cpu_index: Any, tmp_path: Path
) -> None:
    from neuronperf_core import model_index

    moved = model_index.copy(cpu_index.index, tmp_path / "copy.json", tmp_path / "models")
    first = model_index.load(moved)["model_configs"][0]["filename"]
    os.remove(first)
    with pytest.raises(NeuronPerfError, match="do not exist") as raised:
        npf.torch.benchmark(moved, [cpu_index.x1, cpu_index.x4], **QUICK)
    assert Path(first).name in str(raised.value)
    # the configs whose files are there still run
    (report,) = npf.torch.benchmark(moved, cpu_index.x4, batch_sizes=[4], **QUICK)
    assert report["status"] == "finished"


def test_evaluating_a_number_says_it_holds_no_rows(cpu_index: Any) -> None:
    with pytest.raises(NeuronPerfError, match="holds no rows"):
        npf.torch.evaluate(cpu_index.index, 5, results_dir=None)


def test_compile_without_torch_neuronx_says_so_first_and_how_to_compile_for_cpu() -> None:
    from npt_helpers import make_model

    with pytest.raises(NeuronPerfError) as raised:
        npf.torch.compile(make_model(), torch.randn(1, 3, 8, 8), compiler_target="inf2")
    message = str(raised.value)
    assert message.index("needs torch-neuronx") < message.index("device_type='cpu'")
    assert "compiler_target" not in message


# -- the command line ------------------------------------------------------------------------


def test_cli_compile_without_torch_neuronx_names_flags_and_leaves_no_folder(work: Path) -> None:
    for extra in ([], ["--compiler-target", "inf2"]):
        result = neuronperf(work, "compile", "mymodels:tinycnn", "--input-shape", "1x4",
                            "--out", "models", *extra)  # fmt: skip
        assert result.returncode == 2, result.stderr
        err = result.stderr
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert err.index("needs torch-neuronx") < err.index("--device cpu")
        assert "device_type" not in err and "compiler_target" not in err
        assert not (work / "models").exists()


def test_cli_compiles_a_module_of_the_current_folder(work: Path) -> None:
    result = neuronperf(work, "compile", "mymodels:tinycnn", "--input-shape", "1x4",
                        "--device", "cpu", "--out", "models", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    configs = json.loads(result.stdout)["model_index"]["model_configs"]
    assert [c["status"] for c in configs] == ["finished"]


def test_cli_evaluate_recall_on_multiclass_data_shows_the_configs_error(work: Path) -> None:
    compiled = neuronperf(work, "compile", "mymodels:tinycnn", "--input-shape", "1x4",
                          "--batch-sizes", "1,4", "--device", "cpu", "--out", "models")  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4)).astype("float32")
    np.savez(work / "val.npz", x=x, y=rng.integers(0, 10, 50))  # 10 classes
    result = neuronperf(work, "evaluate", "models/tinycnn.json", "--dataset", "val.npz",
                        "--metrics", "recall")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Unknown column" not in result.stderr and "Traceback" not in result.stderr
    assert "the data is multiclass" in result.stderr
    assert "--metrics recall:average=macro" in result.stderr
    fixed = neuronperf(work, "evaluate", "models/tinycnn.json", "--dataset", "val.npz",
                       "--metrics", "recall:average=macro", "--json")  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    reports = json.loads(fixed.stdout)["reports"]
    assert all(0 <= r["recall:average=macro"] <= 1 for r in reports)

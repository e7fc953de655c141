"""Bad input with the torch plugin (issue 15 points 8-10, issue 16 points 1-3): a clear error
before any work, and on the command line one line and a documented exit status.

Command-line tests run the installed ``neuronperf`` script in a subprocess (not
``python -m neuronperf``, which puts the current folder on the import path by itself).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import neuronperf as npf
from neuronperf_core.errors import NeuronPerfError

NEURONPERF = shutil.which("neuronperf", path=os.path.dirname(sys.executable))
FACTORY = """


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

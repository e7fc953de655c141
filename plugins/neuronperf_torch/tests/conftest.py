from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from neuronperf_core import devices as machine
from neuronperf_core import plugins

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with unloaded plugins, no run-time registrations, no Neuron settings."""
    monkeypatch.delenv(plugins.STRICT_ENV, raising=False)
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    monkeypatch.delenv("NEURON_RT_VISIBLE_CORES", raising=False)
    threads = torch.get_num_threads()
    plugins.reset()
    yield
    plugins.reset()
    torch.set_num_threads(threads)  # the threads runner sets them in this process


@dataclass
class CpuIndex:
    index: str
    x1: torch.Tensor
    x4: torch.Tensor


@pytest.fixture(scope="session")
def cpu_index(tmp_path_factory: pytest.TempPathFactory) -> CpuIndex:
    """The small CNN compiled for CPU at batch sizes 1 and 4 (fp32), once per session."""
    from npt_helpers import make_model

    import neuronperf as npf

    folder = tmp_path_factory.mktemp("cpu_index")
    x1, x4 = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 8, 8)
    index = npf.torch.compile(
        make_model(),
        [x1, x4],
        batch_sizes=[1, 4],
        device_type="cpu",
        models_dir=folder / "models",
        filename=folder / "cnn.json",
    )
    return CpuIndex(index, x1, x4)


@dataclass
class NeuronxDouble:
    log: Path

    def records(self, event: str) -> list[dict[str, object]]:
        from npt_helpers import read_lines

        return [r for r in read_lines(str(self.log)) if r["event"] == event]


@pytest.fixture
def neuronx_double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NeuronxDouble]:
    """torch_neuronx_double.py importable as ``torch_neuronx``, and a machine with 2 NeuronCores
    (a fake sysfs), for this process and the interpreters it spawns."""
    site = tmp_path / "double_site"
    site.mkdir()
    shutil.copy(HERE / "torch_neuronx_double.py", site / "torch_neuronx.py")
    sysfs = tmp_path / "neuron_device"
    (sysfs / "neuron0").mkdir(parents=True)
    (sysfs / "neuron0" / "core_count").write_text("2\n")
    monkeypatch.setattr(machine, "NEURON_SYSFS", str(sysfs))
    monkeypatch.syspath_prepend(str(site))
    log = tmp_path / "torch_neuronx_double.log"
    monkeypatch.setenv("TORCH_NEURONX_DOUBLE_LOG", str(log))
    importlib.invalidate_caches()
    sys.modules.pop("torch_neuronx", None)
    yield NeuronxDouble(log)
    sys.modules.pop("torch_neuronx", None)

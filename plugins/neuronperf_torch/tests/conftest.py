from __future__ import annotations

import importlib
import json
import os
import shutil
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from neuronperf_core import devices as machine_devices
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
    """torch_neuronx_double.py as ``torch_neuronx``, on a machine of the tests' choosing
    (``machine``): its event log, and where it keeps the machine's description."""

    log: Path
    folder: Path
    monkeypatch: pytest.MonkeyPatch

    def records(self, event: str) -> list[dict[str, object]]:
        from npt_helpers import read_lines

        return [r for r in read_lines(str(self.log)) if r["event"] == event]

    def machine(
        self,
        instance: str = "inf2.xlarge",
        devices: int = 1,
        physical_cores: int = 2,
        *,
        neuron_ls: bool = True,
        sysfs_readable: bool = False,
    ) -> None:
        """Describe the machine to the doubles (the runtime, neuron-ls), its DMI instance type
        and its sysfs. ``core_count`` is created as the driver creates it, readable by its
        owner, root, only (``S_IRUSR``); the core reads it as the usual non-root user would,
        unless ``sysfs_readable`` (a root user, or a driver that relaxed it)."""
        logical = instance.split(".")[0] in machine_devices.LNC_FAMILIES
        spec = {
            "devices": devices,
            "physical_cores": physical_cores,
            "logical": logical,
            "cores_dir": str(self.folder / "held_cores"),
        }
        description = self.folder / "machine.json"
        description.write_text(json.dumps(spec))
        self.monkeypatch.setenv("TORCH_NEURONX_DOUBLE_MACHINE", str(description))
        dmi = self.folder / "product_name"
        dmi.write_text(instance + "\n")
        self.monkeypatch.setattr(machine_devices, "INSTANCE_TYPE_FILE", str(dmi))
        sysfs = self.folder / "neuron_device"
        shutil.rmtree(sysfs, ignore_errors=True)
        for d in range(devices):
            counter = sysfs / f"neuron{d}" / "core_count"
            counter.parent.mkdir(parents=True)
            counter.write_text(f"{physical_cores}\n")
            counter.chmod(0o444 if sysfs_readable else stat.S_IRUSR)
        self.monkeypatch.setattr(machine_devices, "NEURON_SYSFS", str(sysfs))
        self.monkeypatch.setattr(machine_devices, "read_attribute", _read_as_a_user)
        bin_dir = self.folder / "bin"
        path = [p for p in os.environ["PATH"].split(os.pathsep) if p != str(bin_dir)]
        if neuron_ls:
            path.insert(0, str(bin_dir))
        self.monkeypatch.setenv("PATH", os.pathsep.join(path))


def _read_as_a_user(path: Path) -> str:
    """A sysfs attribute as a non-root user reads it: the tests may run as root, who reads
    any file whatever its mode."""
    if not path.stat().st_mode & stat.S_IROTH:
        raise PermissionError(13, "Permission denied", str(path))
    return path.read_text()


@pytest.fixture
def neuronx_double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NeuronxDouble]:
    """torch_neuronx_double.py importable as ``torch_neuronx`` and neuron_ls_double.py as
    ``neuron-ls``, on an inf2.xlarge (2 NeuronCores) unless the test calls ``machine``, for
    this process and the interpreters it spawns."""
    site = tmp_path / "double_site"
    site.mkdir()
    shutil.copy(HERE / "torch_neuronx_double.py", site / "torch_neuronx.py")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    neuron_ls = bin_dir / "neuron-ls"
    neuron_ls.write_text(f"#!{sys.executable}\n" + (HERE / "neuron_ls_double.py").read_text())
    neuron_ls.chmod(0o755)
    monkeypatch.setattr(machine_devices, "NEURON_LS_INSTALLED", str(tmp_path / "no-neuron-ls"))
    monkeypatch.delenv("NEURON_LOGICAL_NC_CONFIG", raising=False)
    monkeypatch.delenv("TORCH_NEURONX_DOUBLE_ABORT", raising=False)
    monkeypatch.syspath_prepend(str(site))
    log = tmp_path / "torch_neuronx_double.log"
    monkeypatch.setenv("TORCH_NEURONX_DOUBLE_LOG", str(log))
    double = NeuronxDouble(log, tmp_path, monkeypatch)
    double.machine()
    importlib.invalidate_caches()
    sys.modules.pop("torch_neuronx", None)
    yield double
    sys.modules.pop("torch_neuronx", None)

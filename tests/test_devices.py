"""Counting NeuronCores without reserving them (neuronperf_core.devices): neuron-ls first,
sysfs only where readable, logical cores on trn2."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from neuronperf_core import devices


def _machine(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    instance: str = "inf2.xlarge",
    sysfs_cores: list[int] | None = None,
    sysfs_mode: int = stat.S_IRUSR,
    neuron_ls_output: str | None = None,
    neuron_ls_status: int = 0,
) -> None:
    """A fake DMI instance type, sysfs (``core_count`` as the driver creates it: root-only),
    and a stand-in ``neuron-ls`` printing ``neuron_ls_output`` (none when it is None)."""
    dmi = tmp_path / "product_name"
    dmi.write_text(instance + "\n")
    monkeypatch.setattr(devices, "INSTANCE_TYPE_FILE", str(dmi))
    sysfs = tmp_path / "neuron_device"
    for d, cores in enumerate(sysfs_cores or []):
        counter = sysfs / f"neuron{d}" / "core_count"
        counter.parent.mkdir(parents=True)
        counter.write_text(f"{cores}\n")
        counter.chmod(sysfs_mode)
    monkeypatch.setattr(devices, "NEURON_SYSFS", str(sysfs))

    def as_a_user(path: Path) -> str:  # the tests may run as root, who reads any file
        if not path.stat().st_mode & stat.S_IROTH:
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    monkeypatch.setattr(devices, "read_attribute", as_a_user)
    monkeypatch.setattr(devices, "NEURON_LS_INSTALLED", str(tmp_path / "missing"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if neuron_ls_output is not None:
        script = bin_dir / "neuron-ls"
        script.write_text(
            f"#!{sys.executable}\nimport sys\n"
            f"assert sys.argv[1:] == ['--json-output'], sys.argv\n"
            f"print({neuron_ls_output!r})\nsys.exit({neuron_ls_status})\n"
        )
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv(devices.LNC_VARIABLE, raising=False)


def _devices(*counts: int) -> str:
    return json.dumps(
        [{"neuron_device": d, "nc_count": c, "neuron_processes": []} for d, c in enumerate(counts)]
    )


def test_neuron_ls_counts_where_the_driver_keeps_sysfs_for_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _machine(
        tmp_path,
        monkeypatch,
        instance="inf2.24xlarge",
        sysfs_cores=[2] * 6,
        neuron_ls_output=_devices(*[2] * 6),
    )
    assert devices.count_neuron_cores() == devices.NeuronCoreCount(12, "neuron-ls")
    assert devices.neuron_core_count() == 12


def test_root_only_sysfs_without_neuron_ls_finds_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _machine(tmp_path, monkeypatch, sysfs_cores=[2])
    assert devices.count_neuron_cores() == devices.NeuronCoreCount(0, None)


def test_readable_sysfs_is_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(tmp_path, monkeypatch, sysfs_cores=[2, 2], sysfs_mode=0o444)
    assert devices.count_neuron_cores() == devices.NeuronCoreCount(4, "sysfs")


def test_neuron_ls_printing_something_else_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _machine(tmp_path, monkeypatch, sysfs_cores=[2], sysfs_mode=0o444, neuron_ls_output="oops")
    assert devices.count_neuron_cores() == devices.NeuronCoreCount(2, "sysfs")


def test_failing_neuron_ls_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(
        tmp_path,
        monkeypatch,
        sysfs_cores=[2],
        sysfs_mode=0o444,
        neuron_ls_output=_devices(2),
        neuron_ls_status=1,
    )
    assert devices.count_neuron_cores().source == "sysfs"


def test_trn2_counts_logical_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sysfs counts 8 physical cores per trn2 device; the runtime presents LNC of them as one
    (2 by default): sysfs alone would give 128 copies on a trn2.48xlarge, 64 of them invalid."""
    _machine(
        tmp_path, monkeypatch, instance="trn2.48xlarge", sysfs_cores=[8] * 16, sysfs_mode=0o444
    )
    assert devices.logical_nc_config() == 2
    assert devices.count_neuron_cores() == devices.NeuronCoreCount(64, "sysfs")
    monkeypatch.setenv(devices.LNC_VARIABLE, "1")
    assert devices.count_neuron_cores().count == 128
    monkeypatch.setenv(devices.LNC_VARIABLE, "4")
    with pytest.raises(devices.NeuronConfigError, match="NEURON_LOGICAL_NC_CONFIG='4'"):
        devices.count_neuron_cores()


def test_lnc_applies_to_trn2_families_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for instance, lnc in (("trn2u.48xlarge", 2), ("trn2n.48xlarge", 2), ("trn1.32xlarge", None)):
        dmi = tmp_path / "product_name"
        dmi.write_text(instance)
        monkeypatch.setattr(devices, "INSTANCE_TYPE_FILE", str(dmi))
        assert devices.logical_nc_config() == lnc, instance


@pytest.mark.parametrize(
    ("text", "count"),
    [
        (_devices(2, 2), 4),
        (_devices(4), 4),
        ("[]", 0),
        ("{}", None),
        ('[{"nc_count": "2"}]', None),
        ("not json", None),
    ],
)
def test_parse_neuron_ls(text: str, count: int | None) -> None:
    assert devices.parse_neuron_ls(text) == count


def test_the_real_sysfs_is_read_as_it_is() -> None:
    """On this machine: whatever it has, counting never raises."""
    found = devices.count_neuron_cores()
    assert found.count >= 0 and (found.source is None) == (found.count == 0)

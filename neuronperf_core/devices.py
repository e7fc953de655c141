"""What this machine has, read without importing any framework: CPU cores, NeuronCores,
the EC2 instance type. The one place that knows where each is found.

NeuronCores are counted as the Neuron runtime presents them, never by reserving them:

1. ``neuron-ls --json-output`` (each device's ``nc_count``): what the Neuron tools report
   to any user, and on trn2 the logical cores the runtime presents.
2. Else the driver's sysfs attribute ``neuron*/core_count``, where it can be read. The driver
   creates it readable by root only (aws-neuron-driver, ``neuron_cdev.c``: ``S_IRUSR``), so
   the usual user finds nothing there; and it counts physical cores, so on trn2 it is
   divided by the logical NeuronCore config (LNC) the runtime uses.

``NeuronCoreCount.source`` says which was used, for the reports.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuronperf_core.errors import NeuronPerfError

logger = logging.getLogger("neuronperf.devices")

INSTANCE_TYPE_FILE = "/sys/devices/virtual/dmi/id/product_name"  # e.g. "inf2.xlarge" on EC2
NEURON_SYSFS = "/sys/devices/virtual/neuron_device"  # per device: neuron*/core_count
NEURON_CORE_COUNT_GLOB = "neuron*/core_count"
NEURON_LS = "neuron-ls"
NEURON_LS_INSTALLED = "/opt/aws/neuron/bin/neuron-ls"  # where the Neuron tools package puts it
NEURON_LS_TIMEOUT_S = 30.0
# Instance families whose runtime presents logical NeuronCores: LNC physical cores each, LNC
# from NEURON_LOGICAL_NC_CONFIG, 2 by default (aws-neuron-sdk logical-neuroncore-config.rst).
LNC_FAMILIES = ("trn2", "trn2n", "trn2u")
LNC_VARIABLE = "NEURON_LOGICAL_NC_CONFIG"
LNC_VALUES = (1, 2)
DEFAULT_LNC = 2
SOURCE_NEURON_LS = "neuron-ls"
SOURCE_SYSFS = "sysfs"


class NeuronConfigError(NeuronPerfError, ValueError):
    """A Neuron setting in the environment has a value the runtime would not accept."""


@dataclass(frozen=True)
class NeuronCoreCount:
    """NeuronCores on this machine (logical ones on trn2) and how they were counted."""

    count: int
    source: str | None  # SOURCE_NEURON_LS or SOURCE_SYSFS; None when neither found any


def instance_type() -> str | None:
    """The EC2 instance type from local DMI data (no network metadata service)."""
    try:
        name = Path(INSTANCE_TYPE_FILE).read_text().strip()
    except OSError:
        return None
    return name if "." in name else None  # EC2 names look like "inf2.xlarge"


def instance_family() -> str | None:
    """``inf2`` for inf2.xlarge; None off EC2."""
    name = instance_type()
    return name.split(".")[0] if name else None


def cpu_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not Linux


def logical_nc_config() -> int | None:
    """The logical NeuronCore config the runtime uses here: NEURON_LOGICAL_NC_CONFIG, else 2,
    on the instance families that have one (trn2); None elsewhere."""
    if instance_family() not in LNC_FAMILIES:
        return None
    return runtime_lnc()


def runtime_lnc() -> int:
    """NEURON_LOGICAL_NC_CONFIG as the runtime reads it (2 when unset); trn2 only."""
    text = os.environ.get(LNC_VARIABLE, "").strip()
    if not text:
        return DEFAULT_LNC
    if text not in {str(v) for v in LNC_VALUES}:
        raise NeuronConfigError(
            f"{LNC_VARIABLE}={text!r}: the Neuron runtime takes "
            f"{' or '.join(map(str, LNC_VALUES))} (physical NeuronCores per logical core); "
            "fix or unset it."
        )
    return int(text)


def neuron_core_count() -> int:
    """NeuronCores on this machine (``count_neuron_cores``)."""
    return count_neuron_cores().count


def count_neuron_cores() -> NeuronCoreCount:
    """NeuronCores as the runtime presents them: from ``neuron-ls --json-output``, else from
    sysfs where readable (physical cores, divided by the LNC on trn2)."""
    listed = _count_with_neuron_ls()
    if listed is not None:
        return NeuronCoreCount(listed, SOURCE_NEURON_LS)
    physical = _count_in_sysfs()
    if not physical:
        return NeuronCoreCount(0, None)
    return NeuronCoreCount(physical // (logical_nc_config() or 1), SOURCE_SYSFS)


def neuron_ls() -> str | None:
    """The neuron-ls executable: on PATH, else where the Neuron tools install it."""
    import shutil

    found = shutil.which(NEURON_LS)
    if found is None and os.access(NEURON_LS_INSTALLED, os.X_OK):
        found = NEURON_LS_INSTALLED
    return found


def _count_with_neuron_ls() -> int | None:
    """The sum of each device's ``nc_count`` in ``neuron-ls --json-output``; None when
    neuron-ls is missing, fails, or prints something else."""
    import subprocess

    executable = neuron_ls()
    if executable is None:
        return None
    try:
        done = subprocess.run(
            [executable, "--json-output"],
            capture_output=True,
            text=True,
            timeout=NEURON_LS_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.debug("neuron-ls could not run: %s", exc)
        return None
    if done.returncode != 0:
        logger.debug("neuron-ls exited with %d: %s", done.returncode, done.stderr.strip())
        return None
    return parse_neuron_ls(done.stdout)


def parse_neuron_ls(text: str) -> int | None:
    """NeuronCores in ``neuron-ls --json-output``: a list of devices, each with ``nc_count``."""
    import json

    try:
        listing: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(listing, list) or not all(isinstance(d, dict) for d in listing):
        return None
    counts: list[int] = []
    for device in listing:
        count = device.get("nc_count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return None
        counts.append(count)
    return sum(counts)


def read_attribute(path: Path) -> str:
    """A sysfs attribute's text (OSError when this user may not read it)."""
    return path.read_text()


def _count_in_sysfs() -> int:
    """Physical NeuronCores from the driver's readable ``core_count`` attributes."""
    total = 0
    for counter in sorted(Path(NEURON_SYSFS).glob(NEURON_CORE_COUNT_GLOB)):
        try:
            total += int(read_attribute(counter).strip())
        except (OSError, ValueError):
            continue  # root only (S_IRUSR) for the usual user
    return total

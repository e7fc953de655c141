"""What this machine has, read without importing any framework: CPU cores, NeuronCores,
the EC2 instance type. The one place that knows where each is found."""

from __future__ import annotations

import os
from pathlib import Path

INSTANCE_TYPE_FILE = "/sys/devices/virtual/dmi/id/product_name"  # e.g. "inf2.xlarge" on EC2
NEURON_SYSFS = "/sys/devices/virtual/neuron_device"  # per device: neuron*/core_count
NEURON_CORE_COUNT_GLOB = "neuron*/core_count"


def instance_type() -> str | None:
    """The EC2 instance type from local DMI data (no network metadata service)."""
    try:
        name = Path(INSTANCE_TYPE_FILE).read_text().strip()
    except OSError:
        return None
    return name if "." in name else None  # EC2 names look like "inf2.xlarge"


def cpu_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not Linux


def neuron_core_count() -> int:
    """NeuronCores on this machine, from sysfs (unreadable counters are skipped)."""
    total = 0
    for counter in sorted(Path(NEURON_SYSFS).glob(NEURON_CORE_COUNT_GLOB)):
        try:
            total += int(counter.read_text().strip())
        except (OSError, ValueError):
            continue
    return total

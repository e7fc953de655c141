"""Discovery of a plugin that pip really installed (nox session plugins_installed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, distribution

import pytest

from neuronperf_core import plugins
from neuronperf_core.metrics.registry import create_metric

pytestmark = pytest.mark.installed_plugin

DIST = "neuronperf-sample-plugin"


@pytest.fixture(autouse=True)
def sample_plugin_installed():
    try:
        distribution(DIST)
    except PackageNotFoundError:
        if os.environ.get("NEURONPERF_EXPECT_SAMPLE_PLUGIN"):
            pytest.fail(
                f"{DIST} should be installed in this session (tests/fixtures/sample_plugin)"
            )
        pytest.skip(f"{DIST} is not installed; the nox session plugins_installed installs it")


def test_installed_plugin_registers_its_metric():
    (info,) = [p for p in plugins.get_host().plugins if p.name == "sample"]
    assert (info.distribution, info.version, info.status) == (DIST, "1.2.3", "active")
    assert info.registered == {"metrics": ["ExceedsTarget"]}
    metric = create_metric("exceeds_target")
    metric.process_batch([3, 1, 5, 0], [2, 2, 2, 2])
    assert type(metric).aggregate([metric]) == 0.5


def test_installed_console_script_lists_it():
    exe = shutil.which("neuronperf")
    assert exe, "the neuronperf console script should be installed"
    listed = json.loads(
        subprocess.run(
            [exe, "plugins", "--json"], check=True, capture_output=True, text=True
        ).stdout
    )
    assert {"name": "sample", "status": "active"}.items() <= next(
        p for p in listed if p["name"] == "sample"
    ).items()
    table = subprocess.run([exe, "metrics"], check=True, capture_output=True, text=True).stdout
    assert "ExceedsTarget" in table and "share of outputs above the target" in table

"""A stranger's metric package, written here from scratch and pip-installed for real.

It changes the environment it runs in (pip install, then pip uninstall), so it
runs only where ``NEURONPERF_TEST_PIP_INSTALL=1`` says that is fine: the nox
session, in its own virtualenv. There, a pip that fails is a test failure,
never a skip. Building without network (``--no-build-isolation``) needs
setuptools in that environment.
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

import neuronperf as npf
from neuronperf_core import plugins
from neuronperf_core.errors import UnknownNameError
from neuronperf_core.metrics.registry import get_metric

ENV = "NEURONPERF_TEST_PIP_INSTALL"
DIST = "npf-tiny-metric"
MODULE = "npf_tiny_metric"

pytestmark = [
    pytest.mark.pip_install,
    pytest.mark.skipif(not os.environ.get(ENV), reason=f"pip-installs a package; set {ENV}=1"),
]

PYPROJECT = f"""\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST}"
version = "0.0.1"
dependencies = ["neuronperf-core", "numpy"]

[project.entry-points.neuronperf]
tiny = "{MODULE}"

[tool.setuptools]
py-modules = ["{MODULE}"]
"""

SOURCE = '''\
"""TinyHits: the share of outputs that equal their target."""

import numpy as np

from neuronperf_core import BaseEvalMetric, hookimpl


class TinyHits(BaseEvalMetric):
    def __init__(self):
        super().__init__()
        self.hits = 0
        self.seen = 0

    def process_record(self, output, target):
        self.hits += int(output == target)
        self.seen += 1

    def process_batch(self, outputs, targets):
        self.hits += int(np.count_nonzero(np.asarray(outputs) == np.asarray(targets)))
        self.seen += len(targets)

    @staticmethod
    def aggregate(metrics):
        metrics = list(metrics)
        return sum(m.hits for m in metrics) / sum(m.seen for m in metrics)


@hookimpl
def neuronperf_register_metrics(register):
    register("TinyHits", TinyHits, description="tiny: share of outputs equal to the target")
'''


def pip(*args: str) -> None:
    """Run pip in this interpreter's environment; a failure fails the test."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        pytest.fail(f"pip {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def neuronperf_cli(env: dict[str, str], *args: str) -> str:
    """``neuronperf ARGS`` in a fresh process (the console script next to this interpreter)."""
    script = Path(sys.executable).with_name("neuronperf")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "neuronperf_core.cli"]
    done = subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def forget_imports() -> None:
    """Make this process see the environment as it is now (after pip changed it)."""
    importlib.invalidate_caches()
    sys.modules.pop(MODULE, None)
    plugins.reset()


def listed_metrics() -> str:
    printed = io.StringIO()
    npf.list_metrics(file=printed)
    return printed.getvalue()


def test_a_pip_installed_metric_package_is_found_used_and_gone_once_uninstalled(
    tmp_path: Path, plugin_env: dict[str, str]
) -> None:
    package = tmp_path / "tiny"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))

    pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(package))
    try:
        forget_imports()
        # listed, by the API and by the command line
        assert "TinyHits" in listed_metrics()
        assert "tiny: share of outputs equal to the target" in listed_metrics()
        (info,) = [p for p in plugins.get_host().plugins if p.name == "tiny"]
        assert (info.distribution, info.version, info.status) == (DIST, "0.0.1", "active")
        cli_plugins = neuronperf_cli(plugin_env, "plugins")
        assert "tiny" in cli_plugins and DIST in cli_plugins and "TinyHits" in cli_plugins

        # used by evaluate, beside a metric of neuronperf-metrics-extra
        rng = np.random.default_rng(0)
        targets = rng.integers(0, 2, 400)
        outputs = np.where(rng.random(400) < 0.8, targets, 1 - targets)
        dataset = [(int(o), int(t)) for o, t in zip(outputs, targets, strict=True)]
        (report,) = npf.cpu.evaluate(
            npf.DummyModel, dataset, metrics=["tiny_hits", "MCC"], results_dir=None
        )
        assert report["status"] == "finished", report["error"]
        assert report["tiny_hits"] == pytest.approx(float(np.mean(outputs == targets)))
        assert report["MCC"] == pytest.approx(skm.matthews_corrcoef(targets, outputs))
    finally:
        pip("uninstall", "--yes", DIST)
        forget_imports()

    assert "TinyHits" not in listed_metrics()
    with pytest.raises(UnknownNameError, match="Unknown metric 'tiny_hits'"):
        get_metric("tiny_hits")
    assert "tiny" not in [p.name for p in plugins.get_host().plugins]
    assert "TinyHits" not in neuronperf_cli(plugin_env, "plugins")

"""The plugin as users meet it: the runner "ray" is listed without importing ray, and the
core never imports ray itself (not on `import neuronperf`, not in a threads benchmark)."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from neuronperf_core.cli import app


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_ray_runner_is_registered_by_path_and_imports_no_ray_until_a_run() -> None:
    done = run(
        "import sys\n"
        "import neuronperf as npf\n"
        "from neuronperf_core.plugins import get_host\n"
        "entry = get_host().runners.get('ray')\n"
        "assert entry.provider == 'ray', entry.provider\n"
        "assert 'ray' not in sys.modules\n"
        "runner = entry.value  # the runner module; ray itself waits for a run\n"
        "assert runner.places_copies and 'ray' not in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_core_never_imports_ray() -> None:
    done = run(
        "import sys\n"
        "import numpy as np\n"
        "import neuronperf as npf\n"
        "npf.list_metrics()\n"
        "(r,) = npf.cpu.benchmark(npf.DummyModel, np.zeros((1, 4)), batch_sizes=[1],\n"
        "    n_models=[1], workers_per_model=[1], duration=0, max_infers=3,\n"
        "    multiprocess=False, results_dir=None, verbosity=0)\n"
        "assert r['status'] == 'finished', r['error']\n"
        "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')]\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_command_line_takes_the_ray_options() -> None:
    for command in ("benchmark", "evaluate"):
        shown = CliRunner().invoke(app.cli, [command, "--help"]).output
        assert "--ray-address" in shown and "--ray-placement" in shown

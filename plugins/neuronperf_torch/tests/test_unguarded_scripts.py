"""NeuronPerf 1.x scripts, unguarded: the torch plugin's copies run in fresh interpreters
(never forked), and those never import the script again, so a script that compiles,
benchmarks and evaluates at its top level, as 1.x's examples do, runs once and exits 0.

Each script runs in a subprocess from a folder of its own. n_models is given so that the
run stays small on a machine with many cores (the default sweeps up to one copy per core).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

BENCHMARK_1X = """
    import os
    import torch
    import neuronperf as npf
    import neuronperf.torch

    with open("imported.log", "a") as log:
        log.write(f"{os.getpid()}\\n")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

    batch_sizes = [1, 2]
    inputs = [torch.zeros((b, 3, 8, 8), dtype=torch.float32) for b in batch_sizes]
    filename = npf.torch.compile(Net().eval(), inputs, batch_sizes=batch_sizes,
                                 device_type="cpu", filename="model_index.json")

    reports = npf.torch.benchmark(filename, inputs, batch_sizes, duration=1, n_models=2,
                                  workers_per_model=1)
    npf.print_reports(reports)
    print("statuses", [r["status"] for r in reports])
"""

EVALUATE_GUIDE = """
    import os
    import torch
    import neuronperf as npf
    import neuronperf.torch

    with open("imported.log", "a") as log:
        log.write(f"{os.getpid()}\\n")

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)).eval()
    index = npf.torch.compile(model, torch.zeros(1, 3, 2, 2), device_type="cpu",
                              filename="model_index.json")

    class Images(torch.utils.data.Dataset):
        # defined in the script: it reaches the copies by value
        def __init__(self, n):
            self.x = torch.randn(n, 3, 2, 2)
            with torch.inference_mode():
                self.y = model(self.x).argmax(1)

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.x[i], self.y[i]

    dataset = Images(64)
    reports = npf.torch.evaluate(index, dataset, metrics=["accuracy"], multiprocess=True,
                                 n_models=2)
    npf.print_reports(reports)
    print("evaluated", reports[0]["status"], reports[0]["runner"], reports[0]["accuracy"])
"""


def run_script(folder: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = folder / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),  # not the C environment, where pytest's readline put COLUMNS=80
    )


def test_the_1x_example_compiles_and_benchmarks_at_the_top_level(tmp_path: Path) -> None:
    result = run_script(tmp_path, BENCHMARK_1X)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("statuses ['finished', 'finished']") == 1, result.stdout
    assert sum(line.startswith("---") for line in lines) == 1, result.stdout  # one table
    assert len((tmp_path / "imported.log").read_text().split()) == 1  # no copy imported it


def test_the_guides_evaluate_at_the_top_level_in_fresh_interpreters(tmp_path: Path) -> None:
    result = run_script(tmp_path, EVALUATE_GUIDE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("evaluated finished interpreters 1.0") == 1, result.stdout
    assert len((tmp_path / "imported.log").read_text().split()) == 1

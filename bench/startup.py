"""What neuronperf adds to an interpreter's start, where a person waits for it.

Target: each command under 100 ms above a bare `python -c pass`, importing
neither torch nor the benchmark engine (neuronperf_core.benchmarking), with
every plugin of this repository installed:

    import neuronperf; neuronperf.list_metrics()
    neuronperf --help
    neuronperf metrics

The CLI runs as the `neuronperf` console script next to this interpreter, or as
`python -m neuronperf_core.cli` where there is none (the table says which).
Each command runs alternately with the bare interpreter, in fresh interpreters
(so disk cache and machine noise hit both alike); the table shows medians. What
each command imported is read from `-X importtime` in one more run. Bytecode is
cached, as in an installed package, in a temporary PYTHONPYCACHEPREFIX (even where
PYTHONDONTWRITEBYTECODE is set, which would time compiling every module instead).

    python bench/startup.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 100.0
BARE = [sys.executable, "-c", "pass"]
WATCHED = ("torch", "numpy", "neuronperf_core.benchmarking")
PLUGINS = (
    "from neuronperf_core.plugins import get_host; "
    "print(', '.join(f'{p.name} ({p.status})' for p in get_host().plugins))"
)


def cli_command() -> tuple[list[str], str]:
    script = Path(sys.executable).parent / "neuronperf"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], "neuronperf"
    found = shutil.which("neuronperf")
    if found and Path(found).resolve().parent == Path(sys.executable).resolve().parent:
        return [found], "neuronperf"
    return [sys.executable, "-m", "neuronperf_core.cli"], "python -m neuronperf_core.cli"


def commands() -> list[tuple[str, list[str]]]:
    cli, cli_label = cli_command()
    return [
        (
            "import neuronperf; neuronperf.list_metrics()",
            [sys.executable, "-c", "import neuronperf; neuronperf.list_metrics()"],
        ),
        (f"{cli_label} --help", [*cli, "--help"]),
        (f"{cli_label} metrics", [*cli, "metrics"]),
    ]


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="neuronperf-startup-pycache-")


def run_ms(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1e3, done.returncode


def imported(argv: list[str]) -> tuple[set[str], int]:
    """Every module ``argv`` imported (top-level and dotted names), from -X importtime."""
    env = {**ENV, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return names, done.returncode


def loaded(names: set[str], module: str) -> bool:
    return any(n == module or n.startswith(module + ".") for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    try:
        report(args.rounds)
    finally:
        shutil.rmtree(ENV["PYTHONPYCACHEPREFIX"], ignore_errors=True)


def report(rounds: int) -> None:
    rows = []
    for label, argv in commands():
        names, returncode = imported(argv)
        if returncode != 0:
            rows.append((label, None, None, returncode, names))
            continue
        run_ms(BARE), run_ms(argv)  # warm the disk and bytecode caches
        bare, timed = [], []
        for _ in range(rounds):
            bare.append(run_ms(BARE)[0])
            timed.append(run_ms(argv)[0])
        rows.append((label, statistics.median(bare), statistics.median(timed), 0, names))

    plugin_names = subprocess.run(
        [sys.executable, "-c", PLUGINS], env=ENV, capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"plugins loaded: {plugin_names}")
    print(f"python {sys.version.split()[0]}, {rounds} rounds, medians in ms")
    header = f"{'command':<48} {'bare':>6} {'cmd':>7} {'added':>7}"
    print(header + "".join(f" {m.split('.')[-1]:>12}" for m in WATCHED) + "  verdict")
    all_met = True
    for label, bare_ms, cmd_ms, returncode, names in rows:
        if bare_ms is None or cmd_ms is None:
            print(f"{label:<48} {'failed to run (exit status ' + str(returncode) + ')':>22}")
            all_met = False
            continue
        added = cmd_ms - bare_ms
        heavy = [m for m in WATCHED if loaded(names, m)]
        met = added < TARGET_MS and not ({"torch", "neuronperf_core.benchmarking"} & set(heavy))
        all_met = all_met and met
        flags = "".join(f" {'imported' if m in heavy else '-':>12}" for m in WATCHED)
        verdict = "meets" if met else "MISSES"
        print(f"{label:<48} {bare_ms:>6.1f} {cmd_ms:>7.1f} {added:>7.1f}{flags}  {verdict}")
    print(
        f"target: < {TARGET_MS:.0f} ms added, no torch, no neuronperf_core.benchmarking "
        f"(numpy only where a listed metric needs it): {'met' if all_met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

"""The built-in runners plugin: registers "threads", "processes" and "interpreters".

Runners are registered by import path, so loading plugins (``neuronperf --help``,
``list_metrics()``) imports neither numpy nor the benchmark engine; the runner is
imported from ``neuronperf_core.benchmarking.runners`` on its first use.
"""

from __future__ import annotations

from neuronperf_core.hookspecs import RegisterRunner, hookimpl

__all__ = ["BUILTIN_RUNNERS", "neuronperf_register_runners"]

_RUNNERS = "neuronperf_core.benchmarking.runners"

# (name, import path of the runner object, description)
BUILTIN_RUNNERS: tuple[tuple[str, str, str], ...] = (
    ("threads", f"{_RUNNERS}:THREADS", "model copies and workers as threads here"),
    ("processes", f"{_RUNNERS}:PROCESSES", "one forked process per copy"),
    (
        "interpreters",
        f"{_RUNNERS}:INTERPRETERS",
        "one fresh interpreter per copy, the job sent by value (frameworks unsafe to fork)",
    ),
)


@hookimpl
def neuronperf_register_runners(register: RegisterRunner) -> None:
    for name, path, description in BUILTIN_RUNNERS:
        register(name, path, description=description)

"""The built-in runners plugin: registers "threads", "processes" and "interpreters".

Runners are registered by import path, so loading plugins (``neuronperf --help``,
``list_metrics()``) imports neither numpy nor the benchmark engine; the runner is
imported from ``neuronperf_core.benchmarking.runners`` on its first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neuronperf_core.hookspecs import RegisterRunner, hookimpl

if TYPE_CHECKING:
    from neuronperf_core.options import BenchmarkOptions

__all__ = ["BUILTIN_RUNNERS", "choose_runner", "neuronperf_register_runners"]

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


def choose_runner(options: BenchmarkOptions, *, no_fork: str | None = None) -> str:
    """The runner a run uses: ``runner=``, else NeuronPerf 1.x's flags (threads here, or a
    process per copy with ``multiprocess=True``; ``multiinterpreter=True`` asks for fresh
    interpreters).

    ``no_fork`` is a backend's reason its copies must not be forked (a framework with
    thread pools or a device runtime that a fork breaks): its copies then get fresh
    interpreters, and ``runner="processes"`` is refused with that reason.
    """
    from neuronperf_core.options import OptionError

    if options.runner == "processes" and no_fork is not None:
        raise OptionError(
            f"runner='processes' forks this process, which this model does not survive: "
            f"{no_fork}. Use runner='interpreters' (the default with multiprocess=True) or "
            "multiprocess=False."
        )
    if options.runner is not None:
        return options.runner
    if options.multiinterpreter or (options.multiprocess and no_fork is not None):
        return "interpreters"
    return "processes" if options.multiprocess else "threads"

"""What a neuronperf plugin may provide.

A plugin is a module (or any object) with functions named like the specs below
and marked with ``@neuronperf_core.hookimpl``. Third-party plugins are found
through the ``neuronperf`` entry-point group::

    [project.entry-points.neuronperf]
    my_metrics = "my_package.plugin"

Every registration hook receives a ``register`` callback and calls it once per
thing it provides, so one plugin can provide many things and neuronperf knows
which plugin provided each. All registration hooks run once per process, on
first need (the first lookup of a metric, framework or runner,
``list_metrics()``, ``neuronperf plugins``): built-in plugins first, then
entry points sorted by name; for each plugin, metrics, then backends, then
runners. A hook that raises, or
registers something invalid, fails its whole plugin: nothing it registered is
kept, and the host goes on (unless ``NEURONPERF_STRICT_PLUGINS=1``).

Plugin modules must stay cheap to import: import heavy libraries (torch) on
first real use, inside functions, never at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from neuronperf_core.backend import Backend

PROJECT_NAME = "neuronperf"  # the markers, the PluginManager and the entry-point group

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RegisterMetric(Protocol):
    def __call__(
        self,
        name: str,
        metric_class: type | str,
        *,
        description: str,
        aliases: tuple[str, ...] = (),
    ) -> None: ...


class RegisterBackend(Protocol):
    def __call__(self, backend: Backend) -> None: ...


class RegisterRunner(Protocol):
    def __call__(self, name: str, runner: Any, *, description: str = "") -> None: ...


@hookspec
def neuronperf_register_metrics(register: RegisterMetric) -> None:
    """Register evaluation metrics.

    Call ``register(name, metric_class, description=..., aliases=(...))`` once
    per metric. ``metric_class`` is a subclass of ``BaseEvalMetric`` whose
    constructor works without arguments (``register_metric_from_existing``
    adds keyword arguments later), or, better, its import path
    ``"package.module:ClassName"``: listing metrics then imports nothing of
    yours, and the class is imported and checked on the metric's first use
    (a lookup that needs the class: evaluation, ``create_metric``, a spec). A
    path that fails to import or is not such a class raises, on that first
    use, a ``PluginError`` naming your plugin; the other metrics still work.
    ``name`` is how the metric is listed (CamelCase by convention); lookups
    also accept its lower-case and snake_case spellings and every alias.
    ``description`` is one line for ``list_metrics()``, usually the formula:
    give it as a string here, so listing needs no import.

    Returns nothing. Called once per process, on first need (a metric lookup,
    ``list_metrics()``, ``neuronperf plugins``). A name another plugin already
    registered fails this plugin.
    """


@hookspec
def neuronperf_register_backends(register: RegisterBackend) -> None:
    """Register frameworks (torch, ...) as ``Backend`` objects.

    Call ``register(backend)`` once per backend: an object that satisfies
    ``neuronperf_core.backend.Backend`` (read that module: it is the whole contract).
    ``backend.name`` is its namespace: users reach it as ``npf.<name>`` (``npf.torch``,
    ``import neuronperf.torch``), whose ``compile``, ``benchmark`` and ``evaluate`` are the
    core's, bound to it; names in ``backend.extras`` (``("load",)``) are added there too.
    Building the object must import nothing heavy: import the framework inside its methods.

    A model ``plan_run``'s loader returns may offer ``neuronperf_worker_setup()``: each
    worker thread calls it once before the timed window (thread-local runtime state, such
    as OpenMP's thread count).

    Returns nothing. Called once per process, with the other registration hooks.
    """


@hookspec
def neuronperf_register_commands(cli: Any) -> None:
    """Add subcommands to the ``neuronperf`` command line.

    ``cli`` is the click group of ``neuronperf``; add commands with
    ``@cli.command()`` or ``cli.add_command(...)`` (``neuronperf demo`` comes from the
    torch plugin this way). Import what the command needs inside the command's function,
    so that ``neuronperf --help`` stays fast.

    Returns nothing. Called once, when the command line starts; a plugin whose hook raises
    is reported by ``neuronperf plugins`` as failed, and the other commands still work.
    """


@hookspec
def neuronperf_register_runners(register: RegisterRunner) -> None:
    """Register benchmark runners (threads, processes, fresh interpreters, ...).

    Call ``register(name, runner, description=...)`` once per runner. A runner
    takes a benchmark configuration, runs model copies and worker loops, and
    returns plain serialisable raw results (status, counts, int64 nanosecond
    timestamp arrays); it never formats a report. The runner interface itself
    is defined with the benchmark engine.

    Returns nothing. Called once per process, with the other registration hooks.
    """

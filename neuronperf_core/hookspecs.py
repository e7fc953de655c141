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
entry points sorted by name; for each plugin, metrics, then frameworks, then
runners. A hook that raises, or
registers something invalid, fails its whole plugin: nothing it registered is
kept, and the host goes on (unless ``NEURONPERF_STRICT_PLUGINS=1``).

Plugin modules must stay cheap to import: import heavy libraries (torch) on
first real use, inside functions, never at module level.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

PROJECT_NAME = "neuronperf"  # the markers, the PluginManager and the entry-point group

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RegisterMetric(Protocol):
    def __call__(
        self,
        name: str,
        metric_class: type,
        *,
        description: str,
        aliases: tuple[str, ...] = (),
    ) -> None: ...


class RegisterFramework(Protocol):
    def __call__(self, name: str, module_path: str, *, description: str = "") -> None: ...


class RegisterRunner(Protocol):
    def __call__(self, name: str, runner: Any, *, description: str = "") -> None: ...


@hookspec
def neuronperf_register_metrics(register: RegisterMetric) -> None:
    """Register evaluation metrics.

    Call ``register(name, metric_class, description=..., aliases=(...))`` once
    per metric. ``metric_class`` is a subclass of ``BaseEvalMetric`` whose
    constructor works without arguments (``register_metric_from_existing``
    adds keyword arguments later). ``name`` is how the metric is listed
    (CamelCase by convention); lookups also accept its lower-case and
    snake_case spellings and every alias. ``description`` is one line for
    ``list_metrics()``, usually the formula.

    Returns nothing. Called once per process, on first need (a metric lookup,
    ``list_metrics()``, ``neuronperf plugins``). A name another plugin already
    registered fails this plugin.
    """


@hookspec
def neuronperf_register_frameworks(register: RegisterFramework) -> None:
    """Register model frameworks (torch, ...).

    Call ``register(name, module_path, description=...)`` once per framework.
    ``module_path`` is the import path of the framework's user-facing module
    (``"neuronperf_torch.api"``), imported on the first use of
    ``neuronperf.<name>`` (``npf.torch``, ``import neuronperf.torch``), so
    registering imports nothing heavy. That module offers ``compile``,
    ``benchmark`` and ``evaluate`` for its framework: it knows how to compile,
    save, load and call a model and which devices it supports, and passes a
    ``load_fn`` to ``neuronperf.benchmark``; it never times anything itself.
    ``benchmark`` and ``evaluate`` accept ``neuronperf.benchmark``'s keywords,
    ``results_file`` among them. A model its ``load_fn`` returns may offer
    ``neuronperf_worker_setup()``: each worker thread calls it once before the
    timed window (thread-local runtime state, such as OpenMP's thread count).

    The ``neuronperf`` command line also calls, where the module offers them
    (a command that needs a missing one says so):

    - ``owns(target) -> bool``: whether it can take ``target``, a model object
      or the path of a model file or model index; never raises.
    - ``read_model(path)``: a saved, not yet compiled model, for ``compile``.
    - ``read_arrays(path) -> list``: the arrays of an input or dataset file in
      the framework's own format (the core reads ``.npz`` itself).
    - ``dataset_from_arrays(arrays)``: a dataset of ``(*inputs, target)``
      records, columns given, that its ``evaluate`` accepts.
    - ``demo(output_dir, *, quick, device_type, verbosity) -> dict``: the
      end-to-end showcase behind ``neuronperf demo``.

    Returns nothing. Called once per process, with the other registration hooks.
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

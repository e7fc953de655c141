"""The contract between the core and a framework plugin: one typed ``Backend`` object.

The core does every framework-neutral step once, for every backend: it checks the
options, selects the configs of a model index, matches inputs to configs, plans the
sweep, chooses the runner, loops over batch sizes when evaluating, writes the model
index and the results files. A backend knows only what needs its framework:

- what it owns (models, model files, model indexes) and a compiled file's own record;
- how to compile one config to one file;
- what a run on a device needs: the device, the runner, how many copies fit, each
  copy's placement, and a picklable loader;
- how to turn user inputs into model inputs, check them against a config, and read a
  dataset as batched rows of ``tuple(*INPUTS, TARGET)`` at a batch size;
- for the command line, how to read a saved model, an array file and a dataset.

Plugins register backends through ``neuronperf_register_backends``; the object they
register must be cheap to build (import the framework inside its methods). A plugin
that finds itself re-doing a core step is missing something here: extend this
contract, not the plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from neuronperf_core.options import BenchmarkOptions, CompileOptions

# load_fn(model_filename, device_id=copy_id) -> the callable model of one copy. Picklable:
# runners send it to the copy's own process.
LoadFn = Callable[..., Any]
# copy_setup(copy_id, config) runs in the copy's own process (or thread) before load_fn:
# it places the copy on its device (environment variables, thread counts). Picklable.
CopySetup = Callable[[int, dict[str, Any]], None]


@dataclass(frozen=True)
class CompileSpec:
    """One artifact the core asks a backend to compile."""

    input_idx: int
    batch_size: int
    pipeline_size: int
    cast_mode: str | None


@dataclass(frozen=True)
class CompilePlan:
    """What a backend decided for a whole compile, before any config compiles."""

    device_type: str
    cast_modes: list[str | None]  # the modes to compile (defaults resolved)
    extension: str  # of every artifact, e.g. ".pt2"
    index_fields: dict[str, Any] = field(default_factory=dict)  # recorded in every config
    settings: Any = None  # the backend's own, handed back to compile_one


@dataclass(frozen=True)
class RunPlan:
    """What a backend decided for a run, before any model loads."""

    device_type: str
    runner: str  # a registered runner
    # copies of the selected configs the device holds: n_models defaults to [1, max_copies]
    # and may not exceed it; None when the backend cannot tell (n_models defaults to 1)
    max_copies: int | None
    load_fn: LoadFn
    copy_setup: CopySetup | None = None
    # entered around the whole run in the calling process: gives back process-wide state a
    # threads runner changes (torch's intra-op thread count, say)
    session: Callable[[], AbstractContextManager[Any]] | None = None
    # a signal's name ("SIGABRT") -> the likely cause when a copy in a process of its own
    # dies by it on this device; the runner adds it to the config's error
    death_hints: Mapping[str, str] = field(default_factory=dict)
    # fields for each config's report, given its n_models and workers_per_model: the
    # settings the backend applies that change what is measured (intra-op threads, the
    # copy's allocator), so a user can reproduce them in their own process
    report_fields: Callable[[int, int], Mapping[str, Any]] | None = None
    # load_fn reads each config's filename as a file: the core refuses missing ones before
    # any copy loads. False where filenames are names a user's load_fn knows (NeuronPerf 1.x)
    model_files: bool = True


class ShardedRows(Protocol):
    """Batched rows a backend can split across workers without a shared iterator (each
    worker reads rows ``shard, shard + n_shards, ...``)."""

    def __iter__(self) -> Iterator[tuple[Any, ...]]: ...

    def shard(self, shard: int, n_shards: int) -> Iterator[tuple[Any, ...]]: ...


@runtime_checkable
class Backend(Protocol):
    """A framework as the core sees it. ``name`` is its namespace: ``npf.<name>``."""

    name: str
    description: str
    device_types: tuple[str, ...]  # the first is the default

    def owns(self, target: object) -> bool:
        """Whether ``target`` (a model object, or the path of a model file or model index)
        is this backend's to compile or run. Never raises."""
        ...

    def model_meta(self, path: Path) -> Mapping[str, Any] | None:
        """The record one compiled model file carries (``batch_size``, ``cast_mode``,
        ``device_type``, ``input_shapes``, ...), or None; used when a model file is
        benchmarked without an index."""
        ...

    # -- compile ----------------------------------------------------------------------------

    def plan_compile(self, model: Any, options: CompileOptions) -> CompilePlan:
        """Check everything a compile needs (device, cast modes, compiler options) and say
        what it will do; raise a NeuronPerfError before anything compiles."""
        ...

    def compile_one(
        self, model: Any, example: Any, spec: CompileSpec, path: Path, plan: CompilePlan
    ) -> dict[str, Any]:
        """Compile ``model`` for ``example`` (one input of ``spec.batch_size``) and write the
        artifact to ``path``; return fields to record in the config (may be empty). Raise
        on failure: the core records the error and goes on with the other configs."""
        ...

    # -- run ----------------------------------------------------------------------------------

    def plan_run(
        self, target: Any, configs: Sequence[Mapping[str, Any]], options: BenchmarkOptions
    ) -> RunPlan:
        """The device (``options.device_type``, or the one the configs were compiled for),
        the runner (``options.runner``, else the backend's choice), how many copies fit, and
        the loader. Raise a NeuronPerfError when the device is missing."""
        ...

    def coerce_inputs(
        self, inputs: Any, batch_sizes: Sequence[int], options: BenchmarkOptions | None
    ) -> Any:
        """User inputs as model inputs: a list with one input per batch size, or one input.
        ``batch_sizes`` are those of the selected configs, in order. ``options`` is None for
        compile's example inputs; for benchmark, a backend that reads a dataset as inputs
        uses ``dataloader_kwargs`` and ``eval_target_col`` (the column to leave out), and
        one that cannot must refuse them."""
        ...

    def batch_size_of(self, model_input: Any) -> int | None:
        """The batch dimension of a coerced input (None when it has none)."""
        ...

    def check_input(self, config: Mapping[str, Any], model_input: Any, what: str) -> None:
        """Raise a NeuronPerfError unless ``model_input`` fits the compiled ``config``."""
        ...

    def batches(
        self, dataset: Any, batch_size: int, target_col: int, options: BenchmarkOptions
    ) -> Iterable[tuple[Any, ...]] | ShardedRows:
        """``dataset`` read as rows ``tuple(*INPUTS, TARGET)`` of ``batch_size`` records: the
        last partial batch padded to ``batch_size`` with its TARGET left at the real length
        (the core scores only the real records). Lazy: nothing is read until iterated."""
        ...

    # -- the command line -----------------------------------------------------------------

    def read_model(self, path: Path) -> Any:
        """A saved, not yet compiled model (``neuronperf compile FILE``)."""
        ...

    def read_arrays(self, path: Path) -> list[Any]:
        """The arrays of an input or dataset file in the framework's own format (the core
        reads ``.npz`` itself)."""
        ...

    def dataset_from_arrays(self, arrays: Sequence[Any]) -> Any:
        """A dataset of ``(*inputs, target)`` records from columns, for ``evaluate``."""
        ...
